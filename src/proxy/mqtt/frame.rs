//! The MQTT 3.1, 3.1.1 and 5.0 codec: pure bytes in, frames and inspections out. No I/O.
//!
//! Framing reads only the fixed header (type, flags, remaining length of at most four bytes) and
//! refuses a packet over the size limit as soon as its length is known, so a reader never
//! buffers more than the limit. Inspections borrow the frame (`&str` topics point into it):
//! allowed traffic is forwarded as the very bytes that arrived, never re-encoded. The encoders
//! here build only what the gateway itself originates: refusals, local acknowledgements, a
//! SUBSCRIBE reduced to its allowed filters, a SUBACK merged from broker and local answers.
//!
//! This file is the framing and the field readers; what each packet says is read in
//! inspect.rs, the packets sluice sends are built in encode.rs, and codec.rs is the one name
//! the rest of the gateway imports them by.
//!
//! Not here: decisions, sockets, session state (session.rs).

use std::fmt;

use bytes::{Bytes, BytesMut};

pub const CONNECT: u8 = 1;
pub const CONNACK: u8 = 2;
pub const PUBLISH: u8 = 3;
pub const PUBACK: u8 = 4;
pub const PUBREC: u8 = 5;
pub const PUBREL: u8 = 6;
pub const PUBCOMP: u8 = 7;
pub const SUBSCRIBE: u8 = 8;
pub const SUBACK: u8 = 9;
pub const UNSUBSCRIBE: u8 = 10;
pub const UNSUBACK: u8 = 11;
pub const PINGREQ: u8 = 12;
pub const PINGRESP: u8 = 13;
pub const DISCONNECT: u8 = 14;
pub const AUTH: u8 = 15;

/// MQTT 5 reason codes the gateway sends.
pub mod reason {
    pub const SUCCESS: u8 = 0x00;
    pub const UNSPECIFIED: u8 = 0x80;
    pub const MALFORMED: u8 = 0x81;
    pub const PROTOCOL_ERROR: u8 = 0x82;
    pub const UNSUPPORTED_VERSION: u8 = 0x84;
    pub const NOT_AUTHORIZED: u8 = 0x87;
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    /// MQTT 3.1.1 CONNACK return codes.
    pub const V3_UNACCEPTABLE_VERSION: u8 = 0x01;
    pub const V3_SERVER_UNAVAILABLE: u8 = 0x03;
    pub const V3_NOT_AUTHORIZED: u8 = 0x05;
    /// MQTT 3.1.1 SUBACK failure.
    pub const V3_SUBACK_FAILURE: u8 = 0x80;
}

/// The protocol level a client announced in CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `MQIsdp`, level 3.
    V31,
    /// `MQTT`, level 4.
    V311,
    /// `MQTT`, level 5.
    V5,
}

impl Version {
    pub fn is_v5(self) -> bool {
        self == Version::V5
    }
}

/// Why a packet was refused; each maps to an MQTT 5 reason code and a metric label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodecError {
    Malformed(&'static str),
    Protocol(&'static str),
    TooLarge { size: usize, max: usize },
    TopicNameInvalid(&'static str),
    TopicAliasInvalid(&'static str),
    UnsupportedVersion,
}

impl CodecError {
    /// The MQTT 5 reason code for a DISCONNECT (or CONNACK) caused by this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            Self::Malformed(_) => reason::MALFORMED,
            Self::Protocol(_) => reason::PROTOCOL_ERROR,
            Self::TooLarge { .. } => reason::PACKET_TOO_LARGE,
            Self::TopicNameInvalid(_) => reason::TOPIC_NAME_INVALID,
            Self::TopicAliasInvalid(_) => reason::TOPIC_ALIAS_INVALID,
            Self::UnsupportedVersion => reason::UNSUPPORTED_VERSION,
        }
    }

    /// The `kind` label of `sluice_errors_total{protocol="mqtt"}`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Malformed(_) => "malformed",
            Self::Protocol(_) => "protocol_error",
            Self::TooLarge { .. } => "packet_too_large",
            Self::TopicNameInvalid(_) => "topic_name_invalid",
            Self::TopicAliasInvalid(_) => "topic_alias_invalid",
            Self::UnsupportedVersion => "unsupported_version",
        }
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "malformed packet: {m}"),
            Self::Protocol(m) => write!(f, "protocol error: {m}"),
            Self::TooLarge { size, max } => {
                write!(f, "packet of {size} bytes is over the limit of {max} bytes")
            }
            Self::TopicNameInvalid(m) => write!(f, "topic name invalid: {m}"),
            Self::TopicAliasInvalid(m) => write!(f, "topic alias invalid: {m}"),
            Self::UnsupportedVersion => f.write_str("unsupported protocol name or level"),
        }
    }
}

pub(super) type Result<T> = std::result::Result<T, CodecError>;

/// The fixed header of one packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// The first byte: type in the high nibble, flags in the low one.
    pub first: u8,
    /// Bytes of the fixed header (2 to 5).
    pub header_len: usize,
    /// The remaining length (variable header + payload).
    pub remaining: usize,
}

