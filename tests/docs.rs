//! README.md and every page of docs/ cannot go stale: each ```` ```console ```` block is run
//! against the real binary (servers in network namespaces of their own) and must print what it
//! shows (`support::doc` says how blocks are written). `scripts/doc-run` rewrites the blocks
//! that differ. Needs root for the server blocks, `curl`, `mosquitto` and `mosquitto-clients`,
//! `openssl` and `python3` (an upstream), as `scripts/test` installs them.

mod support;

use support::doc::check_page;

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
fn webhook_doc_shows_what_the_binary_prints() {
    check_page("docs/webhook.md");
}
