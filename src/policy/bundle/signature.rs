//! Bundle signatures as OPA writes them (`opa sign`): `.signatures.json` holds one compact JWT
//! (RS256 or ES256) whose payload lists every file of the bundle with its SHA-256; JSON files
//! are hashed in canonical form. Verified against the configured PEM public key, `key_id` and
//! `scope`; a file added, removed or changed after signing is refused.
//!
//! Not here: reading the archive (`bundle.rs`).

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, UnparsedPublicKey};
use rustls_pki_types::SubjectPublicKeyInfoDer;
use rustls_pki_types::pem::PemObject;
use serde_json::Value as Json;

use super::error::{BundleError, clean_name, err};
use crate::policy::loader::one_line;

/// The key signed bundles are checked with (`policy.bundle.public_key`).
#[derive(Clone)]
pub struct VerificationKey {
    alg: KeyAlg,
    /// PKCS#1 RSAPublicKey for RSA, the uncompressed point for P-256 (what ring expects).
    key: Vec<u8>,
    key_id: Option<String>,
    scope: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyAlg {
    Rs256,
    Es256,
}

impl KeyAlg {
    fn name(self) -> &'static str {
        match self {
            KeyAlg::Rs256 => "RS256",
            KeyAlg::Es256 => "ES256",
        }
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("alg", &self.alg)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

impl VerificationKey {
    /// Parses a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), RSA or EC P-256.
    pub fn from_pem(
        pem: &[u8],
        key_id: Option<String>,
        scope: Option<String>,
    ) -> Result<Self, BundleError> {
        let spki = SubjectPublicKeyInfoDer::from_pem_slice(pem).map_err(|e| {
            BundleError::Setting(format!(
                "not a PEM public key (-----BEGIN PUBLIC KEY-----): {e}"
            ))
        })?;
        let (alg_id, key) = parse_spki(spki.as_ref()).ok_or_else(|| {
            BundleError::Setting("malformed SubjectPublicKeyInfo in PEM public key".to_string())
        })?;
        let alg = if starts_with_oid(alg_id, OID_RSA) {
            KeyAlg::Rs256
        } else if starts_with_oid(alg_id, OID_EC) && contains(alg_id, OID_P256) {
            KeyAlg::Es256
        } else {
            return Err(BundleError::Setting(
                "unsupported public key: use RSA (RS256) or EC P-256 (ES256)".into(),
            ));
        };
        Ok(Self {
            alg,
            key: key.to_vec(),
            key_id: key_id.filter(|s| !s.is_empty()),
            scope: scope.filter(|s| !s.is_empty()),
        })
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            KeyAlg::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            KeyAlg::Es256 => &signature::ECDSA_P256_SHA256_FIXED,
        };
        UnparsedPublicKey::new(alg, &self.key)
            .verify(message, sig)
            .is_ok()
    }
}

fn starts_with_oid(alg_id: &[u8], oid: &[u8]) -> bool {
    // AlgorithmIdentifier content: OBJECT IDENTIFIER (06 len oid) [params].
    alg_id.len() >= 2 + oid.len() && alg_id[0] == 0x06 && &alg_id[2..2 + oid.len()] == oid
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// One DER TLV: (tag, content, rest).
fn der(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// SubjectPublicKeyInfo → (AlgorithmIdentifier content, subjectPublicKey bits).
fn parse_spki(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let (tag, body, _) = der(spki)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, alg_id, rest) = der(body)?;
    if tag != 0x30 {
        return None;
    }
    let (tag, bits, _) = der(rest)?;
    // A BIT STRING starts with the count of unused bits, always 0 for keys.
    if tag != 0x03 || bits.first() != Some(&0) {
        return None;
    }
    Some((alg_id, &bits[1..]))
}

pub(crate) fn verify_signatures(
    sigs: &[u8],
    files: &BTreeMap<String, Vec<u8>>,
    key: &VerificationKey,
) -> Result<(), BundleError> {
    let doc: Json = serde_json::from_slice(sigs)
        .map_err(|e| err(format!(".signatures.json: {}", one_line(&e.to_string()))))?;
    let list = doc
        .get("signatures")
        .and_then(Json::as_array)
        .ok_or_else(|| err(".signatures.json: missing the signatures list"))?;
    let [jwt] = list.as_slice() else {
        return Err(err(format!(
            ".signatures.json: expected exactly one signature, found {}",
            list.len()
        )));
    };
    let jwt = jwt
        .as_str()
        .ok_or_else(|| err(".signatures.json: a signature must be a JWT string"))?;
    let payload = verify_jwt(jwt, key)?;
    let listed = payload
        .get("files")
        .and_then(Json::as_array)
        .ok_or_else(|| err("bundle signature: the JWT payload has no files list"))?;
    let mut signed: BTreeMap<String, String> = BTreeMap::new();
    for f in listed {
        let name = f.get("name").and_then(Json::as_str).unwrap_or_default();
        let hash = f.get("hash").and_then(Json::as_str).unwrap_or_default();
        let algorithm = f
            .get("algorithm")
            .and_then(Json::as_str)
            .unwrap_or("SHA-256");
        if name.is_empty() || hash.is_empty() {
            return Err(err("bundle signature: a files entry lacks name or hash"));
        }
        if !algorithm.eq_ignore_ascii_case("SHA-256") {
            return Err(err(format!(
                "bundle signature: {name}: unsupported hash algorithm {algorithm} (use SHA-256)"
            )));
        }
        signed.insert(clean_name(name)?, hash.to_ascii_lowercase());
    }
    for (name, content) in files {
        if name == ".signatures.json" {
            continue;
        }
        let Some(expected) = signed.remove(name) else {
            return Err(err(format!(
                "bundle signature: {name} is in the bundle but not in the signature"
            )));
        };
        let actual = file_hash(name, content)?;
        if actual != expected {
            return Err(err(format!(
                "bundle signature: {name}: SHA-256 does not match the signed hash (file tampered)"
            )));
        }
    }
    if let Some(name) = signed.keys().next() {
        return Err(err(format!(
            "bundle signature: {name} is signed but missing from the bundle"
        )));
    }
    Ok(())
}

/// OPA hashes JSON files (`.json`, `.manifest`) in canonical form (sorted keys, compact) and
/// every other file as its bytes.
fn file_hash(name: &str, content: &[u8]) -> Result<String, BundleError> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let digest = if base.ends_with(".json") || base == ".manifest" {
        let doc: Json = serde_json::from_slice(content)
            .map_err(|e| err(format!("{name}: {}", one_line(&e.to_string()))))?;
        let canonical = serde_json::to_vec(&doc).map_err(|e| err(format!("{name}: {e}")))?;
        ring::digest::digest(&ring::digest::SHA256, &canonical)
    } else {
        ring::digest::digest(&ring::digest::SHA256, content)
    };
    Ok(hex(digest.as_ref()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Verifies a compact JWS and returns its payload.
fn verify_jwt(jwt: &str, key: &VerificationKey) -> Result<Json, BundleError> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(err(
            "bundle signature: not a compact JWT (header.payload.signature)",
        ));
    };
    let decode = |part: &str, what: &str| {
        URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| err(format!("bundle signature: JWT {what} is not base64url")))
    };
    let header: Json = serde_json::from_slice(&decode(h, "header")?)
        .map_err(|_| err("bundle signature: JWT header is not JSON"))?;
    let alg = header.get("alg").and_then(Json::as_str).unwrap_or("");
    if alg != key.alg.name() {
        return Err(err(format!(
            "bundle signature: signed with {alg:?} but the configured public key is {}",
            key.alg.name()
        )));
    }
    let sig = decode(s, "signature")?;
    let signing_input = &jwt.as_bytes()[..h.len() + 1 + p.len()];
    if !key.verify(signing_input, &sig) {
        return Err(err(
            "bundle signature: verification failed (signed by another key, or altered)",
        ));
    }
    let payload: Json = serde_json::from_slice(&decode(p, "payload")?)
        .map_err(|_| err("bundle signature: JWT payload is not JSON"))?;
    if let Some(want) = &key.key_id {
        let got = payload
            .get("keyid")
            .or_else(|| header.get("kid"))
            .and_then(Json::as_str);
        if let Some(got) = got {
            if got != want {
                return Err(err(format!(
                    "bundle signature: key id {got:?} is not the configured {want:?}"
                )));
            }
        }
    }
    if let Some(want) = &key.scope {
        let got = payload.get("scope").and_then(Json::as_str).unwrap_or("");
        if got != want {
            return Err(err(format!(
                "bundle signature: scope {got:?} is not the configured {want:?}"
            )));
        }
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_files_hash_in_canonical_form() {
        let a = file_hash("data.json", br#"{"b": 1, "a": [true]}"#);
        let b = file_hash("data.json", br#"{"a":[true],"b":1}"#);
        assert_eq!(a, b);
        assert_ne!(file_hash("x.rego", b"a"), file_hash("x.rego", b"b"));
    }
}
