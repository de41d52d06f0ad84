//! What the spool stores and reports: a message on its way in, a stored message, the outcome
//! of storing a batch, and a spool's counts.
//!
//! Not here: storage (spool.rs).

/// A message on its way in.
#[derive(Clone, Debug)]
pub struct NewMessage {
    pub topic: String,
    pub payload: bytes::Bytes,
    pub qos: u8,
    pub retain: bool,
}

impl NewMessage {
    pub fn size(&self) -> u64 {
        (self.topic.len() + self.payload.len()) as u64
    }
}

/// A stored message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub id: i64,
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
    pub retain: bool,
    pub stored_ms: i64,
    /// Times it was handed to the remote before (non-zero: sending it again is a redelivery).
    pub attempts: i64,
}

/// Bytes a PUBLISH adds to topic and payload at most (fixed header, topic length, packet id).
pub const PUBLISH_OVERHEAD: u64 = 16;

impl Message {
    /// Whether its PUBLISH fits a broker's maximum packet size.
    pub fn fits(&self, max_packet: u64) -> bool {
        (self.topic.len() + self.payload.len()) as u64 + PUBLISH_OVERHEAD <= max_packet
    }
}

/// What `insert` did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Inserted {
    /// Messages of the batch now stored (a prefix of it).
    pub stored: usize,
    /// Oldest messages removed to make room (`drop_oldest`), and new ones larger than the spool.
    pub dropped: u64,
}

/// Counts of a spool.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub messages: u64,
    pub bytes: u64,
    pub oldest_ms: Option<i64>,
    pub newest_ms: Option<i64>,
}
