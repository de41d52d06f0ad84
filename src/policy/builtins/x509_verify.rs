//! `crypto.x509.parse_and_verify_certificates` and `…_with_options`: the chain OPA builds with
//! Go's `x509.Verify`. The first certificate is the root, the last the leaf, the ones between
//! are intermediates; the answer is `[true, chain]` (leaf first) or `[false, []]`. Go's rules
//! kept here: validity at the current time (or `CurrentTime`), issuers found by name and key
//! identifier, a signing certificate must be a CA allowed to sign certificates, path lengths,
//! name constraints on the leaf's names, the leaf's unhandled critical extensions, the extended
//! key usages (server authentication unless `KeyUsages` says otherwise), SHA-1 and MD5
//! signatures refused, and `DNSName` matched as `VerifyHostname` matches it. Signatures are
//! checked with `ring`.
//!
//! Not here: parsing the certificates (`x509`); revocation (neither OPA nor Go checks it).

use std::net::IpAddr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use regorus::Value;
use ring::signature;

use super::keys::{self, Curve, PublicKey};
use super::{Args, Builtin, BuiltinError, type_name};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "crypto.x509.parse_and_verify_certificates",
        arity: 1,
        run: parse_and_verify,
    },
    Builtin {
        name: "crypto.x509.parse_and_verify_certificates_with_options",
        arity: 2,
        run: parse_and_verify_with_options,
    },
];

/// Go gives up after this many signature checks while building chains.
const MAX_SIGNATURE_CHECKS: usize = 100;
/// Longer chains than this are not followed (Go has no fixed depth; the check count bounds it).
const MAX_DEPTH: usize = 16;

const SERVER_AUTH: i64 = 1;
const ANY_USAGE: i64 = 0;
const CERT_SIGN: i64 = 1 << 5;

/// Go's `x509.VerifyOptions`, as OPA reads them from the options object.
struct Options {
    dns_name: Option<String>,
    /// Unix seconds.
    now: i64,
    key_usages: Vec<i64>,
}

fn invalid() -> Value {
    Value::from(vec![Value::from(false), Value::from(Vec::<Value>::new())])
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn parse_and_verify(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let text = args.string(0)?;
    let Ok(certs) = super::x509::certificates(args, text) else {
        return Ok(invalid());
    };
    let options = Options {
        dns_name: None,
        now: now_seconds(),
        key_usages: Vec::new(),
    };
    Ok(verify(&certs, &options))
}

fn parse_and_verify_with_options(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let text = args.string(0)?;
    let Value::Object(options) = args.value(1) else {
        return Err(args.error(format!(
            "operand 2 must be object but got {}",
            type_name(args.value(1))
        )));
    };
    let Ok(certs) = super::x509::certificates(args, text) else {
        return Ok(invalid());
    };
    let mut opts = Options {
        dns_name: None,
        now: now_seconds(),
        key_usages: Vec::new(),
    };
    for (key, value) in options.iter() {
        let Value::String(key) = key else {
            return Err(args.error("invalid key option"));
        };
        match key.as_ref() {
            "DNSName" => match value {
                Value::String(s) => opts.dns_name = Some(s.trim_matches('"').to_string()),
                _ => return Err(args.error("'DNSName' should be a string")),
            },
            "CurrentTime" => match value {
                Value::Number(n) => {
                    let ns = n.as_i64().ok_or_else(|| {
                        args.error("'CurrentTime' should be a valid int64 number")
                    })?;
                    opts.now = ns.div_euclid(1_000_000_000);
                }
                _ => return Err(args.error("'CurrentTime' should be a number")),
            },
            "MaxConstraintComparisons" => match value {
                // Go's bound on name-constraint work; sluice's own bounds apply regardless.
                Value::Number(n) if n.as_i64().is_some() => {}
                Value::Number(_) => {
                    return Err(args.error("'MaxConstraintComparisons' should be a valid number"));
                }
                _ => return Err(args.error("'MaxConstraintComparisons' should be a number")),
            },
            "KeyUsages" => {
                let items: Vec<&Value> = match value {
                    Value::Array(a) => a.iter().collect(),
                    Value::Set(s) => s.iter().collect(),
                    _ => return Err(args.error("'KeyUsages' should be an Array or Set")),
                };
                let mut bad = Vec::new();
                for item in items {
                    if let Value::String(s) = item {
                        let s = s.trim_matches('"');
                        match key_usage(s) {
                            Some(k) => opts.key_usages.push(k),
                            None => bad.push(s.to_string()),
                        }
                    }
                }
                if !bad.is_empty() {
                    return Err(args.error(format!(
                        "invalid entries for 'KeyUsages' found: [{}]",
                        bad.join(" ")
                    )));
                }
            }
            _ => return Err(args.error("invalid key option")),
        }
    }
    Ok(verify(&certs, &opts))
}

/// OPA's names of Go's `x509.ExtKeyUsage` values.
fn key_usage(name: &str) -> Option<i64> {
    const NAMES: &[&str] = &[
        "KeyUsageAny",
        "KeyUsageServerAuth",
        "KeyUsageClientAuth",
        "KeyUsageCodeSigning",
        "KeyUsageEmailProtection",
        "KeyUsageIPSECEndSystem",
        "KeyUsageIPSECTunnel",
        "KeyUsageIPSECUser",
        "KeyUsageTimeStamping",
        "KeyUsageOCSPSigning",
        "KeyUsageMicrosoftServerGatedCrypto",
        "KeyUsageNetscapeServerGatedCrypto",
        "KeyUsageMicrosoftCommercialCodeSigning",
        "KeyUsageMicrosoftKernelCodeSigning",
    ];
    NAMES
        .iter()
        .position(|n| *n == name)
        .and_then(|i| i64::try_from(i).ok())
}

/// What verification reads of one parsed certificate.
struct Cert<'a> {
    value: &'a Value,
    raw: Vec<u8>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    signature_algorithm: i64,
    key: Option<PublicKey>,
    spki: Vec<u8>,
    subject: Vec<u8>,
    issuer: Vec<u8>,
    subject_key_id: Option<Vec<u8>>,
    authority_key_id: Option<Vec<u8>>,
    not_before: i64,
    not_after: i64,
}

