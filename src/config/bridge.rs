//! The `bridges:` section: export bridges from the plant broker to a remote broker through a
//! durable spool, and their validation (a bridge from a broker to itself is a loop and refused).
//!
//! Not here: running a bridge (src/bridge/).

use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

pub use super::bridge_auth::{BridgeTls, Secret};
use super::error::invalid;
use super::{ConfigError, Dur, Size, split_host_port};

/// One export bridge: local broker → judged → SQLite spool → judged again → remote broker.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeConfig {
    /// Names the bridge in logs and metrics (`bridge="cloud"`).
    pub name: String,
    /// The plant broker the bridge subscribes to (a persistent session).
    pub local: BridgeBroker,
    /// The broker exports go to.
    pub remote: BridgeBroker,
    /// Topic filters offered for export; every message is judged.
    pub topics: Vec<String>,
    /// QoS of the local subscription and of the publishes to the remote (1 or 2).
    #[serde(default = "default_qos")]
    pub qos: u8,
    pub spool: SpoolConfig,
    #[serde(default)]
    pub replay: ReplayConfig,
}

/// One side of a bridge.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeBroker {
    /// `host:port`.
    pub broker: String,
    #[serde(default)]
    pub tls: Option<BridgeTls>,
    /// MQTT user name sent in the CONNECT.
    #[serde(default)]
    pub username: Option<String>,
    /// Its password, inline (never logged or printed).
    #[serde(default)]
    pub password: Option<Secret>,
    /// Or a file holding the password (a mounted secret; one trailing newline is ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// MQTT client id; defaults to `sluice-bridge-<name>` (local) and the site name (remote).
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default = "default_keep_alive")]
    pub keep_alive: Dur,
    /// Time to complete TCP, TLS and CONNACK.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: Dur,
    /// Largest packet sent to (remote) or accepted from (local) this broker; larger messages
    /// are dropped at intake and counted.
    #[serde(default = "default_max_packet")]
    pub max_packet_size: Size,
    /// Remote only: a publish unacknowledged for this long ends the session, which is then
    /// opened again and the unacknowledged messages sent again.
    #[serde(default = "default_ack_timeout")]
    pub ack_timeout: Dur,
}

/// `spool:` — where allowed messages wait for the remote.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SpoolConfig {
    /// The SQLite file (WAL mode; `-wal` and `-shm` files beside it).
    pub path: PathBuf,
    /// Bytes of stored topics and payloads at most.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: Size,
    /// Messages older than this are removed and counted as expired.
    #[serde(default = "default_ttl")]
    pub ttl: Dur,
    #[serde(default = "default_on_full")]
    pub on_full: OnFull,
}

/// What a full spool does with a new message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Store it and remove the oldest messages (counted as dropped).
    DropOldest,
    /// Stop acknowledging the local broker, which keeps the messages until there is room.
    RefuseNew,
}

/// `replay:` — how the backlog is sent once the remote is reachable.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Messages per second from the backlog (`1000/s`); absent means as fast as acknowledged.
    pub rate: Option<Rate>,
    pub order: ReplayOrder,
    /// Publishes sent and not yet acknowledged by the remote, at most.
    pub inflight: u16,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            rate: None,
            order: ReplayOrder::Fifo,
            inflight: 100,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplayOrder {
    /// Oldest first: per-topic order is kept.
    Fifo,
    /// Messages that arrive while a backlog is sent go first (per-topic order is not kept
    /// between the backlog and them).
    LiveFirst,
}

/// A rate written `1000/s` (or `60/m`), kept as messages per second.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate(pub f64);

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_rate(&s).map(Rate).map_err(de::Error::custom)
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}/s", self.0))
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let bad = || format!("invalid rate {s:?}: expected messages per unit, like 1000/s or 60/m");
    let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
    let n: f64 = n.trim().parse().map_err(|_| bad())?;
    let per = match unit.trim() {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("invalid rate {s:?}: must be greater than zero"));
    }
    Ok(n / per)
}

fn default_qos() -> u8 {
    1
}
fn default_keep_alive() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_connect_timeout() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_max_packet() -> Size {
    Size(1024 * 1024)
}
fn default_ack_timeout() -> Dur {
    Dur(Duration::from_secs(30))
}
fn default_max_bytes() -> Size {
    Size(256 * 1024 * 1024)
}
fn default_ttl() -> Dur {
    Dur(Duration::from_secs(24 * 3600))
}
fn default_on_full() -> OnFull {
    OnFull::DropOldest
}

