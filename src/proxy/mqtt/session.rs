//! One client ⇄ broker relay: the CONNECT handshake (TLS, identity, the upstream's zone, the
//! connect and Will decisions), then two directions that forward frames as they arrived.
//!
//! Client → broker: every PUBLISH and every SUBSCRIBE filter is judged; a denied publish is
//! answered the way the client's protocol allows (relay.rs). Broker → client: frames pass
//! untouched except a SUBACK that must be merged with local refusals, and the CONNACK, read for
//! the broker's Topic Alias Maximum. Flow control is the sockets': the next client packet is
//! read only once the previous ones are written, so a slow broker slows its client.
//!
//! Not here: accepting connections (mod.rs) or byte-level parsing (codec.rs).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::codec::{self, CodecError, Version, reason};
use super::context::ListenerCtx;
use super::encode;
use super::error::SessionError;
use super::relay::{Downstream, Ended, Relay, SessionFacts, Upstream, Will};
use super::wire::{Reader, Stream, Writer, subject_common_name};
use crate::drain::Watch;
use crate::policy::{MqttFacts, Operation, Protocol, Source};
use crate::proxy::listener::Accepted;
use crate::proxy::socket::{self, ConnectError};
use crate::proxy::{Ask, Gateway, Judged};

/// Serves one accepted client connection to its end; an abnormal end is counted.
///
/// A plain fn building the session's futures, so that none is held twice: an async fn keeps
/// its arguments for its whole life, and an idle session must cost as little as possible (the
/// task stays at tokio's smallest cell, 256 bytes; the session is one box of the relay's size).
pub fn run(
    ctx: Arc<ListenerCtx>,
    gw: Arc<Gateway>,
    accepted: Accepted,
) -> impl Future<Output = ()> + Send + 'static {
    let Accepted {
        stream,
        peer,
        drain,
        mut pressure,
    } = accepted;
    let (hctx, hgw) = (ctx.clone(), gw.clone());
    // The handshake's state (TLS, lookups, the CONNECT buffer, the shed wait) lives in a box
    // of its own only while it runs.
    let handshake = Box::pin(async move {
        tokio::select! {
            e = establish(&hctx, &hgw, stream) => e,
            // A client still short of its CONNECT gives its slot up to clients queued behind
            // a full listener.
            _ = pressure.shed() => Err(SessionError::new("shed", "no CONNECT yet while the listener is full")),
        }
    });
    let session = Box::pin(async move {
        let Some(established) = handshake.await? else {
            return Ok(());
        };
        relay_until_end(established, drain).await
    });
    async move {
        if let Err(e) = session.await {
            gw.metrics.error("mqtt", e.kind);
            tracing::debug!(%peer, listener = %ctx.config.listen, kind = e.kind, "mqtt session ended: {}", e.message);
        }
    }
}

/// Both directions until either ends (or shutdown), then the session's close. A plain fn
/// returning the future, so that each part of the session is stored in it once.
fn relay_until_end(
    established: Established,
    mut drain: Watch,
) -> impl Future<Output = Result<(), SessionError>> {
    let Established {
        relay,
        client_r,
        broker_r,
        broker_w,
        buf,
    } = established;
    let mut up = Upstream::new(client_r, broker_w, buf);
    let mut down = Downstream::new(broker_r);
    async move {
        let ended = tokio::select! {
            e = relay.client_to_broker(&mut up) => e,
            e = relay.broker_to_client(&mut down) => e,
            e = relay.revoked() => e,
            _ = drain.signaled() => Ended::Shutdown,
        };
        relay.finish(ended, &mut up).await
    }
}

/// A session past its CONNECT: the relay state and the socket halves it runs on.
struct Established {
    relay: Relay,
    client_r: Reader,
    broker_r: Reader,
    broker_w: Writer,
    /// Client bytes already read after the CONNECT.
    buf: BytesMut,
}

