//! Property tests of the MQTT codec (a bounded run; the unbounded one is `fuzz/`):
//! arbitrary bytes never panic and never make a reader hold more than the packet limit, and
//! valid CONNECT, PUBLISH and SUBSCRIBE packets round-trip through framing and inspection.

use bytes::BytesMut;
use proptest::prelude::*;
use sluice::proxy::mqtt::codec::{self, Version};

const MAX: usize = 4096;

/// The remaining-length encoding, written here independently of `encode.rs` on purpose: a
/// round trip through the codec's own encoder could not catch a mistake both sides share.
fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n & 0x7f) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    varint(body.len(), &mut out);
    out.extend_from_slice(body);
    out
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn version() -> impl Strategy<Value = Version> {
    prop_oneof![Just(Version::V31), Just(Version::V311), Just(Version::V5)]
}

/// Topic levels without wildcards or U+0000.
fn topic() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-zA-Z0-9_\\-é€]{1,8}", 1..5).prop_map(|l| l.join("/"))
}

fn filter() -> impl Strategy<Value = String> {
    proptest::collection::vec(prop_oneof!["[a-z0-9]{1,6}", Just("+".to_string())], 1..4)
        .prop_flat_map(|l| {
            let base = l.join("/");
            prop_oneof![Just(base.clone()), Just(format!("{base}/#"))]
        })
}

