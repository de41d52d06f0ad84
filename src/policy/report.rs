//! Printing test results exactly as `opa test` does: the pretty report (non-passing tests
//! grouped under a `file:` header, an 80-dash line, then `PASS: n/N` … lines) and the JSON
//! result array. Durations are printed as Go prints a `time.Duration`.
//!
//! Not here: running tests or coverage.

use std::io::{self, Write};

use super::testrun::{Outcome, TestResult, go_duration};

/// `data.p.test_x: PASS (1.2ms)`, as OPA's `Result.String()`; skipped tests have no duration.
pub fn result_line(r: &TestResult) -> String {
    let outcome = match r.outcome {
        Outcome::Pass => "PASS",
        Outcome::Fail(_) => "FAIL",
        Outcome::Skip => return format!("{}: SKIPPED", r.case.full_name()),
        Outcome::Error(_) => "ERROR",
    };
    format!(
        "{}: {outcome} ({})",
        r.case.full_name(),
        go_duration(r.duration)
    )
}

fn hl(out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{}", "-".repeat(80))
}

/// OPA's pretty reporter. Verbose adds passing tests, a FAILURES section with why each
/// failing test failed, and the `print()` output of every test.
pub fn write_pretty(out: &mut impl Write, results: &[TestResult], verbose: bool) -> io::Result<()> {
    let count = |f: fn(&Outcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let pass = count(|o| *o == Outcome::Pass);
    let fail = count(|o| matches!(o, Outcome::Fail(_)));
    let skip = count(|o| *o == Outcome::Skip);
    let errs = count(|o| matches!(o, Outcome::Error(_)));

    if fail > 0 && verbose {
        writeln!(out, "FAILURES")?;
        hl(out)?;
        for r in results {
            if let Outcome::Fail(why) = &r.outcome {
                writeln!(out, "{}", result_line(r))?;
                writeln!(out)?;
                // OPA prints the evaluation trace here; regorus has none, so say what the
                // rule evaluated to and where it is defined.
                writeln!(
                    out,
                    "  {}:{}: {} is {why}, not true",
                    r.case.file,
                    r.case.line,
                    r.case.full_name()
                )?;
                writeln!(out)?;
            }
        }
        writeln!(out, "SUMMARY")?;
        hl(out)?;
    }

    let mut dirty = false;
    let mut last_file: Option<&str> = None;
    for r in results {
        if verbose || !r.passed() {
            if last_file != Some(r.case.file.as_str()) {
                if last_file.is_some() {
                    writeln!(out)?;
                }
                writeln!(out, "{}:", r.case.file)?;
                last_file = Some(&r.case.file);
            }
            dirty = true;
            writeln!(out, "{}", result_line(r))?;
            if !r.output.is_empty() {
                writeln!(out)?;
                let text = r.output.join("\n");
                for line in text.trim().lines() {
                    writeln!(out, "  {line}")?;
                }
                writeln!(out)?;
            }
        }
        if let Outcome::Error(e) = &r.outcome {
            writeln!(out, "  {e}")?;
        }
    }
    if dirty {
        hl(out)?;
    }
    let total = results.len();
    for (label, n) in [
        ("PASS", pass),
        ("FAIL", fail),
        ("SKIPPED", skip),
        ("ERROR", errs),
    ] {
        if n != 0 {
            writeln!(out, "{label}: {n}/{total}")?;
        }
    }
    Ok(())
}

/// OPA's JSON reporter: an array of results with `location`, `package`, `name`, `fail`,
/// `error`, `skip`, `duration` (nanoseconds) and `output` (base64 of the printed bytes).
pub fn write_json(out: &mut impl Write, results: &[TestResult]) -> io::Result<()> {
    let array: Vec<JsonResult<'_>> = results.iter().map(result_json).collect();
    let text = serde_json::to_string_pretty(&array).map_err(io::Error::other)?;
    writeln!(out, "{text}")
}

/// One result in OPA's field order (Go marshals struct fields in declaration order).
#[derive(serde::Serialize)]
struct JsonResult<'a> {
    location: JsonLocation<'a>,
    package: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fail: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<JsonError<'a>>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skip: bool,
    duration: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    output: Option<String>,
}

#[derive(serde::Serialize)]
struct JsonLocation<'a> {
    file: &'a str,
    row: u32,
    col: u32,
}

/// OPA's `topdown.Error` shape.
#[derive(serde::Serialize)]
struct JsonError<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<JsonLocation<'a>>,
}

fn result_json(r: &TestResult) -> JsonResult<'_> {
    let error = match &r.outcome {
        Outcome::Error(e) => Some(JsonError {
            code: "eval_error",
            message: &e.message,
            location: (e.line > 0).then_some(JsonLocation {
                file: &e.file,
                row: e.line,
                col: e.col,
            }),
        }),
        _ => None,
    };
    let output = (!r.output.is_empty()).then(|| {
        let mut bytes = r.output.join("\n").into_bytes();
        bytes.push(b'\n');
        base64(&bytes)
    });
    JsonResult {
        location: JsonLocation {
            file: &r.case.file,
            row: r.case.line,
            col: r.case.col,
        },
        package: &r.case.package,
        name: &r.case.name,
        fail: matches!(r.outcome, Outcome::Fail(_)),
        error,
        skip: r.outcome == Outcome::Skip,
        duration: u64::try_from(r.duration.as_nanos()).unwrap_or(u64::MAX),
        output,
    }
}

/// Standard base64 with padding (Go's encoding of a `[]byte` in JSON).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_print_as_go_prints_them() {
        let cases = [
            (0, "0s"),
            (512, "512ns"),
            (1_500, "1.5µs"),
            (2_250_000, "2.25ms"),
            (1_234_567, "1.234567ms"),
            (3_000_001_000, "3.000001s"),
            (65_000_000_000, "1m5s"),
            (7_200_000_000_000, "2h0m0s"),
        ];
        for (ns, want) in cases {
            assert_eq!(go_duration(Duration::from_nanos(ns)), want, "{ns}");
        }
    }

    #[test]
    fn base64_matches_go_encoding() {
        assert_eq!(base64(b"fake print output\n"), "ZmFrZSBwcmludCBvdXRwdXQK");
        assert_eq!(base64(b"a"), "YQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b""), "");
    }
}
