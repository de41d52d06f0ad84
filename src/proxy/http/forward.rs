//! One proxied HTTP request: absolute-form in, judged, relayed to exactly the judged address
//! over a pooled connection, bodies streamed both ways, hop-by-hop headers dropped, `Via` added.
//!
//! Not here: CONNECT (tunnel.rs), the connection loop and limits (mod.rs).

use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, Version, header};
use hyper::body::Incoming;

use super::body::{Aborted, Counted, ProxyBody, aborted_by};
use super::headers::{add_via, strip_hop_by_hop};
use super::proxy::HttpProxy;
use super::reply;
use super::target::host_port;
use super::upstream::{connect_error, judged_uri};
use crate::policy::{HttpFacts, Operation, Protocol};
use crate::proxy::Ask;
use crate::proxy::socket::ConnectError;

/// Entry point for every request on a client connection.
pub async fn handle(proxy: Arc<HttpProxy>, req: Request<Incoming>) -> Response<ProxyBody> {
    if req.method() == Method::CONNECT {
        return super::tunnel::handle(proxy, req).await;
    }
    forward(&proxy, req).await
}

async fn forward(p: &HttpProxy, req: Request<Incoming>) -> Response<ProxyBody> {
    let uri = req.uri().clone();
    let Some(authority) = uri.authority().cloned() else {
        p.error("bad_request");
        return reply::error(
            StatusCode::BAD_REQUEST,
            "sluice is a forward proxy: send absolute-form requests (GET http://host/path) or CONNECT host:port",
        );
    };
    if uri.scheme_str() != Some("http") {
        p.error("bad_request");
        return reply::error(
            StatusCode::BAD_REQUEST,
            "only http:// URLs are forwarded; use CONNECT host:443 for https",
        );
    }
    let (host, port) = host_port(&authority, 80);
    let ask = Ask {
        protocol: Protocol::Http,
        operation: Operation::Request,
        source: &p.gateway.identity,
        host,
        port,
        mqtt: None,
        http: Some(HttpFacts {
            method: req.method().as_str(),
            scheme: "http",
            path: uri.path(),
        }),
        will: None,
    };
    let addr = match p.judge_or_refuse(ask, "request", &authority).await {
        Ok(addr) => addr,
        Err(refusal) => return refusal,
    };
    send(p, req, addr, &authority).await
}

/// Sends a judged request to exactly `addr` (Host set from `authority`) and relays the
/// response.
pub(super) async fn send(
    p: &HttpProxy,
    req: Request<Incoming>,
    addr: std::net::SocketAddr,
    authority: &http::uri::Authority,
) -> Response<ProxyBody> {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let Ok(upstream_uri) = judged_uri(addr, target) else {
        p.error("bad_request");
        return reply::error(
            StatusCode::BAD_REQUEST,
            "request target is not a valid path",
        );
    };
    let upstream_req = upstream_request(p, req, authority, upstream_uri);
    let sent =
        tokio::time::timeout(p.cfg.response_timeout.get(), p.client.request(upstream_req)).await;
    match sent {
        Err(_) => {
            p.error("response_timeout");
            reply::error(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "{authority} did not respond within {:?}",
                    p.cfg.response_timeout.get()
                ),
            )
        }
        Ok(Err(e)) => upstream_failure(p, authority, &e),
        Ok(Ok(resp)) => {
            let (mut parts, body) = resp.into_parts();
            // The client talks HTTP/1.1 with us, whatever the upstream spoke.
            parts.version = Version::HTTP_11;
            strip_hop_by_hop(&mut parts.headers);
            add_via(&mut parts.headers);
            Response::from_parts(
                parts,
                Counted::new(body, p.down.clone(), Aborted::Upstream).boxed(),
            )
        }
    }
}

/// The request as it goes upstream: hop-by-hop headers dropped, Host from the judged
/// authority, `Via` added, origin-form URI on the judged address, body counted.
fn upstream_request(
    p: &HttpProxy,
    req: Request<Incoming>,
    authority: &http::uri::Authority,
    upstream_uri: http::Uri,
) -> Request<Counted> {
    let (mut parts, body) = req.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // RFC 9112 §3.2.2: a proxy replaces Host with the absolute-form's authority, which is
    // also what the policy judged.
    // Never userinfo (`http://user:pass@host/`): credentials do not belong in Host.
    let host_header = match authority.port() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_string(),
    };
    if let Ok(h) = HeaderValue::from_str(&host_header) {
        parts.headers.insert(header::HOST, h);
    }
    add_via(&mut parts.headers);
    parts.uri = upstream_uri;
    parts.version = Version::HTTP_11;
    let body = Counted::new(body, p.up.clone(), Aborted::Client);
    Request::from_parts(parts, body)
}

fn upstream_failure(
    p: &HttpProxy,
    authority: &http::uri::Authority,
    e: &hyper_util::client::legacy::Error,
) -> Response<ProxyBody> {
    match connect_error(e) {
        Some(ConnectError::Timeout(_)) => {
            p.error("connect_timeout");
            return reply::error(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "connecting to {authority} timed out after {:?}",
                    p.cfg.connect_timeout.get()
                ),
            );
        }
        Some(c) => {
            p.error("upstream_unreachable");
            return reply::error(StatusCode::BAD_GATEWAY, format!("{authority}: {c}"));
        }
        None => {}
    }
    if aborted_by(e, Aborted::Client) {
        // Counted where it happened (body.rs); the client is gone, this answer goes nowhere.
        return reply::error(StatusCode::BAD_REQUEST, Aborted::Client.to_string());
    }
    p.error("upstream_error");
    reply::error(
        StatusCode::BAD_GATEWAY,
        format!("{authority} closed the connection without a valid response"),
    )
}
