//! The decision input: what the gateway saw, as the policy sees it.
//!
//! `Input` borrows everything it describes so that building one per message costs no allocation;
//! only a cache miss turns it into a regorus `Value` (and only a miss stores an owned copy).
//! The field set here *is* the decision contract of DESIGN.md: the cache key covers every field,
//! so a field added here is automatically part of the key.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use regorus::Value;

/// Wire protocol of the judged traffic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Mqtt,
    Http,
    Https,
    Tcp,
    Dns,
}

impl Protocol {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Http => "http",
            Self::Https => "https",
            Self::Tcp => "tcp",
            Self::Dns => "dns",
        }
    }
}

/// What the client is trying to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Connect,
    Publish,
    Subscribe,
    Request,
    Tunnel,
    Lookup,
}

impl Operation {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::Publish => "publish",
            Self::Subscribe => "subscribe",
            Self::Request => "request",
            Self::Tunnel => "tunnel",
            Self::Lookup => "lookup",
        }
    }
}

/// Whether a target is inside the plant (`local`) or outside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Zone {
    Local,
    External,
}

impl Zone {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::External => "external",
        }
    }
}

/// Who is asking: fixed per workload, plus the per-connection MQTT identity.
/// Built once per connection, borrowed by every decision on it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Source {
    pub workload: String,
    pub namespace: String,
    pub node: String,
    pub site: String,
    pub client_id: String,
    pub username: String,
}

/// Where the traffic goes. `ip` is the address the gateway judged and will connect to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Target<'a> {
    pub host: &'a str,
    pub port: u16,
    pub ip: Option<IpAddr>,
    pub zone: Zone,
}

/// MQTT facts: for publish the topic name, for subscribe one filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MqttFacts<'a> {
    pub topic: &'a str,
    pub qos: u8,
    pub retain: bool,
}

/// HTTP facts of one request (never headers values or bodies).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct HttpFacts<'a> {
    pub method: &'a str,
    pub scheme: &'a str,
    pub path: &'a str,
}

/// One decision input. Cheap to build; see the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Input<'a> {
    pub protocol: Protocol,
    pub operation: Operation,
    pub source: &'a Source,
    pub target: Target<'a>,
    pub mqtt: Option<MqttFacts<'a>>,
    pub http: Option<HttpFacts<'a>>,
}

