//! OPA bundle reading and signature verification: what is activated and what is refused, with
//! the one-line reason a user sees.

mod support;

use sluice::policy::bundle::{VerificationKey, read_bundle};
use sluice::policy::{Decider, DeciderOptions};
use support::*;

const MAX: u64 = 1 << 20;

fn key_of(k: &EcKey) -> VerificationKey {
    VerificationKey::from_pem(k.public_pem().as_bytes(), None, None)
        .unwrap_or_else(|e| panic!("key: {e}"))
}

fn reject(bytes: &[u8], key: Option<&VerificationKey>) -> String {
    match read_bundle(bytes, MAX, key, false) {
        Ok(b) => panic!("bundle {} was accepted", b.revision),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_bundle_nests_data_by_directory_and_carries_its_revision() {
    let b = read_bundle(&tar_gz(&bundle_files("r1", &[1883])), MAX, None, false)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.revision, "r1");
    assert_eq!(b.roots, vec!["manufacturing", "gate"]);
    assert_eq!(b.policy.data["gate"]["ports"], serde_json::json!([1883]));
    let d = Decider::with_revision(&b.policy, DeciderOptions::default(), &b.revision)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(allows(&d, 1883));
    assert!(!allows(&d, 8883));
    assert_eq!(d.revision(), "r1");
}

#[test]
fn a_corrupt_tarball_is_refused() {
    let mut bytes = tar_gz(&bundle_files("r1", &[1883]));
    let mid = bytes.len() / 2;
    bytes.truncate(mid);
    let e = reject(&bytes, None);
    assert!(
        e.starts_with("corrupt bundle archive") || e.starts_with("not a gzipped"),
        "{e}"
    );
    assert_eq!(
        reject(b"this is not a tarball", None),
        "not a bundle: expected a gzip-compressed tarball (.tar.gz)"
    );
}

#[test]
fn overlapping_roots_are_refused() {
    let mut files = bundle_files("r1", &[1883]);
    files[0].1 =
        br#"{"revision": "r1", "roots": ["manufacturing", "manufacturing/smart"]}"#.to_vec();
    assert_eq!(
        reject(&tar_gz(&files), None),
        r#".manifest: roots "manufacturing" and "manufacturing/smart" overlap; each part of data must belong to one root"#
    );
}

/// Found by the `bundle_signature` fuzz target: `"roots": []` is a manifest OPA accepts, for a
/// bundle that owns no part of data, so anything it carries is outside its roots.
#[test]
fn an_empty_roots_list_owns_nothing() {
    let mut files = bundle_files("r1", &[1883]);
    files[0].1 = br#"{"revision": "r1", "roots": []}"#.to_vec();
    let e = reject(&tar_gz(&files), None);
    assert!(e.ends_with("is outside the manifest roots []"), "{e}");
}

#[test]
fn policy_and_data_outside_the_roots_are_refused() {
    let mut files = bundle_files("r1", &[1883]);
    files[0].1 = br#"{"revision": "r1", "roots": ["manufacturing"]}"#.to_vec();
    assert_eq!(
        reject(&tar_gz(&files), None),
        r#"gate/data.json: data at data.gate is outside the manifest roots ["manufacturing"]"#
    );
    files[0].1 = br#"{"revision": "r1", "roots": ["gate"]}"#.to_vec();
    assert_eq!(
        reject(&tar_gz(&files), None),
        r#"manufacturing/smart.rego: package manufacturing.smart is outside the manifest roots ["gate"]"#
    );
}

#[test]
fn a_rego_file_that_does_not_compile_fails_the_reload_and_the_old_generation_serves() {
    let good = read_bundle(&tar_gz(&bundle_files("r1", &[1883])), MAX, None, false)
        .unwrap_or_else(|e| panic!("{e}"));
    let d = Decider::with_revision(&good.policy, DeciderOptions::default(), "r1")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut files = bundle_files("r2", &[8883]);
    files[1].1 = b"package manufacturing.smart\n\nallow if {\n  input.target.port ==\n}\n".to_vec();
    let bad = read_bundle(&tar_gz(&files), MAX, None, false).unwrap_or_else(|e| panic!("{e}"));
    let err = d
        .reload(&bad.policy, &bad.revision)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.starts_with("bundle:/manufacturing/smart.rego:5:1: "),
        "{err}"
    );
    assert_eq!(d.revision(), "r1");
    assert_eq!(d.generation(), 1);
    assert!(allows(&d, 1883));
}

