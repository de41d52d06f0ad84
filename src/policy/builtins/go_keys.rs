//! `crypto.parse_private_keys` and `crypto.x509.parse_keypair`: private keys as OPA gives them,
//! which is Go's `rsa.PrivateKey` / `ecdsa.PrivateKey` / `ed25519.PrivateKey` marshalled to JSON
//! (big integers as numbers, an Ed25519 key as base64 of seed and public key), and a
//! certificate with its key as Go's `tls.Certificate` (DER certificates, the key, the parsed
//! leaf). The DER is read by `private_keys` (which gives JWKs) and `x509`.
//!
//! Not here: JWK output (`crypto.x509.parse_rsa_private_key`, `private_keys`).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use regorus::Value;

use super::keys;
use super::private_keys::{ec_jwk, integer, pkcs8_jwk, rsa_jwk, sequence};
use super::x509::{certificate, pem_block, std_base64, unsigned_big};
use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "crypto.parse_private_keys",
        arity: 1,
        run: parse_private_keys,
    },
    Builtin {
        name: "crypto.x509.parse_keypair",
        arity: 2,
        run: parse_keypair,
    },
];

const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// More keys than this in one call are refused.
const MAX_KEYS: usize = 1024;

fn object(fields: Vec<(&str, Value)>) -> Value {
    Value::from(
        fields
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect::<std::collections::BTreeMap<_, _>>(),
    )
}

/// A JWK field (base64url, big-endian) as a Go big integer.
fn jwk_big(jwk: &serde_json::Value, name: &str) -> Result<Value, String> {
    let text = jwk[name].as_str().ok_or("malformed private key")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| "malformed private key".to_string())?;
    Ok(unsigned_big(&bytes))
}

/// Go's struct for a key that `private_keys` read as a JWK.
fn from_jwk(jwk: &serde_json::Value) -> Result<Value, String> {
    let b = |name: &str| jwk_big(jwk, name);
    match jwk["kty"].as_str() {
        Some("RSA") => {
            let e = URL_SAFE_NO_PAD
                .decode(jwk["e"].as_str().unwrap_or(""))
                .map_err(|_| "malformed private key".to_string())?;
            if e.len() > 4 {
                return Err("crypto/rsa: invalid public exponent".into());
            }
            let e = e.iter().fold(0u64, |acc, x| (acc << 8) | u64::from(*x));
            Ok(object(vec![
                ("N", b("n")?),
                ("E", Value::from(e)),
                ("D", b("d")?),
                ("Primes", Value::from(vec![b("p")?, b("q")?])),
                (
                    "Precomputed",
                    object(vec![
                        ("Dp", b("dp")?),
                        ("Dq", b("dq")?),
                        ("Qinv", b("qi")?),
                        ("CRTValues", Value::from(Vec::<Value>::new())),
                    ]),
                ),
            ]))
        }
        Some("EC") => Ok(object(vec![
            ("Curve", object(vec![])),
            ("X", b("x")?),
            ("Y", b("y")?),
            ("D", b("d")?),
        ])),
        _ => Err("x509: unsupported private key".into()),
    }
}

/// An Ed25519 PKCS#8 key as Go's `ed25519.PrivateKey`: seed then public key, in base64.
fn ed25519(der: &[u8]) -> Result<Option<Value>, String> {
    let rest = sequence(der)?;
    let (_, rest) = integer(rest)?;
    let (_, alg, _, rest) = keys::tlv(rest)?;
    let (_, oid, _, _) = keys::tlv(alg)?;
    if oid != OID_ED25519 {
        return Ok(None);
    }
    let (_, outer, _, _) = keys::tlv(rest)?;
    let (tag, seed, _, _) = keys::tlv(outer)?;
    if tag != 0x04 || seed.len() != 32 {
        return Err("x509: invalid Ed25519 private key".into());
    }
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(seed)
        .map_err(|_| "x509: invalid Ed25519 private key".to_string())?;
    let mut bytes = seed.to_vec();
    bytes.extend_from_slice(ring::signature::KeyPair::public_key(&pair).as_ref());
    Ok(Some(Value::from(STANDARD.encode(bytes))))
}

/// A PKCS#1, PKCS#8 or SEC1 key by its PEM type, as Go parses it.
fn go_key(kind: &str, der: &[u8]) -> Result<Value, String> {
    match kind {
        "RSA PRIVATE KEY" => from_jwk(&rsa_jwk(der)?),
        "EC PRIVATE KEY" => from_jwk(&ec_jwk(der, None)?),
        _ => match ed25519(der)? {
            Some(v) => Ok(v),
            None => from_jwk(&pkcs8_jwk(der)?),
        },
    }
}

