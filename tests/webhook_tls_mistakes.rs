//! A `webhook.tls` certificate or key that cannot be loaded stops `sluice webhook` at start:
//! exit 1 and one line naming the key, the file and what would do. Never a webhook that
//! starts without its certificate.

mod support;

use support::*;

/// `sluice webhook` on `tls: {cert, key}` (paths relative to the repository root, where the
/// command runs); what it printed and returned.
fn webhook_with(dir: &TempDir, cert: &str, key: &str) -> (Ran, String) {
    let yaml = format!(
        "webhook:\n  listen: 127.0.0.1:{}\n  tls: {{cert: {cert}, key: {key}}}\n",
        free_port()
    );
    let path = dir.file("webhook.yaml", &yaml).display().to_string();
    (cli::sluice(&["webhook", "-c", &path]), path)
}

#[test]
fn a_webhook_certificate_that_cannot_be_loaded_stops_the_webhook_with_one_line() {
    let dir = TempDir::new("webhook-tls");
    let d = dir.path().display().to_string();
    for pair in ["a", "b"] {
        let out = cli::sluice(&[
            "cert",
            "--dns",
            "localhost",
            "--out",
            &format!("{d}/{pair}"),
        ]);
        assert_eq!(out.code, 0, "sluice cert: {}", out.stderr);
    }
    std::fs::write(dir.join("garbage.crt"), "not a certificate\n").expect("write");
    let cases = [
        (
            format!("{d}/missing.crt"),
            format!("{d}/a/tls.key"),
            format!(
                "webhook.tls.cert: {d}/missing.crt: cannot read certificate: No such file or \
                 directory (os error 2); name the PEM certificate the webhook serves (sluice \
                 cert writes one)"
            ),
        ),
        (
            format!("{d}/garbage.crt"),
            format!("{d}/a/tls.key"),
            format!(
                "webhook.tls.cert: {d}/garbage.crt: no PEM certificate found; name the PEM \
                 certificate the webhook serves (sluice cert writes one)"
            ),
        ),
        (
            format!("{d}/a/tls.crt"),
            format!("{d}/b/tls.key"),
            format!(
                "webhook.tls.key: {d}/b/tls.key: it is not the key of webhook.tls.cert \
                 {d}/a/tls.crt; name the key the certificate was issued for"
            ),
        ),
        (
            format!("{d}/a/tls.crt"),
            format!("{d}/a/ca.crt"),
            format!(
                "webhook.tls.key: {d}/a/ca.crt: no usable PEM private key: no items found; \
                 name the PEM private key of webhook.tls.cert"
            ),
        ),
    ];
    for (cert, key, message) in cases {
        let (out, _) = webhook_with(&dir, &cert, &key);
        assert_one_line_error(&out, &format!("sluice webhook: {message}"));
    }
}
