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

/// A policy in its own directory, and the path `check` prints for it.
fn policy_file(dir: &support::TempDir, name: &str, text: &str) -> String {
    dir.file(&format!("{name}.rego"), text)
        .display()
        .to_string()
}

#[test]
fn check_refuses_what_opa_check_refuses_with_opas_codes() {
    let dir = support::TempDir::new("check-compile");
    let cases = [
        (
            "undefined",
            "package t\n\nallow if { is_local(input.host) }\n",
            "3:12: rego_type_error: undefined function is_local",
        ),
        (
            "arity",
            "package t\n\nallow if { startswith(input.host) }\n",
            "3:12: rego_type_error: startswith: arity mismatch (have 1 argument, want 2)",
        ),
        (
            "user_arity",
            "package t\n\nlocal(h) := endswith(h, \".local\")\n\nallow if { local(input.host, 1, 2) }\n",
            "5:12: rego_type_error: function data.t.local has arity 1, got 3 arguments",
        ),
        (
            "unsafe_body",
            "package t\n\nallow if { x > 1 }\n",
            "3:12: rego_unsafe_var_error: var x is unsafe",
        ),
        (
            "unsafe_head",
            "package t\n\ndeny contains msg if { input.host == \"cloud\" }\n",
            "3:15: rego_unsafe_var_error: var msg is unsafe",
        ),
    ];
    for (name, text, error) in cases {
        let file = policy_file(&dir, name, text);
        assert_one_line_error(&sluice(&["check", &file]), &format!("{file}:{error}"));
    }
}

#[test]
fn check_accepts_what_opa_accepts() {
    let dir = support::TempDir::new("check-compile");
    // A reference into a package that does not exist is undefined, not an error (OPA: data can
    // arrive at run time); an output argument and print's any number of arguments are fine.
    let text = "package t\n\nallow if {\n\tnot data.nowhere.x\n\tcount([1], n)\n\tn == 1\n\tprint(n, 2, 3)\n}\n";
    let file = policy_file(&dir, "good", text);
    let out = sluice(&["check", &file]);
    assert_eq!((out.stderr.as_str(), out.code), ("", 0));
}

#[test]
fn check_strict_refuses_unused_imports_assignments_and_arguments() {
    let dir = support::TempDir::new("check-strict");
    let text = "package t\n\nimport data.site\n\nlocal(h, port) := endswith(h, \".local\")\n\nallow if {\n\tx := input.host\n\tlocal(input.host, 1)\n}\n";
    let file = policy_file(&dir, "unused", text);
    let out = sluice(&["check", &file]);
    assert_eq!((out.stderr.as_str(), out.code), ("", 0), "not strict");
    let out = sluice(&["check", "--strict", &file]);
    assert_eq!(
        out.stderr,
        format!(
            "{file}:3:1: rego_compile_error: import data.site unused\n\
             {file}:5:10: rego_compile_error: unused argument port. (hint: use _ (wildcard variable) instead)\n\
             {file}:8:5: rego_compile_error: assigned var x unused\n"
        )
    );
    assert_eq!(out.code, 1);
    assert_eq!(sluice(&["check", "-S", &file]).code, 1);
}

#[test]
fn what_check_refuses_serve_test_and_eval_refuse_with_the_same_line() {
    let dir = support::TempDir::new("check-serve");
    let file = policy_file(
        &dir,
        "policy",
        "package manufacturing.smart\n\nallow if { is_local(input.destination) }\n",
    );
    let error = format!("{file}:3:12: rego_type_error: undefined function is_local");
    assert_one_line_error(&sluice(&["check", &file]), &error);
    assert_one_line_error(&sluice(&["test", &file]), &error);
    assert_one_line_error(&sluice(&["eval", "-d", &file, "data"]), &error);
    let config = dir.file(
        "sluice.yaml",
        &format!("policy:\n  paths: [{file}]\nhttp: null\nadmin:\n  listen: 127.0.0.1:0\n"),
    );
    let out = sluice(&["serve", "-c", &config.display().to_string()]);
    assert_one_line_error(&out, &format!("sluice serve: {error}"));
}
