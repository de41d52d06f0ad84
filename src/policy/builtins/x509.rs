//! `crypto.x509.parse_certificates` and `crypto.x509.parse_certificate_request`: certificates
//! and CSRs as OPA gives them, which is Go's `x509.Certificate` / `x509.CertificateRequest`
//! marshalled to JSON field by field (Go's field names, nil slices as null, big integers as
//! numbers, byte strings as base64, `NotAfter` as RFC 3339). Checked against OPA 1.20 by the
//! corpus (fixtures/opa-diff/exprs/x509.txt). The DER is walked with `keys::tlv`; nothing here
//! verifies a signature or a chain.
//!
//! Not here: chain verification (`x509_verify`), private keys and `parse_keypair` (`go_keys`,
//! `private_keys`), public keys for JWTs (`keys`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use regorus::Value;

use super::keys::{self, OID_EC, OID_RSA, tlv};
use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "crypto.x509.parse_certificates",
        arity: 1,
        run: parse_certificates,
    },
    Builtin {
        name: "crypto.x509.parse_certificate_request",
        arity: 1,
        run: parse_certificate_request,
    },
];

/// More certificates than this in one call are refused (a bundle of CAs is a few hundred).
const MAX_CERTS: usize = 4096;

const MALFORMED: &str = "x509: malformed certificate";

/// Go's `base64.StdEncoding.DecodeString`, which skips line breaks.
pub(super) fn std_base64(args: &Args<'_>, text: &str) -> Result<Vec<u8>, BuiltinError> {
    let clean: String = text.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    STANDARD
        .decode(clean)
        .map_err(|_| args.error("illegal base64 data at input byte 0"))
}

/// One PEM block as Go's `pem.Decode` finds it: (type, DER, the text after the block).
pub(super) fn pem_block(text: &[u8]) -> Option<(String, Vec<u8>, &[u8])> {
    let begin = b"-----BEGIN ";
    let start = text.windows(begin.len()).position(|w| w == begin)?;
    let rest = &text[start + begin.len()..];
    let type_end = rest.windows(5).position(|w| w == b"-----")?;
    let kind = String::from_utf8(rest[..type_end].to_vec()).ok()?;
    let body = &rest[type_end + 5..];
    let end_marker = format!("-----END {kind}-----");
    let end = body
        .windows(end_marker.len())
        .position(|w| w == end_marker.as_bytes())?;
    let text_body = std::str::from_utf8(&body[..end]).ok()?;
    // Headers (`Proc-Type: …`) end at a blank line; the base64 follows.
    let b64: String = if text_body.contains(':') {
        text_body
            .split_once("\n\n")
            .map_or("", |(_, b)| b)
            .split_whitespace()
            .collect()
    } else {
        text_body.split_whitespace().collect()
    };
    let der = STANDARD.decode(b64).ok()?;
    Some((kind, der, &body[end + end_marker.len()..]))
}

/// The DER of every CERTIFICATE block, concatenated, as OPA reads a PEM bundle.
fn certs_from_pem(args: &Args<'_>, mut text: &[u8]) -> Result<Vec<u8>, BuiltinError> {
    let mut out = Vec::new();
    while let Some((kind, der, rest)) = pem_block(text) {
        if kind != "CERTIFICATE" {
            return Err(args.error(format!("PEM block type is '{kind}', expected CERTIFICATE")));
        }
        out.extend(der);
        text = rest;
    }
    Ok(out)
}

fn parse_certificates(args: &Args<'_>) -> Result<Value, BuiltinError> {
    Ok(Value::from(certificates(args, args.string(0)?)?))
}

/// Every certificate in PEM text, base64 DER or base64 PEM, as OPA reads them.
pub(super) fn certificates(args: &Args<'_>, text: &str) -> Result<Vec<Value>, BuiltinError> {
    let der = if text.starts_with("-----BEGIN") {
        certs_from_pem(args, text.as_bytes())?
    } else {
        let bytes = std_base64(args, text)?;
        if bytes.starts_with(b"-----BEGIN") {
            certs_from_pem(args, &bytes)?
        } else {
            bytes
        }
    };
    let mut out = Vec::new();
    let mut rest = der.as_slice();
    while !rest.is_empty() {
        if out.len() == MAX_CERTS {
            return Err(args.error(format!("more than {MAX_CERTS} certificates")));
        }
        let (tag, _, whole, after) = tlv(rest).map_err(|_| args.error(MALFORMED))?;
        if tag != 0x30 {
            return Err(args.error(MALFORMED));
        }
        out.push(certificate(whole).ok_or_else(|| args.error(MALFORMED))?);
        rest = after;
    }
    Ok(out)
}

fn parse_certificate_request(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let text = args.string(0)?;
    let mut bytes = if text.starts_with("-----BEGIN CERTIFICATE REQUEST-----") {
        text.as_bytes().to_vec()
    } else {
        std_base64(args, text)?
    };
    if let Some((kind, der, _)) = pem_block(&bytes) {
        if kind != "CERTIFICATE REQUEST" {
            return Err(args.error("invalid PEM-encoded certificate signing request"));
        }
        bytes = der;
    }
    request(&bytes).ok_or_else(|| args.error("x509: malformed certificate request"))
}

/// A JSON object with Go's field names.
struct Obj(BTreeMap<Value, Value>);

impl Obj {
    fn new() -> Self {
        Self(BTreeMap::new())
    }
    fn set(&mut self, key: &str, v: Value) {
        self.0.insert(Value::from(key), v);
    }
    fn done(self) -> Value {
        Value::from(self.0)
    }
}

