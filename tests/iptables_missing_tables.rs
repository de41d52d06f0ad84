//! `sluice iptables` on a kernel without the nat table or without IPv6: one line naming what is
//! missing, exit 1, nothing applied; `--ipv4-only` applies the IPv4 rules alone.
//!
//! The kernel's answers are played by stand-in `iptables-save`/`ip6tables-save`/`*-restore`
//! programs first on PATH, which answer the way iptables does on such kernels (and record what
//! they were asked), so no real rule is touched and the test needs no root.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use support::*;

/// A stand-in: `script` is the body of a shell script; every call is appended to `calls`.
fn stand_in(dir: &TempDir, name: &str, script: &str) {
    let calls = dir.join("calls");
    let path = dir.file(
        name,
        &format!(
            "#!/bin/sh\necho \"{name} $*\" >> {}\n{script}\n",
            calls.display()
        ),
    );
    let mut perms = std::fs::metadata(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .permissions();
    perms.set_mode(0o755);
    std::fs::set_permissions(&path, perms).unwrap_or_else(|e| panic!("{e}"));
}

fn run(dir: &TempDir, args: &[&str]) -> (i32, String, String) {
    let config = dir.file("sluice.yaml", "intercept: {}\n");
    let path = format!("{}:/usr/bin:/bin", dir.path().display());
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["iptables", "-c"])
        .arg(&config)
        .args(args)
        .env("PATH", path)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let calls = std::fs::read_to_string(dir.join("calls")).unwrap_or_default();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        calls,
    )
}

/// What iptables-save prints for a table the kernel does not have.
const NO_TABLE: &str = "echo \"iptables-save v1.8.9 (legacy): Cannot initialize: Table does not exist (do you need to insmod?)\" >&2; exit 1";

#[test]
fn a_kernel_without_the_nat_table_is_named_in_one_line_and_nothing_is_applied() {
    let dir = TempDir::new("no-nat");
    stand_in(
        &dir,
        "iptables-save",
        &format!("[ \"$2\" = nat ] && {{ {NO_TABLE}; }}; echo '*filter'; echo COMMIT"),
    );
    stand_in(&dir, "iptables-restore", "cat > /dev/null");
    stand_in(&dir, "ip6tables-save", "echo '*filter'; echo COMMIT");
    stand_in(&dir, "ip6tables-restore", "cat > /dev/null");
    let (code, stderr, calls) = run(&dir, &["--apply"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("no IPv4 nat table"), "{stderr}");
    assert!(!calls.contains("restore"), "nothing applied: {calls}");
}

#[test]
fn a_kernel_without_ipv6_is_named_and_ipv4_only_applies_the_ipv4_rules() {
    let dir = TempDir::new("no-ipv6");
    stand_in(&dir, "iptables-save", "echo \"*$2\"; echo COMMIT");
    stand_in(&dir, "iptables-restore", "cat > /dev/null");
    stand_in(
        &dir,
        "ip6tables-save",
        &NO_TABLE.replace("iptables-save", "ip6tables-save"),
    );
    stand_in(&dir, "ip6tables-restore", "cat > /dev/null");
    let (code, stderr, calls) = run(&dir, &["--apply"]);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(
        stderr.contains("IPv6") && stderr.contains("--ipv4-only"),
        "{stderr}"
    );
    assert!(!calls.contains("restore"), "nothing applied: {calls}");

    std::fs::remove_file(dir.join("calls")).unwrap_or_else(|e| panic!("{e}"));
    let (code, stderr, calls) = run(&dir, &["--apply", "--ipv4-only"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(calls.contains("iptables-restore"), "{calls}");
    assert!(!calls.contains("ip6tables"), "IPv6 left alone: {calls}");
}
