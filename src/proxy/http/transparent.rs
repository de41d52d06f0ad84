//! HTTP/1.x on an intercepted connection: the processor sent an ordinary (origin-form)
//! request to some address and the pod's rules brought it here. Every request is judged as
//! the forward proxy judges one (protocol `http`, operation `request`, method and path), with
//! the original address as `target.ip` and its zone, and the one name sluice's DNS answered
//! for that address (else the address itself) as `target.host`: a Host header is only a
//! claim. Allowed requests go to the original address and nowhere else.
//!
//! Not here: detecting HTTP (proxy/transparent/sniff.rs), absolute-form proxy requests
//! (forward.rs).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use super::body::ProxyBody;
use super::{HttpProxy, reply};
use crate::policy::{HttpFacts, Operation, Protocol};
use crate::proxy::Ask;
use crate::proxy::listener::Accepted;

/// Serves one intercepted HTTP/1.x connection whose requests may go to `original` only;
/// `host` is what the policy sees as `target.host`.
pub async fn serve_towards(
    proxy: Arc<HttpProxy>,
    accepted: Accepted,
    original: SocketAddr,
    host: String,
) {
    let Accepted {
        stream, mut drain, ..
    } = accepted;
    let host: Arc<str> = host.into();
    let svc_proxy = proxy.clone();
    let svc = service_fn(move |req| {
        let (p, host) = (svc_proxy.clone(), host.clone());
        async move { Ok::<_, Infallible>(handle(&p, req, original, &host).await) }
    });
    let conn = super::client_connection(&proxy).serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = drain.signaled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        proxy.error(super::client_error_kind(&e));
    }
}

async fn handle(
    p: &HttpProxy,
    req: Request<Incoming>,
    original: SocketAddr,
    host: &str,
) -> Response<ProxyBody> {
    let ask = Ask {
        protocol: Protocol::Http,
        operation: Operation::Request,
        source: &p.gateway.identity,
        host,
        port: original.port(),
        mqtt: None,
        http: Some(HttpFacts {
            method: req.method().as_str(),
            scheme: "http",
            path: req.uri().path(),
        }),
        will: None,
    };
    let zone = p.gateway.site.zone_of_ip(original.ip());
    let decision = p.gateway.decide_at(&ask, Some(original.ip()), zone);
    if !decision.allowed() {
        return reply::denied("request", &decision);
    }
    // Error answers name the upstream as the client addressed it, else by its address.
    let authority = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .or_else(|| original.to_string().parse().ok());
    let Some(authority) = authority else {
        p.error("bad_request");
        return reply::error(StatusCode::BAD_REQUEST, "no usable Host header");
    };
    super::forward::send(p, req, original, &authority).await
}
