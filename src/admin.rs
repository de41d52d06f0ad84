//! The admin listener: what operators and orchestrators ask sluice.
//!
//! - `/metrics`: Prometheus (OpenMetrics text) — the gateway's counters and the policy engine's.
//! - `/healthz`: the process is alive (200). `/readyz`: 200 once policies are compiled and every
//!   listener is bound, 503 before (and after shutdown starts).
//! - OPA's REST Data API, so anything that queries an OPA sidecar can query sluice instead:
//!   `GET|POST /v1/data/{path}` → `{"result": ...}`, or `{}` when the document is undefined;
//!   a malformed input is `400 {"code": "invalid_parameter", "message": ...}`; an evaluation
//!   error is `500 {"code": "internal_error", ...}`. `GET /health` → `{}`; `GET /health?bundles`
//!   → 500 until the configured policy bundle is in force (OPA's semantics).
//! - `GET /v1/status`: policy distribution status (revision, last activation, last error), shaped
//!   like OPA's status report, and the decision log's counters.
//!
//! Data API queries run on a clone of the compiled engine on a blocking thread, outside the
//! decision cache, so they can neither slow the data path nor change its verdicts.
//! Not here: the proxies, or anything that changes state (no policy or data PUT).

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::registry::Registry;
use serde_json::{Value as Json, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::drain::Watch;
use crate::proxy::Gateway;
use crate::proxy::listener::{self, Accounting, Listener};
use crate::telemetry::collector::DeciderCollector;
use crate::telemetry::policy_metrics::PolicyCollector;

/// Largest Data API request body.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Shared by every admin connection. Starts not ready, without a gateway; `serve` fills it in
/// once policies are compiled.
#[derive(Debug, Default)]
pub struct Admin {
    running: OnceLock<Running>,
    ready: AtomicBool,
}

#[derive(Debug)]
struct Running {
    gateway: Arc<Gateway>,
    registry: Registry,
}

impl Admin {
    /// Makes the gateway's metrics and policy available (still not ready).
    pub fn attach(&self, gateway: Arc<Gateway>) {
        let mut registry = Registry::default();
        gateway.metrics.register(&mut registry);
        registry
            .sub_registry_with_prefix("sluice")
            .register_collector(Box::new(DeciderCollector::new(gateway.clone())));
        registry
            .sub_registry_with_prefix("sluice")
            .register_collector(Box::new(PolicyCollector::new(gateway.clone())));
        let _ = self.running.set(Running { gateway, registry });
    }

    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
        if let Some(running) = self.running.get() {
            running.gateway.metrics.ready.set(i64::from(ready));
        }
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) && self.running.get().is_some()
    }
}

/// Open admin connections at most (probes and scrapes are few; a flood must not take file
/// descriptors from the data path), and how long a client may take to send its request head.
const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves the admin endpoint until `drain` is signaled. The gateway drains its own listeners
/// first, so `/readyz` answers 503 while open requests finish.
pub fn spawn(admin: Arc<Admin>, tcp: TcpListener, drain: Watch) -> JoinHandle<()> {
    let listener = Listener {
        name: "admin".to_string(),
        tcp,
        max_connections: MAX_CONNECTIONS,
        accounting: Accounting::none(),
    };
    listener::spawn(listener, drain, move |accepted| {
        let admin = admin.clone();
        async move {
            let svc = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(route(&admin, req).await) }
            });
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT);
            let conn = builder.serve_connection(TokioIo::new(accepted.stream), svc);
            tokio::pin!(conn);
            let mut drain = accepted.drain;
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = drain.signaled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        }
    })
}

async fn route(admin: &Admin, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n"),
        (&Method::GET, "/readyz") => {
            if admin.is_ready() {
                text(StatusCode::OK, "ready\n")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
            }
        }
        (&Method::GET, "/metrics") => metrics(admin, &req),
        (&Method::GET, "/health") => health(admin, req.uri().query().unwrap_or("")),
        (&Method::GET, "/v1/status") => policy_status(admin),
        (m, p) if p == "/v1/data" || p.starts_with("/v1/data/") => {
            if m != Method::GET && m != Method::POST {
                return opa_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "invalid_parameter",
                    "only GET and POST are supported on /v1/data (sluice's data is read-only)",
                );
            }
            data_api(admin, req).await
        }
        _ => opa_error(
            StatusCode::NOT_FOUND,
            "resource_not_found",
            &format!(
                "{path}: no such endpoint (try /metrics, /healthz, /readyz, /health?bundles, /v1/status, /v1/data)"
            ),
        ),
    }
}

/// OPA's `/health`: 200 `{}`; with `?bundles`, 500 until the configured bundle (downloaded
/// or persisted) is in force.
fn health(admin: &Admin, query: &str) -> Response<Full<Bytes>> {
    let wants_bundles = query
        .split('&')
        .any(|p| p == "bundles" || p.starts_with("bundles="));
    if wants_bundles {
        let ready = admin
            .running
            .get()
            .is_some_and(|r| r.gateway.policy_status.bundles_ready());
        if !ready {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &json!({"error": "the configured policy bundle has not been activated"}),
                false,
            );
        }
    }
    json_response(StatusCode::OK, &json!({}), false)
}

