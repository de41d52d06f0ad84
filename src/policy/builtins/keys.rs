//! Public keys for `io.jwt.verify_*`: a PEM certificate, a PEM public key, a JWK or a JWK set,
//! read into the forms `ring` verifies with. Only the DER needed to reach the
//! subjectPublicKeyInfo is walked.
//!
//! Not here: private keys, certificate chains or validity (OPA's verify_* checks neither).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

/// A public key as `ring` takes it.
pub enum PublicKey {
    /// PKCS#1 RSAPublicKey DER.
    RsaDer(Vec<u8>),
    /// Modulus and exponent, big-endian.
    RsaParts {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed EC point (0x04 || x || y) and its curve.
    Ec {
        point: Vec<u8>,
        curve: Curve,
    },
    Ed25519(Vec<u8>),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Curve {
    P256,
    P384,
    P521,
}

impl std::fmt::Display for Curve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Curve::P256 => "P-256",
            Curve::P384 => "P-384",
            Curve::P521 => "P-521",
        })
    }
}

pub(super) const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
pub(super) const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
pub(super) const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
pub(super) const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
pub(super) const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

/// Reads the keys in a certificate, public key PEM, JWK or JWK set; an error says why none.
pub fn parse(text: &str) -> Result<Vec<PublicKey>, String> {
    let trimmed = text.trim();
    if trimmed.starts_with("-----BEGIN CERTIFICATE-----") {
        let der = pem_body(trimmed)?;
        return Ok(vec![spki_key(certificate_spki(&der)?)?]);
    }
    if trimmed.starts_with("-----BEGIN PUBLIC KEY-----") {
        let der = pem_body(trimmed)?;
        return Ok(vec![spki_key(&der)?]);
    }
    if trimmed.starts_with("-----BEGIN") {
        return Err("failed to extract a Key from the PEM certificate".into());
    }
    let json: serde_json::Value =
        serde_json::from_str(trimmed).map_err(|_| "failed to parse a JWK key (set)".to_string())?;
    let jwks = match json.get("keys").and_then(|k| k.as_array()) {
        Some(keys) => keys.clone(),
        None => vec![json],
    };
    jwks.iter().map(jwk_key).collect()
}

pub(super) fn pem_body(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    STANDARD
        .decode(body)
        .map_err(|_| "failed to decode the PEM block".to_string())
}

/// One DER element: (tag, contents, the whole element, the bytes after it).
pub(super) type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

pub(super) fn tlv(der: &[u8]) -> Result<Element<'_>, String> {
    let bad = || "malformed DER in the key".to_string();
    let tag = *der.first().ok_or_else(bad)?;
    let first = *der.get(1).ok_or_else(bad)?;
    let (len, head) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(bad());
        }
        let bytes = der.get(2..2 + n).ok_or_else(bad)?;
        (
            bytes
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b)),
            2 + n,
        )
    };
    let end = head.checked_add(len).ok_or_else(bad)?;
    let contents = der.get(head..end).ok_or_else(bad)?;
    Ok((tag, contents, &der[..end], &der[end..]))
}

/// The subjectPublicKeyInfo of an X.509 certificate.
fn certificate_spki(der: &[u8]) -> Result<&[u8], String> {
    let (_, cert, _, _) = tlv(der)?;
    let (_, tbs, _, _) = tlv(cert)?;
    let mut rest = tbs;
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.3;
    }
    // serial, signature algorithm, issuer, validity, subject
    for _ in 0..5 {
        rest = tlv(rest)?.3;
    }
    Ok(tlv(rest)?.2)
}

pub(super) fn spki_key(spki: &[u8]) -> Result<PublicKey, String> {
    let (_, seq, _, _) = tlv(spki)?;
    let (_, alg, _, after_alg) = tlv(seq)?;
    let (_, oid, _, params) = tlv(alg)?;
    let (tag, bits, _, _) = tlv(after_alg)?;
    if tag != 0x03 || bits.first() != Some(&0) {
        return Err("malformed public key".into());
    }
    let key = bits[1..].to_vec();
    if oid == OID_RSA {
        return Ok(PublicKey::RsaDer(key));
    }
    if oid == OID_ED25519 {
        return Ok(PublicKey::Ed25519(key));
    }
    if oid == OID_EC {
        let (_, curve, _, _) = tlv(params)?;
        let curve = match curve {
            c if c == OID_P256 => Curve::P256,
            c if c == OID_P384 => Curve::P384,
            c if c == OID_P521 => Curve::P521,
            _ => return Err("unsupported elliptic curve".into()),
        };
        if !super::ec::on_curve(curve, &key) {
            return Err("x509: invalid elliptic curve public key".into());
        }
        return Ok(PublicKey::Ec { point: key, curve });
    }
    Err("unsupported public key algorithm".into())
}

fn jwk_key(jwk: &serde_json::Value) -> Result<PublicKey, String> {
    let field = |name: &str| -> Result<Vec<u8>, String> {
        let s = jwk
            .get(name)
            .and_then(|v| v.as_str())
            .ok_or_else(|| format!("JWK has no {name}"))?;
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| format!("JWK {name} is not base64url"))
    };
    match jwk.get("kty").and_then(|v| v.as_str()) {
        Some("RSA") => Ok(PublicKey::RsaParts {
            n: field("n")?,
            e: field("e")?,
        }),
        Some("EC") => {
            let curve = match jwk.get("crv").and_then(|v| v.as_str()) {
                Some("P-256") => Curve::P256,
                Some("P-384") => Curve::P384,
                Some("P-521") => Curve::P521,
                _ => return Err("unsupported elliptic curve".into()),
            };
            // Go's jwk checks both before it takes the key, and refuses it, not fails it.
            let size = super::ec::coordinate_size(curve);
            let mut point = vec![0x04];
            for name in ["x", "y"] {
                let v = field(name)?;
                if v.len() != size {
                    return Err(format!(
                        "invalid {name:?} length ({}) for curve {curve}",
                        v.len()
                    ));
                }
                point.extend(v);
            }
            if !super::ec::on_curve(curve, &point) {
                return Err(format!(
                    "invalid ECDSA public key: {curve} point not on curve"
                ));
            }
            Ok(PublicKey::Ec { point, curve })
        }
        Some("OKP") => Ok(PublicKey::Ed25519(field("x")?)),
        _ => Err("unsupported JWK key type".into()),
    }
}