fn b64(bytes: &[u8]) -> Value {
    Value::from(STANDARD.encode(bytes))
}

/// A Go nil slice is null, a non-empty one an array.
fn list(items: Vec<Value>) -> Value {
    if items.is_empty() {
        Value::Null
    } else {
        Value::from(items)
    }
}

/// One DER element: (tag, contents, the whole element).
type Part<'a> = (u8, &'a [u8], &'a [u8]);

/// The DER elements in a row.
fn elements(mut der: &[u8]) -> Option<Vec<Part<'_>>> {
    let mut out = Vec::new();
    while !der.is_empty() {
        let (tag, contents, whole, rest) = tlv(der).ok()?;
        out.push((tag, contents, whole));
        der = rest;
    }
    Some(out)
}

/// An OBJECT IDENTIFIER's arcs.
fn oid_arcs(contents: &[u8]) -> Option<Vec<u64>> {
    let mut arcs = Vec::new();
    let mut n: u64 = 0;
    for (i, b) in contents.iter().enumerate() {
        n = n.checked_mul(128)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let (first, second) = match n {
                    0..=39 => (0, n),
                    40..=79 => (1, n - 40),
                    _ => (2, n - 80),
                };
                arcs.push(first);
                arcs.push(second);
            } else {
                arcs.push(n);
            }
            n = 0;
        } else if i + 1 == contents.len() {
            return None;
        }
    }
    (!arcs.is_empty()).then_some(arcs)
}

fn oid_value(arcs: &[u64]) -> Value {
    Value::from(arcs.iter().map(|a| Value::from(*a)).collect::<Vec<_>>())
}

fn oid_text(arcs: &[u64]) -> String {
    arcs.iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// A DER INTEGER (two's complement, big-endian) in decimal.
fn integer_text(contents: &[u8]) -> String {
    let negative = contents.first().is_some_and(|b| b & 0x80 != 0);
    let magnitude: Vec<u8> = if negative {
        // Two's complement: invert and add one.
        let mut m: Vec<u8> = contents.iter().map(|b| !b).collect();
        for b in m.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
        m
    } else {
        contents.to_vec()
    };
    let digits = decimal(&magnitude);
    if negative {
        format!("-{digits}")
    } else {
        digits
    }
}

/// Big-endian unsigned bytes in decimal.
fn decimal(bytes: &[u8]) -> String {
    // Base 10^9 limbs, least significant first.
    let mut limbs: Vec<u32> = vec![0];
    for &byte in bytes {
        let mut carry = u64::from(byte);
        for limb in limbs.iter_mut() {
            let v = u64::from(*limb) * 256 + carry;
            *limb = (v % 1_000_000_000) as u32;
            carry = v / 1_000_000_000;
        }
        while carry > 0 {
            limbs.push((carry % 1_000_000_000) as u32);
            carry /= 1_000_000_000;
        }
    }
    let mut out = String::new();
    for (i, limb) in limbs.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&limb.to_string());
        } else {
            out.push_str(&format!("{limb:09}"));
        }
    }
    out
}

/// Unsigned big-endian bytes as a number (an RSA modulus, a curve coordinate).
pub(super) fn unsigned_big(bytes: &[u8]) -> Value {
    Value::from_numeric_string(&decimal(bytes)).unwrap_or(Value::Null)
}

fn big(contents: &[u8]) -> Value {
    let text = integer_text(contents);
    Value::from_numeric_string(&text).unwrap_or(Value::Null)
}

fn small_int(contents: &[u8]) -> Option<i64> {
    if contents.is_empty() || contents.len() > 8 {
        return None;
    }
    let mut v: i64 = if contents[0] & 0x80 != 0 { -1 } else { 0 };
    for b in contents {
        v = (v << 8) | i64::from(*b);
    }
    Some(v)
}

/// An attribute value as Go's asn1 decodes `any`: strings as strings, the rest as Go would.
fn any_value(tag: u8, contents: &[u8]) -> Value {
    match tag {
        // UTF8String, NumericString, PrintableString, T61String, IA5String, UTCTime-less strings
        0x0c | 0x12 | 0x13 | 0x14 | 0x16 | 0x1a => {
            Value::from(String::from_utf8_lossy(contents).into_owned())
        }
        // BMPString: UTF-16 big-endian.
        0x1e => {
            let units: Vec<u16> = contents
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
                .collect();
            Value::from(String::from_utf16_lossy(&units))
        }
        0x01 => Value::from(contents.first().is_some_and(|b| *b != 0)),
        0x02 => big(contents),
        0x06 => oid_arcs(contents).map_or(Value::Null, |a| oid_value(&a)),
        _ => b64(contents),
    }
}

