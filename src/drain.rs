//! Graceful shutdown as one mechanism (ztunnel's `drain.rs`): a [`Trigger`] held by the process
//! and [`Watch`] clones held by every listener and every connection. A watch is both the
//! shutdown signal (`signaled()` resolves once draining starts) and the in-flight token (the
//! trigger waits until every watch has been dropped, or a deadline passes).
//!
//! Not here: catching SIGTERM (cmd/serve.rs, cmd/webhook.rs) or what each connection does when told
//! to stop (the protocol code decides: finish the request, send DISCONNECT, close).

use std::time::Duration;

use tokio::sync::watch;

/// Starts a drain and waits for it; there is one per process (or per test).
#[derive(Debug)]
pub struct Trigger {
    tx: watch::Sender<bool>,
}

/// Held by whatever must finish before the process exits; clones share the signal.
#[derive(Clone, Debug)]
pub struct Watch {
    rx: watch::Receiver<bool>,
}

/// A new drain: nothing draining, one watch handed out.
pub fn channel() -> (Trigger, Watch) {
    let (tx, rx) = watch::channel(false);
    (Trigger { tx }, Watch { rx })
}

impl Trigger {
    /// Watches still held (the process's own listeners and open connections).
    pub fn open(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Tells every watch to stop, without waiting.
    pub fn start(&self) {
        self.tx.send_replace(true);
    }

    /// Tells every watch to stop and waits until all are dropped or `grace` passes; returns
    /// how many were still held at the deadline (0: everything finished).
    pub async fn drain(self, grace: Duration) -> usize {
        self.start();
        match tokio::time::timeout(grace, self.tx.closed()).await {
            Ok(()) => 0,
            Err(_) => self.tx.receiver_count(),
        }
    }
}

impl Watch {
    /// Resolves once draining has started (at once if it already has).
    pub async fn signaled(&mut self) {
        // An error means the trigger is gone, which also means: stop.
        let _ = self.rx.wait_for(|draining| *draining).await;
    }

    /// True once draining has started.
    pub fn is_draining(&self) -> bool {
        *self.rx.borrow()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_returns_when_the_last_watch_drops() {
        let (trigger, watch) = channel();
        let mut held = watch.clone();
        drop(watch);
        let worker = tokio::spawn(async move {
            held.signaled().await;
            // Work that ends when told to, as a connection does.
            drop(held);
        });
        assert_eq!(trigger.drain(Duration::from_secs(30)).await, 0);
        assert!(worker.await.is_ok());
    }

    #[tokio::test]
    async fn drain_gives_up_after_grace_and_reports_what_is_open() {
        let (trigger, watch) = channel();
        let _stubborn = watch.clone();
        drop(watch);
        assert_eq!(trigger.drain(Duration::from_millis(20)).await, 1);
    }

    #[tokio::test]
    async fn a_watch_taken_after_the_start_sees_the_signal_at_once() {
        let (trigger, watch) = channel();
        trigger.start();
        let mut late = watch.clone();
        assert!(late.is_draining());
        late.signaled().await;
    }
}
