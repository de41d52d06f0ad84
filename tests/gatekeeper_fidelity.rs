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
