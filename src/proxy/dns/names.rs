//! Which name an address was given out for: every A/AAAA answer that sluice's DNS listener
//! passed to the processor (after judging the name) is remembered here for the answer's TTL,
//! so that a later connection to that address is judged under the name the processor looked
//! up (`target.host`), as the forward proxy judges a request by its name.
//!
//! Only sluice's own answers go in: a name a client merely claims (Host header, SNI) is never
//! taken as the target host unless sluice answered that name with that address. Bounded; the
//! oldest half is dropped when full. Not here: the DNS listener (dns/mod.rs).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Entries kept at most (a plant processor talks to a few hosts, not thousands).
const CAPACITY: usize = 10_000;
/// Answers with a longer TTL are remembered this long at most.
const MAX_TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Default)]
pub struct AnsweredNames {
    by_ip: Mutex<HashMap<IpAddr, (String, Instant)>>,
}

impl AnsweredNames {
    /// Remembers that `name` was answered with `ip` for `ttl`.
    pub fn insert(&self, ip: IpAddr, name: &str, ttl: Duration) {
        let now = Instant::now();
        let mut map = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= CAPACITY {
            map.retain(|_, (_, until)| *until > now);
            if map.len() >= CAPACITY {
                let mut ages: Vec<Instant> = map.values().map(|(_, u)| *u).collect();
                ages.sort_unstable();
                let cut = ages[ages.len() / 2];
                map.retain(|_, (_, until)| *until > cut);
            }
        }
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        map.insert(ip, (name, now + ttl.min(MAX_TTL)));
    }

    /// The name `ip` was last answered for, while that answer is fresh.
    pub fn name_of(&self, ip: IpAddr) -> Option<String> {
        let map = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ip)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(name, _)| name.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_remembered_until_their_ttl() {
        let names = AnsweredNames::default();
        let ip: IpAddr = [198, 18, 0, 2].into();
        names.insert(ip, "Ingest.Example.COM.", Duration::from_secs(60));
        assert_eq!(names.name_of(ip).as_deref(), Some("ingest.example.com"));
        names.insert(ip, "gone.example.com", Duration::ZERO);
        assert_eq!(names.name_of(ip), None);
    }
}
