//! SUBSCRIBE judged filter by filter: an all-allowed SUBSCRIBE is forwarded as it arrived, an
//! all-denied one is answered locally, a mixed one is forwarded with its allowed filters only
//! (same packet id) and the broker's SUBACK is merged with the local refusals, in order.

use bytes::Bytes;

use super::{Action, Relay};
use crate::policy::Operation;
use crate::proxy::mqtt::codec::{self, CodecError, reason};
use crate::proxy::mqtt::encode;

impl Relay {
    pub(super) fn judge_subscribe(&self, frame: &[u8]) -> Result<Action, CodecError> {
        let v = self.version;
        let sub = codec::inspect_subscribe(frame, v)?;
        let refused = if v.is_v5() {
            reason::NOT_AUTHORIZED
        } else {
            reason::V3_SUBACK_FAILURE
        };
        let invalid = if v.is_v5() {
            reason::TOPIC_FILTER_INVALID
        } else {
            reason::V3_SUBACK_FAILURE
        };
        let slots: Vec<Option<u8>> = sub
            .filters
            .iter()
            .map(|f| {
                if !codec::is_valid_filter(f.filter) {
                    Some(invalid)
                } else if self.decide(
                    Operation::Subscribe,
                    codec::judged_filter(f.filter),
                    f.qos(),
                    false,
                ) {
                    None
                } else {
                    Some(refused)
                }
            })
            .collect();
        self.grant(&sub, &slots);
        if slots.iter().all(Option::is_none) {
            return Ok(Action::Forward);
        }
        if slots.iter().all(Option::is_some) {
            let codes: Vec<u8> = slots.iter().map(|s| s.unwrap_or(refused)).collect();
            return Ok(Action::Reply(encode::encode_suback(
                sub.packet_id,
                &[],
                &codes,
                v,
            )));
        }
        let keep: Vec<bool> = slots.iter().map(Option::is_none).collect();
        let reduced = encode::encode_subscribe_subset(frame, &sub, &keep);
        self.shared().pending_subacks.insert(sub.packet_id, slots);
        Ok(Action::Replace(reduced))
    }

    /// Keeps the filters going to the broker for a newer policy generation to judge again.
    fn grant(&self, sub: &codec::Subscribe<'_>, slots: &[Option<u8>]) {
        let mut shared = self.shared();
        for (f, slot) in sub.filters.iter().zip(slots) {
            if slot.is_none() {
                shared.granted.retain(|(g, _)| **g != *f.filter);
                shared.granted.push((f.filter.into(), f.qos()));
            }
        }
    }

    /// The SUBACK the client expects for a SUBSCRIBE we reduced: the broker's codes for the
    /// filters it saw, ours for the refused ones, in the original order.
    pub(super) fn merge_suback(&self, frame: &[u8]) -> Result<Option<Bytes>, CodecError> {
        let ack = codec::inspect_suback(frame, self.version)?;
        let Some(slots) = self.shared().pending_subacks.remove(&ack.packet_id) else {
            return Ok(None);
        };
        let mut broker = ack.codes.iter().copied();
        let codes: Vec<u8> = slots
            .iter()
            .map(|s| s.unwrap_or_else(|| broker.next().unwrap_or(reason::UNSPECIFIED)))
            .collect();
        Ok(Some(encode::encode_suback(
            ack.packet_id,
            ack.properties,
            &codes,
            self.version,
        )))
    }
}
