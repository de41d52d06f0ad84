//! docs/compatibility.md is generated from the code (src/policy/compat.rs): this test fails
//! when the page is stale, and rewrites it with `SLUICE_BLESS=1`.

#[test]
fn compatibility_page_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/compatibility.md");
    let generated = sluice::policy::compat::markdown();
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(path, &generated).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "docs/compatibility.md is stale: run SLUICE_BLESS=1 cargo test --test compatibility_doc"
    );
}

#[test]
fn the_builtin_table_matches_opa_capabilities() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/policy/opa_builtins.rs");
    let generated = sluice::policy::compat::opa_builtins_source().unwrap_or_else(|e| panic!("{e}"));
    if std::env::var_os("SLUICE_BLESS").is_some() {
        std::fs::write(path, &generated).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == generated,
        "src/policy/opa_builtins.rs is stale: run SLUICE_BLESS=1 cargo test --test compatibility_doc"
    );
}
