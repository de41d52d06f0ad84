//! `policy.bundle.require_signature: true`: the real `sluice serve` refuses every bundle that is
//! not signed by `public_key` — at start (exit 1, one line), and on reload (one log line, the
//! failure counted in `sluice_policy_reloads_total{result="failure"}`, the last good
//! generation kept enforcing) — and refuses to start without a key to check signatures with.

mod support;

use support::*;

fn signed(key: &EcKey, revision: &str) -> Vec<u8> {
    let files = bundle_files(revision, &[1883]);
    let jwt = key.sign(&files, serde_json::json!({}));
    tar_gz(&with_signature(files, &jwt))
}

fn status(gate: &Sluice) -> serde_json::Value {
    let (_, body) = http_get(gate.admin, "/v1/status").unwrap_or_else(|e| panic!("status: {e}"));
    let doc: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    doc["result"]["bundles"]["sluice"].clone()
}

#[test]
fn require_signature_without_a_public_key_is_refused_at_start() {
    let dir = TempDir::new("require-signature-nokey");
    let bundle = dir.file("plant.tar.gz", "");
    let config = dir.file(
        "sluice.yaml",
        &format!(
            "policy:\n  bundle:\n    file: {}\n    require_signature: true\n",
            bundle.display()
        ),
    );
    let out = cli::sluice(&["serve", "-c", &config.display().to_string()]);
    assert_one_line_error(
        &out,
        "sluice serve: policy.bundle.require_signature: true needs policy.bundle.public_key, the PEM key the bundles are signed with",
    );
}

#[test]
fn an_unsigned_bundle_is_refused_at_start() {
    let dir = TempDir::new("require-signature-start");
    let key = EcKey::generate();
    let pem = dir.file("bundle.pub.pem", &key.public_pem());
    let bundle = dir.join("plant.tar.gz");
    std::fs::write(&bundle, tar_gz(&bundle_files("r1", &[1883]))).unwrap_or_else(|e| panic!("{e}"));
    let config = dir.file(
        "sluice.yaml",
        &format!(
            "policy:\n  bundle:\n    file: {}\n    public_key: {}\n    require_signature: true\n",
            bundle.display(),
            pem.display()
        ),
    );
    let out = cli::sluice(&["serve", "-c", &config.display().to_string()]);
    assert_one_line_error(
        &out,
        &format!(
            "sluice serve: policy.bundle.file: {}: bundle is not signed (no .signatures.json) but policy.bundle.public_key requires a signature; name a readable bundle (.tar.gz), or set policy.bundle.persist_dir holding a persisted bundle to serve meanwhile",
            bundle.display()
        ),
    );
}

#[test]
fn an_unsigned_bundle_is_refused_on_reload_and_the_signed_generation_keeps_enforcing() {
    let dir = TempDir::new("require-signature-reload");
    let key = EcKey::generate();
    let pem = dir.file("bundle.pub.pem", &key.public_pem());
    let bundle = dir.join("plant.tar.gz");
    std::fs::write(&bundle, signed(&key, "r1")).unwrap_or_else(|e| panic!("{e}"));
    let gate = Sluice::start(&format!(
        "policy:\n  bundle:\n    file: {}\n    public_key: {}\n    require_signature: true\n",
        bundle.display(),
        pem.display()
    ));
    assert_eq!(status(&gate)["active_revision"], "r1");
    let generation = status(&gate)["generation"].clone();

    std::fs::write(&bundle, tar_gz(&bundle_files("r2-unsigned", &[1883, 8883])))
        .unwrap_or_else(|e| panic!("{e}"));
    gate.wait_metric("sluice_policy_reloads_total{result=\"failure\"}", 1.0);
    let now = status(&gate);
    assert_eq!(now["active_revision"], "r1", "{now}");
    assert_eq!(now["generation"], generation, "{now}");
    let message = now["message"].as_str().unwrap_or_default().to_string();
    assert!(
        message.ends_with(
            "bundle is not signed (no .signatures.json) but policy.bundle.public_key requires a signature"
        ),
        "{now}"
    );
    let line = gate.wait_for_log("policy not activated");
    assert!(line.contains(&message), "{line}");
    assert_eq!(
        gate.logs().matches("policy not activated").count(),
        1,
        "the refusal is logged once:\n{}",
        gate.logs()
    );

    // A bundle signed again is activated: the refusal was about the signature.
    std::fs::write(&bundle, signed(&key, "r3")).unwrap_or_else(|e| panic!("{e}"));
    wait_until(WAIT, "the signed r3 active", || {
        status(&gate)["active_revision"] == "r3"
    });
}
