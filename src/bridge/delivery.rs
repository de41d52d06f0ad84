//! Delivery: the bridge's session on the remote broker. Messages are read from the spool in id
//! order, judged again just before they are sent (a now-denied one is removed and counted as
//! `denied_on_replay`), published with the bridge's QoS, and removed from the spool only when
//! the remote acknowledged them (PUBACK, or PUBCOMP for QoS 2). A lost session, an
//! unacknowledged publish past `remote.ack_timeout`, or a restart sends everything still in the
//! spool again (at least once; counted as redelivered).
//!
//! Each session gets a fresh rumqttc event loop with a clean session, so the spool is the only
//! record of what is outstanding. rumqttc numbers publishes in the order they are requested and
//! reports each as `Outgoing::Publish(pkid)` in that order, which maps packet ids to spool ids.
//!
//! Not here: intake (intake.rs), storage (spool.rs).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, ConnectionError, Event, Outgoing, Packet, QoS};

use super::spool::Message;
use super::{Backoff, Bridge, pause};
use crate::config::ReplayOrder;
use crate::drain::Watch;

/// Acknowledged ids are removed from the spool in batches of this size (or every tick).
const DELETE_BATCH: usize = 256;
const TICK: Duration = Duration::from_millis(50);

/// Why a session ended.
struct Ended {
    kind: &'static str,
    detail: String,
    was_up: bool,
}

pub async fn run(bridge: Arc<Bridge>, mut shutdown: Watch) {
    let mut backoff = Backoff::new();
    let mut last_kind = "";
    loop {
        if shutdown.is_draining() {
            break;
        }
        let ended = if bridge.allows_connect() {
            match session(&bridge, &mut shutdown).await {
                None => break,
                Some(e) => e,
            }
        } else {
            Ended {
                kind: "connect_denied",
                detail: "the policy denies connecting to the remote broker".into(),
                was_up: false,
            }
        };
        bridge.counters.uplink_up.set(0);
        bridge.counters.error(ended.kind);
        if ended.was_up || ended.kind != last_kind {
            tracing::warn!(bridge = %bridge.name(), remote = %bridge.config.remote.broker, kind = ended.kind, "uplink down: {}; messages stay in the spool", ended.detail);
        }
        last_kind = ended.kind;
        if ended.was_up {
            backoff.reset();
        }
        if pause(backoff.step(), &mut shutdown).await {
            break;
        }
    }
    bridge.counters.uplink_up.set(0);
}

fn remote_client_id(bridge: &Bridge) -> String {
    bridge
        .config
        .remote
        .client_id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", bridge.source.site, bridge.config.name))
}

fn classify(e: &ConnectionError) -> &'static str {
    match e {
        ConnectionError::ConnectionRefused(_) => "connect_refused",
        ConnectionError::Tls(_) => "tls",
        ConnectionError::Io(_) => "connect",
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => "remote_timeout",
        _ => "remote_protocol",
    }
}

/// What woke the session loop.
enum Step {
    Event(Result<Event, ConnectionError>),
    Tick,
    Stored,
    Shutdown,
}