/// TLS, CONNECT, the connect and Will decisions, the upstream connection. `None`: the client
/// was refused (and told so).
async fn establish(
    ctx: &Arc<ListenerCtx>,
    gw: &Arc<Gateway>,
    tcp: TcpStream,
) -> Result<Option<Established>, SessionError> {
    let deadline = tokio::time::Instant::now() + ctx.config.connect_timeout.get();
    let (mut client, cert_name) = accept_tls(ctx, tcp, deadline).await?;

    let mut buf = BytesMut::new();
    let frame = tokio::time::timeout_at(
        deadline,
        read_first_frame(&mut client, &mut buf, ctx.max_packet),
    )
    .await
    .map_err(|_| connect_timed_out())??;
    let connect = match codec::inspect_connect(&frame) {
        Ok(c) => c,
        Err(e) => return Err(answer_bad_connect(&mut client, &frame, e).await),
    };
    let version = connect.version;

    // Who is asking. A verified client certificate's CN is the user name, whatever CONNECT says.
    let mut source: Source = gw.identity.clone();
    source.client_id = connect.client_id.to_string();
    source.username = match cert_name {
        Some(cn) => cn,
        None => connect.username.unwrap_or_default().to_string(),
    };
    let will = connect.will.as_ref().map(|w| MqttFacts {
        topic: w.topic,
        qos: w.qos,
        retain: w.retain,
    });
    let kept_will = connect.will.as_ref().map(|w| Will {
        topic: w.topic.into(),
        qos: w.qos,
        retain: w.retain,
    });
    let (broker, addr, zone) = match reach_broker(ctx, gw, &source, will, deadline).await {
        Reach::Connected(broker, addr, zone) => (broker, addr, zone),
        Reach::Denied => {
            let _ = client
                .write_all(&refusal(
                    version,
                    reason::NOT_AUTHORIZED,
                    reason::V3_NOT_AUTHORIZED,
                ))
                .await;
            let _ = client.shutdown().await;
            return Ok(None);
        }
        Reach::Failed(e) => return Err(broker_unavailable(ctx, &mut client, version, e).await),
    };

    let (client_r, client_w) = client.split();
    let (broker_r, mut broker_w) = broker.split();
    broker_w
        .write_all(&frame)
        .await
        .map_err(|e| SessionError::new("upstream_io", e.to_string()))?;
    gw.metrics.forwarded("mqtt", "upstream", frame.len() as u64);
    // Release the CONNECT's buffer before the session settles into its (long) idle life.
    drop(frame);
    let buf = if buf.is_empty() { BytesMut::new() } else { buf };

    let judged = SessionFacts {
        version,
        source,
        ip: Some(addr.ip()),
        zone,
        will: kept_will,
    };
    let relay = Relay::new(gw.clone(), ctx.clone(), judged, client_w);
    Ok(Some(Established {
        relay,
        client_r,
        broker_r,
        broker_w,
        buf,
    }))
}

/// Tells the client the broker cannot be reached (CONNACK "server unavailable") and logs why,
/// at most once a second per listener.
async fn broker_unavailable(
    ctx: &ListenerCtx,
    client: &mut Stream,
    version: Version,
    e: SessionError,
) -> SessionError {
    let unavailable = refusal(
        version,
        reason::SERVER_UNAVAILABLE,
        reason::V3_SERVER_UNAVAILABLE,
    );
    let _ = client.write_all(&unavailable).await;
    if ctx.upstream_errors.allow() {
        tracing::warn!(listener = %ctx.config.listen, upstream = %ctx.config.upstream, kind = e.kind, "cannot reach the MQTT broker: {}", e.message);
    }
    e
}

fn connect_timed_out() -> SessionError {
    SessionError::new("connect_timeout", "no CONNECT within connect_timeout")
}

/// A CONNACK refusing the session in the client's protocol version.
fn refusal(version: Version, code_v5: u8, code_v3: u8) -> Bytes {
    encode::encode_connack(version, if version.is_v5() { code_v5 } else { code_v3 })
}

/// The listener's TLS handshake (when configured) and the verified client certificate's CN.
async fn accept_tls(
    ctx: &ListenerCtx,
    tcp: TcpStream,
    deadline: tokio::time::Instant,
) -> Result<(Stream, Option<String>), SessionError> {
    let Some(acceptor) = &ctx.tls else {
        return Ok((Stream::Tcp(tcp), None));
    };
    let peer = tcp
        .peer_addr()
        .map_or_else(|_| "unknown".to_string(), |a| a.to_string());
    let tls = tokio::time::timeout_at(deadline, acceptor.accept(tcp))
        .await
        .map_err(|_| connect_timed_out())?
        .map_err(|e| {
            let why = crate::proxy::tls::handshake_refusal(&e);
            if ctx.handshake_errors.allow() {
                tracing::warn!(listener = %ctx.config.listen, peer = %peer, "TLS handshake refused: {why}");
            }
            SessionError::new("tls_handshake", why)
        })?;
    let name = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| subject_common_name(c));
    Ok((Stream::Other(Box::new(tls)), name))
}

