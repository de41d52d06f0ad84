//! Files generated from the code (src/policy/compat.rs): docs/compatibility.md and the table of
//! OPA's builtin declarations. Each test fails when its file is stale, and rewrites it with
//! `SLUICE_BLESS=1`.

/// Rewrites `relative` with `generated` under `SLUICE_BLESS`, then fails unless they are equal.
fn matches_on_disk(relative: &str, generated: &str) {
    let path = format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(&path, generated).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "{relative} is stale: run SLUICE_BLESS=1 cargo test --test compatibility_doc"
    );
}

#[test]
fn compatibility_page_matches_the_code() {
    matches_on_disk("docs/compatibility.md", &sluice::policy::compat::markdown());
}

#[test]
fn the_builtin_table_matches_opa_capabilities() {
    let generated = sluice::policy::compat::opa_builtins_source().unwrap_or_else(|e| panic!("{e}"));
    matches_on_disk("src/policy/opa_builtins.rs", &generated);
}
