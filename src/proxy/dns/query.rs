//! One DNS query, judged: DESIGN.md's rule that a lookup is itself an export. A name outside
//! `site.local_domains` is judged (protocol `dns`, operation `lookup`, zone `external`, no ip)
//! before anything is sent; a denied one gets the configured answer (REFUSED or NXDOMAIN) and
//! goes nowhere. Allowed names, and local names, go to the upstream resolvers. An answer for a
//! local name with an address outside the site is judged like a connection there (the same
//! input with `target.ip` set): rebinding a plant name to an outside address needs the
//! policy's consent. Messages are parsed with hickory-proto; what does not parse is answered
//! FORMERR, counted, and never forwarded. A resolver answer may come from the answer cache
//! (cache.rs); it is checked here as if it had just arrived.
//!
//! Not here: sockets (dns/mod.rs), resolvers (upstream.rs).

use std::net::IpAddr;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::RData;

use super::cache::Key;
use super::{Dns, PROTOCOL};
use crate::config::intercept::DnsRefusal;
use crate::policy::{Operation, Protocol, Zone};
use crate::proxy::Ask;

/// The port every lookup input carries (`target.port`).
const DNS_PORT: u16 = 53;

/// A query that can be judged: the message, its one question, and the name as judged
/// (lowercase, no trailing dot; the root is ".").
pub(crate) struct Question {
    pub request: Message,
    pub query: Query,
    pub name: String,
}

/// A query that cannot: the `errors{kind}` label and the answer to send (none when too short
/// to carry an id).
pub(crate) struct Unanswerable {
    pub kind: &'static str,
    pub answer: Option<Vec<u8>>,
}

/// Reads the question out of a query message: pure parsing, no I/O.
pub(crate) fn read_question(query: &[u8]) -> Result<Question, Unanswerable> {
    let refuse = |kind, answer| Err(Unanswerable { kind, answer });
    if query.len() < 12 {
        return refuse("malformed", None);
    }
    let id = u16::from_be_bytes([query[0], query[1]]);
    let request = match Message::from_vec(query) {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!("dns query refused: {e}");
            let answer = error_answer(id, OpCode::Query, ResponseCode::FormErr, None);
            return refuse("malformed", answer);
        }
    };
    if request.message_type() != MessageType::Query || request.op_code() != OpCode::Query {
        let answer = error_answer(id, request.op_code(), ResponseCode::NotImp, None);
        return refuse("not_a_query", answer);
    }
    let [question] = request.queries() else {
        let answer = error_answer(id, OpCode::Query, ResponseCode::FormErr, None);
        return refuse("malformed", answer);
    };
    let query = question.clone();
    let name = query.name().to_ascii().to_ascii_lowercase();
    let name = match name.trim_end_matches('.') {
        "" => ".".to_string(),
        n => n.to_string(),
    };
    Ok(Question {
        request,
        query,
        name,
    })
}

/// The answer to `query` (a whole DNS message), or `None` when it is too short to answer.
pub async fn answer(d: &Dns, query: &[u8], over_tcp: bool) -> Option<Vec<u8>> {
    match answer_now(d, query, over_tcp) {
        Step::Done(reply) => reply,
        Step::Ask(pending) => pending.resolve(d, query).await,
    }
}

/// What [`answer_now`] found: the answer, or a resolver to ask.
pub(crate) enum Step {
    Done(Option<Vec<u8>>),
    Ask(Box<Pending>),
}

/// A judged query whose answer is not cached.
pub(crate) struct Pending {
    question: Question,
    key: Key,
    local: bool,
    over_tcp: bool,
}

/// Everything that needs no resolver, without waiting: parsing, judging the name, and the
/// answer cache. The UDP listener answers these in its receive loop, so a cached lookup costs
/// no task and no wake-up of another worker; only a lookup that must go out is spawned.
pub(crate) fn answer_now(d: &Dns, query: &[u8], over_tcp: bool) -> Step {
    let m = &d.gateway.metrics;
    let q = match read_question(query) {
        Ok(q) => q,
        Err(bad) => {
            m.error(PROTOCOL, bad.kind);
            return Step::Done(bad.answer);
        }
    };
    let local = d.gateway.site.is_local_name(&q.name);
    if !local && !judge(d, &q.name, None) {
        return Step::Done(refusal(d, &q.request, &q.query));
    }
    let key = Key::of(&q.request, &q.query, over_tcp);
    let Some(mut cached) = d.cache.get(&key) else {
        m.dns_cache(false);
        return Step::Ask(Box::new(Pending {
            question: q,
            key,
            local,
            over_tcp,
        }));
    };
    m.dns_cache(true);
    let id = q.request.id();
    // The client's id, question and RD bit: the rest is the resolver's answer.
    cached
        .set_id(id)
        .set_recursion_desired(q.request.recursion_desired());
    *cached.queries_mut() = vec![q.query.clone()];
    let Ok(bytes) = cached.to_vec() else {
        m.error(PROTOCOL, "upstream_malformed");
        return Step::Done(servfail(&q));
    };
    Step::Done(checked(d, &q, local, bytes, &cached))
}

