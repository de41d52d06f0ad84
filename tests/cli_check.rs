//! `sluice check` and the load errors every policy command shares: one line naming the file
//! (and position) on stderr, exit code 1, never a panic.

mod support;

use support::{assert_one_line_error, sluice};

#[test]
fn check_prints_nothing_for_good_policies() {
    for path in [
        "policies",
        "policies/manufacturing/smart.rego",
        "fixtures/policy/mixed",
    ] {
        let out = sluice(&["check", path]);
        assert_eq!(
            (out.stdout.as_str(), out.stderr.as_str(), out.code),
            ("", "", 0),
            "{path}"
        );
    }
}

#[test]
fn check_reports_every_file_with_a_syntax_error_one_per_line() {
    let out = sluice(&[
        "check",
        "fixtures/policy/bad/syntax",
        "fixtures/policy/bad/import",
        "policies",
    ]);
    assert_eq!(
        out.stderr,
        "fixtures/policy/bad/syntax/policy.rego:7:1: expecting expression\n\
         fixtures/policy/bad/import/policy.rego:4:8: import path must begin with one of: {data, future, input, rego}\n"
    );
    assert_eq!(out.stdout, "");
    assert_eq!(out.code, 1);
}

const BAD: [(&str, &str); 6] = [
    (
        "fixtures/policy/bad/syntax",
        "fixtures/policy/bad/syntax/policy.rego:7:1: expecting expression",
    ),
    (
        "fixtures/policy/bad/import",
        "fixtures/policy/bad/import/policy.rego:4:8: import path must begin with one of: {data, future, input, rego}",
    ),
    (
        "fixtures/policy/bad/conflict",
        "fixtures/policy/bad/conflict/line/data.json: data conflict at data.line.limit (also defined by fixtures/policy/bad/conflict/data.json)",
    ),
    (
        "fixtures/policy/bad/nonutf8",
        "fixtures/policy/bad/nonutf8/policy.rego:3:6: file is not valid UTF-8",
    ),
    (
        "fixtures/policy/bad/baddata",
        "fixtures/policy/bad/baddata/data.json:1:26: trailing comma",
    ),
    (
        "fixtures/policy/absent",
        "fixtures/policy/absent: no such file or directory",
    ),
];

#[test]
fn check_bad_input_is_one_line_with_file_and_position() {
    for (path, expected) in BAD {
        assert_one_line_error(&sluice(&["check", path]), expected);
    }
}

#[test]
fn test_bad_input_is_one_line_with_file_and_position() {
    for (path, expected) in BAD {
        assert_one_line_error(&sluice(&["test", path]), expected);
    }
}

#[test]
fn eval_bad_input_is_one_line_with_file_and_position() {
    for (path, expected) in BAD {
        assert_one_line_error(&sluice(&["eval", "-d", path, "data"]), expected);
    }
}

#[test]
fn invalid_run_regex_and_usage_errors_exit_one() {
    let out = sluice(&["test", "--run", "(", "policies"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.starts_with("--run: invalid regular expression:"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);

    let out = sluice(&["test", "--timeout", "soon", "policies"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("invalid duration"), "{}", out.stderr);

    let out = sluice(&["eval", "--fail", "--fail-defined", "input"]);
    assert_eq!(out.code, 1);
}