/// Checks every bridge; the error names the key (`bridges[0].remote.broker`).
pub fn validate(bridges: &[BridgeConfig]) -> Result<(), ConfigError> {
    for (i, b) in bridges.iter().enumerate() {
        let at = |key: &str, e: String| invalid(format!("bridges[{i}].{key}"), e);
        if b.name.is_empty()
            || !b
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(at(
                "name",
                format!("{:?} must be letters, digits, - or _", b.name),
            ));
        }
        if bridges[..i].iter().any(|o| o.name == b.name) {
            return Err(at("name", format!("{:?} is used by two bridges", b.name)));
        }
        if bridges[..i].iter().any(|o| o.spool.path == b.spool.path) {
            return Err(at(
                "spool.path",
                format!("{} is the spool of another bridge", b.spool.path.display()),
            ));
        }
        let local =
            split_host_port(&b.local.broker).map_err(|e| at("local.broker", e.to_string()))?;
        let remote =
            split_host_port(&b.remote.broker).map_err(|e| at("remote.broker", e.to_string()))?;
        if same_broker(&local, &remote) {
            return Err(at(
                "remote.broker",
                format!(
                    "{} is the local broker too: the bridge would send its exports back to itself (a loop)",
                    b.remote.broker
                ),
            ));
        }
        if b.topics.is_empty() {
            return Err(at("topics", "needs at least one topic filter".into()));
        }
        for (j, t) in b.topics.iter().enumerate() {
            check_filter(t).map_err(|e| at(&format!("topics[{j}]"), e.to_string()))?;
        }
        if !(1..=2).contains(&b.qos) {
            return Err(at(
                "qos",
                format!("{} must be 1 or 2 (QoS 0 cannot be acknowledged)", b.qos),
            ));
        }
        if b.spool.max_bytes.0 < 64 * 1024 {
            return Err(at("spool.max_bytes", "must be at least 64KiB".into()));
        }
        validate_limits(b, &at)?;
        if b.replay.inflight == 0 {
            return Err(at("replay.inflight", "must be at least 1".into()));
        }
    }
    Ok(())
}

/// The durations, packet sizes and TLS options of one bridge.
fn validate_limits(
    b: &BridgeConfig,
    at: &impl Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    for (key, d) in [
        ("spool.ttl", b.spool.ttl),
        ("local.keep_alive", b.local.keep_alive),
        ("remote.keep_alive", b.remote.keep_alive),
        ("remote.ack_timeout", b.remote.ack_timeout),
        ("local.connect_timeout", b.local.connect_timeout),
        ("remote.connect_timeout", b.remote.connect_timeout),
    ] {
        if d.0.is_zero() {
            return Err(at(key, "must be greater than zero".into()));
        }
    }
    for (key, s) in [
        ("local.max_packet_size", b.local.max_packet_size),
        ("remote.max_packet_size", b.remote.max_packet_size),
    ] {
        if s.0 < 128 || s.0 > 268_435_455 {
            return Err(at(
                key,
                "must be between 128 bytes and 256MiB (MQTT's limit)".into(),
            ));
        }
    }
    for (key, side) in [("local", &b.local), ("remote", &b.remote)] {
        super::bridge_auth::validate(side, &|k: &str, e: String| at(&format!("{key}.{k}"), e))?;
    }
    Ok(())
}

/// Loopback spellings of one host count as the same broker.
fn same_broker(a: &(String, u16), b: &(String, u16)) -> bool {
    let norm = |h: &str| {
        let h = h.trim_end_matches('.').to_ascii_lowercase();
        match h.as_str() {
            "localhost" | "127.0.0.1" | "::1" | "[::1]" => "loopback".to_string(),
            _ => h,
        }
    };
    a.1 == b.1 && norm(&a.0) == norm(&b.0)
}

/// Why a topic filter is not one.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FilterError(String);

/// An MQTT topic filter: `+` and `#` only as whole levels, `#` last.
pub fn check_filter(f: &str) -> Result<(), FilterError> {
    if f.is_empty() {
        return Err(FilterError("an empty topic filter matches nothing".into()));
    }
    let levels: Vec<&str> = f.split('/').collect();
    for (k, l) in levels.iter().enumerate() {
        let wild = l.contains('+') || l.contains('#');
        if wild && l.len() != 1 {
            return Err(FilterError(format!(
                "{f:?}: + and # must fill a whole topic level"
            )));
        }
        if *l == "#" && k != levels.len() - 1 {
            return Err(FilterError(format!("{f:?}: # must be the last level")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Config;

    const BRIDGE: &str = "bridges:\n  - name: cloud\n    local: {broker: 127.0.0.1:1883}\n    remote: {broker: REMOTE}\n    topics: [\"plant/+/aggregates/#\"]\n    spool: {path: /tmp/s.db, max_bytes: 1MiB, ttl: 1h, on_full: refuse_new}\n    replay: {rate: 1000/s, order: live_first}\n";

    fn parse(remote: &str) -> Result<Config, String> {
        Config::parse(&BRIDGE.replace("REMOTE", remote)).map_err(|e| e.to_string())
    }

    #[test]
    fn a_bridge_parses_with_its_defaults() {
        let c = parse("cloud.example.com:8883").map_err(|e| e.to_string());
        let b = c.as_ref().map(|c| {
            let b = &c.bridges[0];
            (b.qos, b.replay.rate.map(|r| r.0), b.replay.inflight)
        });
        assert_eq!(b, Ok((1, Some(1000.0), 100)));
    }

    #[test]
    fn a_bridge_to_its_own_local_broker_is_a_loop() {
        for remote in ["127.0.0.1:1883", "localhost:1883", "\"[::1]:1883\""] {
            let err = parse(remote).err().unwrap_or_default();
            assert!(err.starts_with("bridges[0].remote.broker: "), "{err}");
            assert!(err.contains("loop"), "{err}");
        }
        assert!(parse("127.0.0.1:1884").is_ok());
    }

    #[test]
    fn bad_bridge_values_name_their_key() {
        let err = Config::parse(&BRIDGE.replace("REMOTE", "c:1").replace("1000/s", "fast"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("bridges[0].replay.rate: invalid rate"),
            "{err}"
        );
        let err = Config::parse(
            &BRIDGE
                .replace("REMOTE", "c:1")
                .replace("aggregates/#", "aggr#"),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.starts_with("bridges[0].topics[0]: "), "{err}");
    }
}
