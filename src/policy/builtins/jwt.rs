//! `io.jwt.*`: decoding, signature verification (HS, RS, PS, ES256/384, EdDSA with `ring`;
//! ES512 with `ec`, as `ring` has no P-521) and signing (all but ES512), with OPA's argument
//! forms and errors.
//!
//! Not here: `io.jwt.decode_verify` (`jwt_claims`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use regorus::Value;
use ring::{hmac, signature};

use super::keys::{self, Curve, PublicKey};
use super::{Args, Builtin, BuiltinError, hex, to_json};

/// Longer tokens are refused before any decoding (OPA sets no limit; 1 MiB is far past any real JWT).
const MAX_TOKEN: usize = 1 << 20;

macro_rules! verify {
    ($name:literal, $alg:expr) => {
        Builtin {
            name: $name,
            arity: 2,
            run: |a| verify(a, $alg),
        }
    };
}

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "io.jwt.decode",
        arity: 1,
        run: decode,
    },
    verify!("io.jwt.verify_hs256", Alg::Hs(hmac::HMAC_SHA256)),
    verify!("io.jwt.verify_hs384", Alg::Hs(hmac::HMAC_SHA384)),
    verify!("io.jwt.verify_hs512", Alg::Hs(hmac::HMAC_SHA512)),
    verify!("io.jwt.verify_rs256", Alg::Rsa(Rsa::Pkcs256)),
    verify!("io.jwt.verify_rs384", Alg::Rsa(Rsa::Pkcs384)),
    verify!("io.jwt.verify_rs512", Alg::Rsa(Rsa::Pkcs512)),
    verify!("io.jwt.verify_ps256", Alg::Rsa(Rsa::Pss256)),
    verify!("io.jwt.verify_ps384", Alg::Rsa(Rsa::Pss384)),
    verify!("io.jwt.verify_ps512", Alg::Rsa(Rsa::Pss512)),
    verify!("io.jwt.verify_es256", Alg::Ec(Curve::P256)),
    verify!("io.jwt.verify_es384", Alg::Ec(Curve::P384)),
    verify!("io.jwt.verify_es512", Alg::Ec(Curve::P521)),
    verify!("io.jwt.verify_eddsa", Alg::EdDsa),
    Builtin {
        name: "io.jwt.encode_sign_raw",
        arity: 3,
        run: encode_sign_raw,
    },
    Builtin {
        name: "io.jwt.encode_sign",
        arity: 3,
        run: encode_sign,
    },
];

#[derive(Clone, Copy)]
pub(super) enum Rsa {
    Pkcs256,
    Pkcs384,
    Pkcs512,
    Pss256,
    Pss384,
    Pss512,
}

pub(super) enum Alg {
    Hs(hmac::Algorithm),
    Rsa(Rsa),
    Ec(Curve),
    EdDsa,
}

/// The three parts of a compact JWS, decoded where they are base64url.
pub(super) struct Token<'a> {
    pub signed: &'a str,
    pub header: Vec<u8>,
    pub payload: Vec<u8>,
    pub signature: Vec<u8>,
}

fn b64(args: &Args<'_>, part: &str) -> Result<Vec<u8>, BuiltinError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| args.error("failed to decode JWT: illegal base64 data"))
}