/// Connects to the remote broker; the event loop once CONNACK arrived.
async fn connect(
    bridge: &Arc<Bridge>,
    shutdown: &mut Watch,
) -> Result<Option<(AsyncClient, rumqttc::EventLoop)>, Ended> {
    let remote = &bridge.config.remote;
    let fail = |kind, detail: String| Ended {
        kind,
        detail,
        was_up: false,
    };
    let mut opts = bridge.remote_side.options(remote, remote_client_id(bridge));
    let window = bridge.config.replay.inflight;
    opts.set_clean_session(true).set_inflight(window);
    let (client, mut events) = AsyncClient::new(opts, usize::from(window) + 16);
    events
        .network_options
        .set_connection_timeout(remote.connect_timeout.get().as_secs().max(1));
    let connected = tokio::select! {
        r = tokio::time::timeout(remote.connect_timeout.get(), events.poll()) => Some(r),
        _ = shutdown.signaled() => None,
    };
    match connected {
        None => Ok(None),
        Some(Ok(Ok(Event::Incoming(Packet::ConnAck(_))))) => Ok(Some((client, events))),
        Some(Ok(Ok(other))) => Err(fail(
            "remote_protocol",
            format!("expected CONNACK, got {other:?}"),
        )),
        Some(Ok(Err(ConnectionError::ConnectionRefused(code)))) => Err(fail(
            "connect_refused",
            format!("the remote broker refused the CONNECT ({code:?})"),
        )),
        Some(Ok(Err(ConnectionError::Tls(e)))) => {
            let text = e.to_string();
            let text = text.trim_start_matches("I/O: ");
            Err(fail("tls", format!("TLS handshake failed: {text}")))
        }
        Some(Ok(Err(e))) => Err(fail(classify(&e), e.to_string())),
        Some(Err(_)) => Err(fail(
            "remote_timeout",
            "no CONNACK within remote.connect_timeout".into(),
        )),
    }
}

/// One session: connect, then send until it ends. `None` on shutdown.
async fn session(bridge: &Arc<Bridge>, shutdown: &mut Watch) -> Option<Ended> {
    let (client, mut events) = match connect(bridge, shutdown).await {
        Ok(Some(c)) => c,
        Ok(None) => return None,
        Err(e) => return Some(e),
    };
    bridge.counters.uplink_up.set(1);
    let boundary = bridge
        .with_spool(|s| s.max_id())
        .await
        .and_then(Result::ok)
        .unwrap_or(0);
    tracing::info!(bridge = %bridge.name(), remote = %bridge.config.remote.broker, backlog = bridge.counters.spool_messages.get(), "uplink up");
    let mut sender = Sender::new(bridge, client, boundary);
    let mut tick = tokio::time::interval(TICK);
    let ack_timeout = bridge.config.remote.ack_timeout.get();
    let ended = loop {
        if let Err(e) = sender.fill().await {
            break e;
        }
        let step = tokio::select! {
            ev = events.poll() => Step::Event(ev),
            _ = tick.tick() => Step::Tick,
            _ = bridge.stored.notified(), if sender.idle => Step::Stored,
            _ = shutdown.signaled() => Step::Shutdown,
        };
        match step {
            Step::Event(Ok(Event::Outgoing(Outgoing::Publish(pkid)))) => sender.sent(pkid),
            Step::Event(Ok(Event::Incoming(Packet::PubAck(a)))) if bridge.config.qos == 1 => {
                sender.acked(a.pkid)
            }
            Step::Event(Ok(Event::Incoming(Packet::PubComp(c)))) => sender.acked(c.pkid),
            Step::Event(Ok(Event::Incoming(Packet::Disconnect))) => {
                break (
                    "remote_protocol",
                    "the remote broker disconnected".to_string(),
                );
            }
            Step::Event(Ok(_)) => {}
            Step::Event(Err(e)) => break (classify(&e), e.to_string()),
            Step::Tick => {
                sender.idle = false;
                sender.refill_tokens();
                if let Some(age) = sender.oldest_unacked().filter(|a| *a > ack_timeout) {
                    break (
                        "ack_timeout",
                        format!(
                            "{} publishes unacknowledged for {:.1}s (remote.ack_timeout)",
                            sender.inflight.len(),
                            age.as_secs_f64()
                        ),
                    );
                }
                sender.flush_behind();
            }
            Step::Stored => sender.idle = false,
            Step::Shutdown => {
                sender.flush().await;
                let _ = sender.client.try_disconnect();
                let _ = tokio::time::timeout(Duration::from_millis(500), events.poll()).await;
                return None;
            }
        }
        if sender.acked_ids.len() >= DELETE_BATCH {
            sender.flush_behind();
        }
    };
    sender.flush().await;
    Some(Ended {
        kind: ended.0,
        detail: ended.1,
        was_up: true,
    })
}

