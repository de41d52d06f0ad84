//! `crypto.*` digests and HMACs (removed from regorus): `crypto.md5`, `sha1`, `sha256`,
//! `crypto.hmac.md5|sha1|sha256|sha512` and `crypto.hmac.equal`, all over UTF-8 strings with
//! lowercase hex output, as OPA.
//!
//! Not here: `crypto.x509.*` and key parsing (refused as unsupported, see docs/compatibility.md).

use regorus::Value;
use ring::{digest, hmac};

use super::{Args, Builtin, BuiltinError, digest as md, hex};

pub static BUILTINS: &[Builtin] = &[
    Builtin {
        name: "crypto.md5",
        arity: 1,
        run: |a| Ok(Value::from(hex(&md::md5(a.string(0)?.as_bytes())))),
    },
    Builtin {
        name: "crypto.sha1",
        arity: 1,
        run: |a| sha(a, &digest::SHA1_FOR_LEGACY_USE_ONLY),
    },
    Builtin {
        name: "crypto.sha256",
        arity: 1,
        run: |a| sha(a, &digest::SHA256),
    },
    Builtin {
        name: "crypto.hmac.md5",
        arity: 2,
        run: |a| {
            let mac = md::hmac_md5(a.string(1)?.as_bytes(), a.string(0)?.as_bytes());
            Ok(Value::from(hex(&mac)))
        },
    },
    Builtin {
        name: "crypto.hmac.sha1",
        arity: 2,
        run: |a| mac(a, hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY),
    },
    Builtin {
        name: "crypto.hmac.sha256",
        arity: 2,
        run: |a| mac(a, hmac::HMAC_SHA256),
    },
    Builtin {
        name: "crypto.hmac.sha512",
        arity: 2,
        run: |a| mac(a, hmac::HMAC_SHA512),
    },
    Builtin {
        name: "crypto.hmac.equal",
        arity: 2,
        run: hmac_equal,
    },
];

fn sha(args: &Args<'_>, algorithm: &'static digest::Algorithm) -> Result<Value, BuiltinError> {
    let d = digest::digest(algorithm, args.string(0)?.as_bytes());
    Ok(Value::from(hex(d.as_ref())))
}

fn mac(args: &Args<'_>, algorithm: hmac::Algorithm) -> Result<Value, BuiltinError> {
    let message = args.string(0)?;
    let key = hmac::Key::new(algorithm, args.string(1)?.as_bytes());
    Ok(Value::from(hex(
        hmac::sign(&key, message.as_bytes()).as_ref()
    )))
}

/// Compares two MACs in time independent of where they differ (OPA: `hmac.Equal`).
fn hmac_equal(args: &Args<'_>) -> Result<Value, BuiltinError> {
    let a = args.string(0)?.as_bytes();
    let b = args.string(1)?.as_bytes();
    let same_len = a.len() == b.len();
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    Ok(Value::from(same_len && diff == 0))
}