impl<'a> Input<'a> {
    /// The seed policy's `action`: anything leaving the site is an export.
    pub const fn action(&self) -> &'static str {
        match self.target.zone {
            Zone::Local => "process_data",
            Zone::External => "export",
        }
    }

    /// The seed policy's `destination`: `"local"`, or the host the data would go to.
    pub const fn destination(&self) -> &'a str {
        match self.target.zone {
            Zone::Local => "local",
            Zone::External => self.target.host,
        }
    }

    pub const fn data_stays_local(&self) -> bool {
        matches!(self.target.zone, Zone::Local)
    }

    /// A 64-bit fingerprint of every field (used as the cache key; entries also keep the full
    /// input so that a hash collision can never hand out another input's verdict).
    pub fn fingerprint(&self, generation: u64) -> u64 {
        let mut h = FxHasher::default();
        generation.hash(&mut h);
        self.hash(&mut h);
        h.finish()
    }

    /// The input document as the policy sees it. Keys and the fixed words (zones, protocols,
    /// operations) are shared values made once, and each object is built from entries already in
    /// key order: on a cache miss this is a fifth of the evaluation otherwise.
    pub fn to_value(&self) -> Value {
        WORDS.with(|w| self.value_with(w))
    }

    fn value_with(&self, w: &Words) -> Value {
        let str = |s: &str| Value::from(s);
        let s = self.source;
        // Every list below is in key order (byte order of the key), which
        // `from_sorted_entries` checks; `to_value_matches_the_document_built_key_by_key` keeps
        // them honest.
        let source = object(vec![
            (w.client_id.clone(), str(&s.client_id)),
            (w.namespace.clone(), str(&s.namespace)),
            (w.node.clone(), str(&s.node)),
            (w.site.clone(), str(&s.site)),
            (w.username.clone(), str(&s.username)),
            (w.workload.clone(), str(&s.workload)),
        ]);
        let t = &self.target;
        let mut target = Vec::with_capacity(4);
        target.push((w.host.clone(), str(t.host)));
        if let Some(ip) = t.ip {
            target.push((w.ip.clone(), ip_value(ip)));
        }
        target.push((w.port.clone(), Value::from(u64::from(t.port))));
        target.push((w.zone.clone(), w.zones[self.target.zone as usize].clone()));

        let mut doc = Vec::with_capacity(10);
        doc.push((
            w.action.clone(),
            w.actions[self.target.zone as usize].clone(),
        ));
        doc.push((
            w.data_stays_local.clone(),
            Value::from(self.data_stays_local()),
        ));
        let destination = match self.target.zone {
            Zone::Local => w.zones[Zone::Local as usize].clone(),
            Zone::External => str(self.target.host),
        };
        doc.push((w.destination.clone(), destination));
        if let Some(hf) = &self.http {
            let http = object(vec![
                (w.method.clone(), str(hf.method)),
                (w.path.clone(), str(hf.path)),
                (w.scheme.clone(), str(hf.scheme)),
            ]);
            doc.push((w.http.clone(), http));
        }
        if let Some(m) = &self.mqtt {
            let mqtt = object(vec![
                (w.qos.clone(), Value::from(u64::from(m.qos))),
                (w.retain.clone(), Value::from(m.retain)),
                (w.topic.clone(), str(m.topic)),
            ]);
            doc.push((w.mqtt.clone(), mqtt));
        }
        doc.push((
            w.operation.clone(),
            w.operations[self.operation as usize].clone(),
        ));
        doc.push((
            w.protocol.clone(),
            w.protocols[self.protocol as usize].clone(),
        ));
        doc.push((w.source.clone(), source));
        doc.push((w.target.clone(), object(target)));
        object(doc)
    }

    /// [`Input::to_value`] the plain way, key by key into a map: what it must equal.
    #[cfg(test)]
    fn value_key_by_key(&self) -> Value {
        let mut doc = BTreeMap::new();
        put(&mut doc, "action", self.action().into());
        put(&mut doc, "destination", self.destination().into());
        put(&mut doc, "data_stays_local", self.data_stays_local().into());
        put(&mut doc, "protocol", self.protocol.as_str().into());
        put(&mut doc, "operation", self.operation.as_str().into());

        let s = self.source;
        let mut source = BTreeMap::new();
        for (k, v) in [
            ("workload", &s.workload),
            ("namespace", &s.namespace),
            ("node", &s.node),
            ("site", &s.site),
            ("client_id", &s.client_id),
            ("username", &s.username),
        ] {
            put(&mut source, k, v.as_str().into());
        }
        put(&mut doc, "source", Value::from(source));

        let t = &self.target;
        let mut target = BTreeMap::new();
        put(&mut target, "host", t.host.into());
        put(&mut target, "port", u64::from(t.port).into());
        if let Some(ip) = t.ip {
            put(&mut target, "ip", ip.to_string().into());
        }
        put(&mut target, "zone", t.zone.as_str().into());
        put(&mut doc, "target", Value::from(target));

        if let Some(m) = &self.mqtt {
            let mut mqtt = BTreeMap::new();
            put(&mut mqtt, "topic", m.topic.into());
            put(&mut mqtt, "qos", u64::from(m.qos).into());
            put(&mut mqtt, "retain", m.retain.into());
            put(&mut doc, "mqtt", Value::from(mqtt));
        }
        if let Some(hf) = &self.http {
            let mut http = BTreeMap::new();
            put(&mut http, "method", hf.method.into());
            put(&mut http, "scheme", hf.scheme.into());
            put(&mut http, "path", hf.path.into());
            put(&mut doc, "http", Value::from(http));
        }
        Value::from(doc)
    }

    pub fn to_owned_input(&self) -> OwnedInput {
        OwnedInput {
            protocol: self.protocol,
            operation: self.operation,
            source: self.source.clone(),
            host: self.target.host.into(),
            port: self.target.port,
            ip: self.target.ip,
            zone: self.target.zone,
            mqtt: self.mqtt.map(|m| (m.topic.into(), m.qos, m.retain)),
            http: self
                .http
                .map(|h| (h.method.into(), h.scheme.into(), h.path.into())),
        }
    }
}

#[cfg(test)]
fn put(map: &mut BTreeMap<Value, Value>, key: &str, value: Value) {
    map.insert(Value::from(key), value);
}

/// An object from entries in key order. Out of order would be a bug in [`Input::to_value`]
/// (its test catches it); the map fallback still gives the right document.
fn object(entries: Vec<(Value, Value)>) -> Value {
    match regorus::value::Object::from_sorted_entries(entries) {
        Ok(o) => o.into_value(),
        Err(entries) => unsorted(entries),
    }
}