impl FrameHeader {
    pub fn kind(&self) -> u8 {
        self.first >> 4
    }
    pub fn flags(&self) -> u8 {
        self.first & 0x0f
    }
    /// Bytes of the whole packet.
    pub fn total(&self) -> usize {
        self.header_len + self.remaining
    }
}

/// Reads the fixed header at the start of `buf`. `Ok(None)`: more bytes are needed (at most 5).
/// A packet larger than `max_packet` is refused before its body arrives.
pub fn parse_header(buf: &[u8], max_packet: usize) -> Result<Option<FrameHeader>> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let kind = first >> 4;
    let flags = first & 0x0f;
    let flags_ok = match kind {
        0 => return Err(CodecError::Malformed("packet type 0 is reserved")),
        PUBLISH => true,
        PUBREL | SUBSCRIBE | UNSUBSCRIBE => flags == 0b0010,
        _ => flags == 0,
    };
    if !flags_ok {
        return Err(CodecError::Malformed("reserved fixed-header flags are set"));
    }
    let mut remaining: usize = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let header = FrameHeader {
                first,
                header_len: 2 + i,
                remaining,
            };
            if header.total() > max_packet {
                return Err(CodecError::TooLarge {
                    size: header.total(),
                    max: max_packet,
                });
            }
            return Ok(Some(header));
        }
    }
    Err(CodecError::Malformed(
        "remaining length is longer than four bytes",
    ))
}

/// Splits one complete packet off the front of `buf` (zero-copy). `Ok(None)`: incomplete.
pub fn split_frame(buf: &mut BytesMut, max_packet: usize) -> Result<Option<Bytes>> {
    match parse_header(buf, max_packet)? {
        Some(h) if buf.len() >= h.total() => Ok(Some(buf.split_to(h.total()).freeze())),
        _ => Ok(None),
    }
}

/// The body of a frame (after the fixed header).
pub(super) fn body(frame: &[u8]) -> Result<(u8, &[u8])> {
    let h =
        parse_header(frame, usize::MAX)?.ok_or(CodecError::Malformed("truncated fixed header"))?;
    let body = frame
        .get(h.header_len..h.total())
        .ok_or(CodecError::Malformed("truncated packet"))?;
    Ok((h.first, body))
}

/// A bounds-checked reader over a packet body.
pub(super) struct Cursor<'a> {
    pub(super) buf: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }
    pub(super) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    pub(super) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(CodecError::Malformed(
                "field runs past the end of the packet",
            ))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub(super) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    pub(super) fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    pub(super) fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(super) fn varint(&mut self) -> Result<u32> {
        let mut v: u32 = 0;
        for i in 0..4 {
            let b = self.u8()?;
            v |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(CodecError::Malformed(
            "variable byte integer is longer than four bytes",
        ))
    }
    pub(super) fn binary(&mut self) -> Result<&'a [u8]> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
    pub(super) fn utf8(&mut self) -> Result<&'a str> {
        utf8(self.binary()?)
    }
    /// A v5 property block; returns its raw bytes including the length prefix.
    pub(super) fn properties(&mut self, visit: &mut dyn FnMut(u8, u32)) -> Result<&'a [u8]> {
        let start = self.pos;
        let len = self.varint()? as usize;
        let block = self.take(len)?;
        scan_properties(block, visit)?;
        Ok(&self.buf[start..self.pos])
    }
}

/// A UTF-8 string as MQTT defines it: well-formed and without U+0000.
pub(super) fn utf8(b: &[u8]) -> Result<&str> {
    let s = std::str::from_utf8(b).map_err(|_| CodecError::Malformed("invalid UTF-8 string"))?;
    if s.contains('\0') {
        return Err(CodecError::Malformed("string contains U+0000"));
    }
    Ok(s)
}

/// Validates an MQTT 5 property list and reports every integer-valued property to `visit`.
fn scan_properties(block: &[u8], visit: &mut dyn FnMut(u8, u32)) -> Result<()> {
    let mut c = Cursor::new(block);
    while c.remaining() > 0 {
        let id = c.varint()?;
        let id = u8::try_from(id).map_err(|_| CodecError::Malformed("unknown property"))?;
        match id {
            0x01 | 0x17 | 0x19 | 0x24 | 0x25 | 0x28 | 0x29 | 0x2A => visit(id, c.u8()?.into()),
            0x13 | 0x21 | 0x22 | 0x23 => visit(id, c.u16()?.into()),
            0x02 | 0x11 | 0x18 | 0x27 => visit(id, c.u32()?),
            0x0B => visit(id, c.varint()?),
            0x03 | 0x08 | 0x12 | 0x15 | 0x1A | 0x1C | 0x1F => {
                c.utf8()?;
            }
            0x09 | 0x16 => {
                c.binary()?;
            }
            0x26 => {
                c.utf8()?;
                c.utf8()?;
            }
            _ => return Err(CodecError::Malformed("unknown property")),
        }
    }
    Ok(())
}