#[test]
fn a_bundle_signed_with_es256_by_the_configured_key_is_accepted() {
    let k = EcKey::generate();
    let files = bundle_files("signed-1", &[1883]);
    let jwt = k.sign(
        &files,
        serde_json::json!({"keyid": "plant", "scope": "write"}),
    );
    let bytes = tar_gz(&with_signature(files, &jwt));
    let key = VerificationKey::from_pem(
        k.public_pem().as_bytes(),
        Some("plant".into()),
        Some("write".into()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let b = read_bundle(&bytes, MAX, Some(&key), false).unwrap_or_else(|e| panic!("{e}"));
    assert!(b.signed);
    assert_eq!(b.revision, "signed-1");
}

#[test]
fn an_unsigned_bundle_is_refused_when_a_key_is_configured() {
    let k = EcKey::generate();
    assert_eq!(
        reject(&tar_gz(&bundle_files("r1", &[1883])), Some(&key_of(&k))),
        "bundle is not signed (no .signatures.json) but policy.bundle.public_key requires a signature"
    );
}

#[test]
fn a_tampered_file_is_refused() {
    let k = EcKey::generate();
    let files = bundle_files("r1", &[1883]);
    let jwt = k.sign(&files, serde_json::json!({}));
    let mut files = with_signature(files, &jwt);
    // After signing, someone opens port 443 to the outside.
    files[2].1 = br#"{"ports": [1883, 443]}"#.to_vec();
    assert_eq!(
        reject(&tar_gz(&files), Some(&key_of(&k))),
        "bundle signature: gate/data.json: SHA-256 does not match the signed hash (file tampered)"
    );
}

#[test]
fn an_added_file_is_refused() {
    let k = EcKey::generate();
    let files = bundle_files("r1", &[1883]);
    let jwt = k.sign(&files, serde_json::json!({}));
    let mut files = with_signature(files, &jwt);
    files.push((
        "manufacturing/extra.rego".into(),
        b"package manufacturing.smart\nallow := true\n".to_vec(),
    ));
    assert_eq!(
        reject(&tar_gz(&files), Some(&key_of(&k))),
        "bundle signature: manufacturing/extra.rego is in the bundle but not in the signature"
    );
}

#[test]
fn a_signature_by_another_key_is_refused() {
    let (signer, configured) = (EcKey::generate(), EcKey::generate());
    let files = bundle_files("r1", &[1883]);
    let jwt = signer.sign(&files, serde_json::json!({}));
    assert_eq!(
        reject(
            &tar_gz(&with_signature(files, &jwt)),
            Some(&key_of(&configured))
        ),
        "bundle signature: verification failed (signed by another key, or altered)"
    );
}

#[test]
fn a_wrong_scope_is_refused() {
    let k = EcKey::generate();
    let files = bundle_files("r1", &[1883]);
    let jwt = k.sign(&files, serde_json::json!({"scope": "read"}));
    let key = VerificationKey::from_pem(k.public_pem().as_bytes(), None, Some("write".into()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        reject(&tar_gz(&with_signature(files, &jwt)), Some(&key)),
        r#"bundle signature: scope "read" is not the configured "write""#
    );
}

/// RS256 with keys and signature made by the `openssl` CLI (installed by scripts/test).
#[test]
fn a_bundle_signed_with_rs256_by_openssl_is_accepted_and_checked() {
    let dir = TempDir::new("rs256");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("openssl (needed by this test): {e}"));
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&[
        "genpkey",
        "-algorithm",
        "RSA",
        "-pkeyopt",
        "rsa_keygen_bits:2048",
        "-out",
        "key.pem",
    ]);
    run(&["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"]);
    let files = bundle_files("rsa-1", &[1883]);
    let input = signing_input("RS256", &files, serde_json::json!({}));
    std::fs::write(dir.join("input"), &input).unwrap_or_else(|e| panic!("{e}"));
    let sig = run(&["dgst", "-sha256", "-sign", "key.pem", "input"]);
    use base64::Engine as _;
    let jwt = format!(
        "{input}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig)
    );
    let pem = std::fs::read(dir.join("pub.pem")).unwrap_or_else(|e| panic!("{e}"));
    let key = VerificationKey::from_pem(&pem, None, None).unwrap_or_else(|e| panic!("{e}"));
    let signed = with_signature(files.clone(), &jwt);
    let b = read_bundle(&tar_gz(&signed), MAX, Some(&key), false).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.revision, "rsa-1");
    // An ES256 key configured for an RS256 bundle: refused before any hashing.
    let other = EcKey::generate();
    assert_eq!(
        reject(&tar_gz(&signed), Some(&key_of(&other))),
        r#"bundle signature: signed with "RS256" but the configured public key is ES256"#
    );
}
