//! `sluice iptables`: the pod network namespace's interception rules, for the init container.
//!
//! In chains of its own (`SLUICE_OUTPUT` in the nat and filter tables, IPv4 and IPv6, one jump
//! from `OUTPUT` each) so that applying twice changes nothing and `--remove` takes exactly
//! them away. sluice's own UID is exempt; loopback stays inside the pod; DNS (UDP and TCP 53,
//! to any address) goes to `intercept.dns.listen`; every other outbound TCP connection goes to
//! `intercept.listen` (but `intercept.exclude_ports`); UDP, ICMP and any other protocol reach
//! only `site.local_networks`. The nat redirect points at a port on loopback: when sluice is
//! not running, connections are refused there instead of leaving.
//!
//! Applied with iptables-restore / ip6tables-restore (`--backend nft|legacy` picks the
//! `-nft`/`-legacy` variants; the default is whatever `iptables-restore` is). Not here: what
//! the listeners do with the traffic (proxy/transparent, proxy/dns).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use ipnet::IpNet;

use crate::config::Config;
use crate::config::intercept::InterceptConfig;

/// The chain sluice owns in each table.
pub const CHAIN: &str = "SLUICE_OUTPUT";

const HELP: &str = "\
Without --apply, --remove or --check the rules are printed (iptables-restore format).
Run as the pod's init container with NET_ADMIN and NET_RAW: sluice iptables -c FILE --apply.
Exit codes: 0 done (or, with --check, the rules are in place), 1 otherwise.";

#[derive(Debug, clap::Args)]
#[command(after_long_help = HELP)]
pub struct IptablesArgs {
    /// The serve config (its `intercept:` and `site:` sections); without it the defaults
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Install the rules (idempotent)
    #[arg(long, conflicts_with_all = ["remove", "check"])]
    pub apply: bool,
    /// Remove the rules (idempotent)
    #[arg(long, conflicts_with = "check")]
    pub remove: bool,
    /// Exit 0 when the rules are in place, else name what is missing and exit 1
    #[arg(long)]
    pub check: bool,
    /// Only IPv4 (for a kernel without IPv6; IPv6 traffic is then not covered)
    #[arg(long = "ipv4-only")]
    pub ipv4_only: bool,
    /// Which iptables: auto (iptables-restore as installed), nft or legacy
    #[arg(long, value_name = "BACKEND", default_value = "auto", value_parser = ["auto", "nft", "legacy"])]
    pub backend: String,
}

#[derive(Debug, thiserror::Error)]
pub enum IptablesError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot run {program}: {source} (install iptables, or pick --backend)")]
    Program {
        program: String,
        source: std::io::Error,
    },
    #[error("the kernel has no {family} nat table ({detail}); interception needs it")]
    NoNat {
        family: &'static str,
        detail: String,
    },
    #[error("IPv6 is not available here ({0}); pass --ipv4-only to apply the IPv4 rules alone")]
    NoIpv6(String),
    #[error("{program} refused the rules: {detail}")]
    Restore { program: String, detail: String },
    #[error("not in place: {0}")]
    Missing(String),
}

/// IPv4 or IPv6: which tools and which networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    fn name(self) -> &'static str {
        match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        }
    }

    fn tool(self, backend: &str, what: &str) -> String {
        let base = match self {
            Self::V4 => "iptables",
            Self::V6 => "ip6tables",
        };
        match backend {
            "nft" | "legacy" => format!("{base}-{backend}-{what}"),
            _ => format!("{base}-{what}"),
        }
    }
}

pub fn run(args: IptablesArgs) -> i32 {
    match execute(&args) {
        Ok(message) => {
            if !message.is_empty() {
                println!("{message}");
            }
            0
        }
        Err(e) => {
            eprintln!("sluice iptables: {e}");
            1
        }
    }
}

fn execute(args: &IptablesArgs) -> Result<String, IptablesError> {
    let config = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::parse("")?,
    };
    let intercept = config.intercept.clone().unwrap_or_default();
    let networks: Vec<IpNet> = config
        .site
        .local_networks
        .iter()
        .filter_map(|n| n.parse().ok())
        .collect();
    let families: &[Family] = if args.ipv4_only {
        &[Family::V4]
    } else {
        &[Family::V4, Family::V6]
    };
    if !(args.apply || args.remove || args.check) {
        let mut out = String::new();
        for f in families {
            out.push_str(&format!(
                "# {} ({} --noflush)\n",
                f.name(),
                f.tool("auto", "restore")
            ));
            out.push_str(&restore_text(&rules(&intercept, &networks, *f), &[]));
        }
        return Ok(out.trim_end().to_string());
    }
    // Every family is read before any is changed: a kernel without IPv6 (or a nat table) is
    // refused with nothing applied, never half-applied.
    let mut saves = Vec::new();
    for f in families {
        saves.push(save(*f, &args.backend)?);
    }
    let mut done = Vec::new();
    for (f, saved) in families.iter().zip(saves) {
        let tables = rules(&intercept, &networks, *f);
        if args.check {
            check(&saved, &tables)
                .map_err(|m| IptablesError::Missing(format!("{}: {m}", f.name())))?;
            continue;
        }
        let text = if args.apply {
            let jumped: Vec<&str> = ["nat", "filter"]
                .into_iter()
                .filter(|t| has_jump(&saved, t))
                .collect();
            restore_text(&tables, &jumped)
        } else {
            remove_text(&saved)
        };
        restore(*f, &args.backend, &text)?;
        done.push(f.name());
    }
    Ok(match (args.apply, args.remove) {
        (true, _) => format!(
            "sluice iptables: {} rules applied (chain {CHAIN} in nat and filter)",
            done.join(" and ")
        ),
        (_, true) => format!("sluice iptables: {} rules removed", done.join(" and ")),
        _ => format!(
            "sluice iptables: rules in place ({})",
            families
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    })
}

