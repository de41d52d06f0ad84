//! An idle timeout and byte counting for streams that are only copied (CONNECT tunnels): both
//! ends are wrapped so every read that moves bytes is counted as it happens (a tunnel that ends
//! in a reset still has its bytes counted) and stamps a shared clock; a watchdog ends the
//! splice when neither direction has moved a byte for the timeout.
//!
//! Not here: the copy itself (tokio's `copy_bidirectional`).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Milliseconds since `origin` of the last read that moved bytes, shared by both ends.
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

/// A stream whose reads stamp an [`Activity`] and add to a byte counter.
pub struct Tracked<T> {
    inner: T,
    activity: Activity,
    read_bytes: Counter,
}

impl<T> Tracked<T> {
    pub fn new(inner: T, activity: Activity, read_bytes: Counter) -> Self {
        Self {
            inner,
            activity,
            read_bytes,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let moved = buf.filled().len() - before;
        if matches!(r, Poll::Ready(Ok(()))) && moved > 0 {
            self.activity.touch();
            self.read_bytes.inc_by(moved as u64);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn idle_fires_only_after_a_quiet_period() {
        let activity = Activity::new();
        let (a, mut b) = tokio::io::duplex(64);
        let counter = Counter::default();
        let mut tracked = Tracked::new(a, activity.clone(), counter.clone());
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            while let Ok(n) = tracked.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        });
        // Traffic every 20 ms keeps a 200 ms idle timer from firing for ~300 ms.
        let started = Instant::now();
        let writer = tokio::spawn(async move {
            for _ in 0..15 {
                let _ = b.write_all(b"x").await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            b
        });
        activity.idle_for(Duration::from_millis(200)).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        drop(writer.await);
        reader.abort();
        assert_eq!(counter.get(), 15);
    }
}
