//! What the packets a decision needs say: CONNECT (with its Will), PUBLISH, SUBSCRIBE and
//! UNSUBSCRIBE from clients; CONNACK and SUBACK from brokers. Each inspection borrows the frame
//! (topics are `&str` into it) and validates what MQTT requires of the fields it reads.
//!
//! Not here: framing and the field readers (codec.rs), encoding (encode.rs).

use std::ops::Range;

use super::frame::{CONNECT, CodecError, Cursor, Result, Version, body};

const PROP_TOPIC_ALIAS_MAX: u8 = 0x22;
const PROP_TOPIC_ALIAS: u8 = 0x23;

/// The Will of a CONNECT: a publish deferred until the client disappears.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Will<'a> {
    pub topic: &'a str,
    pub qos: u8,
    pub retain: bool,
}

/// What a CONNECT says about the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connect<'a> {
    pub version: Version,
    pub clean_start: bool,
    pub keep_alive: u16,
    pub client_id: &'a str,
    pub username: Option<&'a str>,
    pub will: Option<Will<'a>>,
}

/// Inspects a CONNECT. The protocol level is checked first so that a client of an unknown
/// version gets [`CodecError::UnsupportedVersion`] rather than a parse error.
pub fn inspect_connect(frame: &[u8]) -> Result<Connect<'_>> {
    let (first, body) = body(frame)?;
    if first >> 4 != CONNECT {
        return Err(CodecError::Protocol("the first packet must be CONNECT"));
    }
    let mut c = Cursor::new(body);
    let name = c.binary()?;
    let level = c.u8()?;
    let version = match (name, level) {
        (b"MQIsdp", 3) => Version::V31,
        (b"MQTT", 4) => Version::V311,
        (b"MQTT", 5) => Version::V5,
        (b"MQIsdp", _) | (b"MQTT", _) => return Err(CodecError::UnsupportedVersion),
        _ => return Err(CodecError::Protocol("unknown protocol name")),
    };
    let flags = c.u8()?;
    if flags & 0x01 != 0 {
        return Err(CodecError::Malformed("CONNECT reserved flag is set"));
    }
    let will_flag = flags & 0x04 != 0;
    let will_qos = (flags >> 3) & 0x03;
    let will_retain = flags & 0x20 != 0;
    let has_password = flags & 0x40 != 0;
    let has_username = flags & 0x80 != 0;
    if will_qos == 3 {
        return Err(CodecError::Malformed("Will QoS 3"));
    }
    if !will_flag && (will_qos != 0 || will_retain) {
        return Err(CodecError::Malformed(
            "Will QoS or retain set without a Will",
        ));
    }
    if !version.is_v5() && has_password && !has_username {
        return Err(CodecError::Malformed("password without user name"));
    }
    let keep_alive = c.u16()?;
    if version.is_v5() {
        c.properties(&mut |_, _| {})?;
    }
    let client_id = c.utf8()?;
    let will = if will_flag {
        if version.is_v5() {
            c.properties(&mut |_, _| {})?;
        }
        let topic = c.utf8()?;
        validate_topic_name(topic)?;
        c.binary()?;
        Some(Will {
            topic,
            qos: will_qos,
            retain: will_retain,
        })
    } else {
        None
    };
    let username = if has_username { Some(c.utf8()?) } else { None };
    if has_password {
        c.binary()?;
    }
    if c.remaining() != 0 {
        return Err(CodecError::Malformed("bytes after the CONNECT payload"));
    }
    Ok(Connect {
        version,
        clean_start: flags & 0x02 != 0,
        keep_alive,
        client_id,
        username,
        will,
    })
}

/// A topic name (not a filter): non-empty, no wildcards.
fn validate_topic_name(topic: &str) -> Result<()> {
    if topic.is_empty() {
        return Err(CodecError::TopicNameInvalid("empty topic name"));
    }
    if topic.contains(['+', '#']) {
        return Err(CodecError::TopicNameInvalid(
            "wildcards are not allowed in a topic name",
        ));
    }
    Ok(())
}

/// Whether a subscription filter is well formed: `#` only as the whole last level, `+` only as
/// a whole level.
pub fn is_valid_filter(filter: &str) -> bool {
    if filter.is_empty() {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    while let Some(level) = levels.next() {
        if level.contains('#') && (level != "#" || levels.peek().is_some()) {
            return false;
        }
        if level.contains('+') && level != "+" {
            return false;
        }
    }
    true
}

/// The filter a policy judges: a shared subscription `$share/{group}/{filter}` is judged by
/// the filter it shares.
pub fn judged_filter(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, f)| f)
}

/// What a PUBLISH carries, besides its payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Publish<'a> {
    pub qos: u8,
    pub retain: bool,
    pub dup: bool,
    /// Empty when an MQTT 5 publish names its topic by alias only.
    pub topic: &'a str,
    pub packet_id: Option<u16>,
    pub topic_alias: Option<u16>,
    /// Byte range of the topic string (with its length prefix) within the frame.
    pub topic_range: Range<usize>,
}

