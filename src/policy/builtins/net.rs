//! `net.*` CIDR builtins regorus lacks: `cidr_merge`, `cidr_intersects` and
//! `cidr_contains_matches`, with OPA's argument forms.
//!
//! `net.cidr_expand` replaces regorus's to bound its size (see [`MAX_EXPANDED`]).
//!
//! Not here: `net.cidr_contains`, `cidr_is_valid` (regorus has them) and
//! `net.lookup_ip_addr` (refused: network I/O).

use std::net::IpAddr;

use ipnet::IpNet;
use regorus::Value;

use super::{Args, Builtin, BuiltinError, set_of};

/// OPA limits nothing here; this bound keeps a hostile input from exhausting memory or time.
const MAX_ITEMS: usize = 1 << 16;

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "net.cidr_merge",
        arity: 1,
        run: cidr_merge,
    },
    Builtin {
        name: "net.cidr_intersects",
        arity: 2,
        run: cidr_intersects,
    },
    Builtin {
        name: "net.cidr_contains_matches",
        arity: 2,
        run: cidr_contains_matches,
    },
    Builtin {
        name: "net.cidr_expand",
        arity: 1,
        run: cidr_expand,
    },
];

/// `net.cidr_expand` of a /8 is 16 million strings: regorus's builtin would run past any
/// `eval_timeout` (builtins do not look at the clock), so sluice's expands at most this many.
const MAX_EXPANDED: u128 = 1 << 16;

fn parse_cidr(args: &Args<'_>, s: &str) -> Result<IpNet, BuiltinError> {
    s.parse::<IpNet>()
        .map_err(|_| args.error(format!("invalid CIDR address: {s}")))
}

/// An address or a CIDR as `cidr_merge` reads it. OPA gives a bare IPv4 address Go's classful
/// default mask (10.0.0.7 is 10.0.0.7/8) and keeps its host bits; an IPv6 address is its /128.
fn merge_operand(s: &str) -> Option<(IpNet, String)> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        let prefix = match ip {
            IpAddr::V4(v4) => match v4.octets()[0] {
                0..=127 => 8,
                128..=191 => 16,
                192..=223 => 24,
                _ => 32,
            },
            IpAddr::V6(_) => 128,
        };
        let net = IpNet::new(ip, prefix).ok()?;
        return Some((net.trunc(), format!("{ip}/{prefix}")));
    }
    let net = s.parse::<IpNet>().ok()?.trunc();
    Some((net, net.to_string()))
}

fn cidr_merge(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let items = args.strings(0)?;
    if items.len() > MAX_ITEMS {
        return Err(args.error(format!("more than {MAX_ITEMS} addresses")));
    }
    let mut nets = Vec::with_capacity(items.len());
    for s in &items {
        nets.push(
            merge_operand(s).ok_or_else(|| args.error(format!("invalid CIDR address: {s}")))?,
        );
    }
    let truncated: Vec<IpNet> = nets.iter().map(|(n, _)| *n).collect();
    let merged = IpNet::aggregate(&truncated).into_iter().map(|m| {
        // A network nothing merged into is printed as it was given (OPA keeps host bits then).
        let mut inside = nets.iter().filter(|(n, _)| m.contains(n));
        match (inside.next(), inside.next()) {
            (Some((n, text)), None) if *n == m => Value::from(text.clone()),
            _ => Value::from(m.to_string()),
        }
    });
    Ok(set_of(merged))
}

fn cidr_intersects(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let a = parse_cidr(args, args.string(0)?)?.trunc();
    let b = parse_cidr(args, args.string(1)?)?.trunc();
    // Two networks intersect exactly when one contains the other.
    Ok(Value::from(a.contains(&b) || b.contains(&a)))
}

/// OPA's `net.cidr_contains`, as `cidr_contains_matches` applies it to each pair.
fn contains(args: &Args<'_>, cidr: &str, addr: &str) -> Result<bool, BuiltinError> {
    let net = parse_cidr(args, cidr)?;
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Ok(net.contains(&ip));
    }
    let inner = parse_cidr(args, addr)?;
    Ok(net.contains(&inner.network()) && net.contains(&inner.broadcast()))
}

/// Each (key, cidr) of an operand: a string is its own key, an array's keys are indices, a
/// set's keys its elements, an object's keys its keys; an element may be `[cidr, ...]`.
fn operand(args: &Args<'_>, v: &Value) -> Result<Vec<(Value, String)>, BuiltinError> {
    let cidr_of = |x: &Value| -> Result<String, BuiltinError> {
        match x {
            Value::String(s) => Ok(s.to_string()),
            Value::Array(a) => match a.first() {
                Some(Value::String(s)) => Ok(s.to_string()),
                Some(_) => Err(args.error("embedded array must have a string as first element")),
                None => Err(args.error("embedded array must have at least one element")),
            },
            _ => Err(args.error("cidr must be string or array")),
        }
    };
    let mut out = Vec::new();
    match v {
        Value::String(s) => out.push((v.clone(), s.to_string())),
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                out.push((Value::from(i), cidr_of(x)?));
            }
        }
        Value::Set(s) => {
            for x in s.iter() {
                out.push((x.clone(), cidr_of(x)?));
            }
        }
        Value::Object(o) => {
            for (k, x) in o.iter() {
                out.push((k.clone(), cidr_of(x)?));
            }
        }
        other => {
            return Err(args.error(format!(
                "operand must be string, array, set or object but got {}",
                super::type_name(other)
            )));
        }
    }
    if out.len() > MAX_ITEMS {
        return Err(args.error(format!("more than {MAX_ITEMS} addresses")));
    }
    Ok(out)
}

fn cidr_contains_matches(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let cidrs = operand(args, args.value(0))?;
    let addrs = operand(args, args.value(1))?;
    if cidrs.len().saturating_mul(addrs.len()) > MAX_ITEMS * 16 {
        return Err(args.error("too many pairs of addresses to compare"));
    }
    let mut matches = Vec::new();
    for (k1, cidr) in &cidrs {
        for (k2, addr) in &addrs {
            if contains(args, cidr, addr)? {
                matches.push(Value::from(vec![k1.clone(), k2.clone()]));
            }
        }
    }
    Ok(set_of(matches))
}

fn cidr_expand(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let cidr = args.string(0)?;
    let net = parse_cidr(args, cidr)?;
    let host_bits = u32::from(net.max_prefix_len() - net.prefix_len());
    let size = 1u128.checked_shl(host_bits).unwrap_or(u128::MAX);
    if size > MAX_EXPANDED {
        return Err(args.error(format!(
            "{cidr} has {size} addresses; sluice expands at most {MAX_EXPANDED}"
        )));
    }
    // Every address, network and broadcast included (ipnet's hosts() leaves those out).
    let all: Vec<Value> = match net {
        IpNet::V4(n) => ipnet::Ipv4AddrRange::new(n.network(), n.broadcast())
            .map(|ip| Value::from(ip.to_string()))
            .collect(),
        IpNet::V6(n) => ipnet::Ipv6AddrRange::new(n.network(), n.broadcast())
            .map(|ip| Value::from(ip.to_string()))
            .collect(),
    };
    Ok(set_of(all))
}