/// Tells the client why its CONNECT was refused, where its protocol has a way to say so.
async fn answer_bad_connect(client: &mut Stream, frame: &[u8], e: CodecError) -> SessionError {
    if e == CodecError::UnsupportedVersion {
        let answer = encode::encode_connack(Version::V311, reason::V3_UNACCEPTABLE_VERSION);
        let _ = client.write_all(&answer).await;
    } else if frame.get(8) == Some(&5) && frame.get(4..8) == Some(b"MQTT") {
        let _ = client
            .write_all(&encode::encode_connack(Version::V5, e.reason_code()))
            .await;
    }
    e.into()
}

/// How reaching the broker went.
enum Reach {
    Connected(Stream, SocketAddr, crate::policy::Zone),
    Denied,
    Failed(SessionError),
}

/// Judges the CONNECT (and its Will) by the site's DNS rule — an external broker name is
/// looked up only once allowed, every lookup within the CONNECT's deadline — then connects to
/// exactly the judged address.
async fn reach_broker(
    ctx: &ListenerCtx,
    gw: &Gateway,
    source: &Source,
    will: Option<MqttFacts<'_>>,
    deadline: tokio::time::Instant,
) -> Reach {
    let ask = Ask {
        protocol: Protocol::Mqtt,
        operation: Operation::Connect,
        source,
        host: &ctx.upstream_host,
        port: ctx.upstream_port,
        mqtt: None,
        http: None,
        will,
    };
    let lookup_time = deadline.saturating_duration_since(tokio::time::Instant::now());
    match gw.judge(ask, lookup_time).await {
        Judged::Allowed { addr, zone } => match connect_upstream(ctx, addr, deadline).await {
            Ok(broker) => Reach::Connected(broker, addr, zone),
            Err(e) => Reach::Failed(e),
        },
        Judged::Denied(_) => Reach::Denied,
        Judged::Unresolvable(msg) => Reach::Failed(SessionError::new("upstream_resolve", msg)),
        Judged::LookupTimeout(msg) => {
            Reach::Failed(SessionError::new("upstream_resolve_timeout", msg))
        }
    }
}

/// Reads exactly one frame (the CONNECT) and leaves anything pipelined after it in `buf`.
async fn read_first_frame(
    client: &mut Stream,
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Bytes, SessionError> {
    loop {
        if let Some(h) = codec::parse_header(buf, max_packet)? {
            if h.kind() != codec::CONNECT {
                return Err(CodecError::Protocol("the first packet must be CONNECT").into());
            }
            if buf.len() >= h.total() {
                return Ok(buf.split_to(h.total()).freeze());
            }
            buf.reserve(h.total() - buf.len());
        } else {
            buf.reserve(512);
        }
        let n = client
            .read_buf(buf)
            .await
            .map_err(|e| SessionError::new("client_io", e.to_string()))?;
        if n == 0 {
            return Err(SessionError::new(
                "client_io",
                "client closed the connection before CONNECT",
            ));
        }
    }
}

async fn connect_upstream(
    ctx: &ListenerCtx,
    addr: SocketAddr,
    deadline: tokio::time::Instant,
) -> Result<Stream, SessionError> {
    let fail = |e: String| SessionError::new("upstream_connect", format!("{addr}: {e}"));
    let tcp = socket::connect_by(addr, deadline)
        .await
        .map_err(|e| match e {
            ConnectError::Io(_, e) => fail(e.to_string()),
            other => fail(other.to_string()),
        })?;
    match &ctx.upstream_tls {
        None => Ok(Stream::Tcp(tcp)),
        Some((connector, name)) => {
            let tls = tokio::time::timeout_at(deadline, connector.connect(name.clone(), tcp))
                .await
                .map_err(|_| fail("TLS handshake timed out".into()))?
                .map_err(|e| fail(format!("TLS: {e}")))?;
            Ok(Stream::Other(Box::new(tls)))
        }
    }
}
