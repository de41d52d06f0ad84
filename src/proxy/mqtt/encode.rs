//! The packets the gateway itself originates: refusals (CONNACK, DISCONNECT with a reason),
//! local acknowledgements (PUBACK, PUBREC, PUBCOMP), a SUBACK merged from broker and local
//! answers, a SUBSCRIBE reduced to its allowed filters, and a PUBLISH that names the topic of
//! an alias the broker has not learned. Allowed traffic is never re-encoded.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::{CONNACK, DISCONNECT, PUBREL, SUBACK, SUBSCRIBE, Version};
use super::inspect::{Publish, Subscribe};

fn put_varint(out: &mut BytesMut, mut n: usize) {
    loop {
        let mut b = (n & 0x7f) as u8;
        n >>= 7;
        if n > 0 {
            b |= 0x80;
        }
        out.put_u8(b);
        if n == 0 {
            break;
        }
    }
}

fn packet(first: u8, body_len: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(body_len + 5);
    out.put_u8(first);
    put_varint(&mut out, body_len);
    out
}

/// A whole packet from its first byte and body: the remaining length written in front. For
/// the tests, benches and fuzz targets that build raw packets (the gateway forwards what
/// arrived and encodes only the packets below).
pub fn encode_frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = packet(first, body.len());
    out.put_slice(body);
    out.to_vec()
}

/// A CONNACK refusing (or accepting) a connection.
pub fn encode_connack(version: Version, code: u8) -> Bytes {
    if version.is_v5() {
        Bytes::copy_from_slice(&[CONNACK << 4, 3, 0, code, 0])
    } else {
        Bytes::copy_from_slice(&[CONNACK << 4, 2, 0, code])
    }
}

/// A PUBACK, PUBREC or PUBCOMP for `packet_id`; MQTT 5 carries `code`.
pub fn encode_ack(kind: u8, packet_id: u16, version: Version, code: u8) -> Bytes {
    let [hi, lo] = packet_id.to_be_bytes();
    let first = kind << 4 | if kind == PUBREL { 0b0010 } else { 0 };
    if version.is_v5() {
        Bytes::copy_from_slice(&[first, 3, hi, lo, code])
    } else {
        Bytes::copy_from_slice(&[first, 2, hi, lo])
    }
}

/// A DISCONNECT with a reason code (MQTT 5 only; 3.1.1 clients are simply disconnected).
pub fn encode_disconnect(code: u8) -> Bytes {
    Bytes::copy_from_slice(&[DISCONNECT << 4, 2, code, 0])
}

/// A SUBACK with the given properties (raw, MQTT 5) and reason codes.
pub fn encode_suback(packet_id: u16, properties: &[u8], codes: &[u8], version: Version) -> Bytes {
    let props: &[u8] = if version.is_v5() {
        if properties.is_empty() {
            &[0]
        } else {
            properties
        }
    } else {
        &[]
    };
    let mut out = packet(SUBACK << 4, 2 + props.len() + codes.len());
    out.put_u16(packet_id);
    out.put_slice(props);
    out.put_slice(codes);
    out.freeze()
}

/// A SUBSCRIBE carrying only some filters of `frame` (the allowed ones), same packet id and
/// properties. Each filter is copied as it arrived, with its options.
pub fn encode_subscribe_subset(frame: &[u8], sub: &Subscribe<'_>, keep: &[bool]) -> Bytes {
    let kept = || {
        sub.filters
            .iter()
            .zip(keep)
            .filter(|(_, k)| **k)
            .map(|(f, _)| &frame[f.raw.clone()])
    };
    let len = 2 + sub.properties.len() + kept().map(<[u8]>::len).sum::<usize>();
    let mut out = packet(SUBSCRIBE << 4 | 0b0010, len);
    out.put_u16(sub.packet_id);
    out.put_slice(sub.properties);
    for f in kept() {
        out.put_slice(f);
    }
    out.freeze()
}

/// The PUBLISH `frame` with its (empty, alias-only) topic replaced by `topic`, so that the
/// broker learns the alias. Everything else is copied as it arrived.
pub fn encode_publish_with_topic(frame: &[u8], publish: &Publish<'_>, topic: &str) -> Bytes {
    let rest = &frame[publish.topic_range.end..];
    let len = 2 + topic.len() + rest.len();
    let mut out = packet(frame[0], len);
    out.put_u16(topic.len() as u16);
    out.put_slice(topic.as_bytes());
    out.put_slice(rest);
    out.freeze()
}
