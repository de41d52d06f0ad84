//! `uri.parse` and `uri.is_valid` as OPA answers them: Go's `net/url.Parse`, step by step
//! (scheme, opaque part, authority with user info, host and port, escaped path, query,
//! fragment), with OPA's fields: `scheme` (lower case), `hostname`, `port`, `path` (decoded),
//! `raw_path`, `raw_query`, `fragment` (decoded), each left out when empty.
//!
//! Not here: the WHATWG URL standard (browsers, the `url` crate), which differs from Go's.

use regorus::Value;

use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "uri.parse",
        arity: 1,
        run: parse_builtin,
    },
    Builtin {
        name: "uri.is_valid",
        arity: 1,
        run: is_valid,
    },
];

/// What Go's parser keeps that OPA shows.
#[derive(Default)]
pub(super) struct Url {
    pub scheme: String,
    pub host: String,
    pub path: String,
    pub raw_path: String,
    pub raw_query: String,
    pub fragment: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Fragment,
}

fn parse_builtin(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let raw = args.string(0)?;
    let url = parse(raw).map_err(|e| args.error(format!("parse {raw:?}: {e}")))?;
    let (hostname, port) = split_host_port(&url.host);
    let raw_path = if url.raw_path.is_empty() {
        url.path.clone()
    } else {
        url.raw_path.clone()
    };
    let mut out = serde_json::Map::new();
    for (key, value) in [
        ("scheme", url.scheme),
        ("hostname", hostname.to_string()),
        ("port", port.to_string()),
        ("path", url.path),
        ("raw_path", raw_path),
        ("raw_query", url.raw_query),
        ("fragment", url.fragment),
    ] {
        if !value.is_empty() {
            out.insert(key.into(), serde_json::Value::String(value));
        }
    }
    Ok(Value::from(serde_json::Value::Object(out)))
}

/// Any value: only a non-empty string that parses is a valid URI (OPA: `false` for a number).
fn is_valid(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let valid = match args.value(0) {
        Value::String(raw) => !raw.is_empty() && parse(raw).is_ok(),
        _ => false,
    };
    Ok(Value::from(valid))
}

pub(super) fn parse(raw: &str) -> Result<Url, String> {
    let (rest, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    let mut url = parse_without_fragment(rest)?;
    url.fragment = unescape(fragment, Mode::Fragment)?;
    Ok(url)
}

fn parse_without_fragment(raw: &str) -> Result<Url, String> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("net/url: invalid control character in URL".into());
    }
    let mut url = Url::default();
    if raw == "*" {
        url.path = "*".into();
        return Ok(url);
    }
    let (scheme, rest) = scheme(raw)?;
    url.scheme = scheme.to_ascii_lowercase();
    let mut rest = if rest.ends_with('?') && rest.matches('?').count() == 1 {
        &rest[..rest.len() - 1]
    } else {
        let (before, query) = rest.split_once('?').unwrap_or((rest, ""));
        url.raw_query = query.to_string();
        before
    };
    if !rest.starts_with('/') {
        if !url.scheme.is_empty() {
            // An opaque URL (`mailto:x@y`): OPA shows only its scheme.
            return Ok(url);
        }
        let segment = rest.split('/').next().unwrap_or("");
        if segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    if (!url.scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let (authority, path) = match authority_and_path.find('/') {
            Some(i) => authority_and_path.split_at(i),
            None => (authority_and_path, ""),
        };
        url.host = authority_host(authority)?;
        rest = path;
    }
    url.path = unescape(rest, Mode::Path)?;
    if escape_path(&url.path) != url.path {
        url.raw_path = rest.to_string();
    }
    Ok(url)
}

/// `scheme:` at the start, or none.
fn scheme(raw: &str) -> Result<(&str, &str), String> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            ':' if i == 0 => return Err("missing protocol scheme".into()),
            ':' => return Ok((&raw[..i], &raw[i + 1..])),
            _ => return Ok(("", raw)),
        }
    }
    Ok(("", raw))
}

/// The host (and port) of an authority, after checking its user info.
fn authority_host(authority: &str) -> Result<String, String> {
    let host = match authority.rfind('@') {
        Some(i) => {
            let userinfo = &authority[..i];
            if !userinfo
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c))
            {
                return Err("net/url: invalid userinfo".into());
            }
            &authority[i + 1..]
        }
        None => authority,
    };
    if host.starts_with('[') {
        let Some(end) = host.rfind(']') else {
            return Err("missing ']' in host".into());
        };
        let port = &host[end + 1..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
        return Ok(format!("{}{port}", unescape(&host[..=end], Mode::Host)?));
    }
    if let Some(i) = host.rfind(':') {
        let port = &host[i..];
        if !valid_optional_port(port) {
            return Err(format!("invalid port {port:?} after host"));
        }
    }
    unescape(host, Mode::Host)
}

fn valid_optional_port(port: &str) -> bool {
    match port.strip_prefix(':') {
        None => port.is_empty(),
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// `hostname` and `port` of a host as Go's `Hostname()` and `Port()` give them.
fn split_host_port(host: &str) -> (&str, &str) {
    let close = host.rfind(']');
    let (name, port) = match host.rfind(':') {
        Some(colon) if close.is_none_or(|c| colon > c) => (&host[..colon], &host[colon + 1..]),
        _ => (host, ""),
    };
    let name = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    (name, port)
}

fn host_char_allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&b)
}

/// Percent-decoding as Go's `unescape` does it for each part.
fn unescape(s: &str, mode: Mode) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| {
                let h = std::str::from_utf8(h).ok()?;
                u8::from_str_radix(h, 16)
                    .ok()
                    .filter(|_| h.bytes().all(|c| c.is_ascii_hexdigit()))
            });
            let Some(value) = hex else {
                let bad: String = s[i..].chars().take(3).collect();
                return Err(format!("invalid URL escape {bad:?}"));
            };
            if mode == Mode::Host && value < 0x80 && &s[i..i + 3] != "%25" {
                return Err(format!("invalid URL escape {:?}", &s[i..i + 3]));
            }
            out.push(value);
            i += 3;
            continue;
        }
        if mode == Mode::Host && b < 0x80 && !host_char_allowed(b) {
            return Err(format!(
                "invalid character {:?} in host name",
                char::from(b).to_string()
            ));
        }
        out.push(b);
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `escape(path, encodePath)`: what a decoded path looks like encoded again.
pub(super) fn escape_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        let keep = b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@".contains(&b);
        if keep {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
