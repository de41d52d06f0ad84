//! Intake: the bridge's persistent session on the plant broker (clean session off, manual
//! acks). Each message is judged; a denied one is acknowledged and dropped (counted and
//! decision-logged, never stored); an allowed one is acknowledged only after its batch is
//! committed to the spool. When the spool refuses (full with `refuse_new`, or the disk is full)
//! the batch is held unacknowledged and written again once there is room, so the local broker
//! keeps what follows and nothing is lost.
//!
//! Not here: sending (delivery.rs).

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Packet, Publish, QoS, SubscribeFilter};
use tokio::sync::mpsc;

use crate::drain::Watch;

use super::spool::NewMessage;
use super::{Backoff, Bridge, pause};

/// Messages committed per transaction at most, and bytes (so a transaction fits the WAL).
const BATCH: usize = 1000;
const BATCH_BYTES: usize = 512 * 1024;
/// Capacity of the request channel to rumqttc (acknowledgements, the subscription).
const QUEUE: usize = 10_000;
/// How long a refused batch waits before it is tried again (sooner when room is made).
const RETRY: Duration = Duration::from_millis(500);

pub async fn run(bridge: Arc<Bridge>, mut shutdown: Watch) {
    let mut opts = bridge
        .local_side
        .options(&bridge.config.local, super::local_client_id(&bridge.config));
    // Persistent session: the local broker queues for the bridge while sluice is down.
    opts.set_clean_session(false).set_manual_acks(true);
    let (client, mut events) = AsyncClient::new(opts, QUEUE + BATCH);
    events
        .network_options
        .set_connection_timeout(bridge.config.local.connect_timeout.get().as_secs().max(1));
    // Unbounded on purpose: rumqttc sends our acknowledgements from the same event loop that
    // reads publishes, so an event loop waiting for room here while the writer waits for the
    // event loop to take its acknowledgements deadlocks (seen with 700,000 queued on the plant
    // broker). What waits here is bounded by the local broker's in-flight window instead:
    // everything in it is unacknowledged.
    let (tx, rx) = mpsc::unbounded_channel::<Publish>();
    let writer = tokio::spawn(write_loop(Arc::clone(&bridge), client.clone(), rx));
    let qos = if bridge.config.qos == 2 {
        QoS::ExactlyOnce
    } else {
        QoS::AtLeastOnce
    };
    let mut backoff = Backoff::new();
    let mut up = false;
    loop {
        let event = tokio::select! {
            e = events.poll() => e,
            _ = shutdown.signaled() => break,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                up = true;
                backoff.reset();
                bridge.counters.local_up.set(1);
                tracing::info!(bridge = %bridge.name(), broker = %bridge.config.local.broker, session_present = ack.session_present, "local session up");
                if !ack.session_present {
                    let filters: Vec<_> = bridge
                        .config
                        .topics
                        .iter()
                        .map(|t| SubscribeFilter::new(t.clone(), qos))
                        .collect();
                    // Not awaited here: only this loop's poll drains the request channel.
                    let subscriber = client.clone();
                    tokio::spawn(async move { subscriber.subscribe_many(filters).await });
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send(p).is_err() {
                    break;
                }
            }
            Ok(Event::Incoming(Packet::SubAck(s))) => {
                if s.return_codes
                    .iter()
                    .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                {
                    bridge.counters.error("subscribe_refused");
                    tracing::error!(bridge = %bridge.name(), topics = ?bridge.config.topics, "local broker refused a subscription");
                }
            }
            Ok(_) => {}
            Err(e) => {
                bridge.counters.local_up.set(0);
                bridge.counters.error("local_connect");
                if up || backoff.next == Backoff::FIRST {
                    tracing::warn!(bridge = %bridge.name(), broker = %bridge.config.local.broker, "local broker: {e}; reconnecting");
                }
                up = false;
                if pause(backoff.step(), &mut shutdown).await {
                    break;
                }
            }
        }
    }
    close(&bridge, client, events, tx, writer).await;
}

