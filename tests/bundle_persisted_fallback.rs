//! The one documented offline fallback of a configuration mistake: `policy.bundle.file` names a
//! file that is not there while `policy.bundle.persist_dir` holds a persisted bundle. `serve`
//! starts, says at WARN what is wrong and what it serves, and decides with the persisted
//! bundle (not the embedded policies).

mod support;

use support::*;

/// `data.manufacturing.smart.allow` for a target port, asked through the OPA Data API.
fn allows(gate: &Sluice, port: u16) -> Result<bool, Error> {
    let body = format!(r#"{{"input":{{"target":{{"port":{port}}}}}}}"#);
    let (code, text) = http_request(
        gate.admin,
        "POST",
        "/v1/data/manufacturing/smart",
        Some(&body),
    )?;
    if code != 200 {
        return Err(format!("POST /v1/data: {code} {text}").into());
    }
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(v["result"]["allow"] == serde_json::Value::Bool(true))
}

#[test]
fn a_missing_bundle_file_with_a_persisted_bundle_serves_it_and_warns() -> TestResult {
    let dir = TempDir::new("persisted-fallback");
    let persist = dir.join("persist");
    std::fs::create_dir_all(&persist)?;
    // The layout sluice persists to: the last activated bundle as bundle.tar.gz.
    let bundle = tar_gz(&bundle_files("plant-rev-41", &[4711]));
    std::fs::write(persist.join("bundle.tar.gz"), bundle)?;
    let missing = dir.join("plant.tar.gz");
    let gate = Sluice::start(&format!(
        "policy:\n  bundle:\n    file: {}\n    persist_dir: {}\n",
        missing.display(),
        persist.display()
    ));

    assert!(
        allows(&gate, 4711)?,
        "the persisted bundle's allow is not served"
    );
    assert!(
        !allows(&gate, 4712)?,
        "a port outside the persisted bundle is allowed"
    );

    let logs = gate.logs();
    let warns: Vec<&str> = logs.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(warns.len(), 1, "one WARN expected:\n{logs}");
    let warn = warns[0];
    for part in [
        missing.display().to_string().as_str(),
        "serving the persisted bundle",
        "revision=plant-rev-41",
    ] {
        assert!(
            warn.contains(part),
            "the WARN does not name {part:?}: {warn}"
        );
    }
    Ok(())
}
