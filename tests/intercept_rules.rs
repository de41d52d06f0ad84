//! `sluice iptables` against the real iptables, both backends, in a network namespace: applying
//! is idempotent, `--check` tells, `--remove` takes exactly sluice's chains away (twice is
//! fine), and failures are one line with exit 1. Needs root, ip, iptables (nft and legacy).

mod support;

use std::process::Output;

use support::pod::*;

fn sluice(ns: &Netns, args: &[&str]) -> Result<Output, Error> {
    let mut full = vec![
        "ip",
        "netns",
        "exec",
        &ns.pod,
        env!("CARGO_BIN_EXE_sluice"),
        "iptables",
    ];
    full.extend_from_slice(args);
    output(&full)
}

/// The lines of sluice's chains and jumps in iptables-save output of the backend.
fn installed(ns: &Netns, backend: &str) -> Result<Vec<String>, Error> {
    let mut lines = Vec::new();
    for tool in ["iptables", "ip6tables"] {
        let save = format!("{tool}-{backend}-save");
        let text = ns.exec(&ns.pod, &[&save])?;
        lines.extend(
            text.lines()
                .filter(|l| l.contains("SLUICE_OUTPUT"))
                .map(str::to_string),
        );
    }
    Ok(lines)
}

#[test]
fn rules_apply_idempotently_check_and_remove_with_either_backend() -> TestResult {
    if !can_run("rules_apply_idempotently_check_and_remove_with_either_backend") {
        return Ok(());
    }
    let ns = Netns::new("rules")?;
    let config = ns.write("sluice.yaml", "intercept:\n  exclude_ports: [2222]\n")?;
    let cfg = config.to_string_lossy().into_owned();
    for backend in ["nft", "legacy"] {
        let with = |flag: &'static str| vec!["-c", &cfg, flag, "--backend", backend];
        let out = sluice(&ns, &with("--check"))?;
        assert_eq!(
            out.status.code(),
            Some(1),
            "{backend}: --check before --apply"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with("sluice iptables: not in place: IPv4: no jump"),
            "{err}"
        );

        assert!(
            sluice(&ns, &with("--apply"))?.status.success(),
            "{backend}: first --apply"
        );
        let first = installed(&ns, backend)?;
        assert!(
            first.iter().any(|l| l.contains("--dport 2222 -j RETURN")),
            "{first:?}"
        );
        assert!(
            first
                .iter()
                .any(|l| l.contains("REDIRECT --to-ports 15001")),
            "{first:?}"
        );
        assert!(
            sluice(&ns, &with("--apply"))?.status.success(),
            "{backend}: second --apply"
        );
        assert_eq!(
            installed(&ns, backend)?,
            first,
            "{backend}: applying twice changed the rules"
        );
        assert!(
            sluice(&ns, &with("--check"))?.status.success(),
            "{backend}: --check after --apply"
        );

        // A rule taken away is noticed.
        let nat_flush = format!("iptables-{backend}");
        ns.exec(
            &ns.pod,
            &[&nat_flush, "-t", "nat", "-D", "SLUICE_OUTPUT", "1"],
        )?;
        assert_eq!(
            sluice(&ns, &with("--check"))?.status.code(),
            Some(1),
            "{backend}: a missing rule"
        );

        assert!(
            sluice(&ns, &with("--remove"))?.status.success(),
            "{backend}: --remove"
        );
        assert_eq!(
            installed(&ns, backend)?,
            Vec::<String>::new(),
            "{backend}: rules left after --remove"
        );
        assert!(
            sluice(&ns, &with("--remove"))?.status.success(),
            "{backend}: second --remove"
        );
    }
    let printed = sluice(&ns, &["-c", &cfg])?;
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        text.contains("-A SLUICE_OUTPUT -p tcp -j REDIRECT --to-ports 15001"),
        "{text}"
    );
    assert!(text.contains("# IPv6"), "{text}");
    Ok(())
}
