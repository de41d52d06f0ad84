//! Graceful shutdown: one signal every listener watches, and a count of work in flight that
//! the process waits on (up to a deadline) before exiting.
//!
//! Not here: catching SIGTERM (cmd/serve.rs) or what each listener does when told to stop.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

/// Counts open connections and tunnels; clones share the count.
#[derive(Clone, Debug, Default)]
pub struct InFlight {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    open: AtomicUsize,
    idle: Notify,
}

/// Held by one unit of work; dropping it marks the work done.
#[derive(Debug)]
pub struct Guard {
    inner: Arc<Inner>,
}

impl InFlight {
    pub fn guard(&self) -> Guard {
        self.inner.open.fetch_add(1, Ordering::AcqRel);
        Guard {
            inner: self.inner.clone(),
        }
    }

    pub fn open(&self) -> usize {
        self.inner.open.load(Ordering::Acquire)
    }

    /// Waits until nothing is in flight or `grace` passes; returns what was still open.
    pub async fn wait(&self, grace: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let notified = self.inner.idle.notified();
            if self.open() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.open();
            }
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.inner.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn wait_returns_when_the_last_guard_drops() {
        let f = InFlight::default();
        let g = f.guard();
        let f2 = f.clone();
        let waiter = tokio::spawn(async move { f2.wait(Duration::from_secs(30)).await });
        tokio::task::yield_now().await;
        drop(g);
        assert_eq!(waiter.await.ok(), Some(0));
    }

    #[tokio::test]
    async fn wait_gives_up_after_grace_and_reports_what_is_open() {
        let f = InFlight::default();
        let _g = f.guard();
        assert_eq!(f.wait(Duration::from_millis(20)).await, 1);
    }
}
