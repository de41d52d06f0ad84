//! Non-ASCII names in the config: `sluice serve -c` with `"é.local"` in `site.local_domains`
//! starts (it used to panic slicing the name) and treats the name as it arrives on the wire,
//! in its IDNA (punycode) form; a name IDNA refuses is a one-line error naming the key.

mod support;

use support::*;

fn config(domains: &str) -> String {
    format!(
        "site:\n  local_networks: [127.0.0.1/32]\n  local_domains: {domains}\n\
         http:\n  listen: {}\n  connect_timeout: 2s\nadmin:\n  listen: {}\n",
        free_addr(),
        free_addr()
    )
}

fn proxied_get(sluice: &Sluice, host: &str) -> u16 {
    let request =
        format!("GET http://{host}:9/ HTTP/1.1\r\nHost: {host}:9\r\nConnection: close\r\n\r\n");
    let response = raw_exchange(sluice.proxy(), request.as_bytes())
        .unwrap_or_else(|e| panic!("GET http://{host}:9/ through the proxy: {e}"));
    parse_response(&response)
        .unwrap_or_else(|e| panic!("{host}: {e}"))
        .0
}

#[test]
fn a_non_ascii_local_domain_is_local_in_its_punycode_form() {
    let sluice = Sluice::serve(&config("[\"é.local\", \"*.Bäckerei.internal\"]"));

    // An external name is refused by the shipped policy before any lookup...
    assert_eq!(proxied_get(&sluice, "historian.example"), 403);
    // ...while the configured names, as clients send them (IDNA), are local: looked up (and,
    // not existing, answered as a gateway error), never refused as an export.
    for host in [
        "xn--9ca.local",
        "XN--9CA.LOCAL",
        "ofen.xn--bckerei-5wa.internal",
    ] {
        let status = proxied_get(&sluice, host);
        assert!(status == 502 || status == 504, "{host}: {status}");
    }
}

#[test]
fn a_name_idna_refuses_is_a_one_line_error_naming_the_key() {
    let dir = TempDir::new("names");
    let path = dir.file("sluice.yaml", &config("[localhost, \"é local\"]"));
    let path = path.display().to_string();
    let out = cli::sluice(&["serve", "-c", &path]);
    assert_one_line_error(
        &out,
        &format!(
            "sluice serve: {path}: site.local_domains[1]: \"é local\" is not a valid domain name (IDNA refuses it)"
        ),
    );
}