/// Feeds `bytes` to a reader the way a session does (in chunks) and checks its invariants.
fn drain(bytes: &[u8], chunk: usize, version: Version) {
    let mut buf = BytesMut::new();
    for piece in bytes.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec::split_frame(&mut buf, MAX) {
                Ok(Some(f)) => {
                    assert!(f.len() <= MAX);
                    // Inspections must not panic on any frame.
                    let _ = codec::inspect_connect(&f);
                    let _ = codec::inspect_publish(&f, version);
                    let _ = codec::inspect_subscribe(&f, version);
                    let _ = codec::inspect_unsubscribe(&f, version);
                    let _ = codec::inspect_connack(&f, version);
                    let _ = codec::inspect_suback(&f, version);
                    let _ = codec::ack_packet_id(&f);
                }
                Ok(None) => {
                    // An incomplete packet never needs more than the limit buffered.
                    if let Ok(Some(h)) = codec::parse_header(&buf, MAX) {
                        assert!(h.total() <= MAX);
                    }
                    assert!(buf.len() < MAX + 5);
                    break;
                }
                Err(_) => return,
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_or_overbuffer(
        bytes in proptest::collection::vec(any::<u8>(), 0..6000),
        chunk in 1usize..700,
        v in version(),
    ) {
        drain(&bytes, chunk, v);
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        t in topic(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        v in version(),
    ) {
        let mut body = Vec::new();
        string(&t, &mut body);
        body.extend_from_slice(&[0, 1]);
        if v == Version::V5 {
            body.extend_from_slice(&[3, 0x23, 0, 1]);
        }
        body.extend_from_slice(&payload);
        let mut bytes = frame(0x32, &body);
        for (i, b) in flips {
            let at = i.index(bytes.len());
            bytes[at] = b;
        }
        drain(&bytes, 7, v);
    }

    #[test]
    fn valid_publish_round_trips(
        t in topic(),
        qos in 0u8..3,
        retain in any::<bool>(),
        id in 1u16..,
        alias in proptest::option::of(1u16..),
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        v in version(),
    ) {
        let mut body = Vec::new();
        string(&t, &mut body);
        if qos > 0 {
            body.extend_from_slice(&id.to_be_bytes());
        }
        let alias = if v == Version::V5 { alias } else { None };
        if v == Version::V5 {
            match alias {
                Some(a) => {
                    body.push(3);
                    body.push(0x23);
                    body.extend_from_slice(&a.to_be_bytes());
                }
                None => body.push(0),
            }
        }
        body.extend_from_slice(&payload);
        let bytes = frame(0x30 | qos << 1 | u8::from(retain), &body);
        let mut buf = BytesMut::from(&bytes[..]);
        let f = codec::split_frame(&mut buf, 1 << 20);
        let f = f.ok().flatten().unwrap_or_default();
        // Zero-copy framing returns the very bytes.
        prop_assert_eq!(&f[..], &bytes[..]);
        let p = codec::inspect_publish(&f, v);
        prop_assert!(p.is_ok(), "{:?}", p);
        let p = p.unwrap_or_else(|_| unreachable!());
        prop_assert_eq!(p.topic, t.as_str());
        prop_assert_eq!(p.qos, qos);
        prop_assert_eq!(p.retain, retain);
        prop_assert_eq!(p.packet_id, (qos > 0).then_some(id));
        prop_assert_eq!(p.topic_alias, alias);
    }

    #[test]
    fn valid_connect_round_trips(
        client_id in "[a-zA-Z0-9-]{0,23}",
        username in proptest::option::of("[a-z0-9]{1,12}"),
        will in proptest::option::of((topic(), 0u8..3, any::<bool>())),
        v in version(),
    ) {
        let (name, level): (&str, u8) = match v {
            Version::V31 => ("MQIsdp", 3),
            Version::V311 => ("MQTT", 4),
            Version::V5 => ("MQTT", 5),
        };
        let mut flags = 0x02;
        if let Some((_, q, r)) = &will {
            flags |= 0x04 | q << 3 | if *r { 0x20 } else { 0 };
        }
        if username.is_some() {
            flags |= 0x80;
        }
        let mut body = Vec::new();
        string(name, &mut body);
        body.extend_from_slice(&[level, flags, 0, 30]);
        if v == Version::V5 {
            // Session Expiry Interval and a user property: both must be skipped correctly.
            body.extend_from_slice(&[12, 0x11, 0, 0, 0, 60, 0x26, 0, 1, b'k', 0, 1, b'v']);
        }
        string(&client_id, &mut body);
        if let Some((t, _, _)) = &will {
            if v == Version::V5 {
                body.extend_from_slice(&[5, 0x18, 0, 0, 0, 5]);
            }
            string(t, &mut body);
            string("bye", &mut body);
        }
        if let Some(u) = &username {
            string(u, &mut body);
        }
        let bytes = frame(0x10, &body);
        let c = codec::inspect_connect(&bytes);
        prop_assert!(c.is_ok(), "{:?}", c);
        let c = c.unwrap_or_else(|_| unreachable!());
        prop_assert_eq!(c.version, v);
        prop_assert_eq!(c.client_id, client_id.as_str());
        prop_assert_eq!(c.username, username.as_deref());
        prop_assert_eq!(c.will.map(|w| (w.topic.to_string(), w.qos, w.retain)), will);
    }

    #[test]
    fn valid_subscribe_round_trips_and_subsets_keep_the_chosen_filters(
        filters in proptest::collection::vec((filter(), 0u8..3), 1..6),
        id in 1u16..,
        keep in proptest::collection::vec(any::<bool>(), 6),
        v in version(),
    ) {
        let mut body = id.to_be_bytes().to_vec();
        if v == Version::V5 {
            body.push(0);
        }
        for (f, q) in &filters {
            string(f, &mut body);
            body.push(*q);
        }
        let bytes = frame(0x82, &body);
        let s = codec::inspect_subscribe(&bytes, v);
        prop_assert!(s.is_ok(), "{:?}", s);
        let s = s.unwrap_or_else(|_| unreachable!());
        prop_assert_eq!(s.packet_id, id);
        let seen: Vec<(String, u8)> = s.filters.iter().map(|f| (f.filter.to_string(), f.qos())).collect();
        prop_assert_eq!(&seen, &filters);
        prop_assert!(s.filters.iter().all(|f| codec::is_valid_filter(f.filter)));
        let keep = &keep[..filters.len()];
        let reduced = sluice::proxy::mqtt::encode::encode_subscribe_subset(&bytes, &s, keep);
        let r = codec::inspect_subscribe(&reduced, v);
        let expected: Vec<(String, u8)> = filters.iter().zip(keep).filter(|(_, k)| **k).map(|(f, _)| f.clone()).collect();
        if expected.is_empty() {
            prop_assert!(r.is_err());
        } else {
            let r = r.unwrap_or_else(|_| unreachable!());
            prop_assert_eq!(r.packet_id, id);
            let got: Vec<(String, u8)> = r.filters.iter().map(|f| (f.filter.to_string(), f.qos())).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
