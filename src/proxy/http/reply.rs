//! The responses the proxy makes itself (as opposed to relaying): refusals with their reasons,
//! and errors with a one-line explanation, all as small JSON bodies.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

use super::body::ProxyBody;
use crate::proxy::Decision;

/// A JSON response with `Via` (the client can tell the proxy answered, not the upstream).
pub fn json(status: StatusCode, body: &serde_json::Value) -> Response<ProxyBody> {
    let mut text = body.to_string();
    text.push('\n');
    let mut resp = Response::new(Full::new(Bytes::from(text)).map_err(|e| match e {}).boxed());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::VIA, HeaderValue::from_static("1.1 sluice"));
    resp
}

/// `403` for a policy refusal: `{"error", "reasons", "decision_id"}`.
pub fn denied(what: &str, decision: &Decision) -> Response<ProxyBody> {
    json(
        StatusCode::FORBIDDEN,
        &serde_json::json!({
            "error": format!("{what} denied by policy"),
            "reasons": decision.verdict.reasons(),
            "decision_id": decision.decision_id.as_deref().unwrap_or_default(),
        }),
    )
}

/// An error the proxy detected itself: `{"error": message}`.
pub fn error(status: StatusCode, message: impl Into<String>) -> Response<ProxyBody> {
    let mut resp = json(status, &serde_json::json!({ "error": message.into() }));
    if status == StatusCode::BAD_REQUEST {
        // The request line could not be trusted; do not reuse the connection.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

/// An empty body (CONNECT's 200).
pub fn empty(status: StatusCode) -> Response<ProxyBody> {
    let mut resp = Response::new(Full::new(Bytes::new()).map_err(|e| match e {}).boxed());
    *resp.status_mut() = status;
    resp
}
