//! Reading the Prometheus text of `/metrics`: one sample's value ([`sample`]) and one way to
//! wait for a counter ([`Scrape::wait_metric`]), shared by the gateway and the webhook.
//! Not a Prometheus parser: a sample is found by its exact `name{labels}` prefix.

use std::time::{Duration, Instant};

use super::WAIT;

/// The value of the sample line `name{labels} VALUE` in `text`; 0 when absent (Prometheus
/// omits a labelled counter until it is first incremented).
pub fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// Something that serves `/metrics`.
pub trait Scrape {
    /// The whole Prometheus text; fails the test when `/metrics` does not answer 200.
    fn metrics(&self) -> String;

    /// The value of one sample, e.g. `sluice_errors_total{protocol="mqtt",kind="malformed"}`;
    /// 0 when absent.
    fn metric(&self, name: &str) -> f64 {
        sample(&self.metrics(), name)
    }

    /// Waits until the counter `name` reaches at least `at_least` and returns the value read.
    /// Counters only grow, so this is the wait for "it happened (n times)"; for a gauge that
    /// must come back down, use [`super::wait_until`] with the exact value.
    #[track_caller]
    fn wait_metric(&self, name: &str, at_least: f64) -> f64 {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.metrics();
            let value = sample(&text, name);
            if value >= at_least {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {WAIT:?} waiting for {name} >= {at_least}; it is {value}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
