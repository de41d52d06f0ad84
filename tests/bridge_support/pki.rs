//! Certificates for the bridge's TLS tests, made with rcgen: a CA, a broker certificate for
//! 127.0.0.2 (the test cloud's address), a client certificate for the bridge, and a second,
//! unrelated CA that must not be trusted.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair,
};

use super::Dir;

pub struct Pki {
    pub dir: Dir,
}

fn ca(dir: &Dir, name: &str, cn: &str) -> CertifiedIssuer<'static, KeyPair> {
    let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    let ca = CertifiedIssuer::self_signed(params, key).unwrap_or_else(|e| panic!("{e}"));
    dir.file(&format!("{name}.pem"), &ca.pem());
    ca
}

impl Pki {
    pub fn new() -> Self {
        let dir = Dir::new("pki");
        let issuer = ca(&dir, "ca", "cloud test CA");
        ca(&dir, "other-ca", "some other CA");
        let leaf = |sans: Vec<String>, cn: &str, purpose: ExtendedKeyUsagePurpose, name: &str| {
            let key = KeyPair::generate().unwrap_or_else(|e| panic!("{e}"));
            let mut p = CertificateParams::new(sans).unwrap_or_else(|e| panic!("{e}"));
            p.distinguished_name = DistinguishedName::new();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.extended_key_usages = vec![purpose];
            let cert = p.signed_by(&key, &issuer).unwrap_or_else(|e| panic!("{e}"));
            dir.file(&format!("{name}.pem"), &cert.pem());
            dir.file(&format!("{name}.key"), &key.serialize_pem());
        };
        leaf(
            vec!["127.0.0.2".into()],
            "cloud broker",
            ExtendedKeyUsagePurpose::ServerAuth,
            "server",
        );
        leaf(
            vec![],
            "plant-042",
            ExtendedKeyUsagePurpose::ClientAuth,
            "client",
        );
        Self { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path(name).display().to_string()
    }

    /// mosquitto lines for a TLS listener on `port` that requires a client certificate.
    pub fn listener(&self, port: u16) -> String {
        format!(
            "listener {port} 127.0.0.2\ncafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            self.path("ca.pem"),
            self.path("server.pem"),
            self.path("server.key")
        )
    }
}
