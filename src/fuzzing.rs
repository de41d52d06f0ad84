//! Entry points for the fuzz targets (`fuzz/`) and the corpus test (`tests/fuzz_corpus.rs`):
//! each of [`TARGETS`] runs the parser the product runs on peer or user bytes, without its
//! socket, and checks the invariants the product relies on (a panic is a finding). Not a
//! public API: hidden from the docs, and nothing in the product calls it.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use bytes::{Bytes, BytesMut};
use http::{Method, Request, Response};
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admission::inventory::Inventory;
use crate::admission::policies::Policies;
use crate::admission::service::Webhook;
use crate::config::{Config, HttpConfig, SiteConfig};
use crate::policy::bundle::VerificationKey;
use crate::proxy::dns::query;
use crate::proxy::http::target::host_port;
use crate::proxy::http::upstream::judged_uri;
use crate::proxy::mqtt::codec::{self, Version};
use crate::proxy::mqtt::encode;
use crate::proxy::sni::{self, ClientHello};
use crate::site::{HostKind, Site};

/// The MQTT packet limit the fuzz targets read with (the config's default).
pub const MQTT_MAX_PACKET: usize = 64 * 1024;

/// What a fuzz target runs on one input.
pub type Target = fn(&[u8]);

/// Every fuzz target by name (`fuzz/fuzz_targets/<name>.rs`, `fuzz/corpus/<name>/`).
pub const TARGETS: &[(&str, Target)] = &[
    ("mqtt_codec", mqtt_codec),
    ("tls_client_hello", client_hello),
    ("connect_authority", connect_authority),
    ("http_request_head", http_request_head),
    ("dns_message", dns_message),
    ("bundle_archive", bundle_archive),
    ("bundle_signature", bundle_signature),
    ("config_yaml", config_yaml),
    ("admission_review", admission_review),
];