/// Go's `pkix.Name` of an RDNSequence.
fn name(der: &[u8]) -> Option<Value> {
    let (tag, contents, _, _) = tlv(der).ok()?;
    if tag != 0x30 {
        return None;
    }
    let mut names = Vec::new();
    let mut multi: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    let mut common = String::new();
    let mut serial = String::new();
    for (set_tag, set, _) in elements(contents)? {
        if set_tag != 0x31 {
            return None;
        }
        for (atv_tag, atv, _) in elements(set)? {
            if atv_tag != 0x30 {
                return None;
            }
            let parts = elements(atv)?;
            let [(0x06, oid, _), (vtag, value, _)] = parts.as_slice() else {
                return None;
            };
            let arcs = oid_arcs(oid)?;
            let v = any_value(*vtag, value);
            let mut atv_obj = Obj::new();
            atv_obj.set("Type", oid_value(&arcs));
            atv_obj.set("Value", v.clone());
            names.push(atv_obj.done());
            let Value::String(s) = &v else { continue };
            if let [2, 5, 4, last] = arcs.as_slice() {
                let field = match last {
                    3 => {
                        common = s.to_string();
                        continue;
                    }
                    5 => {
                        serial = s.to_string();
                        continue;
                    }
                    6 => "Country",
                    7 => "Locality",
                    8 => "Province",
                    9 => "StreetAddress",
                    10 => "Organization",
                    11 => "OrganizationalUnit",
                    17 => "PostalCode",
                    _ => continue,
                };
                multi.entry(field).or_default().push(v.clone());
            }
        }
    }
    let mut out = Obj::new();
    for field in [
        "Country",
        "Organization",
        "OrganizationalUnit",
        "Locality",
        "Province",
        "StreetAddress",
        "PostalCode",
    ] {
        out.set(field, list(multi.remove(field).unwrap_or_default()));
    }
    out.set("SerialNumber", Value::from(serial));
    out.set("CommonName", Value::from(common));
    out.set("Names", list(names));
    out.set("ExtraNames", Value::Null);
    Some(out.done())
}

/// UTCTime or GeneralizedTime as Go marshals a `time.Time` in UTC.
fn time(tag: u8, contents: &[u8]) -> Option<Value> {
    let s = std::str::from_utf8(contents).ok()?;
    let s = s.strip_suffix('Z')?;
    let (year, rest) = match tag {
        0x17 => {
            let yy: u32 = s.get(..2)?.parse().ok()?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, s.get(2..)?)
        }
        0x18 => (s.get(..4)?.parse().ok()?, s.get(4..)?),
        _ => return None,
    };
    let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
    if whole.len() != 10 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let f = |i: usize| &whole[i..i + 2];
    let fraction = fraction.trim_end_matches('0');
    let fraction = if fraction.is_empty() {
        String::new()
    } else {
        format!(".{fraction}")
    };
    Some(Value::from(format!(
        "{year:04}-{}-{}T{}:{}:{}{fraction}Z",
        f(0),
        f(2),
        f(4),
        f(6),
        f(8)
    )))
}

/// Go's `SignatureAlgorithm` number of an AlgorithmIdentifier.
fn signature_algorithm(alg: &[u8]) -> i64 {
    let Some(parts) = elements(alg) else { return 0 };
    let Some((0x06, oid, _)) = parts.first().copied() else {
        return 0;
    };
    let Some(arcs) = oid_arcs(oid) else { return 0 };
    match arcs.as_slice() {
        [1, 2, 840, 113549, 1, 1, 2] => 1,
        [1, 2, 840, 113549, 1, 1, 4] => 2,
        [1, 2, 840, 113549, 1, 1, 5] | [1, 3, 14, 3, 2, 29] => 3,
        [1, 2, 840, 113549, 1, 1, 11] => 4,
        [1, 2, 840, 113549, 1, 1, 12] => 5,
        [1, 2, 840, 113549, 1, 1, 13] => 6,
        [1, 2, 840, 10040, 4, 3] => 7,
        [2, 16, 840, 1, 101, 3, 4, 3, 2] => 8,
        [1, 2, 840, 10045, 4, 1] => 9,
        [1, 2, 840, 10045, 4, 3, 2] => 10,
        [1, 2, 840, 10045, 4, 3, 3] => 11,
        [1, 2, 840, 10045, 4, 3, 4] => 12,
        [1, 2, 840, 113549, 1, 1, 10] => parts.get(1).map_or(0, |p| pss_algorithm(p.1)),
        [1, 3, 101, 112] => 16,
        _ => 0,
    }
}

/// An AlgorithmIdentifier's OID and its parameters (empty when absent or NULL).
fn algorithm(der: &[u8]) -> Option<(Vec<u64>, &[u8])> {
    let (_, ai, _, _) = tlv(der).ok()?;
    let parts = elements(ai)?;
    match parts.as_slice() {
        [(0x06, oid, _)] => Some((oid_arcs(oid)?, &[][..])),
        [(0x06, oid, _), (tag, params, whole)] => {
            let null = *tag == 0x05 && params.is_empty();
            Some((oid_arcs(oid)?, if null { &[][..] } else { whole }))
        }
        _ => None,
    }
}

/// RSASSA-PSS as Go recognises it: MGF1 with the message hash, a salt as long as the hash and
/// the default trailer; any other parameters are an unknown algorithm (0).
fn pss_algorithm(params: &[u8]) -> i64 {
    let read = || -> Option<i64> {
        let mut hash = None;
        let mut mgf_hash = None;
        let mut salt = None;
        let mut trailer = 1;
        for (tag, v, _) in elements(params)? {
            match tag {
                0xa0 => {
                    let (oid, extra) = algorithm(v)?;
                    if !extra.is_empty() {
                        return None;
                    }
                    hash = Some(oid);
                }
                0xa1 => {
                    let (oid, inner) = algorithm(v)?;
                    if oid != [1, 2, 840, 113549, 1, 1, 8] {
                        return None;
                    }
                    let (h, extra) = algorithm(inner)?;
                    if !extra.is_empty() {
                        return None;
                    }
                    mgf_hash = Some(h);
                }
                0xa2 => salt = small_int(tlv(v).ok()?.1),
                0xa3 => trailer = small_int(tlv(v).ok()?.1)?,
                _ => return None,
            }
        }
        let hash = hash?;
        if mgf_hash.as_ref() != Some(&hash) || trailer != 1 {
            return None;
        }
        match (hash.as_slice(), salt?) {
            ([2, 16, 840, 1, 101, 3, 4, 2, 1], 32) => Some(13),
            ([2, 16, 840, 1, 101, 3, 4, 2, 2], 48) => Some(14),
            ([2, 16, 840, 1, 101, 3, 4, 2, 3], 64) => Some(15),
            _ => None,
        }
    };
    read().unwrap_or(0)
}

