//! Configuration mistakes stop `sluice serve` and `sluice webhook` at start: exit 1 and one
//! line naming the file, the key, the value and what would be valid. Also that the humane forms
//! are taken (`localhost:PORT` for a listener).

mod support;

use support::*;

/// `sluice <command> -c FILE` with `yaml` as the file; returns the run and the file's path.
fn run_with(command: &str, yaml: &str) -> (Ran, String) {
    let dir = TempDir::new("mistakes");
    let path = dir.file("sluice.yaml", yaml).display().to_string();
    let out = cli::sluice(&[command, "-c", &path]);
    (out, path)
}

#[track_caller]
fn refused(command: &str, yaml: &str, line: &str) {
    let (out, path) = run_with(command, yaml);
    assert_one_line_error(&out, &format!("sluice {command}: {path}: {line}"));
}

#[test]
fn a_misspelled_log_level_is_refused_with_the_valid_levels() {
    for level in ["warning", "verbose"] {
        for command in ["serve", "webhook"] {
            refused(
                command,
                &format!("log: {{level: {level}}}\n"),
                &format!(
                    "log.level: \"{level}\" is not a log level; use trace, debug, info, warn, \
                     error, or a tracing filter like sluice=debug,warn"
                ),
            );
        }
    }
}

#[test]
fn a_bare_number_for_a_duration_gets_a_unit_hint() {
    refused(
        "serve",
        "http: {connect_timeout: 5}\n",
        "http.connect_timeout: 5 is not a duration; write it with a unit, like 5s or 5ms",
    );
}

#[test]
fn a_duration_with_a_space_is_refused() {
    refused(
        "serve",
        "cache: {ttl: 5 m}\n",
        "cache.ttl: invalid duration \"5 m\": no space between the number and the unit, like 5m",
    );
}

#[test]
fn a_listen_address_that_is_not_ip_port_names_the_value_and_the_form() {
    refused(
        "serve",
        "http: {listen: \"plant-gw:3128\"}\n",
        "http.listen: \"plant-gw:3128\" is not a listen address; write IP:PORT, like \
         127.0.0.1:3128 or [::1]:3128",
    );
    refused(
        "webhook",
        "webhook: {listen: \":8443x\"}\n",
        "webhook.listen: \":8443x\": port must be a number from 1 to 65535",
    );
}

#[test]
fn localhost_port_is_a_loopback_listener() {
    let port = free_port();
    let sluice = Sluice::serve(&format!(
        "http: {{listen: \"localhost:{port}\"}}\nadmin: {{listen: \"localhost:{}\"}}\n",
        free_port()
    ));
    assert_eq!(sluice.proxy().to_string(), format!("127.0.0.1:{port}"));
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port));
    assert!(stream.as_mut().is_ok(), "connect to 127.0.0.1:{port}");
}

#[test]
fn a_missing_bundle_file_with_nothing_persisted_stops_serve() {
    refused_without_file(
        "serve",
        "admin: {listen: 127.0.0.1:0}\nhttp: null\npolicy:\n  bundle: {file: /nonexistent/plant.tar.gz}\n",
        "policy.bundle.file: /nonexistent/plant.tar.gz: No such file or directory (os error 2); \
         name a readable bundle (.tar.gz), or set policy.bundle.persist_dir holding a persisted \
         bundle to serve meanwhile",
    );
}

/// As [`refused`], for errors found after the file was read (no file name in front).
#[track_caller]
fn refused_without_file(command: &str, yaml: &str, line: &str) {
    let (out, _) = run_with(command, yaml);
    assert_one_line_error(&out, &format!("sluice {command}: {line}"));
}

/// The async worker threads of process `pid` (tokio names them `tokio-rt-worker`).
fn worker_threads(pid: u32) -> usize {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/task: {e}"));
    tasks
        .filter_map(|t| t.ok())
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|comm| comm.trim() == "tokio-rt-worker")
        .count()
}

#[test]
fn runtime_workers_sets_the_worker_threads_and_null_means_one_per_core() {
    let sluice = Sluice::start("runtime: {workers: 3}\n");
    assert_eq!(worker_threads(sluice.pid()), 3);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let sluice = Sluice::start("runtime: {workers: null}\n");
    assert_eq!(worker_threads(sluice.pid()), cores);
}
