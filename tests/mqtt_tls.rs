//! TLS on both sides: clients must present a certificate from the listener's `client_ca`, whose
//! subject CN becomes `input.source.username`; the upstream broker is reached over TLS verified
//! against `upstream_tls.ca`.
//!
//! Needs mosquitto and mosquitto-clients.

mod support;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use support::*;

struct Pki {
    dir: TempDir,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1/localhost, and client certificates by CN.
    fn new(clients: &[&str]) -> Self {
        let dir = TempDir::new("pki");
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
        dir.file("ca.key", &key.serialize_pem());
        let mut params =
            CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, "plant-042 test CA");
        let ca = CertifiedIssuer::self_signed(params, key).unwrap_or_else(|e| panic!("{e}"));
        dir.file("ca.pem", &ca.pem());

        let leaf = |sans: Vec<String>, cn: &str, purpose: ExtendedKeyUsagePurpose, name: &str| {
            let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
            let mut p = CertificateParams::new(sans).unwrap_or_else(|e| panic!("{e}"));
            p.distinguished_name = DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![purpose];
            let cert = p.signed_by(&key, &ca).unwrap_or_else(|e| panic!("{e}"));
            dir.file(&format!("{name}.pem"), &cert.pem());
            dir.file(&format!("{name}.key"), &key.serialize_pem());
        };
        leaf(
            vec!["127.0.0.1".into(), "localhost".into()],
            "broker",
            ExtendedKeyUsagePurpose::ServerAuth,
            "server",
        );
        for cn in clients {
            leaf(vec![], cn, ExtendedKeyUsagePurpose::ClientAuth, cn);
        }
        Self { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificate_cn_is_the_identity_and_the_upstream_is_tls_verified() {
    let pki = Pki::new(&["press-7", "untrusted-device"]);
    // The broker speaks only TLS.
    let broker = Broker::start_on(
        "127.0.0.1",
        &format!(
            "cafile {}\ncertfile {}\nkeyfile {}\n",
            pki.path("ca.pem"),
            pki.path("server.pem"),
            pki.path("server.key")
        ),
    );
    let extra = format!(
        "tls: {{cert: {}, key: {}, client_ca: {}}}\nupstream_tls: {{ca: {}, server_name: localhost}}",
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
        pki.path("ca.pem"),
    );
    let sluice = sluice_for(&broker, &extra);
    let tls_pub = |cn: &str, version: &str, topic: &str| {
        let key = format!("{cn}.key");
        let cert = format!("{cn}.pem");
        mosquitto_pub(
            sluice.addr(),
            &[
                "--cafile",
                &pki.path("ca.pem"),
                "--cert",
                &pki.path(&cert),
                "--key",
                &pki.path(&key),
                // The CONNECT's user name is ignored in favour of the certificate.
                "-u",
                "press-7",
                "-V",
                version,
                "-d",
                "-q",
                "1",
                "-t",
                topic,
                "-m",
                "1",
            ],
        )
    };
    let out = tls_pub("press-7", "mqttv5", "plant/line1/temp");
    // 16: accepted by the broker, which has no subscriber for it.
    assert!(
        text(&out).contains("received PUBACK (Mid: 1, RC:16)"),
        "{}",
        text(&out)
    );
    // The policy denies user name `untrusted-device`: its certificate says so, whatever
    // CONNECT claims.
    let out = tls_pub("untrusted-device", "mqttv5", "plant/line1/temp");
    assert!(
        text(&out).contains("received CONNACK (135)"),
        "{}",
        text(&out)
    );
    let out = tls_pub("untrusted-device", "mqttv311", "plant/line1/temp");
    assert!(text(&out).contains("not authorised"), "{}", text(&out));

    // Without a client certificate the handshake fails, and is counted.
    let out = mosquitto_pub(
        sluice.addr(),
        &["--cafile", &pki.path("ca.pem"), "-t", "plant/x", "-m", "1"],
    );
    assert!(!out.status.success(), "{}", text(&out));
    sluice.wait_metric(
        "sluice_errors_total{protocol=\"mqtt\",kind=\"tls_handshake\"}",
        1.0,
    );
    // The refusal is logged with its reason, not only counted.
    sluice.wait_for_log("TLS handshake refused");

    // An X.509 v1 client certificate (openssl x509 -req without extensions) from the same CA
    // is refused, and the log says why in words an operator can act on.
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("openssl: {e}"));
        assert!(out.status.success(), "openssl {args:?}: {}", text(&out));
    };
    let (v1_key, v1_csr, v1_pem) = (pki.path("v1.key"), pki.path("v1.csr"), pki.path("v1.pem"));
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        &v1_key,
        "-out",
        &v1_csr,
        "-subj",
        "/CN=press-7",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        &v1_csr,
        "-CA",
        &pki.path("ca.pem"),
        "-CAkey",
        &pki.path("ca.key"),
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        &v1_pem,
    ]);
    // Refusals are logged at most once a second per listener, and the one above may hold this
    // second: try until the v1 refusal has been logged; every try must be refused.
    wait_until(WAIT, "the v1 certificate's refusal in the log", || {
        let out = mosquitto_pub(
            sluice.addr(),
            &[
                "--cafile",
                &pki.path("ca.pem"),
                "--cert",
                &v1_pem,
                "--key",
                &v1_key,
                "-t",
                "plant/x",
                "-m",
                "1",
            ],
        );
        assert!(!out.status.success(), "{}", text(&out));
        sluice.logs().contains("not X.509 v3")
    });
    let line = sluice.wait_for_log("not X.509 v3");
    assert!(line.contains("accepts v3 certificates only"), "{line}");
}