/// Writes and acknowledges what was received, then disconnects; unacknowledged messages stay
/// with the local broker (the session persists) and come again on the next start.
async fn close(
    bridge: &Bridge,
    client: AsyncClient,
    mut events: rumqttc::EventLoop,
    tx: mpsc::UnboundedSender<Publish>,
    writer: tokio::task::JoinHandle<()>,
) {
    drop(tx);
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while let Ok(ev) = events.poll().await {
            if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                break;
            }
        }
    })
    .await;
    bridge.counters.local_up.set(0);
}

async fn write_loop(
    bridge: Arc<Bridge>,
    client: AsyncClient,
    mut rx: mpsc::UnboundedReceiver<Publish>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        let mut bytes = first.payload.len();
        batch.push(first);
        while batch.len() < BATCH && bytes < BATCH_BYTES {
            match rx.try_recv() {
                Ok(p) => {
                    bytes += p.payload.len() + p.topic.len();
                    batch.push(p);
                }
                Err(_) => break,
            }
        }
        if !store(&bridge, &batch).await {
            // Not stored, so not acknowledged: the local broker sends them again.
            batch.clear();
            continue;
        }
        for p in batch.drain(..) {
            if client.ack(&p).await.is_err() {
                return;
            }
        }
    }
}

/// Judges a batch and commits its allowed messages, waiting (unacknowledged) while the spool
/// refuses them. False when they could not be stored at all (acknowledge none of them).
async fn store(bridge: &Arc<Bridge>, batch: &[Publish]) -> bool {
    let c = &bridge.counters;
    c.received.inc_by(batch.len() as u64);
    let max_packet = bridge.config.remote.max_packet_size.get();
    let mut allowed = Vec::with_capacity(batch.len());
    for p in batch {
        let qos = p.qos as u8;
        let m = NewMessage {
            topic: p.topic.clone(),
            payload: p.payload.clone(),
            qos,
            retain: p.retain,
        };
        // MQTT 3.1.1 has no way for the remote to announce its limit (MQTT 5's CONNACK does),
        // so the configured one is what we have. Refused here, not stored: it would stop the
        // backlog behind it forever (the remote ends the session, the spool sends it again).
        if m.size() + super::message::PUBLISH_OVERHEAD > max_packet {
            c.dropped("too_large", 1);
            tracing::warn!(bridge = %bridge.name(), topic = %p.topic, size = m.size(), "message over remote.max_packet_size dropped; acknowledged to the local broker, never sent");
            continue;
        }
        if !bridge.allows(&p.topic, qos, p.retain) {
            c.denied.inc();
            continue;
        }
        allowed.push(m);
    }
    let allowed = Arc::new(allowed);
    let (max_bytes, on_full) = (
        bridge.config.spool.max_bytes.get(),
        bridge.config.spool.on_full,
    );
    let mut done = 0;
    let mut refused_logged = false;
    while done < allowed.len() {
        let msgs = Arc::clone(&allowed);
        let from = done;
        let result = bridge
            .with_spool(move |s| {
                let now = crate::telemetry::decision_log::now_ms();
                s.insert_or_reclaim(&msgs[from..], now, max_bytes, on_full)
                    .map(|r| (r, s.messages(), s.bytes()))
            })
            .await;
        let problem = match result {
            Some(Ok((r, messages, bytes))) => {
                done += r.stored;
                c.spooled.inc_by(r.stored as u64);
                if r.dropped > 0 {
                    c.dropped("full", r.dropped);
                }
                c.spool_messages
                    .set(i64::try_from(messages).unwrap_or(i64::MAX));
                c.spool_bytes.set(i64::try_from(bytes).unwrap_or(i64::MAX));
                bridge.stored.notify_one();
                if done == allowed.len() {
                    break;
                }
                c.error("spool_full");
                "spool full (spool.on_full: refuse_new): not acknowledging the local broker until there is room".to_string()
            }
            Some(Err(e)) => {
                c.error(e.kind());
                format!("cannot store: {e}; not acknowledging the local broker, will try again")
            }
            None => return false,
        };
        if !refused_logged {
            tracing::warn!(bridge = %bridge.name(), "{problem}");
            refused_logged = true;
        }
        let _ = tokio::time::timeout(RETRY, bridge.room.notified()).await;
    }
    true
}
