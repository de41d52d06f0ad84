//! `sluice cert` run again into a directory that holds its CA keeps that CA (byte-identical) and
//! issues a new serving certificate from it, which `openssl verify` accepts against the kept CA;
//! a CA without its key is refused unless `--force`. Needs `openssl`.

mod support;

use std::process::Command;

use support::{TempDir, assert_one_line_error, sluice};

fn cert_into(dir: &str, extra: &[&str]) -> support::Ran {
    let mut args = vec!["cert", "--dns", "sluice-webhook.test", "--out", dir];
    args.extend_from_slice(extra);
    sluice(&args)
}

fn read(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn running_cert_twice_keeps_the_ca_and_the_new_certificate_verifies_against_it() {
    let scratch = TempDir::new("cert-twice");
    let dir = scratch.join("certs");
    let out_dir = dir.display().to_string();
    let first = cert_into(&out_dir, &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let (ca_before, leaf_before) = (read(&dir.join("ca.crt")), read(&dir.join("tls.crt")));

    let second = cert_into(&out_dir, &[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second.stdout.starts_with(&format!(
            "kept the CA in {out_dir}/ca.crt; issued the serving certificate from it\n"
        )),
        "{}",
        second.stdout
    );
    assert_eq!(read(&dir.join("ca.crt")), ca_before, "the CA changed");
    assert_ne!(
        read(&dir.join("tls.crt")),
        leaf_before,
        "no new serving certificate"
    );

    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(dir.join("ca.crt"))
        .arg(dir.join("tls.crt"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run openssl: {e}"));
    assert!(
        verify.status.success(),
        "openssl verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
}

#[test]
fn a_ca_without_its_key_is_refused_unless_forced() {
    let scratch = TempDir::new("cert-nokey");
    let dir = scratch.join("certs");
    let out_dir = dir.display().to_string();
    assert_eq!(cert_into(&out_dir, &[]).code, 0);
    let _ = std::fs::remove_file(dir.join("ca.key"));
    let ca_before = read(&dir.join("ca.crt"));

    assert_one_line_error(
        &cert_into(&out_dir, &[]),
        &format!(
            "sluice cert: {out_dir}/ca.crt exists but its key {out_dir}/ca.key does not, so no \
             serving certificate can be issued from it; pass --force to make a new CA (then \
             update the deployed caBundle)"
        ),
    );
    assert_eq!(read(&dir.join("ca.crt")), ca_before);

    let forced = cert_into(&out_dir, &["--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_ne!(
        read(&dir.join("ca.crt")),
        ca_before,
        "--force makes a new CA"
    );
}
