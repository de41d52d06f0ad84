//! `crypto.x509.parse_rsa_private_key`: a PEM private key (PKCS#1 RSA, SEC1 EC or PKCS#8 of
//! either; the PEM itself may be base64-encoded) as the JWK OPA gives for it. As in OPA, text
//! with no PEM block in it gives `null`, and a PEM block that is not a key is an error.
//!
//! Not here: public keys and certificates (`keys`), other private-key formats.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use regorus::Value;
use serde_json::json;

use super::keys::{self, OID_EC, OID_P256, OID_P384, OID_P521, OID_RSA};
use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "crypto.x509.parse_rsa_private_key",
    arity: 1,
    run: parse_rsa_private_key,
}];

fn parse_rsa_private_key(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let text = args.string(0)?;
    if text.is_empty() {
        return Err(args.error("input PEM data was empty"));
    }
    let decoded;
    let pem = if text.trim_start().starts_with("-----BEGIN") {
        text
    } else {
        match STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
        {
            Some(t) => {
                decoded = t;
                decoded.as_str()
            }
            None => return Ok(Value::Null),
        }
    };
    let Some((kind, block)) = private_key_block(pem) else {
        return Ok(Value::Null);
    };
    let Ok(der) = keys::pem_body(block) else {
        return Ok(Value::Null);
    };
    let jwk = match kind {
        "RSA PRIVATE KEY" => rsa_jwk(&der),
        "EC PRIVATE KEY" => ec_jwk(&der, None),
        _ => pkcs8_jwk(&der),
    }
    .map_err(|m| args.error(m))?;
    Ok(Value::from(jwk))
}

/// The type and text of the first PEM block that holds a private key (public keys and
/// certificates are passed over, as OPA does).
fn private_key_block(mut pem: &str) -> Option<(&str, &str)> {
    loop {
        let start = pem.find("-----BEGIN ")?;
        let rest = &pem[start + "-----BEGIN ".len()..];
        let kind = &rest[..rest.find("-----")?];
        let end_marker = format!("-----END {kind}-----");
        let end = pem[start..].find(&end_marker)? + start + end_marker.len();
        if matches!(kind, "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "PRIVATE KEY") {
            return Some((kind, &pem[start..end]));
        }
        pem = &pem[end..];
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An INTEGER's magnitude without DER's leading zero.
pub(super) fn integer(der: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (tag, value, _, rest) = keys::tlv(der)?;
    if tag != 0x02 {
        return Err("asn1: structure error: tags don't match (INTEGER expected)".into());
    }
    let trimmed = value
        .iter()
        .position(|b| *b != 0)
        .map_or(&value[value.len().saturating_sub(1)..], |i| &value[i..]);
    Ok((trimmed, rest))
}

pub(super) fn sequence(der: &[u8]) -> Result<&[u8], String> {
    match keys::tlv(der)? {
        (0x30, contents, _, _) => Ok(contents),
        _ => Err("asn1: structure error: tags don't match (SEQUENCE expected)".into()),
    }
}

/// PKCS#1 RSAPrivateKey: version, n, e, d, p, q, dp, dq, qi.
pub(super) fn rsa_jwk(der: &[u8]) -> Result<serde_json::Value, String> {
    let mut rest = sequence(der)?;
    let mut parts = Vec::new();
    for _ in 0..9 {
        let (value, next) = integer(rest)?;
        parts.push(b64(value));
        rest = next;
    }
    Ok(json!({
        "kty": "RSA", "n": parts[1], "e": parts[2], "d": parts[3], "p": parts[4],
        "q": parts[5], "dp": parts[6], "dq": parts[7], "qi": parts[8],
    }))
}

/// SEC1 ECPrivateKey: version, the private scalar, [0] curve, [1] public point. In PKCS#8 the
/// curve comes from the algorithm's parameters instead.
pub(super) fn ec_jwk(
    der: &[u8],
    curve_from_pkcs8: Option<&[u8]>,
) -> Result<serde_json::Value, String> {
    let rest = sequence(der)?;
    let (_, rest) = integer(rest)?;
    let (tag, d, _, mut rest) = keys::tlv(rest)?;
    if tag != 0x04 {
        return Err("x509: failed to parse EC private key".into());
    }
    let (mut curve, mut point) = (curve_from_pkcs8, None);
    while !rest.is_empty() {
        let (tag, contents, _, next) = keys::tlv(rest)?;
        match tag {
            0xa0 => curve = Some(keys::tlv(contents)?.1),
            0xa1 => point = Some(keys::tlv(contents)?.1),
            _ => {}
        }
        rest = next;
    }
    let (crv, size) = match curve {
        Some(c) if c == OID_P256 => ("P-256", 32),
        Some(c) if c == OID_P384 => ("P-384", 48),
        Some(c) if c == OID_P521 => ("P-521", 66),
        _ => return Err("x509: unknown elliptic curve".into()),
    };
    // The BIT STRING: no unused bits, then 0x04 || x || y.
    let point = point
        .and_then(|p| p.get(2..))
        .filter(|p| p.len() == 2 * size)
        .ok_or("x509: EC private key without its public point")?;
    let mut scalar = vec![0u8; size.saturating_sub(d.len())];
    scalar.extend_from_slice(d);
    Ok(json!({
        "kty": "EC", "crv": crv, "d": b64(&scalar),
        "x": b64(&point[..size]), "y": b64(&point[size..]),
    }))
}

/// PKCS#8 PrivateKeyInfo: version, algorithm, the key as an OCTET STRING.
pub(super) fn pkcs8_jwk(der: &[u8]) -> Result<serde_json::Value, String> {
    let rest = sequence(der)?;
    let (_, rest) = integer(rest)?;
    let (_, alg, _, rest) = keys::tlv(rest)?;
    let (_, oid, _, params) = keys::tlv(alg)?;
    let (tag, key, _, _) = keys::tlv(rest)?;
    if tag != 0x04 {
        return Err("x509: failed to parse private key".into());
    }
    if oid == OID_RSA {
        return rsa_jwk(key);
    }
    if oid == OID_EC {
        return ec_jwk(key, Some(keys::tlv(params)?.1));
    }
    Err("x509: PKCS#8 wrapping contained an unsupported private key algorithm".into())
}