const OID_DSA: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];
const EC_CURVES: &[&[u8]] = &[
    &[0x2b, 0x81, 0x04, 0x00, 0x21],
    keys::OID_P256,
    keys::OID_P384,
    &[0x2b, 0x81, 0x04, 0x00, 0x23],
];

/// (PublicKeyAlgorithm, PublicKey) of a subjectPublicKeyInfo, as Go marshals them.
fn public_key(spki: &[u8]) -> Option<(i64, Value)> {
    let (_, seq, _, _) = tlv(spki).ok()?;
    let (_, alg, _, after_alg) = tlv(seq).ok()?;
    let (_, oid, _, params) = tlv(alg).ok()?;
    let (tag, bits, _, _) = tlv(after_alg).ok()?;
    if tag != 0x03 || bits.first() != Some(&0) {
        return None;
    }
    let key = &bits[1..];
    if oid == OID_RSA {
        let (_, rsa, _, _) = tlv(key).ok()?;
        let parts = elements(rsa)?;
        let [(0x02, n, _), (0x02, e, _)] = parts.as_slice() else {
            return None;
        };
        let mut o = Obj::new();
        o.set("N", big(n));
        o.set("E", Value::from(small_int(e)?));
        return Some((1, o.done()));
    }
    if oid == OID_EC {
        let (_, curve, _, _) = tlv(params).ok()?;
        if !EC_CURVES.contains(&curve) || key.first() != Some(&4) || key.len() % 2 != 1 {
            return None;
        }
        let half = (key.len() - 1) / 2;
        let mut o = Obj::new();
        o.set("Curve", Obj::new().done());
        o.set("X", unsigned_big(&key[1..=half]));
        o.set("Y", unsigned_big(&key[1 + half..]));
        return Some((3, o.done()));
    }
    if oid == OID_ED25519 {
        return Some((4, b64(key)));
    }
    if oid == OID_DSA {
        let (_, p, _, _) = tlv(params).ok()?;
        let pqg = elements(p)?;
        let [(0x02, p, _), (0x02, q, _), (0x02, g, _)] = pqg.as_slice() else {
            return None;
        };
        let (_, y, _, _) = tlv(key).ok()?;
        let mut params = Obj::new();
        params.set("P", big(p));
        params.set("Q", big(q));
        params.set("G", big(g));
        let mut o = Obj::new();
        o.set("Parameters", params.done());
        o.set("Y", big(y));
        return Some((2, o.done()));
    }
    Some((0, Value::Null))
}

/// Go's `net.IP.String()`: IPv4-mapped IPv6 addresses print as IPv4.
fn ip_text(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).to_string()),
        16 => {
            let octets: [u8; 16] = bytes.try_into().ok()?;
            let v6 = Ipv6Addr::from(octets);
            Some(match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => IpAddr::V6(v6).to_string(),
            })
        }
        _ => None,
    }
}

/// The names of a subjectAltName (or CSR) extension.
#[derive(Default)]
struct AltNames {
    dns: Vec<Value>,
    email: Vec<Value>,
    ip: Vec<Value>,
    uri: Vec<String>,
}

impl AltNames {
    fn read(der: &[u8]) -> Option<Self> {
        let (tag, seq, _, _) = tlv(der).ok()?;
        if tag != 0x30 {
            return None;
        }
        let mut out = Self::default();
        for (tag, v, _) in elements(seq)? {
            let text = || String::from_utf8_lossy(v).into_owned();
            match tag {
                0x81 => out.email.push(Value::from(text())),
                0x82 => out.dns.push(Value::from(text())),
                0x86 => out.uri.push(text()),
                0x87 => out.ip.push(Value::from(ip_text(v)?)),
                _ => {}
            }
        }
        Some(out)
    }

    fn is_empty(&self) -> bool {
        self.dns.is_empty() && self.email.is_empty() && self.ip.is_empty() && self.uri.is_empty()
    }

    fn put(self, o: &mut Obj, with_strings: bool) {
        o.set("DNSNames", list(self.dns));
        o.set("EmailAddresses", list(self.email));
        o.set("IPAddresses", list(self.ip));
        let urls: Vec<Value> = self.uri.iter().map(|u| go_url(u)).collect();
        o.set("URIs", list(urls));
        if with_strings {
            o.set(
                "URIStrings",
                list(self.uri.into_iter().map(Value::from).collect()),
            );
        }
    }
}