/// The MQTT codec as a session reads: the first byte picks the protocol version and the size
/// of the chunks the rest arrives in. A reader never buffers more than the packet limit.
pub fn mqtt_codec(data: &[u8]) {
    let Some((&control, bytes)) = data.split_first() else {
        return;
    };
    let version = match control % 3 {
        0 => Version::V31,
        1 => Version::V311,
        _ => Version::V5,
    };
    let chunk = usize::from(control / 3).max(1);
    let mut buf = BytesMut::new();
    for piece in bytes.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec::split_frame(&mut buf, MQTT_MAX_PACKET) {
                Ok(Some(f)) => {
                    assert!(f.len() <= MQTT_MAX_PACKET);
                    mqtt_frame(&f, version);
                }
                Ok(None) => {
                    assert!(buf.len() < MQTT_MAX_PACKET + 5);
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

/// One MQTT frame through every inspector, and the frames the gateway re-encodes from it
/// decoded again: a reduced SUBSCRIBE keeps exactly the kept filters, a PUBLISH given its
/// topic keeps everything else, a SUBACK keeps its codes.
fn mqtt_frame(frame: &[u8], version: Version) {
    let _ = codec::inspect_connect(frame);
    let _ = codec::inspect_unsubscribe(frame, version);
    let _ = codec::inspect_connack(frame, version);
    let _ = codec::ack_packet_id(frame);
    if let Ok(sub) = codec::inspect_subscribe(frame, version) {
        let keep: Vec<bool> = (0..sub.filters.len()).map(|i| i % 2 == 0).collect();
        let reduced = encode::encode_subscribe_subset(frame, &sub, &keep);
        let again = reframe(&reduced);
        let again = codec::inspect_subscribe(&again, version)
            .unwrap_or_else(|e| panic!("a reduced SUBSCRIBE does not decode: {e}"));
        let kept = sub.filters.iter().step_by(2);
        let kept: Vec<_> = kept.map(|f| (f.filter, f.options)).collect();
        let back: Vec<_> = again
            .filters
            .iter()
            .map(|f| (f.filter, f.options))
            .collect();
        assert_eq!(kept, back, "a reduced SUBSCRIBE changed its filters");
        assert_eq!(again.packet_id, sub.packet_id);
        assert_eq!(again.properties, sub.properties);
    }
    if let Ok(p) = codec::inspect_publish(frame, version) {
        let topic = if p.topic.is_empty() { "a/b" } else { p.topic };
        let named = encode::encode_publish_with_topic(frame, &p, topic);
        let named = reframe(&named);
        let again = codec::inspect_publish(&named, version)
            .unwrap_or_else(|e| panic!("a PUBLISH given its topic does not decode: {e}"));
        assert_eq!(again.topic, topic);
        assert_eq!(
            (
                again.qos,
                again.retain,
                again.dup,
                again.packet_id,
                again.topic_alias
            ),
            (p.qos, p.retain, p.dup, p.packet_id, p.topic_alias),
            "a PUBLISH given its topic changed its header"
        );
        assert_eq!(
            &named[again.topic_range.end..],
            &frame[p.topic_range.end..],
            "a PUBLISH given its topic changed its properties or payload"
        );
    }
    if let Ok(ack) = codec::inspect_suback(frame, version) {
        let again = encode::encode_suback(ack.packet_id, ack.properties, ack.codes, version);
        let again = reframe(&again);
        let back = codec::inspect_suback(&again, version)
            .unwrap_or_else(|e| panic!("a SUBACK does not decode: {e}"));
        assert_eq!((back.packet_id, back.codes), (ack.packet_id, ack.codes));
    }
}

/// An encoded packet read back through the frame splitter, as the peer's reader would.
fn reframe(encoded: &[u8]) -> Bytes {
    let mut buf = BytesMut::from(encoded);
    match codec::split_frame(&mut buf, usize::MAX >> 8) {
        Ok(Some(f)) if buf.is_empty() => f,
        other => panic!("an encoded packet does not split back into one frame: {other:?}"),
    }
}

/// A TLS ClientHello: the SNI, when there is one, is a valid DNS host name in lowercase, and
/// more bytes after a complete hello never change the answer.
pub fn client_hello(buf: &[u8]) {
    let first = sni::parse(buf);
    if let ClientHello::Hello { sni: Some(name) } = &first {
        assert_valid_host_name(name);
    }
    if let ClientHello::Hello { .. } = &first {
        let mut longer = buf.to_vec();
        longer.extend_from_slice(b"\x17\x03\x03\x00\x01\x00");
        assert_eq!(
            sni::parse(&longer),
            first,
            "trailing bytes changed the hello"
        );
    }
    let _ = crate::proxy::transparent::classify(buf);
}

fn assert_valid_host_name(name: &str) {
    assert!(
        !name.is_empty() && name.len() <= 253,
        "SNI length: {name:?}"
    );
    for label in name.split('.') {
        assert!(
            !label.is_empty() && label.len() <= 63,
            "SNI label: {name:?}"
        );
        assert!(
            label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'),
            "SNI characters: {name:?}"
        );
    }
}

fn site() -> &'static Site {
    static SITE: OnceLock<Site> = OnceLock::new();
    SITE.get_or_init(|| Site::new(&SiteConfig::default()))
}

/// A CONNECT authority (the request target of a CONNECT), as the tunnel reads it: a port is
/// required, the host is what the judge is asked about.
pub fn connect_authority(data: &[u8]) {
    let Ok(authority) = http::uri::Authority::try_from(data) else {
        return;
    };
    let Some(port) = authority.port_u16() else {
        return;
    };
    let (host, judged_port) = host_port(&authority, 443);
    assert_eq!(judged_port, port);
    judge_host(host);
}

/// The host a request names, classified the way the judge stage classifies it: an address
/// literal is never treated as a name.
fn judge_host(host: &str) {
    let kind = site().classify(host);
    if let Ok(ip) = host.parse::<IpAddr>() {
        assert!(
            matches!(kind, HostKind::Address(a, _) if a == ip),
            "{host:?}"
        );
    }
}

/// A request head as the forward proxy reads one: HTTP/1 parsed by hyper with the product's
/// limits, then the target forms (absolute-form for requests, authority-form for CONNECT)
/// read the way forward.rs and tunnel.rs read them.
pub fn http_request_head(bytes: &[u8]) {
    runtime().block_on(async {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let svc = service_fn(|req: Request<Incoming>| async move {
            request_target(&req);
            Ok::<_, Infallible>(Response::new(Empty::<Bytes>::new()))
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .max_header_size(HttpConfig::default().max_header_bytes.as_usize());
        let conn = builder.serve_connection(TokioIo::new(server), svc);
        let talk = async move {
            let _ = client.write_all(bytes).await;
            let _ = client.shutdown().await;
            let mut sink = Vec::new();
            let _ = client.read_to_end(&mut sink).await;
        };
        let _ = tokio::join!(conn, talk);
    });
}

fn request_target(req: &Request<Incoming>) {
    let uri = req.uri();
    let Some(authority) = uri.authority() else {
        return;
    };
    let default_port = if req.method() == Method::CONNECT {
        443
    } else {
        80
    };
    let (host, port) = host_port(authority, default_port);
    assert_eq!(port, authority.port_u16().unwrap_or(default_port));
    judge_host(host);
    let _ = uri.path();
    let target = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let _ = judged_uri(addr, target);
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("tokio runtime: {e}"))
    })
}

/// A DNS message as a client's query and as a resolver's answer.
pub fn dns_message(data: &[u8]) {
    dns_query(data);
    dns_reply(data);
}

/// A DNS query as the DNS proxy reads it; the error answers it would send decode back to the
/// same id and question.
fn dns_query(bytes: &[u8]) {
    use hickory_proto::op::{Message, OpCode, ResponseCode};
    match query::read_question(bytes) {
        Ok(q) => {
            assert!(!q.name.is_empty());
            let answer = query::error_answer(
                q.request.id(),
                OpCode::Query,
                ResponseCode::Refused,
                Some(&q.query),
            );
            if let Some(answer) = answer {
                let back = Message::from_vec(&answer)
                    .unwrap_or_else(|e| panic!("a refusal does not decode: {e}"));
                assert_eq!(back.id(), q.request.id());
                assert_eq!(back.queries(), std::slice::from_ref(&q.query));
            }
        }
        Err(bad) => {
            if let Some(answer) = bad.answer {
                let back = Message::from_vec(&answer)
                    .unwrap_or_else(|e| panic!("an error answer does not decode: {e}"));
                assert_eq!(back.id(), u16::from_be_bytes([bytes[0], bytes[1]]));
            }
        }
    }
}

/// An upstream resolver's answer as the DNS proxy reads it (the addresses it remembers), and
/// as the answer cache keeps it and gives it out again: what it gives out encodes, and never
/// with a longer TTL than it came with.
fn dns_reply(bytes: &[u8]) {
    use crate::proxy::dns::cache::{AnswerCache, Key};
    let Ok(mut m) = hickory_proto::op::Message::from_vec(bytes) else {
        return;
    };
    for (ip, _ttl) in query::addresses(&m) {
        let _ = site().zone_of_ip(ip);
    }
    let Some(question) = m.queries().first() else {
        return;
    };
    let cache = AnswerCache::new(&Default::default());
    let key = Key::of(&m, question, false);
    let before = m.clone();
    cache.put(key.clone(), &mut m, bytes.len());
    if let Some(again) = cache.get(&key) {
        assert_eq!(again.answers().len(), before.answers().len());
        assert!(again.to_vec().is_ok() || m.to_vec().is_err());
        let longest = |m: &hickory_proto::op::Message| m.all_sections().map(|r| r.ttl()).max();
        assert!(longest(&again) <= longest(&before));
    }
}

/// The key the bundle targets verify with; the seed corpora hold bundles signed by it.
fn bundle_key() -> &'static VerificationKey {
    static KEY: OnceLock<VerificationKey> = OnceLock::new();
    KEY.get_or_init(|| {
        VerificationKey::from_pem(include_bytes!("../fuzz/bundle_key.pem"), None, None)
            .unwrap_or_else(|e| panic!("fuzz/bundle_key.pem: {e}"))
    })
}

