//! `sluice bench`, the real binary: gator bench's table and JSON, its flags, and the baseline
//! comparison's exit code. Figures are never asserted, only their presence and counts.

mod support;

use support::sluice;

const LIBRARY: &str = "fixtures/gatekeeper/library";

#[test]
fn table_has_gators_sections_and_counts() {
    let out = sluice(&["bench", "-f", LIBRARY, "-n", "5", "--warmup", "0"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for line in [
        "=== Benchmark Results: Rego Engine ===",
        "  Templates:      3",
        "  Constraints:    4",
        "  Objects:        8",
        "  Iterations:     5",
        "  Total Reviews:  40",
        "Latency (per review):",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "no {line:?} in:\n{}",
            out.stdout
        );
    }
    for p in [
        "  P50:",
        "  P95:",
        "  P99:",
        "  Throughput:",
        "  Violations Found:",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(p)),
            "no {p} in:\n{}",
            out.stdout
        );
    }
}

#[test]
fn json_output_and_a_baseline_regression_exits_1() {
    let out = sluice(&["bench", "-f", LIBRARY, "-n", "4", "-c", "2", "-o", "json"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", out.stdout));
    assert_eq!(doc["totalReviews"], 32);
    assert_eq!(doc["concurrency"], 2);
    assert!(doc.pointer("/latencies/p99").is_some_and(|v| v.is_u64()));

    // A baseline nothing can beat: every latency 1ns, a billion reviews a second.
    let baseline = std::env::temp_dir().join(format!("sluice-bench-{}.json", std::process::id()));
    let fast = serde_json::json!({
        "latencies": {"p50": 1, "p95": 1, "p99": 1, "mean": 1},
        "reviewsPerSecond": 1e9
    });
    std::fs::write(&baseline, fast.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let base = baseline.display().to_string();
    let out = sluice(&["bench", "-f", LIBRARY, "-n", "2", "--compare", &base]);
    let _ = std::fs::remove_file(&baseline);
    assert_eq!(out.code, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("Performance regression detected"),
        "{}",
        out.stdout
    );
}

#[test]
fn engines_other_than_rego_and_missing_objects_are_one_line_errors() {
    let out = sluice(&["bench", "-f", LIBRARY, "-e", "cel"]);
    assert_eq!((out.code, out.stdout.as_str()), (1, ""));
    assert_eq!(
        out.stderr,
        "--engine cel: sluice has only the rego engine (use --engine rego)\n"
    );
    let out = sluice(&[
        "bench",
        "-f",
        "fixtures/gatekeeper/fidelity/zones-template.yaml",
    ]);
    assert_eq!(out.code, 1);
    assert_eq!(
        out.stderr,
        "no objects to review under the given --filename paths\n"
    );
}