impl Pending {
    /// Asks the resolvers, keeps the answer in the cache, and checks it.
    pub(crate) async fn resolve(self, d: &Dns, query: &[u8]) -> Option<Vec<u8>> {
        let m = &d.gateway.metrics;
        let q = &self.question;
        let reply = match d.resolvers.exchange(query, self.over_tcp).await {
            Ok(r) => r,
            Err(e) => {
                m.error(PROTOCOL, "upstream");
                tracing::debug!(name = q.name, "dns lookup failed: {e}");
                return servfail(q);
            }
        };
        let Ok(mut parsed) = Message::from_vec(&reply) else {
            m.error(PROTOCOL, "upstream_malformed");
            return servfail(q);
        };
        let reply = match d.cache.put(self.key, &mut parsed, reply.len()) {
            // TTLs cut to the cache's: the client keeps it no longer than sluice does.
            true => parsed.to_vec().unwrap_or(reply),
            false => reply,
        };
        checked(d, q, self.local, reply, &parsed)
    }
}

/// `reply` (parsed: `answer`) when it may go out: a local name answered with an outside
/// address needs the policy's consent. Remembers the names of the addresses given out.
fn checked(
    d: &Dns,
    q: &Question,
    local: bool,
    reply: Vec<u8>,
    answer: &Message,
) -> Option<Vec<u8>> {
    let name = q.name.as_str();
    if local {
        let outside = addresses(answer)
            .map(|(ip, _)| ip)
            .filter(|ip| d.gateway.site.zone_of_ip(*ip) == Zone::External);
        for ip in outside {
            if !judge(d, name, Some(ip)) {
                d.gateway.metrics.error(PROTOCOL, "rebinding_refused");
                return refusal(d, &q.request, &q.query);
            }
        }
    }
    for (ip, ttl) in addresses(answer) {
        d.names.insert(ip, name, ttl);
    }
    Some(reply)
}

fn servfail(q: &Question) -> Option<Vec<u8>> {
    error_answer(
        q.request.id(),
        OpCode::Query,
        ResponseCode::ServFail,
        Some(&q.query),
    )
}

/// Judges a lookup of `name` (with the answered address, for a local name pointing outside).
fn judge(d: &Dns, name: &str, ip: Option<IpAddr>) -> bool {
    let ask = Ask {
        protocol: Protocol::Dns,
        operation: Operation::Lookup,
        source: &d.gateway.identity,
        host: name,
        port: DNS_PORT,
        mqtt: None,
        http: None,
        will: None,
    };
    d.gateway.decide_at(&ask, ip, Zone::External).allowed()
}

/// The A and AAAA addresses of an answer, with their TTLs.
pub(crate) fn addresses(m: &Message) -> impl Iterator<Item = (IpAddr, Duration)> + '_ {
    m.answers().iter().filter_map(|r| {
        let ip = match r.data() {
            RData::A(a) => IpAddr::V4(a.0),
            RData::AAAA(a) => IpAddr::V6(a.0),
            _ => return None,
        };
        Some((ip, Duration::from_secs(u64::from(r.ttl()))))
    })
}

/// The configured answer to a denied lookup.
fn refusal(d: &Dns, request: &Message, question: &Query) -> Option<Vec<u8>> {
    let code = match d.cfg.refused {
        DnsRefusal::Refused => ResponseCode::Refused,
        DnsRefusal::Nxdomain => ResponseCode::NXDomain,
    };
    let mut reply = Message::error_msg(request.id(), OpCode::Query, code);
    reply
        .add_query(question.clone())
        .set_recursion_desired(request.recursion_desired())
        .set_recursion_available(true);
    reply.to_vec().ok()
}

pub(crate) fn error_answer(
    id: u16,
    op: OpCode,
    code: ResponseCode,
    question: Option<&Query>,
) -> Option<Vec<u8>> {
    let mut reply = Message::error_msg(id, op, code);
    if let Some(q) = question {
        reply.add_query(q.clone());
    }
    reply.to_vec().ok()
}