/// Removes acknowledged messages from the spool.
async fn remove_sent(bridge: &Bridge, ids: Vec<i64>) {
    match bridge.with_spool(move |s| s.delete(&ids)).await {
        Some(Ok(_)) => bridge.room.notify_one(),
        Some(Err(e)) => {
            // Left in the spool: sent again later (a duplicate, never a loss).
            bridge.counters.error(e.kind());
            tracing::warn!(bridge = %bridge.name(), "cannot remove sent messages: {e}");
        }
        None => {}
    }
}

/// One session's sending state.
struct Sender<'a> {
    bridge: &'a Arc<Bridge>,
    client: AsyncClient,
    qos: QoS,
    /// Spool ids requested from rumqttc and not yet written, in request order.
    requested: VecDeque<i64>,
    /// Packet id → (spool id, when it was written).
    inflight: HashMap<u16, (i64, Instant)>,
    acked_ids: Vec<i64>,
    /// Removals of acknowledged messages still running.
    removing: Vec<tokio::task::JoinHandle<()>>,
    /// Ids up to `boundary` were stored before the session came up: the backlog.
    boundary: i64,
    backlog_cursor: i64,
    live_cursor: i64,
    /// Replay rate budget (messages), when `replay.rate` is set.
    tokens: f64,
    refilled: Instant,
    /// Nothing to read until the next tick or a new message.
    idle: bool,
}

impl<'a> Sender<'a> {
    fn new(bridge: &'a Arc<Bridge>, client: AsyncClient, boundary: i64) -> Self {
        let qos = if bridge.config.qos == 2 {
            QoS::ExactlyOnce
        } else {
            QoS::AtLeastOnce
        };
        Self {
            bridge,
            client,
            qos,
            requested: VecDeque::new(),
            inflight: HashMap::new(),
            acked_ids: Vec::new(),
            removing: Vec::new(),
            boundary,
            backlog_cursor: 0,
            live_cursor: boundary,
            tokens: 1.0,
            refilled: Instant::now(),
            idle: false,
        }
    }

    fn sent(&mut self, pkid: u16) {
        if let Some(id) = self.requested.pop_front() {
            self.inflight.insert(pkid, (id, Instant::now()));
        }
    }

    fn acked(&mut self, pkid: u16) {
        if let Some((id, _)) = self.inflight.remove(&pkid) {
            self.acked_ids.push(id);
            self.bridge.counters.sent.inc();
        }
    }

    fn oldest_unacked(&self) -> Option<Duration> {
        self.inflight.values().map(|(_, t)| t.elapsed()).max()
    }

    fn refill_tokens(&mut self) {
        if let Some(rate) = self.bridge.config.replay.rate {
            let dt = self.refilled.elapsed().as_secs_f64();
            self.refilled = Instant::now();
            // At most a tenth of a second of burst.
            self.tokens = (self.tokens + rate.0 * dt).min((rate.0 / 10.0).max(1.0));
        }
    }

    /// Removes acknowledged messages from the spool while the session goes on: waiting for it
    /// here would stop reading acknowledgements and writing publishes (rumqttc does both only
    /// while polled), which halved throughput.
    fn flush_behind(&mut self) {
        self.removing.retain(|t| !t.is_finished());
        if self.acked_ids.is_empty() {
            return;
        }
        let ids = std::mem::take(&mut self.acked_ids);
        let bridge = Arc::clone(self.bridge);
        self.removing
            .push(tokio::spawn(async move { remove_sent(&bridge, ids).await }));
    }

    /// Removes acknowledged messages and waits for every removal still running, so that the
    /// next session does not send them again.
    async fn flush(&mut self) {
        let ids = std::mem::take(&mut self.acked_ids);
        for t in self.removing.drain(..) {
            let _ = t.await;
        }
        if !ids.is_empty() {
            remove_sent(self.bridge, ids).await;
        }
    }

