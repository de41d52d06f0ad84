//! The one place a regorus [`Engine`] is set up, for `serve`, `webhook`, `test`, `eval`,
//! `check`, `verify` and `bench`: the OPA builtins sluice adds as extensions, the refused
//! builtins, Rego v0/v1 and OPA's builtin-error mode.
//!
//! Not here: loading files (`loader`), the decision (`decider`), templates (`admission`).

use std::sync::atomic::{AtomicBool, Ordering};

use regorus::Engine;

use super::builtins;

/// OPA's default is non-strict: a builtin error makes the expression undefined. `serve` and
/// `webhook` set this from `policy.strict_builtin_errors`, `test` and `eval` from
/// `--strict-builtin-errors`, once at start, before any engine is made.
static STRICT_BUILTIN_ERRORS: AtomicBool = AtomicBool::new(false);

/// Sets the error mode of every engine made after this call.
pub fn set_strict_builtin_errors(strict: bool) {
    STRICT_BUILTIN_ERRORS.store(strict, Ordering::Relaxed);
}

pub fn strict_builtin_errors() -> bool {
    STRICT_BUILTIN_ERRORS.load(Ordering::Relaxed)
}

/// How an engine is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineSetup {
    pub rego_v0: bool,
    pub strict_builtin_errors: bool,
}

impl EngineSetup {
    /// Rego v0 or v1, with the process's builtin-error mode.
    pub fn new(rego_v0: bool) -> Self {
        Self {
            rego_v0,
            strict_builtin_errors: strict_builtin_errors(),
        }
    }

    /// A fresh engine with the extensions, the refusals and the modes.
    pub fn engine(&self) -> Engine {
        let mut engine = Engine::new();
        engine.set_rego_v0(self.rego_v0);
        engine.set_strict_builtin_errors(self.strict_builtin_errors);
        builtins::register(&mut engine, self.strict_builtin_errors);
        engine
    }
}

/// A call to a builtin sluice refuses, found before compiling.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name} is not available in sluice: {reason}")]
pub struct RefusedCall {
    pub line: u32,
    pub col: u32,
    pub name: &'static str,
    pub reason: &'static str,
}

/// Finds the first call to a refused builtin (`http.send(`, `net.lookup_ip_addr(`) in Rego
/// text, outside comments and strings. `with http.send as …` (a mock in a test) is no call.
pub fn find_refused_call(text: &str) -> Option<RefusedCall> {
    // Every module is checked at every load: a text that never names one (nearly all) is
    // passed by a substring search, without the scan that tells calls from comments.
    if !builtins::REFUSED.iter().any(|r| text.contains(r.name)) {
        return None;
    }
    let names: Vec<&str> = builtins::REFUSED.iter().map(|r| r.name).collect();
    let (line, col, name) = find_call(text, &names)?;
    let refused = builtins::REFUSED.iter().find(|r| r.name == name)?;
    Some(RefusedCall {
        line,
        col,
        name: refused.name,
        reason: refused.reason,
    })
}

/// The line, column and name of the first call to one of `names` in Rego text, outside
/// comments and strings.
pub fn find_call<'n>(text: &str, names: &[&'n str]) -> Option<(u32, u32, &'n str)> {
    let bytes = text.as_bytes();
    let (mut i, mut line, mut line_start) = (0usize, 1u32, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line += 1;
                line_start = i + 1;
                i += 1;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'`' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'`' {
                    if bytes[i] == b'\n' {
                        line += 1;
                        line_start = i + 1;
                    }
                    i += 1;
                }
                i += 1;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] == b'.')
                {
                    i += 1;
                }
                let word = &text[start..i];
                let preceded_by_dot = start > 0 && bytes[start - 1] == b'.';
                let mut j = i;
                while j < bytes.len() && (bytes[j] == b' ' || bytes[j] == b'\t') {
                    j += 1;
                }
                if !preceded_by_dot && bytes.get(j) == Some(&b'(') {
                    if let Some(name) = names.iter().find(|n| **n == word) {
                        return Some((line, (start - line_start) as u32 + 1, name));
                    }
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_to_http_send_is_found_with_its_position() {
        let text = "package t\n\nr := x if {\n  x := http.send({\"url\": \"http://a\"})\n}\n";
        let found = find_refused_call(text);
        assert_eq!(
            found.map(|f| (f.line, f.col, f.name)),
            Some((4, 8, "http.send"))
        );
    }

    #[test]
    fn comments_strings_and_mocks_are_not_calls() {
        let text = "package t\n# http.send(x)\nr := \"net.lookup_ip_addr(1)\"\n\
                    test_x if { r with http.send as mock }\ns := `http.send(1)`\n";
        assert_eq!(find_refused_call(text), None);
    }

    #[test]
    fn extensions_follow_the_error_mode() {
        let policy = "package t\nr := crypto.sha256(input.x)\n";
        for (strict, want_error) in [(false, false), (true, true)] {
            let mut engine = EngineSetup {
                rego_v0: false,
                strict_builtin_errors: strict,
            }
            .engine();
            let _ = engine.add_policy("t.rego".into(), policy.into());
            engine.set_input(regorus::Value::from(serde_json::json!({"x": 1})));
            let r = engine.eval_rule("data.t.r".into());
            assert_eq!(r.is_err(), want_error, "strict={strict}: {r:?}");
            if !strict {
                assert_eq!(r.ok(), Some(regorus::Value::Undefined));
            }
        }
    }
}
