//! `io.jwt.decode_verify`: a JWT's signature (the algorithm its header names, with the `cert`
//! or `secret` constraint) and its claims (`exp`, `nbf` against `time` or now, `iss`, `aud`,
//! `alg`) checked as OPA checks them: `[true, header, payload]`, or `[false, {}, {}]`.
//!
//! Not here: decoding and the signature algorithms themselves (`jwt`), keys (`keys`).

use regorus::Value;
use ring::hmac;

use super::jwt::{self, Alg, Rsa};
use super::keys::{self, Curve};
use super::{Args, Builtin, BuiltinError};

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "io.jwt.decode_verify",
    arity: 2,
    run: decode_verify,
}];

/// The constraints object, checked for OPA's keys and types.
struct Constraints {
    cert: Option<String>,
    secret: Option<String>,
    alg: Option<String>,
    iss: Option<String>,
    aud: Option<String>,
    /// Nanoseconds since the epoch.
    time: f64,
}

fn constraints(args: &Args<'_>) -> Result<Constraints, BuiltinError> {
    let object = args.object(1)?;
    let mut c = Constraints {
        cert: None,
        secret: None,
        alg: None,
        iss: None,
        aud: None,
        time: now_ns(),
    };
    for (key, value) in &object {
        let text = || {
            value
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| args.error(format!("{key} constraint: must be a string")))
        };
        match key.as_str() {
            "cert" => c.cert = Some(text()?),
            "secret" => c.secret = Some(text()?),
            "alg" => c.alg = Some(text()?),
            "iss" => c.iss = Some(text()?),
            "aud" => c.aud = Some(text()?),
            "time" => {
                c.time = value
                    .as_f64()
                    .ok_or_else(|| args.error("token time constraint: must be a number"))?;
            }
            other => {
                return Err(args.error(format!("unknown token validation constraint: {other}")));
            }
        }
    }
    match (&c.cert, &c.secret) {
        (None, None) => Err(args.error("no key constraint")),
        (Some(_), Some(_)) => Err(args.error("duplicate key constraints")),
        _ => Ok(c),
    }
}

fn now_ns() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_nanos() as f64)
}

/// The algorithm a header's `alg` names, if sluice verifies it.
fn algorithm(name: &str) -> Option<Alg> {
    Some(match name {
        "HS256" => Alg::Hs(hmac::HMAC_SHA256),
        "HS384" => Alg::Hs(hmac::HMAC_SHA384),
        "HS512" => Alg::Hs(hmac::HMAC_SHA512),
        "RS256" => Alg::Rsa(Rsa::Pkcs256),
        "RS384" => Alg::Rsa(Rsa::Pkcs384),
        "RS512" => Alg::Rsa(Rsa::Pkcs512),
        "PS256" => Alg::Rsa(Rsa::Pss256),
        "PS384" => Alg::Rsa(Rsa::Pss384),
        "PS512" => Alg::Rsa(Rsa::Pss512),
        "ES256" => Alg::Ec(Curve::P256),
        "ES384" => Alg::Ec(Curve::P384),
        "ES512" => Alg::Ec(Curve::P521),
        "EdDSA" => Alg::EdDsa,
        _ => return None,
    })
}

fn decode_verify(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let c = constraints(args)?;
    let token = jwt::split(args, args.string(0)?)?;
    let header = jwt::json_object(args, &token.header, "header")?;
    let head = super::to_json(&header);
    let refused = || {
        Ok(Value::from(vec![
            Value::from(false),
            Value::new_object(),
            Value::new_object(),
        ]))
    };
    let alg_name = head.get("alg").and_then(|a| a.as_str()).unwrap_or("");
    if c.alg.as_deref().is_some_and(|want| want != alg_name) {
        return refused();
    }
    let Some(alg) = algorithm(alg_name) else {
        return refused();
    };
    let msg = token.signed.as_bytes();
    let signed = match (&alg, &c.secret, &c.cert) {
        (Alg::Hs(h), Some(secret), _) => hmac::verify(
            &hmac::Key::new(*h, secret.as_bytes()),
            msg,
            &token.signature,
        )
        .is_ok(),
        (Alg::Hs(_), None, _) => false,
        (_, _, Some(cert)) => {
            let keys = keys::parse(cert).map_err(|m| args.error(m))?;
            keys.iter()
                .any(|k| jwt::check(&alg, k, msg, &token.signature))
        }
        (_, _, None) => false,
    };
    if !signed {
        return refused();
    }
    let payload = jwt::json_object(args, &token.payload, "payload")?;
    if !claims_hold(args, &super::to_json(&payload), &c)? {
        return refused();
    }
    Ok(Value::from(vec![Value::from(true), header, payload]))
}

/// `exp` (valid strictly before), `nbf` (valid from), `iss` (equal) and `aud` (contains).
fn claims_hold(
    args: &Args<'_>,
    payload: &serde_json::Value,
    c: &Constraints,
) -> Result<bool, BuiltinError> {
    for (claim, expired) in [("exp", true), ("nbf", false)] {
        let Some(v) = payload.get(claim) else {
            continue;
        };
        let seconds = v
            .as_f64()
            .ok_or_else(|| args.error(format!("{claim} value must be a number")))?;
        let at = seconds * 1e9;
        if (expired && c.time >= at) || (!expired && c.time < at) {
            return Ok(false);
        }
    }
    if let Some(iss) = &c.iss {
        match payload.get("iss") {
            None => return Ok(false),
            Some(serde_json::Value::String(s)) if s == iss => {}
            Some(serde_json::Value::String(_)) => return Ok(false),
            Some(_) => return Err(args.error("iss claim must be a string")),
        }
    }
    let aud = payload.get("aud");
    Ok(match (aud, &c.aud) {
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some(serde_json::Value::String(s)), Some(want)) => s == want,
        (Some(serde_json::Value::Array(items)), Some(want)) => {
            items.iter().any(|i| i.as_str() == Some(want.as_str()))
        }
        (Some(_), Some(_)) => false,
    })
}