/// The address as `to_string` writes it; an IPv4 address without the formatting machinery,
/// which took a thousand instructions of every cache miss.
fn ip_value(ip: IpAddr) -> Value {
    let IpAddr::V4(v4) = ip else {
        return Value::from(ip.to_string());
    };
    let mut text = [0u8; 15];
    let mut n = 0;
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text[n] = b'.';
            n += 1;
        }
        if octet >= 100 {
            text[n] = b'0' + octet / 100;
            n += 1;
        }
        if octet >= 10 {
            text[n] = b'0' + octet / 10 % 10;
            n += 1;
        }
        text[n] = b'0' + octet % 10;
        n += 1;
    }
    Value::from(std::str::from_utf8(&text[..n]).unwrap_or_default())
}

#[cold]
fn unsorted(entries: Vec<(Value, Value)>) -> Value {
    debug_assert!(false, "input entries out of key order");
    Value::from(entries.into_iter().collect::<BTreeMap<_, _>>())
}

/// The keys of the input document and its fixed words, made once per thread and shared by
/// every evaluation on it (cloning one is a reference count). Per thread, because one shared
/// count that every core increments would bounce its cache line between them.
struct Words {
    action: Value,
    client_id: Value,
    data_stays_local: Value,
    destination: Value,
    host: Value,
    http: Value,
    ip: Value,
    method: Value,
    mqtt: Value,
    namespace: Value,
    node: Value,
    operation: Value,
    path: Value,
    port: Value,
    protocol: Value,
    qos: Value,
    retain: Value,
    scheme: Value,
    site: Value,
    source: Value,
    target: Value,
    topic: Value,
    username: Value,
    workload: Value,
    zone: Value,
    /// By `Zone as usize`: the zone's name, and the seed policy's `action` for it.
    zones: [Value; 2],
    actions: [Value; 2],
    /// By `Operation as usize` and `Protocol as usize`.
    operations: [Value; 6],
    protocols: [Value; 5],
}

thread_local! {
    static WORDS: Words = Words::new();
}

impl Words {
    fn new() -> Self {
        let v = Value::from;
        let zone = |z: Zone| v(z.as_str());
        let op = |o: Operation| v(o.as_str());
        let proto = |p: Protocol| v(p.as_str());
        Words {
            action: v("action"),
            client_id: v("client_id"),
            data_stays_local: v("data_stays_local"),
            destination: v("destination"),
            host: v("host"),
            http: v("http"),
            ip: v("ip"),
            method: v("method"),
            mqtt: v("mqtt"),
            namespace: v("namespace"),
            node: v("node"),
            operation: v("operation"),
            path: v("path"),
            port: v("port"),
            protocol: v("protocol"),
            qos: v("qos"),
            retain: v("retain"),
            scheme: v("scheme"),
            site: v("site"),
            source: v("source"),
            target: v("target"),
            topic: v("topic"),
            username: v("username"),
            workload: v("workload"),
            zone: v("zone"),
            zones: [zone(Zone::Local), zone(Zone::External)],
            actions: [v("process_data"), v("export")],
            operations: [
                op(Operation::Connect),
                op(Operation::Publish),
                op(Operation::Subscribe),
                op(Operation::Request),
                op(Operation::Tunnel),
                op(Operation::Lookup),
            ],
            protocols: [
                proto(Protocol::Mqtt),
                proto(Protocol::Http),
                proto(Protocol::Https),
                proto(Protocol::Tcp),
                proto(Protocol::Dns),
            ],
        }
    }
}

/// An owned copy of an [`Input`], kept in cache entries to verify a hit field by field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedInput {
    protocol: Protocol,
    operation: Operation,
    source: Source,
    host: Box<str>,
    port: u16,
    ip: Option<IpAddr>,
    zone: Zone,
    mqtt: Option<(Box<str>, u8, bool)>,
    http: Option<(Box<str>, Box<str>, Box<str>)>,
}

impl OwnedInput {
    /// Field-by-field equality with a borrowed input, without allocating.
    pub fn matches(&self, i: &Input<'_>) -> bool {
        self.protocol == i.protocol
            && self.operation == i.operation
            && self.port == i.target.port
            && self.zone == i.target.zone
            && self.ip == i.target.ip
            && *self.host == *i.target.host
            && match (&self.mqtt, &i.mqtt) {
                (None, None) => true,
                (Some((t, q, r)), Some(m)) => **t == *m.topic && *q == m.qos && *r == m.retain,
                _ => false,
            }
            && match (&self.http, &i.http) {
                (None, None) => true,
                (Some((m, s, p)), Some(h)) => {
                    **m == *h.method && **s == *h.scheme && **p == *h.path
                }
                _ => false,
            }
            && self.source == *i.source
    }

