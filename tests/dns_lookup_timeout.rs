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

use std::process::{Command, Output, Stdio};

use support::*;

/// A namespace with loopback up and a resolver that never answers; removed (with its
/// resolv.conf and the resolver) on drop.
struct Namespace {
    name: String,
    resolver: Option<std::process::Child>,
}

/// Reads every UDP query and TCP connection on 127.0.0.53:53 and answers none.
const SILENT_RESOLVER: &str = "import socket, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.53', 53))
t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(('127.0.0.53', 53)); t.listen(64)
print('ready', flush=True)
time.sleep(3600)";

impl Namespace {
    fn new() -> Result<Self, Error> {
        let name = format!("sluice-dns-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        run("ip", &["netns", "add", &name])?;
        let mut ns = Self {
            name,
            resolver: None,
        };
        let etc = format!("/etc/netns/{}", ns.name);
        std::fs::create_dir_all(&etc)?;
        std::fs::write(
            format!("{etc}/resolv.conf"),
            "nameserver 127.0.0.53\noptions timeout:30 attempts:1\n",
        )?;
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        let mut resolver = ns
            .command(&["python3", "-c", SILENT_RESOLVER])
            .stdout(Stdio::piped())
            .spawn()?;
        let mut ready = String::new();
        if let Some(out) = resolver.stdout.as_mut() {
            std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut ready)?;
        }
        ns.resolver = Some(resolver);
        if ready.trim() != "ready" {
            return Err("the silent resolver did not start".into());
        }
        Ok(ns)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    fn exec(&self, args: &[&str]) -> Result<Output, Error> {
        let out = self.command(args).output()?;
        if !out.status.success() {
            return Err(
                format!("{args:?} failed: {}", String::from_utf8_lossy(&out.stderr)).into(),
            );
        }
        Ok(out)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Some(mut r) = self.resolver.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.name));
    }
}

fn run(cmd: &str, args: &[&str]) -> Result<(), Error> {
    let status = Command::new(cmd).args(args).status()?;
    if !status.success() {
        return Err(format!("{cmd} {args:?}: {status}").into());
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

fn metric(ns: &Namespace, name: &str) -> Result<f64, Error> {
    let out = ns.exec(&["curl", "-sS", "http://127.0.0.1:9901/metrics"])?;
    Ok(sample(&String::from_utf8_lossy(&out.stdout), name))
}

#[test]
fn a_hanging_lookup_is_cut_off_and_counted_for_http_and_mqtt() -> TestResult {
    if !is_root() {
        eprintln!("skipped: needs root for ip netns and iptables");
        return Ok(());
    }
    let ns = Namespace::new()?;
    let dir = TempDir::new("dns-timeout");
    let config = dir.file(
        "sluice.yaml",
        "http: {listen: 127.0.0.1:3128, connect_timeout: 300ms}\n\
         mqtt:\n  - listen: 127.0.0.1:1883\n    upstream: broker.plant.local:1883\n    connect_timeout: 300ms\n",
    );
    let mut sluice = ns
        .command(&[env!("CARGO_BIN_EXE_sluice"), "serve", "-c"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let result = (|| -> TestResult {
        wait_until(WAIT, "sluice ready in the namespace", || {
            ns.command(&[env!("CARGO_BIN_EXE_sluice"), "health"])
                .status()
                .is_ok_and(|s| s.success())
        });
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
        assert_eq!(metric(&ns, dns)?, 1.0);

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
        assert_eq!(metric(&ns, mqtt)?, 1.0);
        Ok(())
    })();
    let _ = sluice.kill();
    let _ = sluice.wait();
    result
}
