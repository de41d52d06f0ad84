//! `sluice cert`: makes the webhook's serving certificate and the `caBundle` for its
//! ValidatingWebhookConfiguration, with no tool beyond this binary.
//!
//! A private CA signs one serving certificate for the Service's DNS names. The CA's key is kept
//! beside it (`ca.key`, mode 0600) so that running the command again issues a new serving
//! certificate from the same CA: the `caBundle` already deployed keeps working. A directory
//! holding a CA without its key is refused unless `--force` makes a new CA.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

#[derive(Debug, clap::Args)]
#[command(after_help = "\
Example, for the webhook Service `sluice-webhook` in namespace `sluice-system`:

  sluice cert --service sluice-webhook --namespace sluice-system --out certs/
  kubectl -n sluice-system create secret tls sluice-webhook-tls \\
      --cert certs/tls.crt --key certs/tls.key
  # then put the printed caBundle into the ValidatingWebhookConfiguration")]
pub struct CertArgs {
    /// Service name; adds NAME, NAME.NS, NAME.NS.svc and NAME.NS.svc.cluster.local
    #[arg(long, requires = "namespace")]
    pub service: Option<String>,
    /// Namespace of the Service
    #[arg(long)]
    pub namespace: Option<String>,
    /// Extra DNS names or IP addresses for the certificate (repeatable)
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// Directory for ca.crt, tls.crt and tls.key (created if missing)
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Replace a CA already in --out (the deployed caBundle must then be updated)
    #[arg(long)]
    pub force: bool,
    /// Validity in days
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub days: u32,
}

/// Runs the command: writes the files, prints the caBundle. Exit code as for every command.
pub fn run(args: CertArgs) -> i32 {
    match generate(&args) {
        Ok((bundle, kept)) => {
            let ca = args.out.join("ca.crt");
            if kept {
                println!(
                    "kept the CA in {}; issued the serving certificate from it",
                    ca.display()
                );
            } else {
                println!("wrote {}", ca.display());
                println!("wrote {}", args.out.join("ca.key").display());
            }
            println!("wrote {}", args.out.join("tls.crt").display());
            println!("wrote {}", args.out.join("tls.key").display());
            println!("caBundle: {bundle}");
            0
        }
        Err(e) => {
            eprintln!("sluice cert: {e}");
            1
        }
    }
}

/// The DNS names a Service is reached by from the API server.
fn names(args: &CertArgs) -> Vec<String> {
    let mut names = Vec::new();
    if let (Some(s), Some(ns)) = (&args.service, &args.namespace) {
        names.push(s.clone());
        names.push(format!("{s}.{ns}"));
        names.push(format!("{s}.{ns}.svc"));
        names.push(format!("{s}.{ns}.svc.cluster.local"));
    }
    names.extend(args.dns.iter().cloned());
    names
}

fn generate(args: &CertArgs) -> Result<(String, bool), String> {
    let names = names(args);
    if names.is_empty() {
        return Err("name the certificate: --service NAME --namespace NS, or --dns NAME".into());
    }
    let (start, end) = validity(args.days);

    let (ca, kept) = certificate_authority(args, start, end)?;

    let mut leaf = CertificateParams::new(names.clone()).map_err(|e| format!("{e}: {names:?}"))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, names[0].clone());
    leaf.distinguished_name = dn;
    leaf.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.not_before = start;
    leaf.not_after = end;
    let leaf_key = KeyPair::generate().map_err(|e| format!("key generation: {e}"))?;
    let leaf_cert = leaf
        .signed_by(&leaf_key, &ca.issuer)
        .map_err(|e| format!("signing: {e}"))?;

    std::fs::create_dir_all(&args.out)
        .map_err(|e| format!("{}: cannot create directory: {e}", args.out.display()))?;
    if !kept {
        write(
            &args.out.join("ca.key"),
            ca.key.serialize_pem().as_bytes(),
            true,
        )?;
        write(&args.out.join("ca.crt"), ca.pem.as_bytes(), false)?;
    }
    write(&args.out.join("tls.crt"), leaf_cert.pem().as_bytes(), false)?;
    write(
        &args.out.join("tls.key"),
        leaf_key.serialize_pem().as_bytes(),
        true,
    )?;
    use base64::Engine as _;
    Ok((
        base64::engine::general_purpose::STANDARD.encode(ca.pem.as_bytes()),
        kept,
    ))
}

