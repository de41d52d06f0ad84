//! Resolver answers kept for their TTL, as node-local DNS caches keep them, so that a name a
//! processor looks up again and again (every few seconds, as most clients do) costs one round
//! trip to sluice instead of two and a fresh socket.
//!
//! Only the resolver's work is cached, never a verdict: every query is still judged before the
//! cache is looked at, and a cached answer for a local name is checked for outside addresses
//! each time it is given out (query.rs), so a policy reload applies to the next query. Kept:
//! NOERROR answers with records (for their smallest TTL, at most `max_ttl`) and NXDOMAIN or
//! empty answers that carry an SOA (for its negative TTL, at most `negative_ttl`, RFC 2308).
//! Never kept: SERVFAIL and other errors, truncated or signed answers, a TTL of 0. Bounded by
//! bytes; a cached answer goes out with its TTLs counted down, the client's id and the
//! client's question (its spelling of the name, as 0x20 randomisation checks).
//!
//! Not here: judging (query.rs), resolvers (upstream.rs).

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, Record};

use crate::config::intercept::DnsCacheConfig;

/// What must match for a cached answer to serve a query: the question and everything in the
/// query that can change the answer (transport and EDNS size bound its length; DO and CD
/// change the records; RD whether the resolver recursed).
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub struct Key {
    name: Name,
    qtype: u16,
    qclass: u16,
    tcp: bool,
    edns: Option<(u16, bool)>,
    checking_disabled: bool,
    recursion_desired: bool,
}

impl Key {
    pub fn of(request: &Message, question: &Query, tcp: bool) -> Self {
        Self {
            name: question.name().to_lowercase(),
            qtype: question.query_type().into(),
            qclass: question.query_class().into(),
            tcp,
            edns: request
                .extensions()
                .as_ref()
                .map(|e| (e.max_payload(), e.flags().dnssec_ok)),
            checking_disabled: request.checking_disabled(),
            recursion_desired: request.recursion_desired(),
        }
    }
}

#[derive(Debug)]
struct Entry {
    answer: Message,
    stored: Instant,
    ttl: Duration,
    bytes: u32,
}

struct Lifetime;

impl moka::Expiry<Key, std::sync::Arc<Entry>> for Lifetime {
    fn expire_after_create(
        &self,
        _key: &Key,
        value: &std::sync::Arc<Entry>,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The answer cache of the DNS listener; `intercept.dns.cache.max_bytes: 0` turns it off.
pub struct AnswerCache {
    entries: Option<moka::sync::Cache<Key, std::sync::Arc<Entry>>>,
    max_ttl: Duration,
    negative_ttl: Duration,
}

impl AnswerCache {
    pub fn new(cfg: &DnsCacheConfig) -> Self {
        let entries = (cfg.max_bytes.get() > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(cfg.max_bytes.get())
                .weigher(|_k: &Key, v: &std::sync::Arc<Entry>| v.bytes)
                .expire_after(Lifetime)
                .build()
        });
        Self {
            entries,
            max_ttl: cfg.max_ttl.get(),
            negative_ttl: cfg.negative_ttl.get(),
        }
    }

    /// The cached answer for `key` as it goes out now: TTLs counted down by its age.
    pub fn get(&self, key: &Key) -> Option<Message> {
        self.get_at(key, Instant::now())
    }

    fn get_at(&self, key: &Key, now: Instant) -> Option<Message> {
        let entry = self.entries.as_ref()?.get(key)?;
        let age = now.saturating_duration_since(entry.stored);
        if age >= entry.ttl {
            return None;
        }
        let age = u32::try_from(age.as_secs()).unwrap_or(u32::MAX);
        let mut answer = entry.answer.clone();
        set_ttls(&mut answer, |ttl| ttl.saturating_sub(age));
        Some(answer)
    }

    /// Keeps `answer` (`bytes` long on the wire) for `key` when it may be kept, with its TTLs
    /// cut to how long it is kept (as node-local caches give them out, so that the client does
    /// not keep it longer than sluice does); true when that cut changed `answer`.
    pub fn put(&self, key: Key, answer: &mut Message, bytes: usize) -> bool {
        let Some(entries) = &self.entries else {
            return false;
        };
        let Some(ttl) = self.lifetime(answer) else {
            return false;
        };
        let cap = u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX);
        let cut = answer.all_sections().any(|r| r.ttl() > cap);
        if cut {
            set_ttls(answer, |ttl| ttl.min(cap));
        }
        let entry = Entry {
            answer: answer.clone(),
            stored: Instant::now(),
            ttl,
            // The parsed message takes about twice its wire size.
            bytes: u32::try_from(bytes.saturating_mul(2)).unwrap_or(u32::MAX),
        };
        entries.insert(key, std::sync::Arc::new(entry));
        cut
    }

