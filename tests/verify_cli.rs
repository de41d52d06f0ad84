//! `sluice verify`, the real binary: gator verify's output and exit codes on the shipped suites,
//! the library-style fixtures, and a suite of known failures.

mod support;

fn verify(args: &[&str]) -> (Option<i32>, String, String) {
    let out = support::sluice(&[&["verify"], args].concat());
    (Some(out.code), out.stdout, out.stderr)
}

/// Durations vary from run to run; everything else is compared exactly.
fn timeless(s: &str) -> String {
    regex::Regex::new(r"\d+\.\d{3}s")
        .map(|re| re.replace_all(s, "T").into_owned())
        .unwrap_or_default()
}

#[test]
fn shipped_suites_pass() {
    let (code, out, err) = verify(&["policies/gatekeeper"]);
    assert_eq!(
        (code, timeless(&out).as_str(), err.as_str()),
        (
            Some(0),
            "ok\tpolicies/gatekeeper/edge-nodes/suite.yaml\tT\n\
             ok\tpolicies/gatekeeper/egress-proxy/suite.yaml\tT\n\
             ok\tpolicies/gatekeeper/external-name/suite.yaml\tT\n\
             ok\tpolicies/gatekeeper/host-networking/suite.yaml\tT\n\
             ok\tpolicies/gatekeeper/intercept-bypass/suite.yaml\tT\n\
             ok\tpolicies/gatekeeper/net-admin/suite.yaml\tT\n\
             ok\tpolicies/gatekeeper/sidecar/suite.yaml\tT\n\
             PASS\n",
            ""
        )
    );
}

#[test]
fn library_style_fixtures_pass_including_inventory_and_builtin_errors() {
    let (code, out, _) = verify(&["fixtures/gatekeeper/library/..."]);
    assert_eq!(
        (code, timeless(&out).as_str()),
        (
            Some(0),
            "ok\tfixtures/gatekeeper/library/suite.yaml\tT\nPASS\n"
        )
    );
}

#[test]
fn known_failures_print_like_gator_and_exit_2() {
    let (code, out, _) = verify(&["fixtures/gatekeeper/failing"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        timeless(&out),
        "    --- FAIL: expects-none-but-one\t(T)\n\
         \x20       unexpected number of violations: got 1 violations but want none: got messages [you must provide labels: {\"line\"}]\n\
         \x20   --- FAIL: message-never-matches\t(T)\n\
         \x20       unexpected number of violations: got 0 violations containing \"owner must be set\" but want at least 1: got messages [you must provide labels: {\"line\"}]\n\
         \x20   --- FAIL: two-objects-in-one-file\t(T)\n\
         \x20       object defines multiple objects: \"fixtures/gatekeeper/failing/two-objects.yaml\" defines 2 objects\n\
         --- FAIL: wrong-expectations\t(T)\n\
         --- FAIL: template-does-not-compile\t(T)\n\
         \x20 adding template: fixtures/gatekeeper/failing/broken-template.yaml: template SluiceBroken: fixtures/gatekeeper/failing/broken-template.yaml:rego:3:25: expecting }\n\
         --- FAIL: constraint-without-template\t(T)\n\
         \x20 adding constraint: fixtures/gatekeeper/failing/unknown-kind-constraint.yaml: constraint SluiceNoSuchKind/orphan: no ConstraintTemplate defines kind SluiceNoSuchKind; the constraint is skipped\n\
         FAIL\tfixtures/gatekeeper/failing/suite.yaml\tT\n\
         FAIL\n"
    );
}

#[test]
fn run_selects_tests_and_cases_and_verbose_shows_each() {
    let (code, out, _) = verify(&[
        "-v",
        "--run",
        "wrong//^passes$",
        "fixtures/gatekeeper/failing",
    ]);
    assert_eq!(
        (code, timeless(&out).as_str()),
        (
            Some(0),
            "=== RUN   wrong-expectations\n\
             \x20   === RUN   passes\n\
             \x20   --- PASS: passes\t(T)\n\
             \x20   === SKIP  expects-none-but-one\n\
             \x20   === SKIP  message-never-matches\n\
             \x20   === SKIP  two-objects-in-one-file\n\
             \x20   === SKIP  skipped-case\n\
             --- PASS: wrong-expectations\t(T)\n\
             === SKIP  template-does-not-compile\n\
             === SKIP  constraint-without-template\n\
             === SKIP  skipped-test\n\
             ok\tfixtures/gatekeeper/failing/suite.yaml\tT\n\
             PASS\n"
        )
    );
}

#[test]
fn json_lists_every_case_with_reasons() {
    let (code, out, _) = verify(&["--format", "json", "fixtures/gatekeeper/failing"]);
    assert_eq!(code, Some(2));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
    assert_eq!(v["passed"], serde_json::json!(false));
    let cases = v["cases"].as_array().cloned().unwrap_or_default();
    let summary: Vec<(String, String, bool)> = cases
        .iter()
        .map(|c| {
            (
                c["test"].as_str().unwrap_or("").to_string(),
                c["case"].as_str().unwrap_or("").to_string(),
                c["passed"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let s = |t: &str, c: &str, p| (t.to_string(), c.to_string(), p);
    assert_eq!(
        summary,
        vec![
            s("wrong-expectations", "passes", true),
            s("wrong-expectations", "expects-none-but-one", false),
            s("wrong-expectations", "message-never-matches", false),
            s("wrong-expectations", "two-objects-in-one-file", false),
            s("wrong-expectations", "skipped-case", true),
            s("template-does-not-compile", "", false),
            s("constraint-without-template", "", false),
            s("skipped-test", "", true),
        ]
    );
    assert_eq!(
        cases[0]["suite"],
        serde_json::json!("fixtures/gatekeeper/failing/suite.yaml")
    );
    assert_eq!(
        cases[1]["reason"],
        serde_json::json!(
            "unexpected number of violations: got 1 violations but want none: got messages [you must provide labels: {\"line\"}]"
        )
    );
    assert!(cases[0].get("reason").is_none());
    assert_eq!(cases[4]["skipped"], serde_json::json!(true));
}

#[test]
fn usage_errors_exit_1_with_one_line() {
    let (code, out, err) = verify(&["fixtures/gatekeeper/webhook"]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            Some(1),
            "",
            "sluice verify: no test suites (kind: Suite) found in fixtures/gatekeeper/webhook\n"
        )
    );
    let (code, _, err) = verify(&["--run", "a//b//c", "policies/gatekeeper"]);
    assert_eq!(
        (code, err.as_str()),
        (
            Some(1),
            "sluice verify: --run: invalid filter: a filter may include at most one \"//\"\n"
        )
    );
    let (code, _, err) = verify(&["no/such/dir"]);
    assert_eq!(
        (code, err.as_str()),
        (
            Some(1),
            "sluice verify: no/such/dir: no such file or directory\n"
        )
    );
}
