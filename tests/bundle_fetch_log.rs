//! A bundle server that cannot be reached is logged once per change of error, not once per
//! poll, and not only counted: many failed polls, one WARN line naming the server.

mod support;

use support::*;

#[test]
fn repeated_fetch_failures_are_logged_once_and_counted_every_time() {
    // A port nothing listens on: every poll fails the same way.
    let url = format!("http://127.0.0.1:{}/bundle.tar.gz", free_port());
    let sluice = Sluice::start(&format!(
        "policy:\n  bundle: {{url: \"{url}\", poll_min: 50ms, poll_max: 100ms}}\n"
    ));
    sluice.wait_metric("sluice_policy_reloads_total{result=\"failure\"}", 4.0);
    let logs = sluice.logs();
    let warned: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("policy not activated"))
        .collect();
    assert_eq!(warned.len(), 1, "{logs}");
    assert!(warned[0].contains("127.0.0.1"), "{}", warned[0]);
}
