//! The one bidirectional relay for bytes that are only copied (CONNECT tunnels, opaque
//! transparent flows): between two plain TCP sockets it splices in the kernel (splice.rs);
//! otherwise it copies through buffers that start small and grow only while traffic fills
//! them, so an idle tunnel costs kilobytes, not 2 × 64 KiB. Either way: each direction runs
//! until its reader reaches EOF and then half-closes the other side (as
//! `copy_bidirectional`), bytes are counted as they move (a tunnel that ends in a reset still
//! has its bytes counted), and the relay ends when neither direction has moved a byte for the
//! idle timeout.
//!
//! Not here: deciding whether to relay (judge.rs), or protocols that are parsed while relayed
//! (MQTT's relay uses [`ReadSize`] for the same growth rule).

#[cfg(target_os = "linux")]
mod splice;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// Smallest and largest read buffer of one direction.
pub const READ_MIN: usize = 1024;
pub const READ_MAX: usize = 64 * 1024;

/// How much the next read asks for: doubles while reads fill the buffer, back to the minimum
/// when the stream goes quiet (most connections are idle and most packets small).
#[derive(Clone, Copy, Debug)]
pub struct ReadSize(usize);

impl Default for ReadSize {
    fn default() -> Self {
        Self(READ_MIN)
    }
}

impl ReadSize {
    pub fn get(self) -> usize {
        self.0
    }

    /// Records that a read with `room` bytes of space returned `n`.
    pub fn update(&mut self, n: usize, room: usize) {
        if n >= room {
            self.0 = (self.0 * 2).min(READ_MAX);
        } else if n < self.0 / 4 {
            self.0 = (self.0 / 2).max(READ_MIN);
        }
    }
}

/// Byte counters of a relay: `up` is client → upstream.
#[derive(Clone, Debug)]
pub struct Counters {
    pub up: Counter,
    pub down: Counter,
}

/// How a relay ended.
#[derive(Debug)]
pub enum Ended {
    /// Both directions reached EOF.
    Closed,
    /// Nothing moved either way for the idle timeout.
    Idle,
    /// A read or write failed (a reset is normal life for TCP: counted, not logged).
    Failed(io::Error),
}

/// Relays between two plain TCP sockets: spliced on Linux, copied elsewhere.
pub async fn relay_tcp(
    client: TcpStream,
    upstream: TcpStream,
    counters: &Counters,
    idle: Duration,
) -> Ended {
    #[cfg(target_os = "linux")]
    {
        let activity = Activity::new();
        tokio::select! {
            r = splice::relay(&client, &upstream, counters, &activity) => match r {
                Ok(()) => Ended::Closed,
                Err(e) => Ended::Failed(e),
            },
            _ = activity.idle_for(idle) => Ended::Idle,
        }
    }
    #[cfg(not(target_os = "linux"))]
    relay(client, upstream, counters, idle).await
}

/// Relays between any two streams through growing buffers.
pub async fn relay<A, B>(client: A, upstream: B, counters: &Counters, idle: Duration) -> Ended
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let activity = Activity::new();
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let both = async {
        let (a, b) = tokio::join!(
            one_way(&mut cr, &mut uw, &counters.up, &activity),
            one_way(&mut ur, &mut cw, &counters.down, &activity)
        );
        a.and(b)
    };
    tokio::select! {
        r = both => match r {
            Ok(()) => Ended::Closed,
            Err(e) => Ended::Failed(e),
        },
        _ = activity.idle_for(idle) => Ended::Idle,
    }
}

async fn one_way<R, W>(
    from: &mut R,
    to: &mut W,
    count: &Counter,
    activity: &Activity,
) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut size = ReadSize::default();
    let mut buf = Vec::new();
    loop {
        buf.clear();
        buf.reserve(size.get());
        let room = buf.capacity();
        let n = from.read_buf(&mut buf).await?;
        if n == 0 {
            // EOF: pass the half-close on.
            let _ = to.shutdown().await;
            return Ok(());
        }
        count.inc_by(n as u64);
        activity.touch();
        to.write_all(&buf[..n]).await?;
        size.update(n, room);
        if buf.capacity() > size.get() * 2 {
            // Quiet again: give the large buffer back.
            buf = Vec::new();
        }
    }
}

/// Milliseconds since `origin` of the last move of bytes, shared by both directions.
#[derive(Clone, Debug)]
pub struct Activity {
    origin: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    pub fn new() -> Self {
        Self {
            origin: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn touch(&self) {
        let ms = self.origin.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `idle`.
    pub async fn idle_for(&self, idle: Duration) {
        loop {
            let last = self.origin + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let due = last + idle;
            if Instant::now() >= due {
                return;
            }
            tokio::time::sleep_until(due).await;
        }
    }
}

impl Default for Activity {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn counters() -> Counters {
        Counters {
            up: Counter::default(),
            down: Counter::default(),
        }
    }

    #[test]
    fn read_size_grows_while_full_and_shrinks_when_quiet() {
        let mut s = ReadSize::default();
        for _ in 0..10 {
            let full = s.get();
            s.update(full, full);
        }
        assert_eq!(s.get(), READ_MAX);
        for _ in 0..10 {
            s.update(10, 1024);
        }
        assert_eq!(s.get(), READ_MIN);
    }

    /// A connected pair of TCP sockets on loopback.
    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let a = TcpStream::connect(l.local_addr().expect("addr"));
        let (a, b) = tokio::join!(a, l.accept());
        (a.expect("connect"), b.expect("accept").0)
    }

    async fn round_trip(spliced: bool) {
        let (mut client, relay_client) = pair().await;
        let (relay_upstream, mut server) = pair().await;
        let c = counters();
        let counted = c.clone();
        let relay = tokio::spawn(async move {
            if spliced {
                relay_tcp(
                    relay_client,
                    relay_upstream,
                    &counted,
                    Duration::from_secs(30),
                )
                .await
            } else {
                relay(
                    relay_client,
                    relay_upstream,
                    &counted,
                    Duration::from_secs(30),
                )
                .await
            }
        });
        let payload: Vec<u8> = (0..1_000_000u32).map(|i| i as u8).collect();
        let sent = payload.clone();
        let writer = tokio::spawn(async move {
            client.write_all(&sent).await.expect("send");
            client.shutdown().await.expect("half-close");
            let mut back = Vec::new();
            client.read_to_end(&mut back).await.expect("read back");
            back
        });
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.expect("server read");
        assert_eq!(got, payload, "every byte arrived in order");
        server.write_all(b"done").await.expect("answer");
        drop(server);
        assert_eq!(writer.await.expect("writer"), b"done");
        assert!(matches!(relay.await.expect("relay"), Ended::Closed));
        assert_eq!(c.up.get(), 1_000_000);
        assert_eq!(c.down.get(), 4);
    }

    #[tokio::test]
    async fn copied_relay_carries_every_byte_and_the_half_close() {
        round_trip(false).await;
    }

    #[tokio::test]
    async fn spliced_relay_carries_every_byte_and_the_half_close() {
        round_trip(true).await;
    }

    #[tokio::test]
    async fn a_silent_relay_ends_idle() {
        let (_client, relay_client) = pair().await;
        let (relay_upstream, _server) = pair().await;
        let ended = relay(
            relay_client,
            relay_upstream,
            &counters(),
            Duration::from_millis(50),
        )
        .await;
        assert!(matches!(ended, Ended::Idle));
    }
}
