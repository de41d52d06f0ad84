//! The one way the tests run the `sluice` binary as a server: [`Process`] spawns
//! `sluice <command> -c <config>` in a [`TempDir`] with its stderr in a file, and waits until a
//! readiness probe answers; [`Sluice`] is `sluice serve` ready once the admin endpoint's
//! `/readyz` says 200 (every listener bound, policies compiled). The webhook's launcher is in
//! `webhook.rs`, on the same [`Process`].
//!
//! Not for one-shot commands (`sluice test`, `eval`, …): those are `cli::sluice`. Readiness is
//! never read from the logs; the logs are there for assertions and failure messages.

use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::http::http_get;
use super::metrics::Scrape;
use super::tempdir::TempDir;
use super::{WAIT, free_port, wait_until};

/// Environment a test must not inherit: it would change identity, logging or panics.
const SCRUBBED_ENV: [&str; 5] = [
    "RUST_LOG",
    "RUST_BACKTRACE",
    "POD_NAME",
    "POD_NAMESPACE",
    "NODE_NAME",
];

/// How a server is started, beyond its config; `LaunchOptions::default()`: nothing more.
#[derive(Clone, Copy, Default)]
pub struct LaunchOptions<'a> {
    /// Arguments before `-c`, e.g. `["--log-format", "json"]`.
    pub args: &'a [&'a str],
    pub env: &'a [(&'a str, &'a str)],
    /// A command sluice runs inside, e.g. `["ip", "netns", "exec", NAME]`; readiness and
    /// metrics are then asked through it too (`sluice health`, `curl`).
    pub wrapper: &'a [&'a str],
    /// stderr is a pipe nobody reads (a stalled log shipper) instead of the log file.
    pub unread_stderr: bool,
}

/// A running `sluice` server process, killed on drop.
pub struct Process {
    child: Child,
    log: PathBuf,
    dir: TempDir,
    what: String,
    wrapper: Vec<String>,
}