/// Inspects a PUBLISH.
pub fn inspect_publish(frame: &[u8], version: Version) -> Result<Publish<'_>> {
    let (first, body) = body(frame)?;
    let header_len = frame.len() - body.len();
    let qos = (first >> 1) & 0x03;
    if qos == 3 {
        return Err(CodecError::Malformed("PUBLISH with QoS 3"));
    }
    let dup = first & 0x08 != 0;
    if qos == 0 && dup {
        return Err(CodecError::Malformed("DUP set on a QoS 0 PUBLISH"));
    }
    let mut c = Cursor::new(body);
    let topic = c.utf8()?;
    let topic_range = header_len..header_len + c.pos;
    if topic.contains(['+', '#']) {
        return Err(CodecError::TopicNameInvalid(
            "wildcards are not allowed in a topic name",
        ));
    }
    let packet_id = if qos > 0 {
        let id = c.u16()?;
        if id == 0 {
            return Err(CodecError::Malformed("packet identifier 0"));
        }
        Some(id)
    } else {
        None
    };
    let mut topic_alias = None;
    if version.is_v5() {
        c.properties(&mut |id, v| {
            if id == PROP_TOPIC_ALIAS {
                topic_alias = Some(v as u16);
            }
        })?;
    }
    if topic_alias == Some(0) {
        return Err(CodecError::TopicAliasInvalid("topic alias 0"));
    }
    if topic.is_empty() && topic_alias.is_none() {
        return Err(if version.is_v5() {
            CodecError::Protocol("PUBLISH without topic name or topic alias")
        } else {
            CodecError::TopicNameInvalid("empty topic name")
        });
    }
    Ok(Publish {
        qos,
        retain: first & 0x01 != 0,
        dup,
        topic,
        packet_id,
        topic_alias,
        topic_range,
    })
}

/// One filter of a SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter<'a> {
    pub filter: &'a str,
    /// The options byte (QoS in bits 0-1; MQTT 5 adds No Local, Retain As Published, Retain
    /// Handling).
    pub options: u8,
    /// Byte range of the filter with its length prefix and options, within the frame.
    pub raw: Range<usize>,
}

impl Filter<'_> {
    pub fn qos(&self) -> u8 {
        self.options & 0x03
    }
}

/// A SUBSCRIBE (filters with options) or an UNSUBSCRIBE (filters only, `options` 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe<'a> {
    pub packet_id: u16,
    /// MQTT 5 properties, raw with their length prefix; empty for 3.1.1.
    pub properties: &'a [u8],
    pub filters: Vec<Filter<'a>>,
}

/// Inspects a SUBSCRIBE.
pub fn inspect_subscribe(frame: &[u8], version: Version) -> Result<Subscribe<'_>> {
    inspect_filters(frame, version, true)
}

/// Inspects an UNSUBSCRIBE.
pub fn inspect_unsubscribe(frame: &[u8], version: Version) -> Result<Subscribe<'_>> {
    inspect_filters(frame, version, false)
}

fn inspect_filters(frame: &[u8], version: Version, with_options: bool) -> Result<Subscribe<'_>> {
    let (_, body) = body(frame)?;
    let header_len = frame.len() - body.len();
    let mut c = Cursor::new(body);
    let packet_id = c.u16()?;
    if packet_id == 0 {
        return Err(CodecError::Malformed("packet identifier 0"));
    }
    let properties = if version.is_v5() {
        c.properties(&mut |_, _| {})?
    } else {
        &[]
    };
    let mut filters = Vec::new();
    while c.remaining() > 0 {
        let start = c.pos;
        let filter = c.utf8()?;
        let options = if with_options {
            let o = c.u8()?;
            let reserved = if version.is_v5() { 0xC0 } else { 0xFC };
            if o & reserved != 0 || o & 0x03 == 3 || (o >> 4) & 0x03 == 3 {
                return Err(CodecError::Malformed("invalid subscription options"));
            }
            o
        } else {
            0
        };
        filters.push(Filter {
            filter,
            options,
            raw: header_len + start..header_len + c.pos,
        });
    }
    if filters.is_empty() {
        return Err(CodecError::Protocol(
            "SUBSCRIBE or UNSUBSCRIBE without filters",
        ));
    }
    Ok(Subscribe {
        packet_id,
        properties,
        filters,
    })
}

/// What the gateway needs from the broker's CONNACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnAck {
    pub code: u8,
    /// Highest topic alias the broker accepts from the client (0: none).
    pub topic_alias_max: u16,
}

pub fn inspect_connack(frame: &[u8], version: Version) -> Result<ConnAck> {
    let (_, body) = body(frame)?;
    let mut c = Cursor::new(body);
    c.u8()?;
    let code = c.u8()?;
    let mut topic_alias_max = 0;
    if version.is_v5() && c.remaining() > 0 {
        c.properties(&mut |id, v| {
            if id == PROP_TOPIC_ALIAS_MAX {
                topic_alias_max = v as u16;
            }
        })?;
    }
    Ok(ConnAck {
        code,
        topic_alias_max,
    })
}

/// A SUBACK's packet id, properties (raw) and reason codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubAck<'a> {
    pub packet_id: u16,
    pub properties: &'a [u8],
    pub codes: &'a [u8],
}

pub fn inspect_suback(frame: &[u8], version: Version) -> Result<SubAck<'_>> {
    let (_, body) = body(frame)?;
    let mut c = Cursor::new(body);
    let packet_id = c.u16()?;
    let properties = if version.is_v5() {
        c.properties(&mut |_, _| {})?
    } else {
        &[]
    };
    Ok(SubAck {
        packet_id,
        properties,
        codes: &body[c.pos..],
    })
}

/// The packet id of a PUBACK, PUBREC, PUBREL or PUBCOMP.
pub fn ack_packet_id(frame: &[u8]) -> Result<u16> {
    let (_, body) = body(frame)?;
    Cursor::new(body).u16()
}
