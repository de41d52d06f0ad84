//! One-shot `sluice` commands (`test`, `eval`, `check`, `verify`, `cert`, `log`, …) run from the
//! repository root, so fixture paths print as a user types them, and the normalising of what
//! varies between runs (test durations). Not for servers: those are `launcher.rs`.

use std::process::Command;

/// What a one-shot `sluice` command printed and returned.
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// `sluice ARGS...` in the repository root.
pub fn sluice(args: &[&str]) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run sluice {args:?}: {e}"));
    Ran {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        code: out.status.code().unwrap_or(-1),
    }
}

/// Replaces every Go-formatted duration in parentheses, `(1.234ms)`, with `(DUR)`.
pub fn normalise(text: &str) -> String {
    let re = regex::Regex::new(r"\((?:\d+(?:\.\d+)?(?:ns|µs|ms|s|m|h))+\)")
        .unwrap_or_else(|e| panic!("bad regex: {e}"));
    re.replace_all(text, "(DUR)").into_owned()
}

/// Asserts one line on stderr, nothing on stdout, exit code 1 and no panic or backtrace.
pub fn assert_one_line_error(out: &Ran, expected: &str) {
    assert_eq!(out.stderr, format!("{expected}\n"), "stderr");
    assert_eq!(out.stdout, "", "stdout");
    assert_eq!(out.code, 1, "exit code");
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}