impl Process {
    /// Writes `config` to `dir/sluice.yaml` and runs `sluice <command> [args] -c <it>` from the
    /// repository root (relative fixture paths work), stderr to `dir/sluice.log`.
    pub fn spawn(dir: TempDir, command: &str, config: &str, options: LaunchOptions) -> Self {
        let path = dir.file("sluice.yaml", config);
        let log = dir.join("sluice.log");
        let mut cmd = wrapped(options.wrapper, env!("CARGO_BIN_EXE_sluice"));
        cmd.arg(command)
            .args(options.args)
            .arg("-c")
            .arg(&path)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        for var in SCRUBBED_ENV {
            cmd.env_remove(var);
        }
        let stderr = if options.unread_stderr {
            Stdio::piped()
        } else {
            std::fs::File::create(&log)
                .unwrap_or_else(|e| panic!("create {}: {e}", log.display()))
                .into()
        };
        let child = cmd
            .envs(options.env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run sluice {command}: {e}"));
        Self {
            child,
            log,
            dir,
            what: format!("sluice {command}"),
            wrapper: options.wrapper.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// `program` run the way this server runs: inside its wrapper, if it has one.
    pub fn command(&self, program: &str) -> Command {
        let wrapper: Vec<&str> = self.wrapper.iter().map(String::as_str).collect();
        wrapped(&wrapper, program)
    }

    fn wrapped(&self) -> bool {
        !self.wrapper.is_empty()
    }

    /// Waits until `ready` holds; fails with the log if the process exits first or the wait
    /// runs out.
    #[track_caller]
    pub fn wait_ready(&mut self, probe: &str, mut ready: impl FnMut() -> bool) {
        let deadline = Instant::now() + WAIT;
        while !ready() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.what,
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {} to answer {probe}; its log:\n{}",
                self.what,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Everything the process wrote to stderr so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line containing `needle`, for events only the log shows; the line.
    #[track_caller]
    pub fn wait_for_log(&self, needle: &str) -> String {
        let mut line = String::new();
        wait_until(WAIT, &format!("a log line with {needle:?}"), || match self
            .logs()
            .lines()
            .find(|l| l.contains(needle))
        {
            Some(l) => {
                line = l.to_string();
                true
            }
            None => false,
        });
        line
    }

    /// The directory holding the config, the log and whatever the test put there.
    pub fn dir(&self) -> &TempDir {
        &self.dir
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (with the system `kill`, from procps) and waits for the exit code.
    #[track_caller]
    pub fn terminate(&mut self) -> Option<i32> {
        self.sigterm();
        self.wait_exit()
    }

    /// Sends SIGTERM and returns at once, for tests that watch the shutdown happen.
    #[track_caller]
    pub fn sigterm(&self) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.as_ref().is_ok_and(|s| s.success()),
            "kill -TERM {pid}: {sent:?}"
        );
    }

    /// Waits for the process to exit on its own; its exit code (None: killed by a signal).
    #[track_caller]
    pub fn wait_exit(&mut self) -> Option<i32> {
        let mut code = None;
        let what = format!("{} to exit", self.what);
        wait_until(WAIT, &what, || match self.child.try_wait() {
            Ok(Some(status)) => {
                code = status.code();
                true
            }
            _ => false,
        });
        code
    }
}

/// `program`, or `wrapper... program` when there is a wrapper.
fn wrapped(wrapper: &[&str], program: &str) -> Command {
    match wrapper.split_first() {
        None => Command::new(program),
        Some((first, rest)) => {
            let mut cmd = Command::new(first);
            cmd.args(rest).arg(program);
            cmd
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The site of the gateway tests: only 127.0.0.1 is inside the plant, so 127.0.0.2 (also
/// loopback) plays an external host.
pub const TEST_SITE: &str = "site:\n  name: test-plant\n  local_networks: [127.0.0.1/32]\n  local_domains: [localhost, \"*.local\"]\n";

/// The config of [`Sluice::start`]: the test site, admin and HTTP proxy on free ports, then
/// `extra`. `{HTTP}` in `extra` stands for the `http:` section head (to add keys to it); an
/// `extra` with its own `http:` replaces the proxy's section.
pub fn gateway_config(extra: &str) -> String {
    let proxy = format!("http:\n  listen: 127.0.0.1:{}\n", free_port());
    let extra = extra.replace("{HTTP}", &proxy);
    // A section head, not `http://` in a bundle URL: that left the default port 3128 in use.
    let has_http = extra.lines().any(|l| l.starts_with("http:"));
    let http = if has_http { "" } else { &proxy };
    format!(
        "{TEST_SITE}admin:\n  listen: 127.0.0.1:{}\n{http}{extra}",
        free_port()
    )
}

/// A running `sluice serve`, ready: its listeners are bound and its policies compiled.
pub struct Sluice {
    process: Process,
    pub admin: SocketAddr,
    http: Option<SocketAddr>,
    /// The MQTT listeners, in config order.
    pub mqtt: Vec<SocketAddr>,
}

impl Sluice {
    /// `sluice serve` on [`gateway_config`]`(extra)`.
    #[track_caller]
    pub fn start(extra: &str) -> Self {
        Self::launch(&gateway_config(extra), LaunchOptions::default())
    }

    /// As [`Sluice::start`], with extra environment variables for the process.
    #[track_caller]
    pub fn start_with_env(extra: &str, env: &[(&str, &str)]) -> Self {
        let options = LaunchOptions {
            env,
            ..LaunchOptions::default()
        };
        Self::launch(&gateway_config(extra), options)
    }

    /// `sluice serve` on a whole config of the test's own.
    #[track_caller]
    pub fn serve(config: &str) -> Self {
        Self::launch(config, LaunchOptions::default())
    }

    /// `sluice serve [args] -c <config>`, started as `options` say. The listener addresses are
    /// read from the config with sluice's own parser; every one must be a fixed port, as
    /// readiness is asked of the admin address and the tests connect to the others.
    #[track_caller]
    pub fn launch(config: &str, options: LaunchOptions) -> Self {
        let parsed = match sluice::config::Config::parse(config) {
            Ok(parsed) => parsed,
            Err(e) => panic!("the test's config does not parse: {e}\n{config}"),
        };
        let admin = fixed(parsed.admin.listen, "admin.listen");
        let http = parsed.http.as_ref().map(|h| fixed(h.listen, "http.listen"));
        let mqtt = parsed
            .mqtt
            .iter()
            .map(|m| fixed(m.listen, "mqtt[].listen"))
            .collect();
        let mut process = Process::spawn(TempDir::new("serve"), "serve", config, options);
        let readyz = format!("http://{admin}/readyz");
        if process.wrapped() {
            // The product's own probe, run where sluice runs: exit 0 on a 2xx.
            let mut probe = process.command(env!("CARGO_BIN_EXE_sluice"));
            probe.args(["health", "--url", &readyz]);
            probe.stdout(Stdio::null()).stderr(Stdio::null());
            process.wait_ready(&format!("sluice health --url {readyz}"), || {
                probe.status().is_ok_and(|s| s.success())
            });
        } else {
            process.wait_ready(&format!("GET {readyz} with 200"), || {
                matches!(http_get(admin, "/readyz"), Ok((200, _)))
            });
        }
        Self {
            process,
            admin,
            http,
            mqtt,
        }
    }

    /// The HTTP forward proxy's address.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn proxy(&self) -> SocketAddr {
        self.http
            .unwrap_or_else(|| panic!("this sluice has no HTTP proxy (http: null)"))
    }

    /// The first MQTT listener's address.
    pub fn addr(&self) -> SocketAddr {
        *self
            .mqtt
            .first()
            .unwrap_or_else(|| panic!("this sluice has no MQTT listener"))
    }
}

/// `addr`, unless its port is 0: the bound port could then only be learnt from the log.
#[track_caller]
fn fixed(addr: SocketAddr, key: &str) -> SocketAddr {
    assert_ne!(
        addr.port(),
        0,
        "{key}: give the test's listeners free ports (support::free_port), not port 0"
    );
    addr
}

impl Scrape for Sluice {
    fn metrics(&self) -> String {
        if self.process.wrapped() {
            let url = format!("http://{}/metrics", self.admin);
            let out = self.command("curl").args(["-sSf", &url]).output();
            return match out {
                Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into(),
                other => panic!("curl {url} where sluice runs: {other:?}"),
            };
        }
        match http_get(self.admin, "/metrics") {
            Ok((200, body)) => body,
            other => panic!("GET http://{}/metrics: {other:?}", self.admin),
        }
    }
}

impl Deref for Sluice {
    type Target = Process;
    fn deref(&self) -> &Process {
        &self.process
    }
}

impl DerefMut for Sluice {
    fn deref_mut(&mut self) -> &mut Process {
        &mut self.process
    }
}