/// The CA: its certificate as written, and the issuer that signs with its key.
struct Authority {
    pem: String,
    key: KeyPair,
    issuer: Issuer<'static, KeyPair>,
}

/// The CA's subject and usages: the same every run, so that an issuer rebuilt from a kept
/// `ca.key` names exactly the CA in the kept `ca.crt`.
fn ca_params(
    start: time::OffsetDateTime,
    end: time::OffsetDateTime,
) -> Result<CertificateParams, String> {
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(|e| e.to_string())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "sluice webhook CA");
    ca.distinguished_name = dn;
    ca.not_before = start;
    ca.not_after = end;
    Ok(ca)
}

/// Keeps the CA in `--out` when its key is there too (returns `true`), refuses a CA without its
/// key unless `--force`, and otherwise makes a new one.
fn certificate_authority(
    args: &CertArgs,
    start: time::OffsetDateTime,
    end: time::OffsetDateTime,
) -> Result<(Authority, bool), String> {
    let (crt, key) = (args.out.join("ca.crt"), args.out.join("ca.key"));
    if crt.exists() && !args.force {
        if !key.exists() {
            return Err(format!(
                "{} exists but its key {} does not, so no serving certificate can be issued \
                 from it; pass --force to make a new CA (then update the deployed caBundle)",
                crt.display(),
                key.display()
            ));
        }
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| format!("{}: cannot read: {e}", p.display()))
        };
        let pem = read(&crt)?;
        let ca_key = KeyPair::from_pem(&read(&key)?)
            .map_err(|e| format!("{}: not a private key: {e}", key.display()))?;
        let signing = KeyPair::from_pem(&ca_key.serialize_pem())
            .map_err(|e| format!("{}: {e}", key.display()))?;
        let issuer = Issuer::new(ca_params(start, end)?, signing);
        return Ok((
            Authority {
                pem,
                key: ca_key,
                issuer,
            },
            true,
        ));
    }
    let ca_key = KeyPair::generate().map_err(|e| format!("key generation: {e}"))?;
    let signing = KeyPair::from_pem(&ca_key.serialize_pem()).map_err(|e| format!("CA key: {e}"))?;
    let params = ca_params(start, end)?;
    let cert = params
        .self_signed(&ca_key)
        .map_err(|e| format!("CA: {e}"))?;
    let issuer = Issuer::new(params, signing);
    Ok((
        Authority {
            pem: cert.pem(),
            key: ca_key,
            issuer,
        },
        false,
    ))
}

fn write(path: &Path, bytes: &[u8], secret: bool) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let _ = secret;
    let mut f = opts
        .open(path)
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    f.write_all(bytes)
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))
}

/// From one hour ago (clock skew between nodes) to `days` from now.
fn validity(days: u32) -> (time::OffsetDateTime, time::OffsetDateTime) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    (day_of(now - 86_400), day_of(now + i64::from(days) * 86_400))
}

/// The calendar date of a Unix time (Howard Hinnant's days-to-civil), at midnight UTC.
fn day_of(unix: i64) -> time::OffsetDateTime {
    let z = unix.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as i32;
    rcgen::date_time_ymd(y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(day_of(0), rcgen::date_time_ymd(1970, 1, 1));
        assert_eq!(day_of(951_782_400), rcgen::date_time_ymd(2000, 2, 29));
        assert_eq!(day_of(1_795_000_000), rcgen::date_time_ymd(2026, 11, 18));
    }
}
