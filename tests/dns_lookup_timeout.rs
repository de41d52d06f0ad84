//! A DNS lookup that hangs is cut off at its timeout and counted, for HTTP and MQTT alike.
//!
//! sluice runs in a network namespace of the test's own whose resolver (its
//! `/etc/netns/NAME/resolv.conf`, which `ip netns exec` mounts over /etc/resolv.conf) takes
//! every query and never answers, so looking up a local name (`*.local`, resolved before
//! judging) hangs.
//! The HTTP proxy answers 504 and counts `dns_timeout`; the MQTT listener refuses the CONNECT
//! (3.1.1: "server unavailable") and counts `upstream_resolve_timeout`.
//!
//! Needs: root (ip netns), python3 (the silent resolver), curl, mosquitto_pub. Skipped with a
//! message when not root.

mod support;

use std::process::Stdio;

use support::{Error, LaunchOptions, Namespace, Scrape, Sluice, is_root};

/// Reads every UDP query and TCP connection on 127.0.0.53:53 and answers none.
const SILENT_RESOLVER: &str = "import socket, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.53', 53))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(('127.0.0.53', 53)); t.listen(64)
print('ready', flush=True)
time.sleep(3600)";

/// A namespace whose resolver (its own resolv.conf) takes every query and never answers.
fn silent_dns_namespace() -> Result<Namespace, Error> {
    let mut ns = Namespace::new("dns")?;
    ns.etc_file(
        "resolv.conf",
        "nameserver 127.0.0.53\noptions timeout:30 attempts:1\n",
    )?;
    let mut resolver = ns
        .command(&["python3", "-c", SILENT_RESOLVER])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut ready = String::new();
    if let Some(out) = resolver.stdout.as_mut() {
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut ready)?;
    }
    ns.keep(resolver);
    if ready.trim() != "ready" {
        return Err("the silent resolver did not start".into());
    }
    Ok(ns)
}

#[test]
fn a_hanging_lookup_is_cut_off_and_counted_for_http_and_mqtt() -> Result<(), Error> {
    if !is_root() {
        eprintln!("skipped: needs root for ip netns and iptables");
        return Ok(());
    }
    let ns = silent_dns_namespace()?;
    // Fixed ports: the namespace is the test's own, nothing else listens there.
    let sluice = Sluice::launch(
        "http: {listen: 127.0.0.1:3128, connect_timeout: 300ms}\n\
         mqtt:\n  - listen: 127.0.0.1:1883\n    upstream: broker.plant.local:1883\n    connect_timeout: 300ms\n",
        LaunchOptions {
            wrapper: &ns.wrapper(),
            ..LaunchOptions::default()
        },
    );
    // HTTP: the resolver's own timeout is 30 s; the proxy gives up at connect_timeout.
    let out = ns
        .command(&[
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-m",
            "20",
            "-x",
            "http://127.0.0.1:3128",
            "http://historian.plant.local/",
        ])
        .output()?;
    assert_eq!(String::from_utf8_lossy(&out.stdout), "504");
    let dns = "sluice_errors_total{protocol=\"http\",kind=\"dns_timeout\"}";
    assert_eq!(sluice.metric(dns), 1.0);

    // MQTT: the CONNECT is refused (server unavailable), not left hanging.
    let out = ns
        .command(&[
            "mosquitto_pub",
            "-p",
            "1883",
            "-V",
            "311",
            "-t",
            "plant/x",
            "-m",
            "1",
            "-q",
            "1",
        ])
        .output()?;
    assert!(!out.status.success(), "the CONNECT was refused");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unavailable"), "mosquitto_pub said: {err}");
    let mqtt = "sluice_errors_total{protocol=\"mqtt\",kind=\"upstream_resolve_timeout\"}";
    assert_eq!(sluice.metric(mqtt), 1.0);
    Ok(())
}