/// Go's `url.Unescape` (percent-decoding; `None` on a bad escape).
fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A SAN URI as Go's `url.Parse` gives it, marshalled.
fn go_url(raw: &str) -> Value {
    let (rest, fragment) = raw.split_once('#').unwrap_or((raw, ""));
    let (scheme, mut rest) = match rest.split_once(':') {
        Some((s, r))
            if !s.is_empty()
                && s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c)) =>
        {
            (s.to_ascii_lowercase(), r)
        }
        _ => (String::new(), rest),
    };
    let mut force_query = false;
    let mut raw_query = String::new();
    if let Some((r, q)) = rest.split_once('?') {
        force_query = q.is_empty();
        raw_query = q.to_string();
        rest = r;
    }
    let mut o = Obj::new();
    let mut opaque = String::new();
    let mut host = String::new();
    let mut user = Value::Null;
    let mut omit_host = false;
    let mut path = rest.to_string();
    if !scheme.is_empty() && !rest.starts_with('/') {
        opaque = rest.to_string();
        path = String::new();
    } else if let Some(after) = rest.strip_prefix("//") {
        let (authority, p) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        let authority = match authority.rsplit_once('@') {
            Some((_, h)) => {
                // Go's Userinfo has only unexported fields: it marshals as {}.
                user = Obj::new().done();
                h
            }
            None => authority,
        };
        host = unescape(authority).unwrap_or_else(|| authority.to_string());
        path = p.to_string();
    } else if !scheme.is_empty() && rest.starts_with('/') {
        omit_host = true;
    }
    let decoded_path = unescape(&path).unwrap_or_else(|| path.clone());
    let raw_path = if super::uri::escape_path(&decoded_path) == path {
        String::new()
    } else {
        path.clone()
    };
    let decoded_fragment = unescape(fragment).unwrap_or_else(|| fragment.to_string());
    let raw_fragment = if super::uri::escape_path(&decoded_fragment) == fragment {
        String::new()
    } else {
        fragment.to_string()
    };
    o.set("Scheme", Value::from(scheme));
    o.set("Opaque", Value::from(opaque));
    o.set("User", user);
    o.set("Host", Value::from(host));
    o.set("Path", Value::from(decoded_path));
    o.set("RawPath", Value::from(raw_path));
    o.set("OmitHost", Value::from(omit_host));
    o.set("ForceQuery", Value::from(force_query));
    o.set("RawQuery", Value::from(raw_query));
    o.set("Fragment", Value::from(decoded_fragment));
    o.set("RawFragment", Value::from(raw_fragment));
    o.done()
}

/// One extension: (arcs, critical, value contents, the element as Go's `pkix.Extension`).
struct Extension<'a> {
    arcs: Vec<u64>,
    critical: bool,
    value: &'a [u8],
}

impl Extension<'_> {
    fn json(&self) -> Value {
        let mut o = Obj::new();
        o.set("Id", oid_value(&self.arcs));
        o.set("Critical", Value::from(self.critical));
        o.set("Value", b64(self.value));
        o.done()
    }
}

fn extensions(seq: &[u8]) -> Option<Vec<Extension<'_>>> {
    let mut out = Vec::new();
    for (tag, ext, _) in elements(seq)? {
        if tag != 0x30 {
            return None;
        }
        let parts = elements(ext)?;
        let (oid, critical, value) = match parts.as_slice() {
            [(0x06, oid, _), (0x04, v, _)] => (oid, false, v),
            [(0x06, oid, _), (0x01, c, _), (0x04, v, _)] => {
                (oid, c.first().is_some_and(|b| *b != 0), v)
            }
            _ => return None,
        };
        out.push(Extension {
            arcs: oid_arcs(oid)?,
            critical,
            value,
        });
    }
    Some(out)
}

fn ext_key_usage(arcs: &[u64]) -> Option<i64> {
    Some(match arcs {
        [2, 5, 29, 37, 0] => 0,
        [1, 3, 6, 1, 5, 5, 7, 3, n @ 1..=9] => i64::try_from(*n).ok()?,
        [1, 3, 6, 1, 4, 1, 311, 10, 3, 3] => 10,
        [2, 16, 840, 1, 113730, 4, 1] => 11,
        [1, 3, 6, 1, 4, 1, 311, 2, 1, 22] => 12,
        [1, 3, 6, 1, 4, 1, 311, 61, 1, 1] => 13,
        _ => return None,
    })
}

