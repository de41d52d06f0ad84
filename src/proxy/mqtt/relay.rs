//! The two directions of an established session and the per-connection state they keep:
//! topic aliases (client → broker), locally answered QoS 2 packet ids, and SUBSCRIBEs whose
//! SUBACK must be merged with local refusals.
//!
//! Frames are judged in place in the read buffer; a run of frames to forward as they arrived is
//! written with one `write_all` of the buffer's prefix (no copy, no re-encoding). Only a frame
//! that must change (a refused publish, a reduced SUBSCRIBE, an alias the broker does not know
//! yet) breaks the run.
//!
//! Each direction alternates between idle (waiting for its socket to be readable, with no
//! buffer) and a turn (read, judge, write until the buffer is empty), whose state is boxed for
//! the turn only: an idle session costs its socket halves and a few small structs, not the
//! frame loop's futures. The next read of a side starts only when the previous write to the
//! other side has completed, so a slow receiver slows its sender.
//!
//! Not here: the CONNECT handshake (session.rs) or byte-level parsing (codec.rs).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, DefaultHasher};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use bytes::{Buf, Bytes, BytesMut};
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::codec::{self, CodecError, Version, reason};
use super::context::ListenerCtx;
use super::encode;
use super::error::SessionError;
use super::wire::{Reader, Writer};
use crate::config::V3Deny;
use crate::policy::{MqttFacts, Operation, Protocol, Source, Zone};
use crate::proxy::copy::ReadSize;
use crate::proxy::revalidate;
use crate::proxy::{Ask, Decision, Gateway};
use crate::telemetry::metrics::BytesLabels;

mod subscribe;

/// Maps keyed by a packet id or alias (at most 65,535 entries each): SipHash with fixed keys, a
/// hasher of no size, so an idle session carries 16 bytes less per map than with `RandomState`.
type PacketMap<V> = HashMap<u16, V, BuildHasherDefault<DefaultHasher>>;
type PacketSet = HashSet<u16, BuildHasherDefault<DefaultHasher>>;

/// How a direction ended.
pub(super) enum Ended {
    ClientClosed,
    BrokerClosed,
    Shutdown,
    /// The client broke the protocol; MQTT 5 clients are told why.
    ClientError(CodecError),
    /// A denied publish under `v3_deny: disconnect`.
    DeniedDisconnect,
    /// A newer policy generation denies the session or one of its subscriptions.
    Revoked,
    Failed(SessionError),
}

/// What to do with one client packet.
enum Action {
    Forward,
    Drop,
    /// Answer the client locally; nothing goes to the broker.
    Reply(Bytes),
    /// Send this to the broker instead of the packet.
    Replace(Bytes),
    Disconnect,
}

/// One alias as the client set it. `broker_knows` is false when the publish that set it was
/// refused, so the broker still maps the alias to something else (or nothing).
struct Alias {
    topic: Box<str>,
    broker_knows: bool,
}

/// State the two directions share: written by one, read by the other, never across an await.
#[derive(Default)]
struct Shared {
    topic_alias_max: u16,
    /// SUBSCRIBEs forwarded with fewer filters: per original filter, `None` = the broker's
    /// next code, `Some(code)` = refused locally.
    pending_subacks: PacketMap<Vec<Option<u8>>>,
    /// Filters forwarded to the broker (and not unsubscribed), with their QoS: what a newer
    /// policy generation judges again. Empty (no allocation) for a publish-only session.
    granted: Vec<(Box<str>, u8)>,
}

/// Client → broker state kept for the whole session.
pub(super) struct Upstream {
    r: Reader,
    bw: Writer,
    /// Client bytes read and not yet judged; empty (no allocation) while idle.
    buf: BytesMut,
    aliases: PacketMap<Alias>,
    local_qos2: PacketSet,
    chunk: ReadSize,
}

impl Upstream {
    /// `buf`: client bytes already read after the CONNECT.
    pub fn new(r: Reader, bw: Writer, buf: BytesMut) -> Self {
        Self {
            r,
            bw,
            buf,
            aliases: PacketMap::default(),
            local_qos2: PacketSet::default(),
            chunk: ReadSize::default(),
        }
    }
}

/// Broker → client state kept for the whole session.
pub(super) struct Downstream {
    r: Reader,
    buf: BytesMut,
    connack_seen: bool,
    chunk: ReadSize,
}

impl Downstream {
    pub fn new(r: Reader) -> Self {
        Self {
            r,
            buf: BytesMut::new(),
            connack_seen: false,
            chunk: ReadSize::default(),
        }
    }
}