/// The rules of one family: `(table, rules of CHAIN)`.
pub fn rules(
    cfg: &InterceptConfig,
    networks: &[IpNet],
    family: Family,
) -> Vec<(&'static str, Vec<String>)> {
    let uid = format!("-m owner --uid-owner {} -j RETURN", cfg.uid);
    let mut nat = vec![uid.clone()];
    let dns = cfg.dns.listen.port();
    for proto in ["udp", "tcp"] {
        nat.push(format!(
            "-p {proto} -m {proto} --dport 53 -j REDIRECT --to-ports {dns}"
        ));
    }
    nat.push("-o lo -j RETURN".into());
    for port in &cfg.exclude_ports {
        nat.push(format!("-p tcp -m tcp --dport {port} -j RETURN"));
    }
    nat.push(format!(
        "-p tcp -j REDIRECT --to-ports {}",
        cfg.listen.port()
    ));

    let mut filter = vec![uid, "-o lo -j RETURN".into(), "-p tcp -j RETURN".into()];
    let mine = |n: &&IpNet| {
        matches!(
            (n, family),
            (IpNet::V4(_), Family::V4) | (IpNet::V6(_), Family::V6)
        )
    };
    for n in networks.iter().filter(mine) {
        filter.push(format!("-d {n} -j RETURN"));
    }
    if family == Family::V6 {
        // Neighbour discovery never leaves the link, and without it nothing works at all.
        filter.push("-d ff02::/16 -j RETURN".into());
        for t in [133, 134, 135, 136] {
            filter.push(format!("-p ipv6-icmp -m icmp6 --icmpv6-type {t} -j RETURN"));
        }
    }
    filter.push("-j DROP".into());
    vec![("nat", nat), ("filter", filter)]
}

