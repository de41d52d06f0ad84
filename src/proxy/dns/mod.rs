//! The DNS listener of transparent interception: the pod's rules send every query the
//! processor makes (UDP and TCP port 53, to any address) here, on `intercept.dns.listen` (and
//! `[::1]` on the same port when IPv6 is up). Each query is judged and answered by query.rs
//! (one the answer cache holds right in the UDP receive loop, only a lookup that must go out
//! in a task of its own);
//! a TCP connection carries length-prefixed queries, and one that stalls or ends inside a
//! frame is closed and counted. Malformed input never stops the listener.
//!
//! Not here: judging (query.rs), resolvers (upstream.rs), names given out (names.rs), the
//! answer cache (cache.rs).

pub mod cache;
pub mod names;
pub(crate) mod query;
pub mod upstream;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::config::intercept::InterceptDnsConfig;
use crate::drain::Watch;
use crate::proxy::Gateway;
use crate::proxy::transparent::bind::{InterceptError, bind_tcp, loopback_v6, no_ipv6};
use cache::AnswerCache;
use names::AnsweredNames;
use upstream::Resolvers;

const PROTOCOL: &str = "dns";
/// Queries answered at once; further datagrams wait in the socket buffer.
const MAX_IN_FLIGHT: usize = 1024;
/// A TCP client must send each whole frame within this, and its next one within the idle time.
const TCP_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// What every query shares.
pub struct Dns {
    pub gateway: Arc<Gateway>,
    pub cfg: InterceptDnsConfig,
    pub resolvers: Resolvers,
    pub names: Arc<AnsweredNames>,
    pub cache: AnswerCache,
}

/// The bound sockets (bound before the gateway reports ready).
pub struct DnsSockets {
    udp: Vec<UdpSocket>,
    tcp: Vec<TcpListener>,
}

impl DnsSockets {
    pub async fn bind(addr: SocketAddr) -> Result<Self, InterceptError> {
        let key = "intercept.dns.listen";
        let bind_err = |addr, source| InterceptError::Bind { addr, key, source };
        let mut udp = vec![UdpSocket::bind(addr).await.map_err(|e| bind_err(addr, e))?];
        if let Some(v6) = loopback_v6(addr) {
            match UdpSocket::bind(v6).await {
                Ok(s) => udp.push(s),
                Err(e) if no_ipv6(&e) => {}
                Err(e) => return Err(bind_err(v6, e)),
            }
        }
        let tcp = bind_tcp(addr, key).await?;
        Ok(Self { udp, tcp })
    }

    /// The addresses listened on (so the resolvers never include sluice itself).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.udp
            .iter()
            .filter_map(|s| s.local_addr().ok())
            .collect()
    }
}

/// Serves every socket until `drain` is signaled.
pub fn spawn(d: Arc<Dns>, sockets: DnsSockets, drain: Watch) -> Vec<JoinHandle<()>> {
    let limit = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = Vec::new();
    for s in sockets.udp {
        tasks.push(tokio::spawn(udp_loop(
            d.clone(),
            Arc::new(s),
            limit.clone(),
            drain.clone(),
        )));
    }
    for l in sockets.tcp {
        tasks.push(tokio::spawn(tcp_loop(
            d.clone(),
            l,
            limit.clone(),
            drain.clone(),
        )));
    }
    tasks
}

async fn udp_loop(d: Arc<Dns>, socket: Arc<UdpSocket>, limit: Arc<Semaphore>, mut drain: Watch) {
    let mut buf = vec![0u8; 4096];
    loop {
        let received = tokio::select! {
            r = socket.recv_from(&mut buf) => r,
            _ = drain.signaled() => return,
        };
        let (n, peer) = match received {
            Ok(r) => r,
            Err(_) => {
                // ICMP errors from earlier sends surface here; they concern no new query.
                continue;
            }
        };
        let pending = match query::answer_now(&d, &buf[..n], false) {
            query::Step::Done(reply) => {
                if let Some(reply) = reply {
                    let _ = socket.send_to(&reply, peer).await;
                }
                continue;
            }
            query::Step::Ask(pending) => pending,
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let query = buf[..n].to_vec();
        let (d, socket) = (d.clone(), socket.clone());
        tokio::spawn(async move {
            if let Some(reply) = pending.resolve(&d, &query).await {
                let _ = socket.send_to(&reply, peer).await;
            }
            drop(permit);
        });
    }
}

async fn tcp_loop(d: Arc<Dns>, listener: TcpListener, limit: Arc<Semaphore>, mut drain: Watch) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = drain.signaled() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            d.gateway.metrics.error(PROTOCOL, "accept");
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let Ok(permit) = limit.clone().acquire_owned().await else {
            return;
        };
        let d = d.clone();
        tokio::spawn(async move {
            if let Err(kind) = serve_tcp(&d, stream).await {
                d.gateway.metrics.error(PROTOCOL, kind);
            }
            drop(permit);
        });
    }
}

/// Length-prefixed queries until the client closes between frames (`Ok`) or misbehaves.
async fn serve_tcp(d: &Dns, mut stream: TcpStream) -> Result<(), &'static str> {
    loop {
        let len = match tokio::time::timeout(TCP_IDLE_TIMEOUT, stream.read_u16()).await {
            Err(_) => return Ok(()),
            Ok(Err(e)) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(_)) => return Err("client_io"),
            Ok(Ok(n)) => usize::from(n),
        };
        let mut query = vec![0u8; len];
        match tokio::time::timeout(TCP_FRAME_TIMEOUT, stream.read_exact(&mut query)).await {
            Ok(Ok(_)) => {}
            _ => return Err("truncated"),
        }
        let Some(reply) = query::answer(d, &query, true).await else {
            return Err("malformed");
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            return Err("upstream_malformed");
        };
        let mut frame = Vec::with_capacity(reply.len() + 2);
        frame.extend_from_slice(&n.to_be_bytes());
        frame.extend_from_slice(&reply);
        if stream.write_all(&frame).await.is_err() {
            return Err("client_io");
        }
    }
}
