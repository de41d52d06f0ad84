//! What the load benches share: a child process killed on drop, free loopback ports, waiting
//! for a listener, and a process's resident memory. Not a harness: each bench is its own
//! `main` and prints its own figures.
#![allow(dead_code)] // each bench uses a part

use std::net::SocketAddr;
use std::process::Child;
use std::time::{Duration, Instant};

#[path = "../../tests/support/ports.rs"]
mod ports;
#[allow(unused_imports)] // each bench uses a part
pub use ports::{free_port, free_port_on};

/// A child (mosquitto, sluice) killed and reaped when the bench ends.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts on `addr`; fails the bench after 30 s.
pub fn wait_port(addr: SocketAddr) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            panic!("nothing listens on {addr}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Resident memory of `pid` in KiB (0 when it cannot be read).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// One line of the figures table in docs/benchmarks.md, printed as
/// `budget-row | what | sluice | baseline | ratio | budget | met` for `scripts/bench` to collect
/// (and readable as it stands). `baseline` is what was measured in the same run ("—" when the
/// budget is absolute); `ratio` is sluice over the baseline, or "—".
pub fn budget_row(what: &str, sluice: &str, baseline: &str, ratio: &str, budget: &str, met: bool) {
    println!(
        "budget-row | {what} | {sluice} | {baseline} | {ratio} | {budget} | {} |",
        if met { "met" } else { "missed" }
    );
}