/// Go's `parsePrivateKey` in `crypto/tls`: PKCS#1, then PKCS#8, then SEC1, whatever the type.
fn any_key(der: &[u8]) -> Result<Value, String> {
    go_key("RSA PRIVATE KEY", der)
        .or_else(|_| go_key("PRIVATE KEY", der))
        .or_else(|_| go_key("EC PRIVATE KEY", der))
        .map_err(|_| "tls: failed to parse private key".to_string())
}

fn parse_private_keys(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let text = args.string(0)?;
    if text.is_empty() {
        return Ok(Value::Null);
    }
    // Base64 of PEM is read as the PEM it holds.
    let decoded = STANDARD.decode(text).ok();
    let mut rest: &[u8] = decoded.as_deref().unwrap_or(text.as_bytes());
    let mut out = Vec::new();
    while let Some((kind, der, after)) = pem_block(rest) {
        if matches!(
            kind.as_str(),
            "RSA PRIVATE KEY" | "PRIVATE KEY" | "EC PRIVATE KEY"
        ) {
            if out.len() == MAX_KEYS {
                return Err(args.error(format!("more than {MAX_KEYS} keys")));
            }
            out.push(go_key(&kind, &der).map_err(|m| args.error(m))?);
        }
        rest = after;
    }
    Ok(Value::from(out))
}

/// PEM text as given, or the PEM or DER that base64 text holds.
fn pem_or_base64(args: &Args<'_>, text: &str) -> Result<Vec<u8>, BuiltinError> {
    if text.starts_with("-----BEGIN") {
        Ok(text.as_bytes().to_vec())
    } else {
        std_base64(args, text)
    }
}

fn parse_keypair(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let cert_text = pem_or_base64(args, args.string(0)?)?;
    let key_text = pem_or_base64(args, args.string(1)?)?;
    // DER is taken for one certificate, as OPA wraps it into a PEM block.
    let mut certs = Vec::new();
    if cert_text.starts_with(b"-----BEGIN") {
        let mut rest = cert_text.as_slice();
        while let Some((kind, der, after)) = pem_block(rest) {
            if kind == "CERTIFICATE" {
                certs.push(der);
            }
            rest = after;
        }
    } else {
        certs.push(cert_text);
    }
    if certs.is_empty() {
        return Err(args.error("tls: failed to find any PEM data in certificate input"));
    }
    let mut rest = key_text.as_slice();
    let mut key_der = None;
    while let Some((kind, der, after)) = pem_block(rest) {
        if kind == "PRIVATE KEY" || kind.ends_with(" PRIVATE KEY") {
            key_der = Some(der);
            break;
        }
        rest = after;
    }
    let key_der =
        key_der.ok_or_else(|| args.error("tls: failed to find any PEM data in key input"))?;
    let key = any_key(&key_der).map_err(|m| args.error(m))?;
    let leaf = certificate(&certs[0]).ok_or_else(|| args.error("x509: malformed certificate"))?;
    matches_leaf(&leaf, &key).map_err(|m| args.error(m))?;
    // Go's own Certificate: URIStrings is OPA's addition to parse_certificates only.
    let leaf = match &leaf {
        Value::Object(o) => Value::from(
            o.iter()
                .filter(|(k, _)| **k != Value::from("URIStrings"))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
        other => other.clone(),
    };
    Ok(object(vec![
        (
            "Certificate",
            Value::from(
                certs
                    .iter()
                    .map(|c| Value::from(STANDARD.encode(c)))
                    .collect::<Vec<_>>(),
            ),
        ),
        ("PrivateKey", key),
        ("OCSPStaple", Value::Null),
        ("SignedCertificateTimestamps", Value::Null),
        ("SupportedSignatureAlgorithms", Value::Null),
        ("Leaf", leaf),
    ]))
}

/// Go's check that the key belongs to the leaf's public key.
fn matches_leaf(leaf: &Value, key: &Value) -> Result<(), String> {
    let public = &leaf["PublicKey"];
    let algorithm = match &leaf["PublicKeyAlgorithm"] {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    };
    let same = match (key, algorithm) {
        (Value::Object(_), 1) => public["N"] == key["N"] && public["E"] == key["E"],
        (Value::Object(_), 3) if key["N"] == Value::Undefined => {
            public["X"] == key["X"] && public["Y"] == key["Y"]
        }
        (Value::String(k), 4) => {
            let key_pub = STANDARD
                .decode(k.as_bytes())
                .ok()
                .and_then(|b| b.get(32..).map(<[u8]>::to_vec));
            let leaf_pub = match public {
                Value::String(p) => STANDARD.decode(p.as_bytes()).ok(),
                _ => None,
            };
            key_pub.is_some() && key_pub == leaf_pub
        }
        _ => return Err("tls: private key type does not match public key type".into()),
    };
    if same {
        Ok(())
    } else {
        Err("tls: private key does not match public key".into())
    }
}