    /// Requests publishes while the window has room.
    async fn fill(&mut self) -> Result<(), (&'static str, String)> {
        let window = usize::from(self.bridge.config.replay.inflight);
        let busy = self.requested.len() + self.inflight.len();
        // Read in chunks, not per acknowledgement.
        if self.idle || busy > window / 2 {
            return Ok(());
        }
        let room = window - busy;
        let live_first = self.bridge.config.replay.order == ReplayOrder::LiveFirst;
        let mut rows = Vec::new();
        if live_first {
            rows = self.read(false, room).await?;
        }
        if rows.is_empty() && self.backlog_cursor < self.boundary {
            let budget = match self.bridge.config.replay.rate {
                Some(_) => room.min(self.tokens.floor() as usize),
                None => room,
            };
            if budget == 0 {
                self.idle = true;
                return Ok(());
            }
            rows = self.read(true, budget).await?;
            if let Some(_rate) = self.bridge.config.replay.rate {
                self.tokens -= rows.len() as f64;
            }
        }
        if rows.is_empty() && !live_first {
            rows = self.read(false, room).await?;
        }
        if rows.is_empty() {
            self.idle = true;
            return Ok(());
        }
        self.send(rows).await
    }

    async fn read(
        &mut self,
        backlog: bool,
        limit: usize,
    ) -> Result<Vec<Message>, (&'static str, String)> {
        let (after, upto) = if backlog {
            (self.backlog_cursor, self.boundary)
        } else {
            (self.live_cursor.max(self.boundary), i64::MAX)
        };
        let rows = match self
            .bridge
            .with_spool(move |s| s.fetch(after, upto, limit))
            .await
        {
            Some(Ok(rows)) => rows,
            Some(Err(e)) => return Err((e.kind(), e.to_string())),
            None => Vec::new(),
        };
        if let Some(last) = rows.last() {
            if backlog {
                self.backlog_cursor = last.id;
            } else {
                self.live_cursor = last.id;
            }
        }
        Ok(rows)
    }

    async fn send(&mut self, rows: Vec<Message>) -> Result<(), (&'static str, String)> {
        let c = &self.bridge.counters;
        let ttl = i64::try_from(self.bridge.config.spool.ttl.get().as_millis()).unwrap_or(i64::MAX);
        let cutoff = crate::telemetry::decision_log::now_ms().saturating_sub(ttl);
        let max_packet = self.bridge.config.remote.max_packet_size.get();
        let (first, last) = (rows[0].id, rows[rows.len() - 1].id);
        let mut removed = Vec::new();
        let mut expired = 0;
        for m in rows {
            if m.stored_ms < cutoff {
                expired += 1;
                removed.push(m.id);
                continue;
            }
            // Stored under a larger remote.max_packet_size: sending it would end every session.
            if !m.fits(max_packet) {
                c.dropped("too_large", 1);
                tracing::warn!(bridge = %self.bridge.name(), topic = %m.topic, size = m.payload.len(), "spooled message over remote.max_packet_size removed, never sent");
                removed.push(m.id);
                continue;
            }
            // Judged again: the policy may have changed while the message waited.
            if !self.bridge.allows(&m.topic, m.qos, m.retain) {
                c.denied_on_replay.inc();
                removed.push(m.id);
                continue;
            }
            if m.attempts > 0 {
                c.redelivered.inc();
            }
            self.client
                .try_publish(m.topic, self.qos, m.retain, m.payload)
                .map_err(|e| ("remote_protocol", format!("cannot queue a publish: {e}")))?;
            self.requested.push_back(m.id);
        }
        c.expired.inc_by(expired);
        let bridge = Arc::clone(self.bridge);
        let done = self
            .bridge
            .with_spool(move |s| {
                s.mark_sent(first, last)?;
                s.delete(&removed)
            })
            .await;
        if let Some(Err(e)) = done {
            bridge.counters.error(e.kind());
        }
        Ok(())
    }
}
