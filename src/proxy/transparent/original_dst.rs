//! The address a redirected connection was originally sent to: the kernel keeps it in the
//! connection's conntrack entry and hands it out with `SO_ORIGINAL_DST` (IPv4) or
//! `IP6T_SO_ORIGINAL_DST` (IPv6).
//!
//! Not here: deciding what to do with it (transparent/mod.rs).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use tokio::net::TcpStream;

/// `SO_ORIGINAL_DST` from linux/netfilter_ipv4.h and `IP6T_SO_ORIGINAL_DST` from
/// linux/netfilter_ipv6/ip6_tables.h: both 80, at SOL_IP and SOL_IPV6.
const SO_ORIGINAL_DST: libc::c_int = 80;

/// The original destination of an accepted connection (its own local address when it was not
/// redirected, as for a client that dialled the listener itself).
pub fn original_destination(stream: &TcpStream) -> io::Result<SocketAddr> {
    let fd = stream.as_raw_fd();
    match stream.local_addr()? {
        SocketAddr::V4(_) => {
            // SAFETY: a zeroed sockaddr_in is a valid value; getsockopt writes at most `len`.
            let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
            getsockopt(fd, libc::SOL_IP, (&raw mut addr).cast(), &mut len)?;
            let ip = Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
            Ok(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(addr.sin_port),
            )))
        }
        SocketAddr::V6(_) => {
            // SAFETY: as above, for sockaddr_in6.
            let mut addr: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            let mut len = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            getsockopt(fd, libc::SOL_IPV6, (&raw mut addr).cast(), &mut len)?;
            let ip = Ipv6Addr::from(addr.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(addr.sin6_port),
                0,
                0,
            )))
        }
    }
}

fn getsockopt(
    fd: libc::c_int,
    level: libc::c_int,
    out: *mut libc::c_void,
    len: &mut libc::socklen_t,
) -> io::Result<()> {
    // SAFETY: `out` points to a sockaddr of `*len` bytes owned by the caller.
    let rc = unsafe { libc::getsockopt(fd, level, SO_ORIGINAL_DST, out, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