    pub fn as_input(&self) -> Input<'_> {
        Input {
            protocol: self.protocol,
            operation: self.operation,
            source: &self.source,
            target: Target {
                host: &self.host,
                port: self.port,
                ip: self.ip,
                zone: self.zone,
            },
            mqtt: self.mqtt.as_ref().map(|(t, q, r)| MqttFacts {
                topic: t,
                qos: *q,
                retain: *r,
            }),
            http: self.http.as_ref().map(|(m, s, p)| HttpFacts {
                method: m,
                scheme: s,
                path: p,
            }),
        }
    }
}

/// The hasher behind [`Input::fingerprint`]: Fx-style mixing (rotate, xor, multiply) over four
/// independent lanes, so that the multiplies of consecutive words overlap instead of forming
/// one long dependency chain; small writes (enum tags, string terminators, ports) are packed
/// without a multiply. Good enough spread for a cache key whose collisions are caught by
/// [`OwnedInput::matches`]. Not DoS-resistant, and it need not be: a collision costs one
/// policy evaluation, never a wrong verdict.
#[derive(Default, Clone, Copy)]
pub struct FxHasher {
    lanes: [u64; 4],
    next: usize,
    small: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        let lane = &mut self.lanes[self.next & 3];
        *lane = (lane.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
        self.next = self.next.wrapping_add(1);
    }

    #[inline(always)]
    fn add_small(&mut self, v: u64) {
        self.small = self.small.rotate_left(13) ^ v;
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let len = bytes.len();
        let mut i = 0;
        while i + 8 <= len {
            self.add(read_u64(bytes, i));
            i += 8;
        }
        let rest = len - i;
        if rest > 0 {
            // The tail is read with fixed-size loads (overlapping the last full word, or two
            // overlapping halves): a variable-length copy would be a memcpy call per string,
            // which cost more than all the hashing together.
            let word = if len >= 8 {
                read_u64(bytes, len - 8)
            } else if rest >= 4 {
                read_u32(bytes, 0) | (read_u32(bytes, len - 4) << 32)
            } else {
                u64::from(bytes[0])
                    | (u64::from(bytes[rest / 2]) << 8)
                    | (u64::from(bytes[rest - 1]) << 16)
            };
            // The length keeps tails that share bytes apart.
            self.add(word ^ ((rest as u64) << 59));
        }
    }
    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add_small(u64::from(i));
    }
    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add_small(u64::from(i));
    }
    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add_small(u64::from(i));
    }
    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add_small(i as u64);
    }
    #[inline]
    fn write_isize(&mut self, i: isize) {
        self.add_small(i as u64);
    }
    #[inline]
    fn finish(&self) -> u64 {
        let [a, b, c, d] = self.lanes;
        let mut x = (a ^ b.rotate_left(17) ^ c.rotate_left(31) ^ d.rotate_left(47))
            .wrapping_add(self.small.wrapping_mul(FX_SEED));
        // Final avalanche so moka's sharding sees well-mixed high bits.
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
}

#[inline(always)]
fn read_u64(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[i..i + 8]);
    u64::from_le_bytes(w)
}

#[inline(always)]
fn read_u32(b: &[u8], i: usize) -> u64 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[i..i + 4]);
    u64::from(u32::from_le_bytes(w))
}