fn bytes_field(v: &Value, key: &str) -> Option<Vec<u8>> {
    match &v[key] {
        Value::String(s) => STANDARD.decode(s.as_bytes()).ok(),
        _ => None,
    }
}

fn int_field(v: &Value, key: &str) -> i64 {
    match &v[key] {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn bool_field(v: &Value, key: &str) -> bool {
    v[key] == Value::Bool(true)
}

fn strings_field(v: &Value, key: &str) -> Vec<String> {
    match &v[key] {
        Value::Array(items) => items
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn ints_field(v: &Value, key: &str) -> Vec<i64> {
    match &v[key] {
        Value::Array(items) => items
            .iter()
            .filter_map(|x| match x {
                Value::Number(n) => n.as_i64(),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn is_empty_list(v: &Value, key: &str) -> bool {
    !matches!(&v[key], Value::Array(a) if !a.is_empty())
}

/// `2026-12-02T21:55:02Z` (as `x509` writes times) in Unix seconds.
fn unix_seconds(v: &Value) -> Option<i64> {
    let Value::String(s) = v else { return None };
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

impl<'a> Cert<'a> {
    fn read(value: &'a Value) -> Option<Self> {
        let spki = bytes_field(value, "RawSubjectPublicKeyInfo")?;
        Some(Self {
            value,
            raw: bytes_field(value, "Raw")?,
            tbs: bytes_field(value, "RawTBSCertificate")?,
            signature: bytes_field(value, "Signature")?,
            signature_algorithm: int_field(value, "SignatureAlgorithm"),
            key: keys::spki_key(&spki).ok(),
            spki,
            subject: bytes_field(value, "RawSubject")?,
            issuer: bytes_field(value, "RawIssuer")?,
            subject_key_id: bytes_field(value, "SubjectKeyId"),
            authority_key_id: bytes_field(value, "AuthorityKeyId"),
            not_before: unix_seconds(&value["NotBefore"])?,
            not_after: unix_seconds(&value["NotAfter"])?,
        })
    }

    /// Go's `CheckSignatureFrom`: the parent may sign certificates, and its key signed this.
    fn signed_by(&self, parent: &Cert<'_>) -> bool {
        let pv = parent.value;
        let bc_valid = bool_field(pv, "BasicConstraintsValid");
        if (int_field(pv, "Version") == 3 && !bc_valid) || (bc_valid && !bool_field(pv, "IsCA")) {
            return false;
        }
        let usage = int_field(pv, "KeyUsage");
        if usage != 0 && usage & CERT_SIGN == 0 {
            return false;
        }
        let Some(key) = &parent.key else {
            return false;
        };
        check_signature(self.signature_algorithm, key, &self.tbs, &self.signature)
    }
}

/// A signature over `msg` with the issuer's key, for the algorithms Go accepts (not SHA-1, not
/// MD5).
fn check_signature(algorithm: i64, key: &PublicKey, msg: &[u8], sig: &[u8]) -> bool {
    let rsa: Option<&'static signature::RsaParameters> = match algorithm {
        4 => Some(&signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY),
        5 => Some(&signature::RSA_PKCS1_2048_8192_SHA384),
        6 => Some(&signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY),
        13 => Some(&signature::RSA_PSS_2048_8192_SHA256),
        14 => Some(&signature::RSA_PSS_2048_8192_SHA384),
        15 => Some(&signature::RSA_PSS_2048_8192_SHA512),
        _ => None,
    };
    match (rsa, key) {
        (Some(params), PublicKey::RsaDer(der)) => {
            return signature::UnparsedPublicKey::new(params, der)
                .verify(msg, sig)
                .is_ok();
        }
        (Some(_), _) => return false,
        _ => {}
    }
    if let PublicKey::Ec {
        point,
        curve: Curve::P521,
    } = key
    {
        // ring has no P-521; Go verifies it with any of the ECDSA hashes.
        let hash = match algorithm {
            10 => &ring::digest::SHA256,
            11 => &ring::digest::SHA384,
            12 => &ring::digest::SHA512,
            _ => return false,
        };
        return super::ec::fixed_from_der(sig).is_some_and(|fixed| {
            super::ec::verify_digest(point, ring::digest::digest(hash, msg).as_ref(), &fixed)
        });
    }
    let ec: &'static signature::EcdsaVerificationAlgorithm = match (algorithm, key) {
        (
            10,
            PublicKey::Ec {
                curve: Curve::P256, ..
            },
        ) => &signature::ECDSA_P256_SHA256_ASN1,
        (
            10,
            PublicKey::Ec {
                curve: Curve::P384, ..
            },
        ) => &signature::ECDSA_P384_SHA256_ASN1,
        (
            11,
            PublicKey::Ec {
                curve: Curve::P256, ..
            },
        ) => &signature::ECDSA_P256_SHA384_ASN1,
        (
            11,
            PublicKey::Ec {
                curve: Curve::P384, ..
            },
        ) => &signature::ECDSA_P384_SHA384_ASN1,
        (16, PublicKey::Ed25519(k)) => {
            return signature::UnparsedPublicKey::new(&signature::ED25519, k)
                .verify(msg, sig)
                .is_ok();
        }
        _ => return false,
    };
    match key {
        PublicKey::Ec { point, .. } => signature::UnparsedPublicKey::new(ec, point)
            .verify(msg, sig)
            .is_ok(),
        _ => false,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Intermediate,
    Root,
}

struct Builder<'c, 'v> {
    roots: &'c [Cert<'v>],
    intermediates: &'c [Cert<'v>],
    leaf: &'c Cert<'v>,
    now: i64,
    checks: usize,
    chains: Vec<Vec<&'c Cert<'v>>>,
}

impl<'c, 'v> Builder<'c, 'v> {
    /// Go's `findPotentialParents`: certificates named as the issuer, those whose key
    /// identifier matches first.
    fn parents(&self, pool: &'c [Cert<'v>], child: &Cert<'_>) -> Vec<&'c Cert<'v>> {
        let mut matched = Vec::new();
        let mut no_id = Vec::new();
        let mut mismatched = Vec::new();
        for c in pool.iter().filter(|c| c.subject == child.issuer) {
            match (&c.subject_key_id, &child.authority_key_id) {
                (Some(s), Some(a)) if s == a => matched.push(c),
                (Some(_), Some(_)) => mismatched.push(c),
                _ => no_id.push(c),
            }
        }
        matched.extend(no_id);
        matched.extend(mismatched);
        matched
    }

    fn build(&mut self, chain: Vec<&'c Cert<'v>>) {
        let Some(&last) = chain.last() else { return };
        if chain.len() > MAX_DEPTH {
            return;
        }
        let candidates: Vec<(Kind, &'c Cert<'v>)> = self
            .parents(self.roots, last)
            .into_iter()
            .map(|c| (Kind::Root, c))
            .chain(
                self.parents(self.intermediates, last)
                    .into_iter()
                    .map(|c| (Kind::Intermediate, c)),
            )
            .collect();
        for (kind, candidate) in candidates {
            if chain.iter().any(|c| already_same(c, candidate)) {
                continue;
            }
            self.checks += 1;
            if self.checks > MAX_SIGNATURE_CHECKS {
                return;
            }
            if !last.signed_by(candidate) || !self.valid(candidate, kind, &chain) {
                continue;
            }
            let mut next = chain.clone();
            next.push(candidate);
            match kind {
                Kind::Root => self.chains.push(next),
                Kind::Intermediate => self.build(next),
            }
        }
    }

    /// Go's `isValid` for a signing certificate at this place in the chain.
    fn valid(&self, c: &Cert<'_>, kind: Kind, chain: &[&Cert<'_>]) -> bool {
        if self.now < c.not_before || self.now > c.not_after {
            return false;
        }
        let v = c.value;
        if !name_constraints_allow(v, self.leaf.value) {
            return false;
        }
        if kind == Kind::Intermediate
            && (!bool_field(v, "BasicConstraintsValid") || !bool_field(v, "IsCA"))
        {
            return false;
        }
        let max_path = int_field(v, "MaxPathLen");
        if bool_field(v, "BasicConstraintsValid") && max_path >= 0 {
            let intermediates = i64::try_from(chain.len()).unwrap_or(i64::MAX) - 1;
            if intermediates > max_path {
                return false;
            }
        }
        true
    }
}

/// Go's `alreadyInChain`: the same subject and key (a certificate reached twice).
fn already_same(a: &Cert<'_>, b: &Cert<'_>) -> bool {
    a.raw == b.raw || (a.subject == b.subject && a.spki == b.spki)
}

fn verify(values: &[Value], opts: &Options) -> Value {
    if values.len() < 2 {
        return invalid();
    }
    let Some(certs) = values.iter().map(Cert::read).collect::<Option<Vec<_>>>() else {
        return invalid();
    };
    let (roots, rest) = certs.split_at(1);
    let (intermediates, leaf) = rest.split_at(rest.len() - 1);
    let leaf = &leaf[0];
    let lv = leaf.value;
    if !is_empty_list(lv, "UnhandledCriticalExtensions") {
        return invalid();
    }
    if opts.now < leaf.not_before || opts.now > leaf.not_after {
        return invalid();
    }
    if let Some(host) = &opts.dns_name {
        if !hostname_matches(lv, host) {
            return invalid();
        }
    }
    let mut builder = Builder {
        roots,
        intermediates,
        leaf,
        now: opts.now,
        checks: 0,
        chains: Vec::new(),
    };
    if roots.iter().any(|r| r.raw == leaf.raw) {
        builder.chains.push(vec![leaf]);
    } else {
        builder.build(vec![leaf]);
    }
    let wanted = if opts.key_usages.is_empty() {
        vec![SERVER_AUTH]
    } else {
        opts.key_usages.clone()
    };
    let any = wanted.contains(&ANY_USAGE);
    let chain = builder
        .chains
        .into_iter()
        .find(|chain| any || chain_allows(chain, &wanted));
    match chain {
        Some(chain) => Value::from(vec![
            Value::from(true),
            Value::from(chain.iter().map(|c| c.value.clone()).collect::<Vec<_>>()),
        ]),
        None => invalid(),
    }
}

/// Go's `checkChainForKeyUsage`: each certificate with extended key usages narrows the wanted
/// ones; the chain fails when none is left.
fn chain_allows(chain: &[&Cert<'_>], wanted: &[i64]) -> bool {
    let mut left: Vec<Option<i64>> = wanted.iter().copied().map(Some).collect();
    for cert in chain.iter().rev() {
        let usages = ints_field(cert.value, "ExtKeyUsage");
        if usages.is_empty() && is_empty_list(cert.value, "UnknownExtKeyUsage") {
            continue;
        }
        if usages.contains(&ANY_USAGE) {
            continue;
        }
        for slot in left.iter_mut() {
            if let Some(u) = slot {
                if !usages.contains(u) {
                    *slot = None;
                }
            }
        }
        if left.iter().all(Option::is_none) {
            return false;
        }
    }
    true
}

/// Go's `VerifyHostname`: an IP against the IP names, a name against the DNS names (one
/// leading `*` label matches one label; case and a trailing dot do not count).
fn hostname_matches(leaf: &Value, host: &str) -> bool {
    let ip_text = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = ip_text.parse::<IpAddr>() {
        return strings_field(leaf, "IPAddresses")
            .iter()
            .filter_map(|s| s.parse::<IpAddr>().ok())
            .any(|c| same_ip(c, ip));
    }
    let host = host.to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    strings_field(leaf, "DNSNames").iter().any(|pattern| {
        let pattern = pattern.to_ascii_lowercase();
        let pattern = pattern.trim_end_matches('.');
        let p: Vec<&str> = pattern.split('.').collect();
        let h: Vec<&str> = host.split('.').collect();
        p.len() == h.len()
            && p.iter()
                .zip(&h)
                .enumerate()
                .all(|(i, (p, h))| (i == 0 && *p == "*" && !h.is_empty()) || p == h)
    })
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    let v6 = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    v6(a) == v6(b)
}

/// Go's `matchDomainConstraint`: a leading dot asks for at least one more label.
fn domain_matches(domain: &str, constraint: &str) -> bool {
    if constraint.is_empty() {
        return true;
    }
    let (must_be_sub, constraint) = match constraint.strip_prefix('.') {
        Some(c) => (true, c),
        None => (false, constraint),
    };
    let d: Vec<&str> = domain.trim_end_matches('.').rsplit('.').collect();
    let c: Vec<&str> = constraint.rsplit('.').collect();
    if d.len() < c.len() || (must_be_sub && d.len() == c.len()) {
        return false;
    }
    c.iter().zip(&d).all(|(c, d)| c.eq_ignore_ascii_case(d))
}

fn email_matches(mailbox: &str, constraint: &str) -> bool {
    if constraint.contains('@') {
        return mailbox.eq_ignore_ascii_case(constraint);
    }
    mailbox
        .rsplit_once('@')
        .is_some_and(|(_, domain)| domain_matches(domain, constraint))
}

fn uri_host(uri: &str) -> Option<String> {
    let (_, rest) = uri.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']').next()?.trim_start_matches('[')
    } else {
        host.split(':').next()?
    };
    Some(host.to_string())
}

fn ip_in(ip: IpAddr, net: &Value) -> bool {
    let (Value::String(base), Some(mask)) = (&net["IP"], bytes_field(net, "Mask")) else {
        return false;
    };
    let Ok(base) = base.parse::<IpAddr>() else {
        return false;
    };
    let bytes = |ip: IpAddr| match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    };
    let (ip, base) = (bytes(ip), bytes(base));
    ip.len() == mask.len()
        && base.len() == mask.len()
        && ip
            .iter()
            .zip(&base)
            .zip(&mask)
            .all(|((i, b), m)| i & m == b & m)
}

/// Go's `checkNameConstraints` of a signing certificate against the leaf's names.
fn name_constraints_allow(ca: &Value, leaf: &Value) -> bool {
    let check = |names: Vec<String>, kind: &str, matches: &dyn Fn(&str, &str) -> bool| {
        let permitted = strings_field(ca, &format!("Permitted{kind}"));
        let excluded = strings_field(ca, &format!("Excluded{kind}"));
        names.iter().all(|n| {
            !excluded.iter().any(|c| matches(n, c))
                && (permitted.is_empty() || permitted.iter().any(|c| matches(n, c)))
        })
    };
    if !check(
        strings_field(leaf, "DNSNames"),
        "DNSDomains",
        &domain_matches,
    ) || !check(
        strings_field(leaf, "EmailAddresses"),
        "EmailAddresses",
        &email_matches,
    ) {
        return false;
    }
    let uris = strings_field(leaf, "URIStrings");
    let uri_ok = |uri: &str, c: &str| uri_host(uri).is_some_and(|h| domain_matches(&h, c));
    if !check(uris, "URIDomains", &uri_ok) {
        return false;
    }
    let nets = |key: &str| match &ca[key] {
        Value::Array(a) => a.iter().cloned().collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    let (permitted, excluded) = (nets("PermittedIPRanges"), nets("ExcludedIPRanges"));
    strings_field(leaf, "IPAddresses")
        .iter()
        .filter_map(|s| s.parse::<IpAddr>().ok())
        .all(|ip| {
            !excluded.iter().any(|n| ip_in(ip, n))
                && (permitted.is_empty() || permitted.iter().any(|n| ip_in(ip, n)))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_names_match_as_go_matches_them() {
        assert_eq!(unix_seconds(&Value::from("1970-01-01T00:00:00Z")), Some(0));
        assert_eq!(
            unix_seconds(&Value::from("2026-12-02T21:55:02Z")),
            Some(1_796_248_502)
        );
        assert!(domain_matches("a.plant.local", ".plant.local"));
        assert!(!domain_matches("plant.local", ".plant.local"));
        assert!(domain_matches("plant.local", "plant.local"));
        assert!(!domain_matches("evilplant.local", "plant.local"));
        assert!(email_matches("ops@a.plant.local", ".plant.local"));
        assert_eq!(
            uri_host("https://u@h.plant.local:8443/x"),
            Some("h.plant.local".into())
        );
    }
}