/// The certificate fields Go fills from extensions, with their zero values first.
fn certificate_extensions(o: &mut Obj, exts: &[Extension<'_>]) -> Option<()> {
    let mut key_usage = 0i64;
    let mut bc_valid = false;
    let mut is_ca = false;
    let mut max_path = 0i64;
    let mut max_path_zero = false;
    let mut alt = AltNames::default();
    let mut ski = Value::Null;
    let mut aki = Value::Null;
    let mut eku = Vec::new();
    let mut unknown_eku = Vec::new();
    let mut ocsp = Vec::new();
    let mut issuers = Vec::new();
    let mut crl = Vec::new();
    let mut policy_ids = Vec::new();
    let mut policies = Vec::new();
    let mut mappings = Vec::new();
    let mut constraints = NameConstraints::default();
    let mut constraints_critical = false;
    let mut counters: BTreeMap<&str, (i64, bool)> = BTreeMap::new();
    let mut unhandled = Vec::new();
    for e in exts {
        let handled = match e.arcs.as_slice() {
            [2, 5, 29, 15] => {
                let (_, bits, _, _) = tlv(e.value).ok()?;
                let data = bits.get(1..).unwrap_or(&[]);
                for i in 0..9 {
                    let byte = data.get(i / 8).copied().unwrap_or(0);
                    if byte & (0x80 >> (i % 8)) != 0 {
                        key_usage |= 1 << i;
                    }
                }
                true
            }
            [2, 5, 29, 19] => {
                let (_, seq, _, _) = tlv(e.value).ok()?;
                bc_valid = true;
                max_path = -1;
                for (tag, v, _) in elements(seq)? {
                    match tag {
                        0x01 => is_ca = v.first().is_some_and(|b| *b != 0),
                        0x02 => {
                            max_path = small_int(v)?;
                            max_path_zero = max_path == 0;
                        }
                        _ => {}
                    }
                }
                true
            }
            [2, 5, 29, 17] => {
                alt = AltNames::read(e.value)?;
                !alt.is_empty()
            }
            [2, 5, 29, 30] => {
                constraints_critical = e.critical;
                constraints.read(e.value)?
            }
            [2, 5, 29, 31] => {
                let (_, seq, _, _) = tlv(e.value).ok()?;
                for (_, dp, _) in elements(seq)? {
                    for (tag, name, _) in elements(dp)? {
                        // distributionPoint [0] { fullName [0] GeneralNames }
                        if tag != 0xa0 {
                            continue;
                        }
                        for (tag, names, _) in elements(name)? {
                            if tag != 0xa0 {
                                continue;
                            }
                            for (tag, uri, _) in elements(names)? {
                                if tag == 0x86 {
                                    crl.push(Value::from(
                                        String::from_utf8_lossy(uri).into_owned(),
                                    ));
                                }
                            }
                        }
                    }
                }
                true
            }
            [2, 5, 29, 35] => {
                let (_, seq, _, _) = tlv(e.value).ok()?;
                for (tag, v, _) in elements(seq)? {
                    if tag == 0x80 {
                        aki = b64(v);
                    }
                }
                true
            }
            [2, 5, 29, 37] => {
                let (_, seq, _, _) = tlv(e.value).ok()?;
                for (tag, v, _) in elements(seq)? {
                    if tag != 0x06 {
                        return None;
                    }
                    let arcs = oid_arcs(v)?;
                    match ext_key_usage(&arcs) {
                        Some(n) => eku.push(Value::from(n)),
                        None => unknown_eku.push(oid_value(&arcs)),
                    }
                }
                true
            }
            [2, 5, 29, 14] => {
                let (_, v, _, _) = tlv(e.value).ok()?;
                ski = b64(v);
                true
            }
            [2, 5, 29, 32] => {
                let (_, seq, _, _) = tlv(e.value).ok()?;
                for (_, info, _) in elements(seq)? {
                    let (_, oid, _, _) = tlv(info).ok()?;
                    let arcs = oid_arcs(oid)?;
                    policy_ids.push(oid_value(&arcs));
                    policies.push(Value::from(oid_text(&arcs)));
                }
                true
            }
            [2, 5, 29, 33] => {
                let (_, seq, _, _) = tlv(e.value).ok()?;
                for (_, pair, _) in elements(seq)? {
                    let parts = elements(pair)?;
                    let [(0x06, a, _), (0x06, b, _)] = parts.as_slice() else {
                        return None;
                    };
                    let mut m = Obj::new();
                    m.set("IssuerDomainPolicy", Value::from(oid_text(&oid_arcs(a)?)));
                    m.set("SubjectDomainPolicy", Value::from(oid_text(&oid_arcs(b)?)));
                    mappings.push(m.done());
                }
                true
            }
            [2, 5, 29, 36] => {
                let (_, seq, _, _) = tlv(e.value).ok()?;
                for (tag, v, _) in elements(seq)? {
                    let n = small_int(v)?;
                    match tag {
                        0x80 => counters.insert("RequireExplicitPolicy", (n, n == 0)),
                        0x81 => counters.insert("InhibitPolicyMapping", (n, n == 0)),
                        _ => None,
                    };
                }
                true
            }
            [2, 5, 29, 54] => {
                let (_, v, _, _) = tlv(e.value).ok()?;
                let n = small_int(v)?;
                counters.insert("InhibitAnyPolicy", (n, n == 0));
                true
            }
            [1, 3, 6, 1, 5, 5, 7, 1, 1] => {
                let (_, seq, _, _) = tlv(e.value).ok()?;
                for (_, desc, _) in elements(seq)? {
                    let parts = elements(desc)?;
                    let [(0x06, method, _), (tag, location, _)] = parts.as_slice() else {
                        return None;
                    };
                    if *tag != 0x86 {
                        continue;
                    }
                    let uri = Value::from(String::from_utf8_lossy(location).into_owned());
                    match oid_arcs(method)?.as_slice() {
                        [1, 3, 6, 1, 5, 5, 7, 48, 1] => ocsp.push(uri),
                        [1, 3, 6, 1, 5, 5, 7, 48, 2] => issuers.push(uri),
                        _ => {}
                    }
                }
                true
            }
            _ => false,
        };
        if e.critical && !handled {
            unhandled.push(oid_value(&e.arcs));
        }
    }
    o.set("KeyUsage", Value::from(key_usage));
    o.set("BasicConstraintsValid", Value::from(bc_valid));
    o.set("IsCA", Value::from(is_ca));
    o.set("MaxPathLen", Value::from(max_path));
    o.set("MaxPathLenZero", Value::from(max_path_zero));
    o.set("SubjectKeyId", ski);
    o.set("AuthorityKeyId", aki);
    o.set("ExtKeyUsage", list(eku));
    o.set("UnknownExtKeyUsage", list(unknown_eku));
    o.set("OCSPServer", list(ocsp));
    o.set("IssuingCertificateURL", list(issuers));
    o.set("CRLDistributionPoints", list(crl));
    o.set("PolicyIdentifiers", list(policy_ids));
    o.set("Policies", list(policies));
    o.set("PolicyMappings", list(mappings));
    for field in [
        "InhibitAnyPolicy",
        "InhibitPolicyMapping",
        "RequireExplicitPolicy",
    ] {
        let (n, zero) = counters.get(field).copied().unwrap_or((0, false));
        o.set(field, Value::from(n));
        o.set(&format!("{field}Zero"), Value::from(zero));
    }
    o.set(
        "PermittedDNSDomainsCritical",
        Value::from(constraints_critical),
    );
    constraints.put(o);
    alt.put(o, true);
    o.set("UnhandledCriticalExtensions", list(unhandled));
    Some(())
}

/// A nameConstraints extension's subtrees, as Go keeps them.
#[derive(Default)]
struct NameConstraints {
    fields: BTreeMap<&'static str, Vec<Value>>,
}

impl NameConstraints {
    /// Whether Go handles every subtree (an unsupported kind leaves the extension unhandled).
    fn read(&mut self, der: &[u8]) -> Option<bool> {
        let (_, seq, _, _) = tlv(der).ok()?;
        let mut handled = true;
        for (tag, subtrees, _) in elements(seq)? {
            let side = match tag {
                0xa0 => "Permitted",
                0xa1 => "Excluded",
                _ => return None,
            };
            for (_, subtree, _) in elements(subtrees)? {
                let (tag, base, _, _) = tlv(subtree).ok()?;
                let text = || Value::from(String::from_utf8_lossy(base).into_owned());
                let (kind, v) = match tag {
                    0x82 => ("DNSDomains", text()),
                    0x81 => ("EmailAddresses", text()),
                    0x86 => ("URIDomains", text()),
                    0x87 => {
                        let half = base.len() / 2;
                        if half != 4 && half != 16 {
                            return None;
                        }
                        let mut net = Obj::new();
                        net.set("IP", Value::from(ip_text(&base[..half])?));
                        net.set("Mask", b64(&base[half..]));
                        ("IPRanges", net.done())
                    }
                    _ => {
                        handled = false;
                        continue;
                    }
                };
                let key: &'static str = match (side, kind) {
                    ("Permitted", "DNSDomains") => "PermittedDNSDomains",
                    ("Permitted", "EmailAddresses") => "PermittedEmailAddresses",
                    ("Permitted", "URIDomains") => "PermittedURIDomains",
                    ("Permitted", _) => "PermittedIPRanges",
                    (_, "DNSDomains") => "ExcludedDNSDomains",
                    (_, "EmailAddresses") => "ExcludedEmailAddresses",
                    (_, "URIDomains") => "ExcludedURIDomains",
                    _ => "ExcludedIPRanges",
                };
                self.fields.entry(key).or_default().push(v);
            }
        }
        Some(handled)
    }

    fn put(mut self, o: &mut Obj) {
        for key in [
            "PermittedDNSDomains",
            "ExcludedDNSDomains",
            "PermittedIPRanges",
            "ExcludedIPRanges",
            "PermittedEmailAddresses",
            "ExcludedEmailAddresses",
            "PermittedURIDomains",
            "ExcludedURIDomains",
        ] {
            o.set(key, list(self.fields.remove(key).unwrap_or_default()));
        }
    }
}

