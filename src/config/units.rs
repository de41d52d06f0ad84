//! The units of the config file: durations (`250ms`, `30s`, `5m`), sizes (`64KiB`, `1MiB`) and
//! `host:port` addresses, parsed the same way for every key and for command-line flags.
//!
//! Not here: which key takes which unit, or the limits on a value (the section files).

use std::net::SocketAddr;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

/// A value that is not a duration, a size or a `host:port`; one line quoting the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    #[error("invalid duration {text:?}: {why}")]
    Duration { text: String, why: String },
    #[error("invalid size {text:?}: {why}")]
    Size { text: String, why: String },
    #[error("{0:?} is not host:port")]
    NotHostPort(String),
    #[error("{0:?}: port must be a number from 1 to 65535")]
    Port(String),
    /// A listen address that is neither `IP:PORT` nor `localhost:PORT`.
    #[error("{0:?} is not a listen address; write IP:PORT, like 127.0.0.1:3128 or [::1]:3128")]
    Listen(String),
    /// A bare number where a duration is expected.
    #[error("{0} is not a duration; write it with a unit, like {0}s or {0}ms")]
    BareDuration(String),
}

fn bad_duration(text: &str, why: impl Into<String>) -> UnitError {
    UnitError::Duration {
        text: text.to_string(),
        why: why.into(),
    }
}

fn bad_size(text: &str, why: impl Into<String>) -> UnitError {
    UnitError::Size {
        text: text.to_string(),
        why: why.into(),
    }
}

/// A duration written `250ms`, `30s`, `5m`, `1h`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dur(pub Duration);

impl Dur {
    pub fn get(self) -> Duration {
        self.0
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, UnitError> {
    let s = s.trim();
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(UnitError::BareDuration(s.to_string()));
    }
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| bad_duration(s, "expected a number and a unit, like 250ms, 30s, 5m"))?;
    // `5 m` is refused: a space inside a value is more often a typo than a style.
    let secs = match unit {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "" => return Err(bad_duration(s, "missing unit (ms, s, m, h)")),
        u if matches!(u.trim(), "ns" | "us" | "µs" | "ms" | "s" | "m" | "h") => {
            let hint = format!("{num}{}", u.trim());
            return Err(bad_duration(
                s,
                format!("no space between the number and the unit, like {hint}"),
            ));
        }
        u => {
            return Err(bad_duration(
                s,
                format!("unknown unit {:?} (use ms, s, m, h)", u.trim()),
            ));
        }
    };
    if !secs.is_finite() || secs > 1e9 {
        return Err(bad_duration(s, "out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// As a person writes it: `10s`, `250ms`, `5m`.
impl std::fmt::Display for Dur {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = self.0;
        let ms = d.as_millis();
        if d.subsec_nanos() % 1_000_000 != 0 {
            write!(f, "{}us", d.as_micros())
        } else if ms % 60_000 == 0 && ms > 0 {
            write!(f, "{}m", ms / 60_000)
        } else if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(d)? {
            NumberOrText::Number(n) => {
                Err(de::Error::custom(UnitError::BareDuration(n.to_string())))
            }
            NumberOrText::Text(s) => parse_duration(&s).map(Dur).map_err(de::Error::custom),
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", self.0.as_millis()))
    }
}

/// A YAML scalar that should have been a string with a unit; a bare number gets a hint.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(serde_json::Number),
    Text(String),
}

/// A size written `512`, `64KiB`, `1MiB` (also `KB`/`MB` as powers of ten).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl Size {
    pub fn get(self) -> u64 {
        self.0
    }
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if unit.starts_with(' ') {
        return Err(bad_size(
            s,
            "no space between the number and the unit, like 64KiB",
        ));
    }
    let n: u64 = num
        .parse()
        .map_err(|_| bad_size(s, "expected a number and a unit, like 64KiB or 1MiB"))?;
    let mult: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        u => {
            return Err(bad_size(
                s,
                format!("unknown unit {u:?} (use KiB, MiB, GiB)"),
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| bad_size(s, "out of range"))
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) => Ok(Size(n)),
            Raw::S(s) => parse_size(&s).map(Size).map_err(de::Error::custom),
        }
    }
}

impl Serialize for Size {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// Splits `host:port` (IPv6 as `[::1]:1883`).
pub fn split_host_port(s: &str) -> Result<(String, u16), UnitError> {
    let not_host_port = || UnitError::NotHostPort(s.to_string());
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        rest.split_once("]:").ok_or_else(not_host_port)?
    } else {
        s.rsplit_once(':').ok_or_else(not_host_port)?
    };
    let port: u16 = port.parse().map_err(|_| UnitError::Port(s.to_string()))?;
    if host.is_empty() || port == 0 {
        return Err(not_host_port());
    }
    Ok((host.to_string(), port))
}

/// A listener's address: `IP:PORT`, or `localhost:PORT`, which is taken as 127.0.0.1 when the
/// config is read (a listener binds one address; the name is not looked up).
pub fn parse_listen(s: &str) -> Result<SocketAddr, UnitError> {
    let t = s.trim();
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Ok(a);
    }
    match split_host_port(t) {
        Ok((host, port)) if host.eq_ignore_ascii_case("localhost") => {
            Ok(SocketAddr::from(([127, 0, 0, 1], port)))
        }
        Err(UnitError::Port(_)) => Err(UnitError::Port(s.to_string())),
        _ => Err(UnitError::Listen(s.to_string())),
    }
}

/// serde `deserialize_with` for listen addresses (see [`parse_listen`]).
pub fn listen_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    let s = String::deserialize(d)?;
    parse_listen(&s).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("5").is_err());
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1XB").is_err());
    }

    #[test]
    fn unit_errors_quote_the_text() {
        let e = |r: Result<Duration, UnitError>| r.err().map(|e| e.to_string());
        assert_eq!(
            e(parse_duration("5")).as_deref(),
            Some("5 is not a duration; write it with a unit, like 5s or 5ms")
        );
        assert_eq!(
            e(parse_duration("5 m")).as_deref(),
            Some("invalid duration \"5 m\": no space between the number and the unit, like 5m")
        );
        assert_eq!(
            parse_size("1XB").err().map(|e| e.to_string()).as_deref(),
            Some("invalid size \"1XB\": unknown unit \"XB\" (use KiB, MiB, GiB)")
        );
        assert_eq!(
            split_host_port("b:x")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some("\"b:x\": port must be a number from 1 to 65535")
        );
    }

    #[test]
    fn listen_takes_localhost_as_loopback_and_names_the_form() {
        assert_eq!(
            parse_listen("localhost:13128"),
            Ok(SocketAddr::from(([127, 0, 0, 1], 13128)))
        );
        assert_eq!(parse_listen("[::1]:80").map(|a| a.port()), Ok(80));
        assert_eq!(
            parse_listen("plant:80")
                .err()
                .map(|e| e.to_string())
                .as_deref(),
            Some(
                "\"plant:80\" is not a listen address; write IP:PORT, like 127.0.0.1:3128 or [::1]:3128"
            )
        );
    }

    #[test]
    fn host_port_splits_ipv6() {
        assert_eq!(split_host_port("[::1]:1883"), Ok(("::1".into(), 1883)));
        assert_eq!(
            split_host_port("broker.plant.local:8883"),
            Ok(("broker.plant.local".into(), 8883))
        );
        assert!(split_host_port("broker").is_err());
    }
}
