//! The one support module of the integration tests: a temp dir ([`TempDir`]), one way to run
//! `sluice serve` / `sluice webhook` and wait until it is ready ([`Sluice`], [`Webhook`]: both
//! poll `/readyz`, never the logs), one [`wait_until`], one [`Scrape::wait_metric`], and the
//! peers the tests talk to: mosquitto brokers, HTTP upstreams, bundle servers, raw clients, and
//! network namespaces of the test's own.
//!
//! Not for pure logic: that is tested next to the code in `src/`. Every helper here fails the
//! test with a message naming what it was doing; helpers that talk to a peer return a `Result`
//! because tests assert on what went wrong.
//!
//! Needs, depending on the test: `/usr/sbin/mosquitto`, `mosquitto_pub`/`mosquitto_sub`
//! (Debian mosquitto, mosquitto-clients), `curl`, `openssl`, and for [`netns`] root, `ip`,
//! `iptables`, `setpriv`; `scripts/test` installs them.
#![allow(dead_code, unused_imports)]

pub mod bundle;
pub mod cli;
pub mod decide;
pub mod doc;
pub mod http;
pub mod launcher;
pub mod metrics;
pub mod mqtt;
pub mod netns;
pub mod pod;
mod ports;
pub mod tcp;
pub mod tempdir;
pub mod webhook;

pub use ports::{free_port, free_port_on};

pub use bundle::*;
pub use cli::*;
pub use decide::*;
pub use http::*;
pub use launcher::*;
pub use metrics::*;
pub use mqtt::*;
pub use netns::*;
pub use tcp::*;
pub use tempdir::*;
pub use webhook::*;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub type Error = Box<dyn std::error::Error + Send + Sync>;
pub type TestResult = Result<(), Error>;

/// How long any wait lasts before the test fails. Generous: the tests share two cores with
/// other test binaries; a passing test never waits this long.
pub const WAIT: Duration = Duration::from_secs(30);

/// Polls `condition` every 10 ms until it holds; fails the test naming `what` once `timeout`
/// passes.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A path inside the repository.
pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `127.0.0.1:PORT` on a free port.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// Waits until something accepts TCP connections on `addr`.
#[track_caller]
pub fn wait_for_port(addr: SocketAddr) {
    wait_until(WAIT, &format!("a listener on {addr}"), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
    });
}