pub(super) fn split<'a>(args: &Args<'_>, token: &'a str) -> Result<Token<'a>, BuiltinError> {
    if token.len() > MAX_TOKEN {
        return Err(args.error("JWT is longer than 1 MiB"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() == 5 {
        return Err(args.error("JWE is not supported"));
    }
    if parts.len() != 3 {
        return Err(args.error(
            "encoded JWT must have 3 sections, found ".to_string() + &parts.len().to_string(),
        ));
    }
    let signed_len = parts[0].len() + 1 + parts[1].len();
    Ok(Token {
        signed: &token[..signed_len],
        header: b64(args, parts[0])?,
        payload: b64(args, parts[1])?,
        signature: b64(args, parts[2])?,
    })
}

pub(super) fn json_object(
    args: &Args<'_>,
    bytes: &[u8],
    what: &str,
) -> Result<Value, BuiltinError> {
    let doc: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| args.error(format!("JWT {what} is not valid JSON")))?;
    if !doc.is_object() {
        return Err(args.error(format!("JWT {what} must be a JSON object")));
    }
    Ok(Value::from(doc))
}

fn decode(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let token = split(args, args.string(0)?)?;
    let header = json_object(args, &token.header, "header")?;
    let payload = json_object(args, &token.payload, "payload")?;
    Ok(Value::from(vec![
        header,
        payload,
        Value::from(hex(&token.signature)),
    ]))
}

fn verify(args: &Args<'_>, alg: Alg) -> Result<Value, BuiltinError> {
    let token = split(args, args.string(0)?)?;
    let secret = args.string(1)?;
    let msg = token.signed.as_bytes();
    let sig = &token.signature;
    if let Alg::Hs(h) = alg {
        let key = hmac::Key::new(h, secret.as_bytes());
        return Ok(Value::from(hmac::verify(&key, msg, sig).is_ok()));
    }
    let keys = keys::parse(secret).map_err(|m| args.error(m))?;
    let ok = keys.iter().any(|k| check(&alg, k, msg, sig));
    Ok(Value::from(ok))
}

pub(super) fn check(alg: &Alg, key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    match (alg, key) {
        (Alg::Rsa(r), PublicKey::RsaDer(der)) => {
            signature::UnparsedPublicKey::new(rsa_params(*r), der)
                .verify(msg, sig)
                .is_ok()
        }
        (Alg::Rsa(r), PublicKey::RsaParts { n, e }) => signature::RsaPublicKeyComponents { n, e }
            .verify(rsa_params(*r), msg, sig)
            .is_ok(),
        (Alg::Ec(want), PublicKey::Ec { point, curve }) if want == curve => {
            let params: &'static signature::EcdsaVerificationAlgorithm = match curve {
                Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
                Curve::P521 => return super::ec::verify(point, msg, sig),
            };
            signature::UnparsedPublicKey::new(params, point)
                .verify(msg, sig)
                .is_ok()
        }
        (Alg::EdDsa, PublicKey::Ed25519(k)) => {
            signature::UnparsedPublicKey::new(&signature::ED25519, k)
                .verify(msg, sig)
                .is_ok()
        }
        _ => false,
    }
}

fn rsa_params(r: Rsa) -> &'static signature::RsaParameters {
    match r {
        Rsa::Pkcs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        Rsa::Pkcs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        Rsa::Pkcs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        Rsa::Pss256 => &signature::RSA_PSS_2048_8192_SHA256,
        Rsa::Pss384 => &signature::RSA_PSS_2048_8192_SHA384,
        Rsa::Pss512 => &signature::RSA_PSS_2048_8192_SHA512,
    }
}