/// Policy distribution status, shaped like OPA's status report (`bundles.<name>`), plus the
/// decision log's counters.
fn policy_status(admin: &Admin) -> Response<Full<Bytes>> {
    let Some(running) = admin.running.get() else {
        return opa_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "policies are still loading",
        );
    };
    let gw = &running.gateway;
    let mut doc = gw.policy_status.to_json();
    if let (Some(log), Json::Object(o)) = (&gw.decision_log, &mut doc) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = log.stats();
        o.insert(
            "decision_log".into(),
            json!({
                "written": s.written.load(Relaxed),
                "dropped_queue_full": s.dropped_full.load(Relaxed),
                "dropped_write_error": s.dropped_error.load(Relaxed),
                "expired": s.expired.load(Relaxed),
            }),
        );
    }
    json_response(StatusCode::OK, &json!({ "result": doc }), true)
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn json_response(status: StatusCode, body: &Json, pretty: bool) -> Response<Full<Bytes>> {
    let mut s = if pretty {
        serde_json::to_string_pretty(body).unwrap_or_default()
    } else {
        body.to_string()
    };
    s.push('\n');
    let mut r = Response::new(Full::new(Bytes::from(s)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// OPA's error shape: `{"code": ..., "message": ...}`.
fn opa_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({"code": code, "message": message}), false)
}

fn metrics(admin: &Admin, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(running) = admin.running.get() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n");
    };
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok());
    let Ok((out, content_type)) = crate::telemetry::exposition::render(&running.registry, accept)
    else {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics encoding failed\n",
        );
    };
    let mut r = Response::new(Full::new(Bytes::from(out)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

async fn data_api(admin: &Admin, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let Some(running) = admin.running.get() else {
        return opa_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "policies are still loading",
        );
    };
    let query = req.uri().query().unwrap_or("").to_string();
    let pretty = query_param(&query, "pretty").is_some_and(|v| v.is_empty() || v == "true");
    let reference = match data_reference(req.uri().path().trim_start_matches("/v1/data")) {
        Ok(r) => r,
        Err(e) => return opa_error(StatusCode::BAD_REQUEST, "invalid_parameter", &e),
    };
    let input = if req.method() == Method::POST {
        let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                return opa_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_parameter",
                    &format!("cannot read request body: {e}"),
                );
            }
        };
        match post_input(&body) {
            Ok(i) => i,
            Err(e) => return opa_error(StatusCode::BAD_REQUEST, "invalid_parameter", &e),
        }
    } else {
        match query_param(&query, "input") {
            None => None,
            Some(raw) => match serde_json::from_str::<Json>(&raw) {
                Ok(v) => Some(v),
                Err(e) => {
                    return opa_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_parameter",
                        &format!("parameter contains malformed input document: {e}"),
                    );
                }
            },
        }
    };
    let decider = running.gateway.decider.clone();
    let evaluated =
        tokio::task::spawn_blocking(move || decider.query_document(&reference, input.as_ref()))
            .await;
    match evaluated {
        Ok(Ok(Some(result))) => json_response(StatusCode::OK, &json!({"result": result}), pretty),
        Ok(Ok(None)) => json_response(StatusCode::OK, &json!({}), pretty),
        Ok(Err(e)) => opa_error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", &e.0),
        Err(_) => opa_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "evaluation aborted",
        ),
    }
}

/// A POST body is `{"input": ...}`; an empty body, or one without `input`, means no input.
fn post_input(body: &[u8]) -> Result<Option<Json>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    match serde_json::from_slice::<Json>(body) {
        Ok(Json::Object(mut o)) => Ok(o.remove("input")),
        Ok(_) => Err("body contains malformed input document: expected a JSON object".into()),
        Err(e) => Err(format!("body contains malformed input document: {e}")),
    }
}

/// Turns the URL path after `/v1/data` into a Rego reference, as OPA does: segments split on
/// `/`, percent-decoded, integers become array indexes, other names are quoted when needed.
fn data_reference(path: &str) -> Result<String, String> {
    let mut reference = String::from("data");
    for raw in path.split('/').filter(|s| !s.is_empty()) {
        let seg = percent_decode(raw).ok_or_else(|| format!("{raw:?}: bad percent-encoding"))?;
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) && seg.len() < 18 {
            reference.push('[');
            reference.push_str(&seg);
            reference.push(']');
        } else if is_identifier(&seg) {
            reference.push('.');
            reference.push_str(&seg);
        } else {
            reference.push('[');
            reference.push_str(&Json::String(seg).to_string());
            reference.push(']');
        }
    }
    Ok(reference)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v).unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_paths_become_rego_references_like_opa() {
        assert_eq!(data_reference(""), Ok("data".into()));
        assert_eq!(
            data_reference("/manufacturing/smart/allow"),
            Ok("data.manufacturing.smart.allow".into())
        );
        assert_eq!(
            data_reference("/manufacturing/export_allowlist/0/name"),
            Ok("data.manufacturing.export_allowlist[0].name".into())
        );
        assert_eq!(
            data_reference("/a/my-key/x%2Fy"),
            Ok(r#"data.a["my-key"]["x/y"]"#.into())
        );
        assert_eq!(
            data_reference("/a/\"]; x := [\""),
            Ok(r#"data.a["\"]; x := [\""]"#.into())
        );
        assert!(data_reference("/a/%zz").is_err());
    }

    #[test]
    fn post_bodies_follow_opa() {
        assert_eq!(post_input(b""), Ok(None));
        assert_eq!(post_input(b"{}"), Ok(None));
        assert_eq!(
            post_input(br#"{"input": {"a": 1}}"#),
            Ok(Some(json!({"a": 1})))
        );
        let err = post_input(b"{nope").err().unwrap_or_default();
        assert!(
            err.starts_with("body contains malformed input document"),
            "{err}"
        );
    }
}