    /// How long `answer` may be given out again, if at all.
    fn lifetime(&self, answer: &Message) -> Option<Duration> {
        if answer.truncated() || !answer.signature().is_empty() {
            return None;
        }
        let secs = |s: u32| Duration::from_secs(u64::from(s));
        let ttl = match answer.response_code() {
            ResponseCode::NoError if !answer.answers().is_empty() => {
                let least = answer.all_sections().map(Record::ttl).min()?;
                secs(least).min(self.max_ttl)
            }
            ResponseCode::NoError | ResponseCode::NXDomain => {
                let soa = answer.name_servers().iter().find_map(|r| match r.data() {
                    RData::SOA(soa) => Some(r.ttl().min(soa.minimum())),
                    _ => None,
                })?;
                secs(soa).min(self.negative_ttl)
            }
            _ => return None,
        };
        (ttl >= Duration::from_secs(1)).then_some(ttl)
    }
}

/// Rewrites the TTL of every record (the OPT pseudo-record is not among them in hickory).
fn set_ttls(m: &mut Message, f: impl Fn(u32) -> u32) {
    let set = |records: &mut Vec<Record>| {
        for r in records.iter_mut() {
            let ttl = f(r.ttl());
            r.set_ttl(ttl);
        }
    };
    set(m.answers_mut());
    set(m.name_servers_mut());
    set(m.additionals_mut());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::units::{Dur, Size};
    use hickory_proto::op::MessageType;
    use hickory_proto::rr::RecordType;
    use hickory_proto::rr::rdata::{A, SOA};

    fn cache(max_bytes: u64) -> AnswerCache {
        AnswerCache::new(&DnsCacheConfig {
            max_bytes: Size(max_bytes),
            max_ttl: Dur(Duration::from_secs(30)),
            negative_ttl: Dur(Duration::from_secs(5)),
        })
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn query(n: &str) -> (Message, Query) {
        let q = Query::query(name(n), RecordType::A);
        let mut m = Message::new();
        m.set_id(7).set_recursion_desired(true).add_query(q.clone());
        (m, q)
    }

    fn answer(code: ResponseCode, a_ttl: Option<u32>, soa_ttl: Option<u32>) -> Message {
        let (_, q) = query("historian.plant.local.");
        let mut m = Message::new();
        m.set_id(7)
            .set_message_type(MessageType::Response)
            .set_response_code(code)
            .add_query(q);
        if let Some(ttl) = a_ttl {
            m.add_answer(Record::from_rdata(
                name("historian.plant.local."),
                ttl,
                RData::A(A::new(10, 77, 1, 1)),
            ));
        }
        if let Some(ttl) = soa_ttl {
            let soa = SOA::new(
                name("plant.local."),
                name("h.plant.local."),
                1,
                60,
                60,
                60,
                600,
            );
            m.add_name_server(Record::from_rdata(
                name("plant.local."),
                ttl,
                RData::SOA(soa),
            ));
        }
        m
    }

    #[test]
    fn what_is_kept_and_for_how_long() {
        let c = cache(1 << 20);
        let secs = Duration::from_secs;
        let life = |m: &Message| c.lifetime(m);
        assert_eq!(
            life(&answer(ResponseCode::NoError, Some(10), None)),
            Some(secs(10))
        );
        assert_eq!(
            life(&answer(ResponseCode::NoError, Some(3600), None)),
            Some(secs(30))
        );
        assert_eq!(life(&answer(ResponseCode::NoError, Some(0), None)), None);
        assert_eq!(
            life(&answer(ResponseCode::NXDomain, None, Some(3))),
            Some(secs(3))
        );
        assert_eq!(
            life(&answer(ResponseCode::NXDomain, None, Some(900))),
            Some(secs(5))
        );
        assert_eq!(
            life(&answer(ResponseCode::NoError, None, Some(900))),
            Some(secs(5))
        );
        assert_eq!(life(&answer(ResponseCode::NXDomain, None, None)), None);
        assert_eq!(life(&answer(ResponseCode::ServFail, Some(60), None)), None);
        let mut truncated = answer(ResponseCode::NoError, Some(60), None);
        truncated.set_truncated(true);
        assert_eq!(life(&truncated), None);
    }

    #[test]
    fn keys_tell_apart_what_changes_an_answer_and_ignore_case() {
        let (m, q) = query("Historian.Plant.Local.");
        let (lower, lq) = query("historian.plant.local.");
        assert_eq!(Key::of(&m, &q, false), Key::of(&lower, &lq, false));
        assert_ne!(Key::of(&m, &q, false), Key::of(&m, &q, true));
        let mut cd = m.clone();
        cd.set_checking_disabled(true);
        assert_ne!(Key::of(&m, &q, false), Key::of(&cd, &q, false));
        let aaaa = Query::query(name("historian.plant.local."), RecordType::AAAA);
        assert_ne!(Key::of(&m, &q, false), Key::of(&m, &aaaa, false));
    }

    #[test]
    fn a_cached_answer_is_given_back_and_off_means_never() {
        let (m, q) = query("historian.plant.local.");
        let mut a = answer(ResponseCode::NoError, Some(60), None);
        let on = cache(1 << 20);
        assert!(
            on.put(Key::of(&m, &q, false), &mut a, 64),
            "60s is cut to 30s"
        );
        assert_eq!(a.answers().first().map(Record::ttl), Some(30));
        let got = on
            .get(&Key::of(&m, &q, false))
            .map(|g| g.answers().to_vec());
        assert_eq!(got, Some(a.answers().to_vec()));
        assert!(on.get(&Key::of(&m, &q, true)).is_none());
        let later = Instant::now() + Duration::from_secs(25);
        let aged = on.get_at(&Key::of(&m, &q, false), later);
        let ttls: Option<Vec<u32>> = aged.map(|g| g.answers().iter().map(Record::ttl).collect());
        assert_eq!(ttls, Some(vec![5]), "kept 30s at most, then counted down");
        let expired = Instant::now() + Duration::from_secs(31);
        assert!(on.get_at(&Key::of(&m, &q, false), expired).is_none());
        let off = cache(0);
        assert!(!off.put(Key::of(&m, &q, false), &mut a, 64));
        assert!(off.get(&Key::of(&m, &q, false)).is_none());
    }

    #[test]
    fn answers_past_max_bytes_are_not_kept() {
        let (m, q) = query("historian.plant.local.");
        let small = cache(100);
        // 64 bytes on the wire weigh 128: more than the whole cache.
        small.put(
            Key::of(&m, &q, false),
            &mut answer(ResponseCode::NoError, Some(60), None),
            64,
        );
        if let Some(entries) = &small.entries {
            entries.run_pending_tasks();
        }
        assert!(small.get(&Key::of(&m, &q, false)).is_none());
    }
}
