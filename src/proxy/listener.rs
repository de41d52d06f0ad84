//! The one accept loop (mini-redis's `server.rs`), used by the HTTP proxy, the MQTT listeners,
//! the admin endpoint and the webhook: a semaphore bounds open connections (further clients
//! wait in the kernel's backlog, counted once per wait), accept errors back off exponentially
//! (out of descriptors must not become a busy loop) and are logged rate-limited, and every
//! connection task holds a [`Watch`] so that draining waits for it.
//!
//! Not here: what a connection does (the protocol's handler) or socket options (socket.rs,
//! applied here to every accepted stream).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::drain::Watch;
use crate::telemetry::RateLimiter;

/// First and longest pause after a failed accept.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// What a listener counts. `error` receives `connection_limit` and `accept`.
#[derive(Clone)]
pub struct Accounting {
    pub error: Arc<dyn Fn(&'static str) + Send + Sync>,
    /// Accepted connections, and the ones open now (both optional: the admin has none).
    pub accepted: Option<Counter>,
    pub open: Option<Gauge>,
}

impl Accounting {
    /// Counts nothing (a listener whose errors only go to the log).
    pub fn none() -> Self {
        Self {
            error: Arc::new(|_| {}),
            accepted: None,
            open: None,
        }
    }
}

/// A bound socket and its limits, ready to serve.
pub struct Listener {
    /// Names the listener in log lines (`http`, `mqtt 127.0.0.1:1883`, `admin`, `webhook`).
    pub name: String,
    pub tcp: TcpListener,
    pub max_connections: usize,
    pub accounting: Accounting,
}

/// One accepted connection, handed to the protocol.
pub struct Accepted {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// Tells the connection to stop; held until it has (draining waits for it).
    pub drain: Watch,
    /// Tells the connection its listener is at its connection limit.
    pub pressure: Pressure,
}

/// How long a connection may only wait (no request under way, no CONNECT yet) before it
/// gives its slot up to clients queued behind a full listener.
const SHED_AFTER: Duration = Duration::from_secs(1);

/// A listener at its connection limit tells its connections so, once a second while it
/// stays there; a connection that is only waiting gives its slot up (Envoy's overload manager
/// does the like by shortening idle timeouts). Otherwise 10,000 slow clients holding every
/// slot until their header timeout would keep a fresh client waiting just as long.
#[derive(Clone)]
pub struct Pressure {
    rx: tokio::sync::watch::Receiver<u64>,
    since: tokio::time::Instant,
}

impl Pressure {
    /// Resolves at the first word of pressure after the connection has waited `SHED_AFTER`
    /// since `since` (see [`Pressure::reset`]). Never resolves while the listener has room.
    pub async fn shed(&mut self) {
        loop {
            if self.rx.changed().await.is_err() {
                return std::future::pending().await;
            }
            if self.since.elapsed() >= SHED_AFTER {
                return;
            }
        }
    }

    /// Starts the wait again (a request just finished on a keep-alive connection).
    pub fn reset(&mut self) {
        self.since = tokio::time::Instant::now();
    }
}

/// Keeps the open-connections gauge right however the connection ends.
struct OpenConnection(Option<Gauge>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        if let Some(g) = &self.0 {
            g.dec();
        }
    }
}

/// Runs `listener`'s accept loop on its own task until `drain` is signaled; each connection
/// runs `handle` on a task of its own.
pub fn spawn<F, Fut>(listener: Listener, drain: Watch, handle: F) -> JoinHandle<()>
where
    F: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(accept_loop(listener, drain, handle))
}

