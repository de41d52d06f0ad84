//! README.md and every page of docs/ cannot go stale: each ```` ```console ```` block is run
//! against the real binary (servers in network namespaces of their own) and must print what it
//! shows (`support::doc` says how blocks are written). `scripts/doc-run` rewrites the blocks
//! that differ. Needs root for the server blocks, `curl`, `jq`, `openssl`, `python3` (an HTTP
//! upstream), `mosquitto` and `mosquitto-clients`, as `scripts/test` installs them.

mod support;

use support::doc::check_page;

/// Pages whose command blocks are not run yet (their servers need a bundle server or an export
/// bridge session written as console blocks). Shrink this list; never grow it.
const NOT_YET_RUN: &[&str] = &[];

/// The pages run below.
const RUN: &[&str] = &[
    "README.md",
    "docs/policy-cli.md",
    "docs/http-gateway.md",
    "docs/mqtt-gateway.md",
    "docs/webhook.md",
    "docs/export-bridge.md",
    "docs/policy-distribution.md",
    "docs/configuration.md",
    "docs/architecture.md",
    "docs/compatibility.md",
    "docs/development.md",
    "docs/interception.md",
    "docs/hardening.md",
    "docs/reliability.md",
    "docs/benchmarks.md",
];

#[test]
fn every_doc_page_is_run_or_listed_as_not_yet_run() {
    let mut pages = vec!["README.md".to_string()];
    let dir = support::repo("docs");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("docs/: {e}"));
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".md") {
            pages.push(format!("docs/{name}"));
        }
    }
    for page in pages {
        assert!(
            RUN.contains(&page.as_str()) || NOT_YET_RUN.contains(&page.as_str()),
            "{page} is neither run by tests/docs.rs nor listed as not yet run: add a test for it"
        );
    }
}

#[test]
fn readme_shows_what_the_binary_prints() {
    check_page("README.md");
}

#[test]
fn policy_cli_doc_shows_what_the_binary_prints() {
    check_page("docs/policy-cli.md");
}

#[test]
fn http_gateway_doc_shows_what_the_binary_prints() {
    check_page("docs/http-gateway.md");
}

#[test]
fn mqtt_gateway_doc_shows_what_the_binary_prints() {
    check_page("docs/mqtt-gateway.md");
}

#[test]
fn export_bridge_doc_shows_what_the_binary_prints() {
    check_page("docs/export-bridge.md");
}

#[test]
fn policy_distribution_doc_shows_what_the_binary_prints() {
    check_page("docs/policy-distribution.md");
}

#[test]
fn webhook_doc_shows_what_the_binary_prints() {
    check_page("docs/webhook.md");
}

/// Pages without command output today: run so that one added later is checked.
#[test]
fn the_other_pages_show_what_the_binary_prints() {
    for page in [
        "docs/configuration.md",
        "docs/architecture.md",
        "docs/compatibility.md",
        "docs/development.md",
        "docs/interception.md",
        "docs/hardening.md",
        "docs/reliability.md",
        "docs/benchmarks.md",
    ] {
        check_page(page);
    }
}

/// The README's two commands stay true: `cargo run --release -- serve` runs this binary's
/// `serve` (the package's default binary; the README's HTTP session runs `sluice serve`), and
/// the test command is `scripts/test`, which `.ci/run` executes.
#[test]
fn the_readmes_two_commands_are_the_binary_and_the_ci_script() {
    let readme = std::fs::read_to_string(support::repo("README.md")).unwrap_or_default();
    for command in ["cargo run --release -- serve", "scripts/test"] {
        assert!(
            readme.contains(&format!("```sh\n{command}\n```")),
            "the README lost its command `{command}`"
        );
    }
    let cargo = std::fs::read_to_string(support::repo("Cargo.toml")).unwrap_or_default();
    assert!(
        cargo.contains("default-run = \"sluice\""),
        "Cargo.toml: default-run"
    );
    let ci = std::fs::read_to_string(support::repo(".ci/run")).unwrap_or_default();
    assert!(
        ci.contains("scripts/test"),
        ".ci/run no longer runs scripts/test"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(support::repo("scripts/test"))
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    assert!(mode & 0o111 != 0, "scripts/test is not executable");
}
