//! A reader that goes away (`sluice test -v | head`, `sluice eval ... | head`) ends the command
//! quietly: exit 0, nothing on stderr (it used to panic with "failed printing to stdout: Broken pipe" and exit 101/1).

use std::process::{Command, Stdio};

#[test]
fn test_verbose_into_a_closed_pipe_exits_0_without_an_error_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["test", "-v", "policies"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sluice test: {e}"));
    // Closing the read end before sluice has compiled anything: every line it prints meets a
    // broken pipe.
    drop(child.stdout.take());
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("sluice test: {e}"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "stderr");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn eval_into_a_closed_pipe_exits_0_without_an_error_line() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["eval", "-d", "policies", "data.manufacturing"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sluice eval: {e}"));
    drop(child.stdout.take());
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("sluice eval: {e}"));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "stderr");
    assert_eq!(out.status.code(), Some(0));
}