async fn accept_loop<F, Fut>(listener: Listener, mut drain: Watch, handle: F)
where
    F: Fn(Accepted) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let limit = Arc::new(Semaphore::new(listener.max_connections.max(1)));
    reserve_descriptor();
    let (pressure, _) = tokio::sync::watch::channel(0u64);
    let errors = RateLimiter::new(1);
    let mut backoff = BACKOFF_MIN;
    loop {
        let permit = match limit.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                (listener.accounting.error)("connection_limit");
                loop {
                    pressure.send_modify(|n| *n += 1);
                    tokio::select! {
                        p = limit.clone().acquire_owned() => match p {
                            Ok(p) => break p,
                            Err(_) => return,
                        },
                        _ = tokio::time::sleep(SHED_AFTER) => {}
                        _ = drain.signaled() => return,
                    }
                }
            }
        };
        let accepted = tokio::select! {
            r = listener.tcp.accept() => r,
            _ = drain.signaled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if out_of_descriptors(&e) => {
                // The client waiting in the backlog would hang until the limit eases: refuse
                // it now, on the descriptor held in reserve for this (nginx's and libev's
                // trick), so it sees its connection closed at once and can go elsewhere.
                let refused = refuse_one(&listener.tcp);
                (listener.accounting.error)("out_of_descriptors");
                if errors.allow() {
                    tracing::warn!(listener = %listener.name, refused, "out of file descriptors: new connections are closed at once until some end ({e})");
                }
                tokio::select! {
                    _ = tokio::time::sleep(BACKOFF_MIN) => {}
                    _ = drain.signaled() => return,
                }
                continue;
            }
            Err(e) => {
                // Out of file descriptors and the like: count, back off, keep serving.
                (listener.accounting.error)("accept");
                if errors.allow() {
                    tracing::warn!(listener = %listener.name, "accept failed, retrying in {}: {e}", crate::config::Dur(backoff));
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = drain.signaled() => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        super::socket::accepted(&stream);
        if let Some(c) = &listener.accounting.accepted {
            c.inc();
        }
        if let Some(g) = &listener.accounting.open {
            g.inc();
        }
        let open = OpenConnection(listener.accounting.open.clone());
        let work = handle(Accepted {
            stream,
            peer,
            drain: drain.clone(),
            pressure: Pressure {
                rx: pressure.subscribe(),
                since: tokio::time::Instant::now(),
            },
        });
        tokio::spawn(Connection {
            work,
            _open: open,
            _permit: permit,
        });
    }
}

pin_project_lite::pin_project! {
    /// A connection's task: its work, and the slot and gauge it holds until the work is done
    /// (tokio drops a task's future when it completes). A struct rather than an async block,
    /// which would keep the work twice (as captured and as awaited) in every idle task.
    struct Connection<F> {
        #[pin]
        work: F,
        _open: OpenConnection,
        _permit: tokio::sync::OwnedSemaphorePermit,
    }
}

impl<F: Future<Output = ()>> Future for Connection<F> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        self.project().work.poll(cx)
    }
}

/// EMFILE (this process) or ENFILE (the whole system).
fn out_of_descriptors(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// One descriptor kept open for [`refuse_one`]; shared by every listener of the process.
static SPARE: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

/// Opens the spare descriptor if it is not open (at start, and again after each use).
fn reserve_descriptor() {
    let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
    if spare.is_none() {
        *spare = std::fs::File::open("/dev/null").ok();
    }
}

/// With the process out of descriptors: frees the spare, accepts one waiting connection and
/// closes it at once, then takes the spare back. True when a connection was refused so.
fn refuse_one(tcp: &TcpListener) -> bool {
    let freed = SPARE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
        .is_some();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let refused = freed && matches!(tcp.poll_accept(&mut cx), std::task::Poll::Ready(Ok(_)));
    reserve_descriptor();
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_connection_limit_holds_and_frees_with_each_close() {
        let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = tcp.local_addr().expect("addr");
        let limited = Arc::new(AtomicUsize::new(0));
        let counted = limited.clone();
        let listener = Listener {
            name: "test".into(),
            tcp,
            max_connections: 1,
            accounting: Accounting {
                error: Arc::new(move |kind| {
                    if kind == "connection_limit" {
                        counted.fetch_add(1, Ordering::SeqCst);
                    }
                }),
                accepted: None,
                open: None,
            },
        };
        let (trigger, watch) = crate::drain::channel();
        let task = spawn(listener, watch, |mut a: Accepted| async move {
            // Echo one byte, then close.
            let mut b = [0u8; 1];
            if a.stream.read_exact(&mut b).await.is_ok() {
                let _ = a.stream.write_all(&b).await;
            }
        });
        let mut first = TcpStream::connect(addr).await.expect("first");
        let mut second = TcpStream::connect(addr).await.expect("second (backlog)");
        second.write_all(b"2").await.expect("write");
        first.write_all(b"1").await.expect("write");
        let mut b = [0u8; 1];
        first.read_exact(&mut b).await.expect("first served");
        assert_eq!(&b, b"1");
        // The second is served only after the first closed its slot.
        second.read_exact(&mut b).await.expect("second served");
        assert_eq!(&b, b"2");
        assert!(limited.load(Ordering::SeqCst) >= 1, "the wait was counted");
        assert_eq!(trigger.drain(Duration::from_secs(5)).await, 0);
        assert!(task.await.is_ok());
    }
}