/// A `BuildHasher` for `u64` keys that are already fingerprints: passes them through.
#[derive(Default, Clone, Copy)]
pub struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, i: u64) {
        self.0 = i;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> Source {
        Source {
            workload: "iot-data-processor".into(),
            site: "plant-042".into(),
            client_id: "press-7".into(),
            ..Source::default()
        }
    }

    fn publish<'a>(src: &'a Source, topic: &'a str, zone: Zone) -> Input<'a> {
        Input {
            protocol: Protocol::Mqtt,
            operation: Operation::Publish,
            source: src,
            target: Target {
                host: "broker.plant.local",
                port: 1883,
                ip: Some("10.4.0.9".parse().unwrap_or(IpAddr::from([10, 4, 0, 9]))),
                zone,
            },
            mqtt: Some(MqttFacts {
                topic,
                qos: 1,
                retain: false,
            }),
            http: None,
        }
    }

    #[test]
    fn addresses_are_written_as_to_string_writes_them() {
        for text in [
            "0.0.0.0",
            "255.255.255.255",
            "10.4.0.9",
            "1.20.100.9",
            "192.168.10.200",
            "fd00::1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = text.parse().expect("an address");
            assert_eq!(ip_value(ip), Value::from(ip.to_string()), "{text}");
        }
    }

    #[test]
    fn local_target_is_process_data_and_external_is_export_to_host() {
        let s = source();
        let local = publish(&s, "a/b", Zone::Local);
        assert_eq!(local.action(), "process_data");
        assert_eq!(local.destination(), "local");
        assert!(local.data_stays_local());
        let ext = publish(&s, "a/b", Zone::External);
        assert_eq!(ext.action(), "export");
        assert_eq!(ext.destination(), "broker.plant.local");
        assert!(!ext.data_stays_local());
    }

    #[test]
    fn to_value_matches_the_document_built_key_by_key() {
        let s = source();
        let mut cases = Vec::new();
        for zone in [Zone::Local, Zone::External] {
            for protocol in [
                Protocol::Mqtt,
                Protocol::Http,
                Protocol::Https,
                Protocol::Tcp,
                Protocol::Dns,
            ] {
                for operation in [
                    Operation::Connect,
                    Operation::Publish,
                    Operation::Subscribe,
                    Operation::Request,
                    Operation::Tunnel,
                    Operation::Lookup,
                ] {
                    let mut i = publish(&s, "a/+/c", zone);
                    i.protocol = protocol;
                    i.operation = operation;
                    cases.push(i);
                    i.target.ip = None;
                    i.mqtt = None;
                    i.http = Some(HttpFacts {
                        method: "POST",
                        scheme: "http",
                        path: "/v1/x?y=1",
                    });
                    cases.push(i);
                    i.mqtt = Some(MqttFacts {
                        topic: "t",
                        qos: 2,
                        retain: true,
                    });
                    cases.push(i);
                }
            }
        }
        for i in cases {
            // In a test build the fallback for entries out of order panics, so this also
            // shows that every list is in key order.
            assert_eq!(i.to_value(), i.value_key_by_key(), "{i:?}");
        }
    }

    #[test]
    fn json_document_follows_the_contract() {
        let s = source();
        let text = publish(&s, "plant/line1/press7/temp", Zone::Local)
            .to_value()
            .to_json_str()
            .unwrap_or_default();
        let j: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(j["action"], "process_data");
        assert_eq!(j["protocol"], "mqtt");
        assert_eq!(j["operation"], "publish");
        assert_eq!(j["source"]["client_id"], "press-7");
        assert_eq!(j["target"]["port"], 1883);
        assert_eq!(j["target"]["ip"], "10.4.0.9");
        assert_eq!(j["mqtt"]["topic"], "plant/line1/press7/temp");
        assert_eq!(j["mqtt"]["qos"], 1);
        assert!(j.get("http").is_none());
    }

    #[test]
    fn owned_copy_matches_only_the_same_input() {
        let s = source();
        let a = publish(&s, "a/b", Zone::Local);
        let owned = a.to_owned_input();
        assert!(owned.matches(&a));
        assert_eq!(owned.as_input(), a);
        assert!(!owned.matches(&publish(&s, "a/c", Zone::Local)));
        assert!(!owned.matches(&publish(&s, "a/b", Zone::External)));
        let mut other = source();
        other.username = "x".into();
        assert!(!owned.matches(&publish(&other, "a/b", Zone::Local)));
    }

    #[test]
    fn fingerprints_of_topics_of_every_length_are_distinct() {
        let s = source();
        let mut topics = Vec::new();
        for len in 0..40 {
            for c in ['a', 'b', '/', '+'] {
                topics.push(std::iter::repeat_n('x', len).chain([c]).collect::<String>());
                topics.push(
                    [c].into_iter()
                        .chain(std::iter::repeat_n('x', len))
                        .collect(),
                );
            }
        }
        topics.sort();
        topics.dedup();
        let mut keys: Vec<u64> = topics
            .iter()
            .map(|t| publish(&s, t, Zone::Local).fingerprint(1))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), topics.len());
    }

    #[test]
    fn fingerprint_depends_on_generation_and_fields() {
        let s = source();
        let a = publish(&s, "a/b", Zone::Local);
        assert_eq!(
            a.fingerprint(1),
            publish(&s, "a/b", Zone::Local).fingerprint(1)
        );
        assert_ne!(a.fingerprint(1), a.fingerprint(2));
        assert_ne!(
            a.fingerprint(1),
            publish(&s, "a/c", Zone::Local).fingerprint(1)
        );
    }
}