/// iptables-restore --noflush input: declaring the chain empties it (or creates it), then its
/// rules; the jump from OUTPUT is added only in tables that do not have it yet.
fn restore_text(tables: &[(&str, Vec<String>)], jumped: &[&str]) -> String {
    let mut out = String::new();
    for (table, rules) in tables {
        out.push_str(&format!("*{table}\n:{CHAIN} - [0:0]\n"));
        for r in rules {
            out.push_str(&format!("-A {CHAIN} {r}\n"));
        }
        if !jumped.contains(table) {
            out.push_str(&format!("-I OUTPUT 1 -j {CHAIN}\n"));
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// Deletes every jump to CHAIN and the chain itself, in the tables where they exist.
fn remove_text(saved: &str) -> String {
    let mut out = String::new();
    for table in ["nat", "filter"] {
        let section = table_section(saved, table);
        let jumps = section.iter().filter(|l| is_jump(l)).count();
        let has_chain = section.iter().any(|l| l.starts_with(&format!(":{CHAIN} ")));
        if jumps == 0 && !has_chain {
            continue;
        }
        out.push_str(&format!("*{table}\n"));
        for _ in 0..jumps {
            out.push_str(&format!("-D OUTPUT -j {CHAIN}\n"));
        }
        if has_chain {
            out.push_str(&format!("-F {CHAIN}\n-X {CHAIN}\n"));
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// The lines of one table in iptables-save output.
fn table_section<'a>(saved: &'a str, table: &str) -> Vec<&'a str> {
    let header = format!("*{table}");
    saved
        .lines()
        .skip_while(|l| l.trim() != header)
        .skip(1)
        .take_while(|l| l.trim() != "COMMIT")
        .collect()
}

fn is_jump(line: &str) -> bool {
    line.trim() == format!("-A OUTPUT -j {CHAIN}")
}

fn has_jump(saved: &str, table: &str) -> bool {
    table_section(saved, table).iter().any(|l| is_jump(l))
}

/// Compares what is installed with what should be: the jump, and every rule, in order.
fn check(saved: &str, tables: &[(&str, Vec<String>)]) -> Result<(), String> {
    for (table, want) in tables {
        let section = table_section(saved, table);
        if !section.iter().any(|l| is_jump(l)) {
            return Err(format!(
                "no jump from OUTPUT to {CHAIN} in the {table} table"
            ));
        }
        let prefix = format!("-A {CHAIN} ");
        let have: Vec<&str> = section
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix))
            .collect();
        if have.len() != want.len() {
            return Err(format!(
                "{CHAIN} in the {table} table has {} rules, expected {}",
                have.len(),
                want.len()
            ));
        }
        let redirect = want
            .iter()
            .find(|r| r.contains("REDIRECT --to-ports"))
            .filter(|_| *table == "nat");
        if let Some(r) = redirect {
            if !have
                .iter()
                .any(|h| h.ends_with(r.rsplit(" -j ").next().unwrap_or(r)))
            {
                return Err(format!(
                    "{CHAIN} in the nat table does not redirect as expected ({r})"
                ));
            }
        }
    }
    Ok(())
}

/// iptables-save of the nat and filter tables; a missing nat table or IPv6 is named.
fn save(family: Family, backend: &str) -> Result<String, IptablesError> {
    if family == Family::V6 && !std::path::Path::new("/proc/net/if_inet6").exists() {
        return Err(IptablesError::NoIpv6("no /proc/net/if_inet6".into()));
    }
    let program = family.tool(backend, "save");
    let mut all = String::new();
    for table in ["nat", "filter"] {
        let out = Command::new(&program)
            .args(["-t", table])
            .stdin(Stdio::null())
            .output()
            .map_err(|source| IptablesError::Program {
                program: program.clone(),
                source,
            })?;
        let detail = first_line(&out.stderr);
        if !out.status.success() {
            return Err(match (table, family) {
                ("nat", Family::V6)
                    if detail.contains("not exist")
                        || detail.contains("protocol not supported") =>
                {
                    IptablesError::NoIpv6(detail)
                }
                ("nat", _) => IptablesError::NoNat {
                    family: family.name(),
                    detail,
                },
                _ => IptablesError::Restore { program, detail },
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        if !text.contains(&format!("*{table}")) {
            // iptables-nft-save prints nothing for a table that was never used: it is empty.
            all.push_str(&format!("*{table}\nCOMMIT\n"));
        }
        all.push_str(&text);
    }
    Ok(all)
}

fn restore(family: Family, backend: &str, text: &str) -> Result<(), IptablesError> {
    if text.is_empty() {
        return Ok(());
    }
    let program = family.tool(backend, "restore");
    let mut child = Command::new(&program)
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| IptablesError::Program {
            program: program.clone(),
            source,
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| IptablesError::Program {
            program: program.clone(),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(IptablesError::Restore {
            program,
            detail: first_line(&out.stderr),
        })
    }
}

fn first_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .next()
        .unwrap_or("failed")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> (InterceptConfig, Vec<IpNet>) {
        let nets = crate::config::SiteConfig::default()
            .local_networks
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        (InterceptConfig::default(), nets)
    }

    #[test]
    fn uid_is_exempt_first_and_tcp_is_redirected_last() {
        let (cfg, nets) = defaults();
        let v4 = rules(&cfg, &nets, Family::V4);
        let nat = &v4[0].1;
        assert_eq!(nat[0], "-m owner --uid-owner 65532 -j RETURN");
        assert_eq!(
            nat.last().map(String::as_str),
            Some("-p tcp -j REDIRECT --to-ports 15001")
        );
        assert!(
            nat.iter()
                .any(|r| r == "-p udp -m udp --dport 53 -j REDIRECT --to-ports 15053")
        );
        let filter = &v4[1].1;
        assert!(filter.contains(&"-d 10.0.0.0/8 -j RETURN".to_string()));
        assert!(!filter.iter().any(|r| r.contains("fc00::/7")));
        assert_eq!(filter.last().map(String::as_str), Some("-j DROP"));
        let v6 = rules(&cfg, &nets, Family::V6);
        assert!(v6[1].1.contains(&"-d fc00::/7 -j RETURN".to_string()));
    }

    #[test]
    fn applying_twice_adds_no_second_jump_and_remove_takes_what_is_there() {
        let (cfg, nets) = defaults();
        let tables = rules(&cfg, &nets, Family::V4);
        let first = restore_text(&tables, &[]);
        assert_eq!(first.matches("-I OUTPUT 1 -j SLUICE_OUTPUT").count(), 2);
        let again = restore_text(&tables, &["nat", "filter"]);
        assert_eq!(again.matches("-I OUTPUT").count(), 0);
        let saved = "*nat\n:OUTPUT ACCEPT [0:0]\n:SLUICE_OUTPUT - [0:0]\n-A OUTPUT -j SLUICE_OUTPUT\nCOMMIT\n*filter\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n";
        let removed = remove_text(saved);
        assert_eq!(
            removed,
            "*nat\n-D OUTPUT -j SLUICE_OUTPUT\n-F SLUICE_OUTPUT\n-X SLUICE_OUTPUT\nCOMMIT\n"
        );
        assert!(has_jump(saved, "nat") && !has_jump(saved, "filter"));
    }
}