/// Signs `header.payload` (both already JSON text) with a private JWK: HMAC (`oct`), RSA
/// (PKCS#1 v1.5 and PSS), ECDSA P-256/P-384 or Ed25519, as the header's `alg` asks. ES512 is
/// refused: `ring` cannot sign on P-521.
fn sign(
    args: &Args<'_>,
    header: &str,
    payload: &str,
    key: &serde_json::Value,
) -> Result<Value, BuiltinError> {
    let head: serde_json::Value =
        serde_json::from_str(header).map_err(|_| args.error("JWT header is not valid JSON"))?;
    let alg = head
        .get("alg")
        .and_then(|a| a.as_str())
        .ok_or_else(|| args.error("JWT header has no alg"))?;
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(payload)
    );
    let field = |name: &str| -> Result<Vec<u8>, BuiltinError> {
        let text = key
            .get(name)
            .and_then(|k| k.as_str())
            .ok_or_else(|| args.error(format!("the JWK has no {name}")))?;
        b64(args, text)
    };
    let kty = key.get("kty").and_then(|k| k.as_str()).unwrap_or("");
    let wrong_key = |wanted: &str| {
        args.error(format!(
            "invalid key type {kty} for {alg}: a {wanted} private key is required"
        ))
    };
    let rng = ring::rand::SystemRandom::new();
    let msg = signed.as_bytes();
    let sig: Vec<u8> = match alg {
        "HS256" | "HS384" | "HS512" => {
            if kty != "oct" {
                return Err(wrong_key("oct"));
            }
            let h = match alg {
                "HS256" => hmac::HMAC_SHA256,
                "HS384" => hmac::HMAC_SHA384,
                _ => hmac::HMAC_SHA512,
            };
            hmac::sign(&hmac::Key::new(h, &field("k")?), msg)
                .as_ref()
                .to_vec()
        }
        "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" => {
            if kty != "RSA" || key.get("d").is_none() {
                return Err(wrong_key("RSA"));
            }
            let (n, e, d) = (field("n")?, field("e")?, field("d")?);
            let (p, q, dp, dq, qi) = (
                field("p")?,
                field("q")?,
                field("dp")?,
                field("dq")?,
                field("qi")?,
            );
            let pair = signature::RsaKeyPair::from_components(&ring::rsa::KeyPairComponents {
                public_key: ring::rsa::PublicKeyComponents { n: &n, e: &e },
                d: &d,
                p: &p,
                q: &q,
                dP: &dp,
                dQ: &dq,
                qInv: &qi,
            })
            .map_err(|e| args.error(format!("the RSA key is not valid: {e}")))?;
            let padding: &'static dyn signature::RsaEncoding = match alg {
                "RS256" => &signature::RSA_PKCS1_SHA256,
                "RS384" => &signature::RSA_PKCS1_SHA384,
                "RS512" => &signature::RSA_PKCS1_SHA512,
                "PS256" => &signature::RSA_PSS_SHA256,
                "PS384" => &signature::RSA_PSS_SHA384,
                _ => &signature::RSA_PSS_SHA512,
            };
            let mut out = vec![0; pair.public().modulus_len()];
            pair.sign(padding, &rng, msg, &mut out)
                .map_err(|_| args.error("RSA signing failed"))?;
            out
        }
        "ES256" | "ES384" => {
            let (curve, params): (&str, &'static signature::EcdsaSigningAlgorithm) = match alg {
                "ES256" => ("P-256", &signature::ECDSA_P256_SHA256_FIXED_SIGNING),
                _ => ("P-384", &signature::ECDSA_P384_SHA384_FIXED_SIGNING),
            };
            if kty != "EC" || key.get("d").is_none() {
                return Err(wrong_key("ECDSA"));
            }
            if key.get("crv").and_then(|c| c.as_str()) != Some(curve) {
                return Err(args.error(format!("{alg} needs a key on {curve}")));
            }
            let mut point = vec![0x04];
            point.extend(field("x")?);
            point.extend(field("y")?);
            let pair = signature::EcdsaKeyPair::from_private_key_and_public_key(
                params,
                &field("d")?,
                &point,
                &rng,
            )
            .map_err(|e| args.error(format!("the ECDSA key is not valid: {e}")))?;
            pair.sign(&rng, msg)
                .map_err(|_| args.error("ECDSA signing failed"))?
                .as_ref()
                .to_vec()
        }
        "EdDSA" => {
            if kty != "OKP" || key.get("d").is_none() {
                return Err(wrong_key("Ed25519"));
            }
            let pair =
                signature::Ed25519KeyPair::from_seed_and_public_key(&field("d")?, &field("x")?)
                    .map_err(|e| args.error(format!("the Ed25519 key is not valid: {e}")))?;
            pair.sign(msg).as_ref().to_vec()
        }
        other => {
            return Err(args.error(format!("signing with {other} is not supported by sluice")));
        }
    };
    Ok(Value::from(format!(
        "{signed}.{}",
        URL_SAFE_NO_PAD.encode(sig)
    )))
}

fn encode_sign_raw(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let key: serde_json::Value = serde_json::from_str(args.string(2)?)
        .map_err(|_| args.error("the key must be a JWK in JSON"))?;
    sign(args, args.string(0)?, args.string(1)?, &key)
}

fn encode_sign(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let header = serde_json::Value::Object(args.object(0)?).to_string();
    let payload = serde_json::Value::Object(args.object(1)?).to_string();
    let key = to_json(args.value(2));
    sign(args, &header, &payload, &key)
}