/// The signed part, the signature algorithm and the signature of a signed DER structure.
fn signed(der: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let (tag, outer, _, _) = tlv(der).ok()?;
    if tag != 0x30 {
        return None;
    }
    let parts = elements(outer)?;
    let [(0x30, _, tbs), (0x30, alg, _), (0x03, sig, _)] = parts.as_slice() else {
        return None;
    };
    Some((tbs, alg, sig.get(1..)?))
}

pub(super) fn certificate(der: &[u8]) -> Option<Value> {
    let (tbs_whole, alg, sig) = signed(der)?;
    let (_, tbs, _, _) = tlv(tbs_whole).ok()?;
    let mut fields = elements(tbs)?.into_iter().peekable();
    let mut version = 1i64;
    if let Some((0xa0, v, _)) = fields.peek().copied() {
        let (_, n, _, _) = tlv(v).ok()?;
        version = small_int(n)? + 1;
        fields.next();
    }
    let (0x02, serial, _) = fields.next()? else {
        return None;
    };
    let (0x30, _, _) = fields.next()? else {
        return None;
    };
    let (0x30, _, issuer) = fields.next()? else {
        return None;
    };
    let (0x30, validity, _) = fields.next()? else {
        return None;
    };
    let (0x30, _, subject) = fields.next()? else {
        return None;
    };
    let (0x30, _, spki) = fields.next()? else {
        return None;
    };
    let mut exts = Vec::new();
    for (tag, v, _) in fields {
        if tag == 0xa3 {
            let (_, seq, _, _) = tlv(v).ok()?;
            exts = extensions(seq)?;
        }
    }
    let times = elements(validity)?;
    let [(t1, nb, _), (t2, na, _)] = times.as_slice() else {
        return None;
    };
    let (pk_alg, pk) = public_key(spki)?;
    let mut o = Obj::new();
    o.set("Raw", b64(der));
    o.set("RawTBSCertificate", b64(tbs_whole));
    o.set("RawSubjectPublicKeyInfo", b64(spki));
    o.set("RawSubject", b64(subject));
    o.set("RawIssuer", b64(issuer));
    o.set("Signature", b64(sig));
    o.set("SignatureAlgorithm", Value::from(signature_algorithm(alg)));
    o.set("PublicKeyAlgorithm", Value::from(pk_alg));
    o.set("PublicKey", pk);
    o.set("Version", Value::from(version));
    o.set("SerialNumber", big(serial));
    o.set("Issuer", name(issuer)?);
    o.set("Subject", name(subject)?);
    o.set("NotBefore", time(*t1, nb)?);
    o.set("NotAfter", time(*t2, na)?);
    o.set(
        "Extensions",
        list(exts.iter().map(Extension::json).collect()),
    );
    o.set("ExtraExtensions", Value::Null);
    certificate_extensions(&mut o, &exts)?;
    Some(o.done())
}

