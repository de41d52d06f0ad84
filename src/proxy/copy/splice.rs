//! Kernel-side relaying between two plain TCP sockets (Linux).
//!
//! `splice(2)` moves bytes socket → pipe → socket without copying them through user space:
//! on a loaded edge node the tunnel then costs the kernel's work only, not a second pair of
//! copies in sluice. Semantics match `tokio::io::copy_bidirectional`: each direction runs until
//! its reader reaches EOF, then shuts down the other side's write half; the tunnel ends when
//! both directions have ended, or at the first error.
//!
//! Each direction's pipe is made only when its first bytes arrive and starts at the kernel's
//! default size; it grows to [`CHUNK`] only while splices fill it, so 10k idle tunnels do not
//! pin 10k × 512 KiB of pipe memory.
//!
//! Not here: the decision, idle timeouts (copy.rs selects on them).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use prometheus_client::metrics::counter::Counter;
use tokio::io::Interest;
use tokio::net::TcpStream;

use super::{Activity, Counters};

/// Largest pipe, and so the most bytes one splice call moves.
const CHUNK: usize = 256 * 1024;

/// Relays both ways between `client` and `upstream`, counting and touching `activity`
/// whenever bytes move.
pub async fn relay(
    client: &TcpStream,
    upstream: &TcpStream,
    counters: &Counters,
    activity: &Activity,
) -> io::Result<()> {
    let (a, b) = tokio::join!(
        one_way(client, upstream, &counters.up, activity),
        one_way(upstream, client, &counters.down, activity)
    );
    a.and(b)
}

async fn one_way(
    from: &TcpStream,
    to: &TcpStream,
    count: &Counter,
    activity: &Activity,
) -> io::Result<()> {
    // No pipe until the first bytes: idle tunnels hold none.
    from.readable().await?;
    let Ok(mut pipe) = Pipe::new() else {
        // Out of descriptors (a pipe takes two): an open tunnel keeps moving, through user
        // space.
        return copy_through_buffer(from, to, count, activity).await;
    };
    loop {
        // The pipe is empty here: fill it from the socket.
        let n = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || {
                splice(from.as_raw_fd(), pipe.write.as_raw_fd(), pipe.size)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if n == 0 {
            // EOF: pass the half-close on, as copy_bidirectional does.
            // SAFETY: shutdown(2) on a socket descriptor we borrow; it does not close it.
            unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
            return Ok(());
        }
        let mut left = n;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(pipe.read.as_raw_fd(), to.as_raw_fd(), left)
            }) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => left -= m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        count.inc_by(n as u64);
        activity.touch();
        if n >= pipe.size {
            pipe.grow();
        }
    }
}

/// One direction copied through a buffer: what a tunnel does when it cannot get a pipe.
async fn copy_through_buffer(
    from: &TcpStream,
    to: &TcpStream,
    count: &Counter,
    activity: &Activity,
) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        from.readable().await?;
        let n = match from.try_read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        if n == 0 {
            // SAFETY: shutdown(2) on a socket descriptor we borrow; it does not close it.
            unsafe { libc::shutdown(to.as_raw_fd(), libc::SHUT_WR) };
            return Ok(());
        }
        let mut done = 0;
        while done < n {
            to.writable().await?;
            match to.try_write(&buf[done..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => done += m,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        count.inc_by(n as u64);
        activity.touch();
    }
}

fn splice(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: both descriptors are open for the duration of the call; null offsets mean "the
    // file position", which sockets and pipes do not have.
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    /// Its capacity as the kernel reports it.
    size: usize,
}

impl Pipe {
    fn new() -> io::Result<Self> {
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two descriptors into the array on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both descriptors were just created and are owned by nobody else.
        let mut pipe = unsafe {
            Self {
                read: OwnedFd::from_raw_fd(fds[0]),
                write: OwnedFd::from_raw_fd(fds[1]),
                size: 0,
            }
        };
        // SAFETY: fcntl on a descriptor we own.
        let size = unsafe { libc::fcntl(pipe.write.as_raw_fd(), libc::F_GETPIPE_SZ) };
        pipe.size = usize::try_from(size).unwrap_or(64 * 1024).max(4096);
        Ok(pipe)
    }

    /// Doubles the pipe (fewer splice calls for bulk transfers), up to [`CHUNK`]; failure (a
    /// capped pipe-max-size) leaves it as it is.
    fn grow(&mut self) {
        if self.size >= CHUNK {
            return;
        }
        let want = (self.size * 2).min(CHUNK) as libc::c_int;
        // SAFETY: fcntl on a descriptor we own; the pipe is empty here.
        let got = unsafe { libc::fcntl(self.write.as_raw_fd(), libc::F_SETPIPE_SZ, want) };
        if let Ok(got) = usize::try_from(got) {
            self.size = got;
        }
    }
}
