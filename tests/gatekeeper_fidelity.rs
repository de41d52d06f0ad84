//! Gatekeeper fidelity through the real `sluice verify`: constraint parameters checked against
//! the template's openAPIV3Schema (and their defaults filled in), external_data reported as
//! unsupported, each in one line as gator reports a constraint or template it cannot add.

mod support;

fn timeless(s: &str) -> String {
    regex::Regex::new(r"\d+\.\d{3}s")
        .map(|re| re.replace_all(s, "T").into_owned())
        .unwrap_or_default()
}

#[test]
fn schema_defaults_apply_and_bad_parameters_and_external_data_are_reported() {
    let out = support::sluice(&["verify", "fixtures/gatekeeper/fidelity"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert_eq!(
        timeless(&out.stdout),
        "--- FAIL: parameters-break-the-schema\t(T)\n\
         \x20 adding constraint: fixtures/gatekeeper/fidelity/zones-bad-constraint.yaml: constraint SluiceAllowedZones/zones-not-a-list: spec.parameters.zones: must be of type array, got string; the constraint is skipped\n\
         --- FAIL: external-data\t(T)\n\
         \x20 adding template: fixtures/gatekeeper/fidelity/external-data-template.yaml: template SluiceImageDigests: rego:5:15: external_data is not supported (sluice calls no external data provider); the template is skipped\n\
         FAIL\tfixtures/gatekeeper/fidelity/suite.yaml\tT\n\
         FAIL\n",
        "defaults-are-applied passes only when label defaults to zone"
    );
}

#[test]
fn a_template_too_deep_for_the_stack_is_reported_and_skipped_not_a_crash() {
    let dir = support::TempDir::new("gatekeeper-deep");
    let chain = vec!["1"; 100].join(" + ");
    let chain = vec![chain; 30].join(" +\n            ");
    let template = std::fs::read_to_string("fixtures/gatekeeper/fidelity/external-data-template.yaml")
        .unwrap_or_default()
        .replace(
            "          response := external_data({\"provider\": \"digests\", \"keys\": images})\n          count(response.errors) > 0\n          msg := sprintf(\"%v\", [response.errors])",
            &format!("          n := {chain}\n          n > 0\n          msg := sprintf(\"%v\", [images])"),
        );
    assert!(
        template.contains("n > 0"),
        "the fixture changed: {template}"
    );
    for (name, text) in [
        ("deep-template.yaml", template),
        ("external-data-constraint.yaml", std::fs::read_to_string("fixtures/gatekeeper/fidelity/external-data-constraint.yaml").unwrap_or_default()),
        ("pod-plant.yaml", std::fs::read_to_string("fixtures/gatekeeper/fidelity/pod-plant.yaml").unwrap_or_default()),
        ("suite.yaml", "kind: Suite\napiVersion: test.gatekeeper.sh/v1alpha1\ntests:\n  - name: deep\n    template: deep-template.yaml\n    constraint: external-data-constraint.yaml\n    cases:\n      - name: never-runs\n        object: pod-plant.yaml\n        assertions: [{violations: no}]\n".to_string()),
    ] {
        std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let root = dir.path().display().to_string();
    let out = support::sluice(&["verify", root.as_str()]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stdout.contains(
            "deep-template.yaml:rego:34:1: rego_parse_error: expression nested more than 200 deep is not supported by sluice\n"
        ),
        "{}",
        out.stdout
    );
}
