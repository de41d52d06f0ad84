//! Feeds arbitrary bytes to the MQTT codec the way a session reads them (in chunks), checking
//! that nothing panics and that a reader never needs more than the packet limit buffered.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use sluice::proxy::mqtt::codec::{self, Version};

const MAX: usize = 64 * 1024;

fuzz_target!(|data: &[u8]| {
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
            match codec::split_frame(&mut buf, MAX) {
                Ok(Some(f)) => {
                    assert!(f.len() <= MAX);
                    let _ = codec::inspect_connect(&f);
                    let _ = codec::inspect_publish(&f, version);
                    if let Ok(s) = codec::inspect_subscribe(&f, version) {
                        let keep: Vec<bool> = (0..s.filters.len()).map(|i| i % 2 == 0).collect();
                        let _ = sluice::proxy::mqtt::encode::encode_subscribe_subset(&f, &s, &keep);
                    }
                    let _ = codec::inspect_unsubscribe(&f, version);
                    let _ = codec::inspect_connack(&f, version);
                    let _ = codec::inspect_suback(&f, version);
                    let _ = codec::ack_packet_id(&f);
                }
                Ok(None) => {
                    assert!(buf.len() < MAX + 5);
                    break;
                }
                Err(_) => return,
            }
        }
    }
});