pub(super) struct Relay {
    gw: Arc<Gateway>,
    ctx: Arc<ListenerCtx>,
    version: Version,
    source: Source,
    ip: Option<IpAddr>,
    zone: Zone,
    /// The Will as the CONNECT set it: judged again with the session.
    will: Option<Will>,
    shared: Mutex<Shared>,
    client_w: tokio::sync::Mutex<Writer>,
    up_bytes: Counter,
    down_bytes: Counter,
}

/// A CONNECT's Will, kept for the session's life.
pub(super) struct Will {
    pub topic: Box<str>,
    pub qos: u8,
    pub retain: bool,
}

/// Who the session is and where it goes: what every decision of the session is made on.
pub(super) struct SessionFacts {
    pub version: Version,
    pub source: Source,
    pub ip: Option<IpAddr>,
    pub zone: Zone,
    pub will: Option<Will>,
}

impl Relay {
    pub fn new(
        gw: Arc<Gateway>,
        ctx: Arc<ListenerCtx>,
        judged: SessionFacts,
        client_w: Writer,
    ) -> Self {
        let SessionFacts {
            version,
            source,
            ip,
            zone,
            will,
        } = judged;
        let counter = |direction| {
            gw.metrics
                .bytes
                .get_or_create(&BytesLabels {
                    protocol: "mqtt",
                    direction,
                })
                .clone()
        };
        let (up_bytes, down_bytes) = (counter("upstream"), counter("downstream"));
        Self {
            gw,
            ctx,
            version,
            source,
            ip,
            zone,
            will,
            shared: Mutex::new(Shared::default()),
            client_w: tokio::sync::Mutex::new(client_w),
            up_bytes,
            down_bytes,
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn decide(&self, operation: Operation, topic: &str, qos: u8, retain: bool) -> bool {
        let ask = Ask {
            protocol: Protocol::Mqtt,
            operation,
            source: &self.source,
            host: &self.ctx.upstream_host,
            port: self.ctx.upstream_port,
            mqtt: Some(MqttFacts { topic, qos, retain }),
            http: None,
            will: None,
        };
        self.gw.decide_at(&ask, self.ip, self.zone).allowed()
    }

    /// Resolves once a newer policy generation denies the session's CONNECT (with its Will)
    /// or one of its granted subscriptions. The whole session ends then, rather than a
    /// subscription being removed behind the client's back: the client reconnects and its
    /// subscriptions are judged afresh, each granted or refused in its SUBACK.
    pub async fn revoked(&self) -> Ended {
        let mut watch = self.gw.policy_watch();
        let decision = watch.denied(|| self.rejudge()).await;
        let flow = format!("{}:{}", self.ctx.upstream_host, self.ctx.upstream_port);
        revalidate::revoked(&self.gw, "mqtt", &flow, &decision);
        Ended::Revoked
    }

    fn rejudge(&self) -> Decision {
        let will = self.will.as_ref().map(|w| MqttFacts {
            topic: &w.topic,
            qos: w.qos,
            retain: w.retain,
        });
        let ask = Ask {
            protocol: Protocol::Mqtt,
            operation: Operation::Connect,
            source: &self.source,
            host: &self.ctx.upstream_host,
            port: self.ctx.upstream_port,
            mqtt: None,
            http: None,
            will,
        };
        // The CONNECT as it was judged: an external broker name without an address.
        let (ip, zone) = match self.ip {
            Some(ip) => self.gw.located(&self.ctx.upstream_host, ip),
            None => (None, self.zone),
        };
        let decision = self.gw.decide_at(&ask, ip, zone);
        if !decision.allowed() {
            return decision;
        }
        // Copied out so that no decision runs under the lock the data path takes.
        let granted = self.shared().granted.clone();
        for (filter, qos) in &granted {
            let ask = Ask {
                operation: Operation::Subscribe,
                mqtt: Some(MqttFacts {
                    topic: codec::judged_filter(filter),
                    qos: *qos,
                    retain: false,
                }),
                will: None,
                ..ask
            };
            let d = self.gw.decide_at(&ask, self.ip, self.zone);
            if !d.allowed() {
                return d;
            }
        }
        decision
    }

    async fn to_client(&self, bytes: &[u8]) -> Result<(), Ended> {
        let mut w = self.client_w.lock().await;
        w.write_all(bytes)
            .await
            .map_err(|e| Ended::Failed(SessionError::new("client_io", e.to_string())))
    }

    /// Client → broker until either side closes or the client breaks the protocol.
    pub async fn client_to_broker(&self, st: &mut Upstream) -> Ended {
        // Bytes the client pipelined after its CONNECT are judged before the first read.
        let mut read = false;
        loop {
            // The busy part of a direction (its frame loop and pending writes) lives on the heap
            // only while it runs, so an idle session keeps just this loop and its socket halves.
            if let Some(ended) = Box::pin(self.client_turn(st, read)).await {
                return ended;
            }
            read = true;
            st.buf = BytesMut::new();
            if let Err(e) = st.r.readable().await {
                return Ended::Failed(SessionError::new("client_io", e.to_string()));
            }
        }
    }

    /// Reads (when `read`), judges and forwards client frames until the buffer is empty.
    /// `Some`: the direction ended.
    async fn client_turn(&self, st: &mut Upstream, mut read: bool) -> Option<Ended> {
        let max = self.ctx.max_packet;
        let broker_err =
            |e: std::io::Error| Ended::Failed(SessionError::new("upstream_io", e.to_string()));
        let Upstream {
            r,
            bw,
            buf,
            aliases,
            local_qos2,
            chunk,
        } = st;
        loop {
            if read {
                match fill(r, buf, chunk, max).await {
                    Ok(true) => {}
                    Ok(false) => return Some(Ended::ClientClosed),
                    Err(e) => {
                        return Some(Ended::Failed(SessionError::new("client_io", e.to_string())));
                    }
                }
            }
            read = true;
            let mut fwd = 0;
            loop {
                let rest = &buf[fwd..];
                let h = match codec::parse_header(rest, max) {
                    Ok(Some(h)) if rest.len() >= h.total() => h,
                    Ok(_) => break,
                    Err(e) => {
                        if let Err(e) = self.flush(bw, buf, fwd).await {
                            return Some(broker_err(e));
                        }
                        return Some(Ended::ClientError(e));
                    }
                };
                let frame = &buf[fwd..fwd + h.total()];
                let action = match self.judge(h.kind(), frame, aliases, local_qos2) {
                    Ok(a) => a,
                    Err(e) => {
                        if let Err(e) = self.flush(bw, buf, fwd).await {
                            return Some(broker_err(e));
                        }
                        return Some(Ended::ClientError(e));
                    }
                };
                if let Action::Forward = action {
                    fwd += h.total();
                    continue;
                }
                if let Err(e) = self.flush(bw, buf, fwd).await {
                    return Some(broker_err(e));
                }
                fwd = 0;
                buf.advance(h.total());
                match action {
                    Action::Forward | Action::Drop => {}
                    Action::Reply(b) => {
                        if let Err(e) = self.to_client(&b).await {
                            return Some(e);
                        }
                    }
                    Action::Replace(b) => {
                        if let Err(e) = bw.write_all(&b).await {
                            return Some(broker_err(e));
                        }
                        self.up_bytes.inc_by(b.len() as u64);
                    }
                    Action::Disconnect => return Some(Ended::DeniedDisconnect),
                }
            }
            if let Err(e) = self.flush(bw, buf, fwd).await {
                return Some(broker_err(e));
            }
            if buf.is_empty() {
                return None;
            }
        }
    }

    /// Writes the first `n` bytes of `buf` (judged frames, as they arrived) to the broker.
    async fn flush(&self, bw: &mut Writer, buf: &mut BytesMut, n: usize) -> std::io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        let chunk = buf.split_to(n);
        bw.write_all(&chunk).await?;
        self.up_bytes.inc_by(n as u64);
        Ok(())
    }

    fn judge(
        &self,
        kind: u8,
        frame: &[u8],
        aliases: &mut PacketMap<Alias>,
        local_qos2: &mut PacketSet,
    ) -> Result<Action, CodecError> {
        let v = self.version;
        match kind {
            codec::PUBLISH => self.judge_publish(frame, aliases, local_qos2),
            codec::SUBSCRIBE => self.judge_subscribe(frame),
            codec::UNSUBSCRIBE => {
                let unsub = codec::inspect_unsubscribe(frame, v)?;
                let mut shared = self.shared();
                for f in &unsub.filters {
                    shared.granted.retain(|(g, _)| **g != *f.filter);
                }
                Ok(Action::Forward)
            }
            codec::PUBREL => {
                let id = codec::ack_packet_id(frame)?;
                if local_qos2.remove(&id) {
                    // The PUBREC was ours: so is the PUBCOMP; the broker never saw this id.
                    Ok(Action::Reply(encode::encode_ack(
                        codec::PUBCOMP,
                        id,
                        v,
                        reason::SUCCESS,
                    )))
                } else {
                    Ok(Action::Forward)
                }
            }
            codec::CONNECT => Err(CodecError::Protocol("second CONNECT")),
            codec::CONNACK | codec::SUBACK | codec::UNSUBACK | codec::PINGRESP => Err(
                CodecError::Protocol("a server-only packet sent by the client"),
            ),
            codec::AUTH if !v.is_v5() => Err(CodecError::Malformed("AUTH before MQTT 5")),
            _ => Ok(Action::Forward),
        }
    }

    fn judge_publish(
        &self,
        frame: &[u8],
        aliases: &mut PacketMap<Alias>,
        local_qos2: &mut PacketSet,
    ) -> Result<Action, CodecError> {
        let p = codec::inspect_publish(frame, self.version)?;
        if let Some(id) = p.packet_id {
            // A new flow with this id ends any local one.
            local_qos2.remove(&id);
        }
        let Some(alias) = p.topic_alias else {
            if self.decide(Operation::Publish, p.topic, p.qos, p.retain) {
                return Ok(Action::Forward);
            }
            return Ok(self.deny_publish(p.qos, p.packet_id, local_qos2));
        };
        if alias > self.shared().topic_alias_max {
            return Err(CodecError::TopicAliasInvalid(
                "topic alias above the broker's Topic Alias Maximum",
            ));
        }
        if !p.topic.is_empty() {
            // Sets (or moves) the alias. A refused publish is not forwarded, so the broker's
            // mapping stays as it was; ours remembers the refused topic, and every alias-only
            // publish is judged against it.
            let allowed = self.decide(Operation::Publish, p.topic, p.qos, p.retain);
            match aliases.get_mut(&alias) {
                Some(a) if *a.topic == *p.topic => a.broker_knows |= allowed,
                _ => {
                    aliases.insert(
                        alias,
                        Alias {
                            topic: p.topic.into(),
                            broker_knows: allowed,
                        },
                    );
                }
            }
            return Ok(if allowed {
                Action::Forward
            } else {
                self.deny_publish(p.qos, p.packet_id, local_qos2)
            });
        }
        let Some(a) = aliases.get_mut(&alias) else {
            return Err(CodecError::TopicAliasInvalid("unknown topic alias"));
        };
        if !self.decide(Operation::Publish, &a.topic, p.qos, p.retain) {
            return Ok(self.deny_publish(p.qos, p.packet_id, local_qos2));
        }
        if a.broker_knows {
            return Ok(Action::Forward);
        }
        // Allowed now (a policy reload) but the broker never learned this alias: name the
        // topic so that it does.
        a.broker_knows = true;
        Ok(Action::Replace(encode::encode_publish_with_topic(
            frame, &p, &a.topic,
        )))
    }

    fn deny_publish(&self, qos: u8, packet_id: Option<u16>, local_qos2: &mut PacketSet) -> Action {
        let v = self.version;
        let Some(id) = packet_id else {
            return Action::Drop;
        };
        if !v.is_v5() && self.ctx.config.v3_deny == V3Deny::Disconnect {
            return Action::Disconnect;
        }
        if qos == 1 {
            Action::Reply(encode::encode_ack(
                codec::PUBACK,
                id,
                v,
                reason::NOT_AUTHORIZED,
            ))
        } else {
            local_qos2.insert(id);
            Action::Reply(encode::encode_ack(
                codec::PUBREC,
                id,
                v,
                reason::NOT_AUTHORIZED,
            ))
        }
    }

    /// Broker → client until either side closes.
    pub async fn broker_to_client(&self, st: &mut Downstream) -> Ended {
        loop {
            // As client_to_broker: the busy part is on the heap only while it runs.
            if let Some(ended) = Box::pin(self.broker_turn(st)).await {
                return ended;
            }
            st.buf = BytesMut::new();
            if let Err(e) = st.r.readable().await {
                return Ended::Failed(SessionError::new("upstream_io", e.to_string()));
            }
            // A broker answers a batch of publishes with one small ack each; letting the other
            // tasks run once before reading gathers the acks that follow into the same read
            // and write, instead of a wake-up, a read and a write per ack.
            tokio::task::yield_now().await;
        }
    }

    /// Reads broker frames and forwards them (merging SUBACKs) until the buffer is empty.
    async fn broker_turn(&self, st: &mut Downstream) -> Option<Ended> {
        let max = self.ctx.max_packet;
        let Downstream {
            r,
            buf,
            connack_seen,
            chunk,
        } = st;
        loop {
            match fill(r, buf, chunk, max).await {
                Ok(true) => {}
                Ok(false) => return Some(Ended::BrokerClosed),
                Err(e) => {
                    return Some(Ended::Failed(SessionError::new(
                        "upstream_io",
                        e.to_string(),
                    )));
                }
            }
            let mut fwd = 0;
            loop {
                let rest = &buf[fwd..];
                let h = match codec::parse_header(rest, max) {
                    Ok(Some(h)) if rest.len() >= h.total() => h,
                    Ok(_) => break,
                    Err(e) => return Some(self.broker_broke(e)),
                };
                let frame = &buf[fwd..fwd + h.total()];
                let replacement = match h.kind() {
                    codec::CONNACK if !*connack_seen => {
                        *connack_seen = true;
                        match codec::inspect_connack(frame, self.version) {
                            Ok(ack) => self.shared().topic_alias_max = ack.topic_alias_max,
                            Err(e) => return Some(self.broker_broke(e)),
                        }
                        None
                    }
                    codec::SUBACK => match self.merge_suback(frame) {
                        Ok(r) => r,
                        Err(e) => return Some(self.broker_broke(e)),
                    },
                    _ => None,
                };
                let Some(replacement) = replacement else {
                    fwd += h.total();
                    continue;
                };
                if let Err(e) = self.flush_down(buf, fwd).await {
                    return Some(e);
                }
                fwd = 0;
                buf.advance(h.total());
                if let Err(e) = self.to_client(&replacement).await {
                    return Some(e);
                }
                self.down_bytes.inc_by(replacement.len() as u64);
            }
            if let Err(e) = self.flush_down(buf, fwd).await {
                return Some(e);
            }
            if buf.is_empty() {
                return None;
            }
        }
    }

    fn broker_broke(&self, e: CodecError) -> Ended {
        Ended::Failed(SessionError::new(
            "upstream_protocol",
            format!("broker sent a bad packet: {e}"),
        ))
    }

    async fn flush_down(&self, buf: &mut BytesMut, n: usize) -> Result<(), Ended> {
        if n == 0 {
            return Ok(());
        }
        let chunk = buf.split_to(n);
        self.to_client(&chunk).await?;
        self.down_bytes.inc_by(n as u64);
        Ok(())
    }

    /// Ends the session: tells an MQTT 5 client why (when it is the client's fault or ours),
    /// closes the client side; dropping the broker half closes the broker side.
    pub async fn finish(&self, ended: Ended, up: &mut Upstream) -> Result<(), SessionError> {
        let v5 = self.version.is_v5();
        if let Ended::Revoked = ended {
            // A normal DISCONNECT, in both versions: the broker discards the Will, which the
            // policy in force may no longer allow (a dropped connection would publish it).
            let _ = up.bw.write_all(&[codec::DISCONNECT << 4, 0]).await;
        }
        let (notice, result) = match ended {
            Ended::ClientClosed | Ended::BrokerClosed => (None, Ok(())),
            Ended::Shutdown => (Some(reason::SERVER_SHUTTING_DOWN), Ok(())),
            Ended::DeniedDisconnect => (None, Ok(())),
            Ended::Revoked => (Some(reason::NOT_AUTHORIZED), Ok(())),
            Ended::ClientError(e) => (Some(e.reason_code()), Err(SessionError::from(e))),
            Ended::Failed(e) => (None, Err(e)),
        };
        let mut w = self.client_w.lock().await;
        if let (true, Some(code)) = (v5, notice) {
            let _ = w.write_all(&encode::encode_disconnect(code)).await;
        }
        let _ = w.shutdown().await;
        result
    }
}

/// Reads more bytes into `buf`. An empty buffer is released while waiting, so an idle
/// connection holds no read buffer; `chunk` adapts the read size to the traffic.
/// `Ok(false)`: end of stream.
async fn fill(
    r: &mut Reader,
    buf: &mut BytesMut,
    chunk: &mut ReadSize,
    max: usize,
) -> std::io::Result<bool> {
    if buf.is_empty() {
        *buf = BytesMut::new();
        r.readable().await?;
    }
    let want = match codec::parse_header(buf, max) {
        Ok(Some(h)) => h.total().saturating_sub(buf.len()).max(chunk.get()),
        _ => chunk.get(),
    };
    buf.reserve(want);
    let room = buf.capacity() - buf.len();
    let n = r.read_buf(buf).await?;
    chunk.update(n, room);
    Ok(n > 0)
}
