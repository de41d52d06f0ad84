//! Round trips of the codec against the encoders: what sluice builds, it parses back.

use super::super::codec::*;
use super::super::encode::*;
use bytes::{Bytes, BytesMut};

fn frame(bytes: &[u8]) -> Bytes {
    Bytes::copy_from_slice(bytes)
}

#[test]
fn remaining_length_of_five_bytes_is_malformed() {
    let e = parse_header(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01], 1 << 28);
    assert_eq!(
        e,
        Err(CodecError::Malformed(
            "remaining length is longer than four bytes"
        ))
    );
}

#[test]
fn oversized_packet_is_refused_from_its_header() {
    let e = parse_header(&[0x30, 0x80, 0x80, 0x01], 1024);
    assert_eq!(
        e,
        Err(CodecError::TooLarge {
            size: 16384 + 4,
            max: 1024
        })
    );
}

#[test]
fn incomplete_frames_wait_for_more_bytes() {
    let mut buf = BytesMut::from(&[0x30, 0x05, 0x00, 0x01][..]);
    assert_eq!(split_frame(&mut buf, 1024), Ok(None));
    buf.extend_from_slice(b"axy");
    let f = split_frame(&mut buf, 1024);
    assert_eq!(f.map(|f| f.map(|f| f.len())), Ok(Some(7)));
    assert!(buf.is_empty());
}

#[test]
fn publish_v5_with_alias_is_inspected() {
    // topic "a/b", qos 1, id 7, properties: topic alias 3.
    let f = frame(&[0x32, 11, 0, 3, b'a', b'/', b'b', 0, 7, 3, 0x23, 0, 3]);
    let p = inspect_publish(&f, Version::V5);
    assert_eq!(
        p.map(|p| (p.topic, p.qos, p.packet_id, p.topic_alias)),
        Ok(("a/b", 1, Some(7), Some(3)))
    );
}

#[test]
fn wildcard_in_publish_topic_is_topic_name_invalid() {
    let f = frame(&[0x30, 5, 0, 3, b'a', b'/', b'#']);
    assert!(matches!(
        inspect_publish(&f, Version::V311),
        Err(CodecError::TopicNameInvalid(_))
    ));
}

#[test]
fn filters_are_validated_and_shared_subscriptions_unwrapped() {
    assert!(is_valid_filter("a/+/b/#"));
    assert!(is_valid_filter("#"));
    assert!(!is_valid_filter("a/#/b"));
    assert!(!is_valid_filter("a/b#"));
    assert!(!is_valid_filter("a+/b"));
    assert_eq!(judged_filter("$share/g1/plant/+/x"), "plant/+/x");
    assert_eq!(judged_filter("plant/x"), "plant/x");
}

#[test]
fn subscribe_subset_keeps_id_properties_and_chosen_filters() {
    // v5 SUBSCRIBE id 9, no properties, filters "a" qos1, "s/x" qos0.
    let f = frame(&[0x82, 13, 0, 9, 0, 0, 1, b'a', 1, 0, 3, b's', b'/', b'x', 0]);
    let Ok(sub) = inspect_subscribe(&f, Version::V5) else {
        panic!("valid SUBSCRIBE refused");
    };
    assert_eq!(sub.filters.len(), 2);
    let out = encode_subscribe_subset(&f, &sub, &[false, true]);
    assert_eq!(&out[..], &[0x82, 9, 0, 9, 0, 0, 3, b's', b'/', b'x', 0]);
}

#[test]
fn alias_only_publish_gets_its_topic_back() {
    let f = frame(&[0x30, 6, 0, 0, 3, 0x23, 0, 1]);
    let Ok(p) = inspect_publish(&f, Version::V5) else {
        panic!("valid PUBLISH refused");
    };
    let out = encode_publish_with_topic(&f, &p, "t/1");
    assert_eq!(&out[..], &[0x30, 9, 0, 3, b't', b'/', b'1', 3, 0x23, 0, 1]);
}
