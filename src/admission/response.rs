//! The AdmissionReview envelope: reading a review off the wire and answering it as Gatekeeper
//! does — the request's `uid` echoed; on deny `allowed: false` and `status {code: 403, reason:
//! Forbidden, message}` where the message is one `[<constraint>] <msg>` line per deny violation;
//! `warn` violations as `warnings` (status code 299 when allowed with warnings); `dryrun`
//! violations change nothing in the answer.
//!
//! Not here: evaluation (review.rs) or HTTP (server.rs).

use serde_json::{Value as Json, json};

use super::constraints::EnforcementAction;
use super::error::AdmissionError;
use super::review::Violation;

/// The parts of an AdmissionReview the webhook needs.
#[derive(Debug)]
pub struct Incoming {
    pub api_version: String,
    pub uid: String,
    /// The AdmissionRequest, untouched.
    pub request: Json,
}

/// Parses a request body; the error is a one-line message for a 400 answer.
pub fn parse(body: &[u8]) -> Result<Incoming, AdmissionError> {
    let review: Json = serde_json::from_slice(body)
        .map_err(|e| AdmissionError::Review(format!("body is not JSON: {e}")))?;
    let kind = review.get("kind").and_then(Json::as_str).unwrap_or("");
    let api_version = review
        .get("apiVersion")
        .and_then(Json::as_str)
        .unwrap_or("");
    if kind != "AdmissionReview" {
        return Err(AdmissionError::Review(format!(
            "expected kind AdmissionReview, got {kind:?}"
        )));
    }
    if api_version != "admission.k8s.io/v1" && api_version != "admission.k8s.io/v1beta1" {
        return Err(AdmissionError::Review(format!(
            "unsupported apiVersion {api_version:?} (admission.k8s.io/v1 or v1beta1)"
        )));
    }
    let request = match review.get("request") {
        Some(r @ Json::Object(_)) => r.clone(),
        _ => {
            return Err(AdmissionError::Review(
                "AdmissionReview has no request".into(),
            ));
        }
    };
    let uid = match request.get("uid").and_then(Json::as_str) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => return Err(AdmissionError::Review("request.uid is missing".into())),
    };
    Ok(Incoming {
        api_version: api_version.to_string(),
        uid,
        request,
    })
}

fn envelope(api_version: &str, response: Json) -> Json {
    json!({"apiVersion": api_version, "kind": "AdmissionReview", "response": response})
}

/// The answer for a reviewed request.
pub fn verdict(api_version: &str, uid: &str, violations: &[Violation]) -> Json {
    let lines = |action: EnforcementAction| -> Vec<String> {
        violations
            .iter()
            .filter(|v| v.action == action)
            .map(|v| format!("[{}] {}", v.constraint, v.msg))
            .collect()
    };
    let deny = lines(EnforcementAction::Deny);
    let warnings = lines(EnforcementAction::Warn);
    let mut response = if deny.is_empty() {
        let code = if warnings.is_empty() { 200 } else { 299 };
        json!({"uid": uid, "allowed": true, "status": {"metadata": {}, "code": code}})
    } else {
        json!({
            "uid": uid,
            "allowed": false,
            "status": {"metadata": {}, "code": 403, "reason": "Forbidden", "message": deny.join("\n")},
        })
    };
    if !warnings.is_empty() {
        response["warnings"] = json!(warnings);
    }
    envelope(api_version, response)
}

/// The answer for a request in an exempt namespace.
pub fn exempt(api_version: &str, uid: &str) -> Json {
    envelope(
        api_version,
        json!({"uid": uid, "allowed": true, "status": {"metadata": {}, "code": 200, "message": "Namespace is set to be ignored by sluice config"}}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(name: &str, action: EnforcementAction, msg: &str) -> Violation {
        Violation {
            kind: "K".into(),
            constraint: name.into(),
            action,
            msg: msg.into(),
            details: json!({}),
        }
    }

    #[test]
    fn deny_lines_are_joined_and_warnings_listed() {
        let r = verdict(
            "admission.k8s.io/v1",
            "u1",
            &[
                v("a", EnforcementAction::Deny, "one"),
                v("b", EnforcementAction::Warn, "careful"),
                v("c", EnforcementAction::Dryrun, "silent"),
                v("d", EnforcementAction::Deny, "two"),
            ],
        );
        assert_eq!(
            r,
            json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
                "uid": "u1", "allowed": false,
                "status": {"metadata": {}, "code": 403, "reason": "Forbidden", "message": "[a] one\n[d] two"},
                "warnings": ["[b] careful"]}})
        );
    }

    #[test]
    fn dryrun_only_is_a_plain_allow() {
        let r = verdict(
            "admission.k8s.io/v1",
            "u",
            &[v("c", EnforcementAction::Dryrun, "x")],
        );
        assert_eq!(
            r["response"],
            json!({"uid": "u", "allowed": true, "status": {"metadata": {}, "code": 200}})
        );
    }

    #[test]
    fn malformed_reviews_get_one_line_reasons() {
        assert_eq!(
            parse(b"{")
                .err()
                .map(|e| e.to_string().starts_with("body is not JSON")),
            Some(true)
        );
        assert_eq!(
            parse(br#"{"kind":"AdmissionReview","apiVersion":"admission.k8s.io/v1"}"#)
                .err()
                .map(|e| e.to_string()),
            Some("AdmissionReview has no request".to_string())
        );
        assert_eq!(
            parse(br#"{"kind":"Pod","apiVersion":"v1"}"#)
                .err()
                .map(|e| e.to_string()),
            Some("expected kind AdmissionReview, got \"Pod\"".to_string())
        );
    }
}
