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