/// An OPA bundle as a bundle server or file delivers it. The first byte chooses: even, the
/// rest is the `.tar.gz` as it arrives; odd, the rest is a tar gzipped here first (so the
/// fuzzer mutates the archive, not the compressed stream). From 128 on, a public key is
/// configured, so the bundle must be signed.
pub fn bundle_archive(data: &[u8]) {
    use std::io::Write as _;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = (mode >= 128).then(bundle_key);
    let gzipped;
    let bytes = if mode % 2 == 0 {
        rest
    } else {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        if gz.write_all(rest).is_err() {
            return;
        }
        let Ok(b) = gz.finish() else { return };
        gzipped = b;
        &gzipped
    };
    // The default of `policy.bundle.max_size`.
    let max = 32 * 1024 * 1024;
    if let Ok(bundle) = crate::policy::bundle::read_bundle(bytes, max, key, false) {
        assert!(key.is_none() || bundle.signed, "a bundle passed unsigned");
    }
}

/// The parts of a bundle read before its policy: the first byte chooses `.manifest` (0),
/// `policy.bundle.public_key` PEM (1), or `.signatures.json` (2) checked against
/// [`bundle_key`] and fixed files (the seed corpus holds a valid signature of them).
pub fn bundle_signature(data: &[u8]) {
    use std::collections::BTreeMap;
    static FILES: OnceLock<BTreeMap<String, Vec<u8>>> = OnceLock::new();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Ok((_, roots)) = crate::policy::bundle::archive::read_manifest(rest) {
                // No roots only when the manifest lists none (`"roots": []`, a bundle that owns
                // nothing, as OPA reads it); a manifest without roots owns all of data.
                if roots.is_empty() {
                    let doc: serde_json::Value = serde_json::from_slice(rest).unwrap_or_default();
                    assert_eq!(doc.get("roots"), Some(&serde_json::json!([])));
                }
            }
        }
        1 => {
            let _ = VerificationKey::from_pem(rest, None, None);
        }
        _ => {
            let files = FILES.get_or_init(|| {
                BTreeMap::from([
                    (
                        ".manifest".to_string(),
                        br#"{"revision":"fuzz","roots":["manufacturing"]}"#.to_vec(),
                    ),
                    (
                        "manufacturing/smart.rego".to_string(),
                        b"package manufacturing.smart\n\nallow := true\n".to_vec(),
                    ),
                ])
            });
            let _ = crate::policy::bundle::signature::verify_signatures(rest, files, bundle_key());
        }
    }
}

/// YAML a user writes: the first byte chooses the config file (`serve -c`, even) or
/// ConstraintTemplates and Constraints (`webhook.paths`, odd).
pub fn config_yaml(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if mode % 2 == 0 {
        let _ = Config::parse(text);
    } else {
        let _ = crate::admission::manifests::parse(text, "fuzz.yaml");
    }
}

/// An AdmissionReview body, answered by a webhook serving the shipped templates.
pub fn admission_review(body: &[u8]) {
    static WEBHOOK: OnceLock<Webhook> = OnceLock::new();
    let webhook = WEBHOOK
        .get_or_init(|| Webhook::new(Policies::embedded(Inventory::new()), Vec::new(), 1 << 20));
    let (status, answer) = webhook.admit(body);
    assert!(status.is_success() || status.is_client_error(), "{status}");
    assert!(answer.is_object());
}
