//! `providers.aws.sign_req`: AWS Signature Version 4 for a request object, as OPA signs it
//! (canonical request, string to sign, HMAC-SHA256 key chain with `ring`), returning the
//! request with `Authorization`, `host`, `x-amz-date` and, for S3, `x-amz-content-sha256`
//! (and `x-amz-security-token` with a session token). Signing sends nothing anywhere: the
//! policy only gets headers back.
//!
//! Not here: SigV4a; as in OPA 1.20, `aws_signing_version` is not read and the signature is v4.

use std::collections::BTreeMap;

use regorus::Value;
use ring::{digest, hmac};

use super::{Args, Builtin, BuiltinError, hex, uri};

pub static BUILTINS: &[Builtin] = &[Builtin {
    name: "providers.aws.sign_req",
    arity: 3,
    run: sign_req,
}];

struct Config {
    access_key: String,
    secret_key: String,
    service: String,
    region: String,
    session_token: Option<String>,
    unsigned_payload: bool,
}

fn config(args: &Args<'_>) -> Result<Config, BuiltinError> {
    let object = args.object(1)?;
    let text = |key: &str| object.get(key).and_then(|v| v.as_str()).map(str::to_string);
    let required = [
        "aws_access_key",
        "aws_secret_access_key",
        "aws_service",
        "aws_region",
    ];
    let missing: Vec<String> = required
        .iter()
        .filter(|k| text(k).is_none())
        .map(|k| format!("{k:?}"))
        .collect();
    if !missing.is_empty() {
        return Err(args.error(format!(
            "operand 2 missing required AWS config parameters(s): {{{}}}",
            missing.join(", ")
        )));
    }
    Ok(Config {
        access_key: text("aws_access_key").unwrap_or_default(),
        secret_key: text("aws_secret_access_key").unwrap_or_default(),
        service: text("aws_service").unwrap_or_default(),
        region: text("aws_region").unwrap_or_default(),
        session_token: text("aws_session_token"),
        unsigned_payload: object
            .get("disable_payload_signing")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
    })
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

fn hmac_sha256(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// `20130524T000000Z` for nanoseconds since the epoch.
fn amz_date(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn sign_req(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let mut request = args.object(0)?;
    let c = config(args)?;
    let date = amz_date(args.number_i64(2)?);
    let url_text = request
        .get("url")
        .and_then(|u| u.as_str())
        .ok_or_else(|| args.error("operand 1 must have a url"))?;
    let url = uri::parse(url_text).map_err(|e| args.error(format!("parse {url_text:?}: {e}")))?;
    let payload = payload_hash(&request, &c);
    let mut headers: serde_json::Map<String, serde_json::Value> = match request.get("headers") {
        Some(serde_json::Value::Object(h)) => h.clone(),
        _ => serde_json::Map::new(),
    };
    let mut added = vec![("host", url.host.clone()), ("x-amz-date", date.clone())];
    if c.service == "s3" {
        added.push(("x-amz-content-sha256", payload.clone()));
    }
    if let Some(token) = &c.session_token {
        added.push(("x-amz-security-token", token.clone()));
    }
    for (k, v) in added {
        headers.insert(k.to_string(), serde_json::Value::String(v));
    }
    // Signed as written: OPA does not upper-case the method.
    let method = request
        .get("method")
        .and_then(|m| m.as_str())
        .unwrap_or("GET")
        .to_string();
    let authorization = authorization(&c, &date, &method, &url, &headers, &payload);
    headers.insert(
        "Authorization".into(),
        serde_json::Value::String(authorization),
    );
    request.insert("headers".into(), serde_json::Value::Object(headers));
    Ok(Value::from(serde_json::Value::Object(request)))
}

/// The SHA-256 of the body (`raw_body` as is, `body` as JSON), or `UNSIGNED-PAYLOAD`.
fn payload_hash(request: &serde_json::Map<String, serde_json::Value>, c: &Config) -> String {
    if c.unsigned_payload {
        return "UNSIGNED-PAYLOAD".to_string();
    }
    let body: Vec<u8> = match (request.get("raw_body"), request.get("body")) {
        (Some(serde_json::Value::String(raw)), _) => raw.as_bytes().to_vec(),
        (_, Some(body)) => serde_json::to_vec(body).unwrap_or_default(),
        _ => Vec::new(),
    };
    sha256_hex(&body)
}

/// The `Authorization` header: canonical request, string to sign, derived key, signature.
fn authorization(
    c: &Config,
    date: &str,
    method: &str,
    url: &uri::Url,
    headers: &serde_json::Map<String, serde_json::Value>,
    payload: &str,
) -> String {
    // OPA signs header values as given (no trimming) and the query as written.
    let canonical: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            let value = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.to_lowercase(), value)
        })
        .collect();
    let signed_headers = canonical.keys().cloned().collect::<Vec<_>>().join(";");
    // Go's `URL.EscapedPath`: the path as written when that is a valid encoding of it.
    let valid_raw = !url.raw_path.is_empty()
        && url
            .raw_path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~$&+,/:;=@!'()*[]%".contains(&b));
    let path = if valid_raw {
        url.raw_path.clone()
    } else {
        uri::escape_path(&url.path)
    };
    let path = if path.is_empty() {
        "/".to_string()
    } else {
        path
    };
    let canonical_request = format!(
        "{method}\n{path}\n{}\n{}\n{signed_headers}\n{payload}",
        url.raw_query,
        canonical
            .iter()
            .map(|(k, v)| format!("{k}:{v}\n"))
            .collect::<String>(),
    );
    let day = date.get(..8).unwrap_or(date);
    let scope = format!("{day}/{}/{}/aws4_request", c.region, c.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let mut key = hmac_sha256(format!("AWS4{}", c.secret_key).as_bytes(), day);
    for part in [c.region.as_str(), c.service.as_str(), "aws4_request"] {
        key = hmac_sha256(&key, part);
    }
    let signature = hex(&hmac_sha256(&key, &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed_headers},Signature={signature}",
        c.access_key
    )
}