const OID_EXTENSION_REQUEST: &[u64] = &[1, 2, 840, 113549, 1, 9, 14];

fn request(der: &[u8]) -> Option<Value> {
    let (info_whole, alg, sig) = signed(der)?;
    let (_, info, _, _) = tlv(info_whole).ok()?;
    let parts = elements(info)?;
    let [
        (0x02, version, _),
        (0x30, _, subject),
        (0x30, _, spki),
        rest @ ..,
    ] = parts.as_slice()
    else {
        return None;
    };
    let mut attributes = Vec::new();
    let mut exts = Vec::new();
    if let Some((0xa0, attrs, _)) = rest.first() {
        for (_, attr, _) in elements(attrs)? {
            let (_, oid, _, values) = tlv(attr).ok()?;
            let arcs = oid_arcs(oid)?;
            let (_, set, _, _) = tlv(values).ok()?;
            // Go keeps an attribute only when its values read as SETs of (type, value) pairs.
            let Some(read) = attribute_values(set) else {
                continue;
            };
            let mut a = Obj::new();
            a.set("Type", oid_value(&arcs));
            a.set("Value", Value::from(read));
            attributes.push(a.done());
            if arcs == OID_EXTENSION_REQUEST {
                for (_, seq, _) in elements(set)? {
                    exts.extend(extensions(seq)?);
                }
            }
        }
    }
    let (pk_alg, pk) = public_key(spki)?;
    let mut o = Obj::new();
    o.set("Raw", b64(der));
    o.set("RawTBSCertificateRequest", b64(info_whole));
    o.set("RawSubjectPublicKeyInfo", b64(spki));
    o.set("RawSubject", b64(subject));
    o.set("Version", Value::from(small_int(version)?));
    o.set("Signature", b64(sig));
    o.set("SignatureAlgorithm", Value::from(signature_algorithm(alg)));
    o.set("PublicKeyAlgorithm", Value::from(pk_alg));
    o.set("PublicKey", pk);
    o.set("Subject", name(subject)?);
    o.set("Attributes", list(attributes));
    o.set(
        "Extensions",
        list(exts.iter().map(Extension::json).collect()),
    );
    o.set("ExtraExtensions", Value::Null);
    let mut alt = AltNames::default();
    for e in &exts {
        if e.arcs == [2, 5, 29, 17] {
            alt = AltNames::read(e.value)?;
        }
    }
    alt.put(&mut o, false);
    Some(o.done())
}

/// An attribute's values as Go's `[][]pkix.AttributeTypeAndValue`, when they read as such.
fn attribute_values(set: &[u8]) -> Option<Vec<Value>> {
    let mut out = Vec::new();
    for (tag, seq, _) in elements(set)? {
        if tag != 0x30 {
            return None;
        }
        let mut inner = Vec::new();
        for (tag, pair, _) in elements(seq)? {
            if tag != 0x30 {
                return None;
            }
            let parts = elements(pair)?;
            let (0x06, oid, _) = *parts.first()? else {
                return None;
            };
            let (vtag, v, _) = *parts.get(1)?;
            let mut atv = Obj::new();
            atv.set("Type", oid_value(&oid_arcs(oid)?));
            atv.set("Value", any_value(vtag, v));
            inner.push(atv.done());
        }
        out.push(Value::from(inner));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_of_big_endian_bytes() {
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0x10, 0x00]), "4096");
        assert_eq!(
            decimal(&[0xff; 16]),
            "340282366920938463463374607431768211455"
        );
        assert_eq!(integer_text(&[0xff]), "-1");
        assert_eq!(integer_text(&[0x80]), "-128");
        assert_eq!(integer_text(&[0x00, 0x80]), "128");
    }

    /// Every truncation and every single-byte change of a real certificate and CSR is read
    /// or refused, never a panic (the DER comes from policy input).
    #[test]
    fn damaged_der_is_refused_without_a_panic() {
        let input: serde_json::Value =
            serde_json::from_str(include_str!("../../../fixtures/opa-diff/input.json"))
                .expect("corpus input");
        for (key, read) in [
            ("odd", certificate as fn(&[u8]) -> Option<Value>),
            ("ca", certificate),
            ("csr2", request),
        ] {
            let pem = input["x509"][key].as_str().expect("PEM in the corpus");
            let (_, der, _) = pem_block(pem.as_bytes()).expect("a PEM block");
            assert!(read(&der).is_some(), "{key} reads");
            for len in 0..der.len() {
                assert!(read(&der[..len]).is_none(), "{key} cut at {len}");
            }
            for i in 0..der.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut bad = der.clone();
                    bad[i] ^= flip;
                    let _ = read(&bad);
                }
            }
        }
    }

    #[test]
    fn oids_decode_to_their_arcs() {
        assert_eq!(
            oid_arcs(&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
            Some(vec![1, 2, 840, 113549, 1, 9, 1])
        );
        assert_eq!(oid_arcs(&[0x55, 0x1d, 0x11]), Some(vec![2, 5, 29, 17]));
        assert_eq!(oid_arcs(&[0x86]), None);
    }
}
