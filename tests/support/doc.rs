//! Runs the ```` ```console ```` blocks of a markdown page and compares what they print with what
//! the page shows, so README.md and docs/ cannot go stale. `DOC_RUN=overwrite` (what
//! `scripts/doc-run` sets) rewrites each block whose output differs with what the binary printed
//! now, placeholders applied, and leaves matching blocks as written.
//!
//! A block is a list of `$ COMMAND` lines (a trailing `\` continues a command), each followed by
//! the output it prints (stdout and stderr as one stream, the way a terminal shows them). Each
//! command runs in `bash` in a scratch directory where the repository's `policies/`,
//! `examples/`, `fixtures/` and `deploy/` are linked, with the tested `sluice` first on `PATH`.
//! In the shown output `[..]` stands for any text within a line and a line `...` for any number
//! of lines; what differs between runs is replaced before comparing (see [`redact`]).
//!
//! An HTML comment on the line before the fence changes how a block runs:
//! - `<!-- doc-run session=NAME -->`: the block runs inside a network namespace of its own (root
//!   only), shared by every block of that page naming the same session, so servers bind their
//!   documented default ports without meeting anything else on the machine. A command ending in
//!   `&` starts in the background (stopped with SIGTERM at the end of the page); the lines shown
//!   under it are awaited in its output, in order, before the next command runs.
//! - `<!-- doc-run session=NAME log -->`: a block of log lines, no commands: each must appear, in
//!   order, in the output of the session's background commands (awaited, never timed).
//! - `<!-- doc-run recorded -->`: a recorded run that a test cannot repeat (benchmarks, a
//!   cluster); shown as recorded, not run.
//!
//! Any other fenced block that shows a `$ ` prompt is refused, so a new example cannot skip the
//! run by its fence. Not a markdown parser: fences, comments and `$ ` lines only.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{TempDir, netns::Namespace, repo};

/// How long a background command's shown lines are awaited, and any one command may run.
const DOC_WAIT: Duration = Duration::from_secs(60);

/// How a block is run, from the comment before its fence.
#[derive(Clone, Debug, PartialEq)]
enum Mode {
    Plain,
    Session(String),
    Log(String),
    Recorded,
}

/// One fenced block: where its body is in the page (line indices) and its indentation.
#[derive(Debug)]
struct Block {
    info: String,
    mode: Mode,
    indent: String,
    body: std::ops::Range<usize>,
}

/// One `$ ` command of a block and the lines shown under it.
#[derive(Debug)]
struct Step {
    command: String,
    shown: Vec<String>,
}

fn blocks(lines: &[&str]) -> Vec<Block> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            let indent = lines[i][..lines[i].len() - trimmed.len()].to_string();
            let start = i + 1;
            let mut end = start;
            while end < lines.len() && !lines[end].trim_start().starts_with("```") {
                end += 1;
            }
            let before = if i > 0 { lines[i - 1].trim() } else { "" };
            out.push(Block {
                info: info.trim().to_string(),
                mode: mode(before),
                indent,
                body: start..end,
            });
            i = end + 1;
        } else {
            i += 1;
        }
    }
    out
}

fn mode(comment: &str) -> Mode {
    let Some(words) = comment
        .strip_prefix("<!-- doc-run")
        .and_then(|c| c.strip_suffix("-->"))
    else {
        return Mode::Plain;
    };
    let words: Vec<&str> = words.split_whitespace().collect();
    let session = words
        .iter()
        .find_map(|w| w.strip_prefix("session="))
        .map(str::to_string);
    match (session, words.contains(&"log"), words.contains(&"recorded")) {
        (_, _, true) => Mode::Recorded,
        (Some(s), true, _) => Mode::Log(s),
        (Some(s), false, _) => Mode::Session(s),
        _ => panic!("a doc-run comment this runner does not know: {comment}"),
    }
}

fn steps(body: &[String]) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    let mut continued = false;
    for line in body {
        if continued {
            let step = out.last_mut().expect("a continuation follows a command");
            step.command.push('\n');
            step.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            out.push(Step {
                command: command.to_string(),
                shown: Vec::new(),
            });
            continued = command.ends_with('\\');
        } else if let Some(step) = out.last_mut() {
            step.shown.push(line.clone());
        } else {
            panic!("output before the first `$ ` command: {line}");
        }
    }
    out
}

/// Replaces what differs between runs with a placeholder: timestamps, durations, decision ids,
/// UUIDs, random client ids.
pub fn redact(text: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "[TIME]"),
        (
            r"\((?:\d+(?:\.\d+)?(?:ns|µs|ms|s|m|h))+( ago)?\)",
            "([DUR]$1)",
        ),
        (r"\t\d+\.\d{3}s$", "\t[DUR]"),
        (r"_ms=\d+(\.\d+)?", "_ms=[..]"),
        (r"\b[0-9a-f]{8}-[0-9a-f]{8}\b", "[ID]"),
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "[UUID]",
        ),
        (r"auto-[0-9A-F]{8}-[0-9A-F-]+", "auto-[..]"),
        (r"(?i)^(date|last-modified): .*$", "$1: [DATE]"),
        (r"Python/\d+\.\d+\.\d+", "Python/[..]"),
    ];
    let mut out = text.to_string();
    for (pattern, with) in rules {
        let re = regex::Regex::new(&format!("(?m){pattern}"))
            .unwrap_or_else(|e| panic!("bad regex {pattern}: {e}"));
        out = re.replace_all(&out, *with).into_owned();
    }
    out
}

/// Whether `actual` is what `shown` shows: `[..]` any text within a line, `...` any lines.
fn matches(shown: &[String], actual: &[String]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((first, rest)) if first.trim() == "..." => {
            (0..=actual.len()).any(|skip| matches(rest, &actual[skip..]))
        }
        Some((first, rest)) => {
            !actual.is_empty() && line_matches(first, &actual[0]) && matches(rest, &actual[1..])
        }
    }
}

fn line_matches(shown: &str, actual: &str) -> bool {
    let parts: Vec<&str> = shown.split("[..]").collect();
    if parts.len() == 1 {
        return shown == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &actual[first.len()..];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// Whether every line of `shown` (but `...`) appears in `actual`, in order.
fn appears_in(shown: &[String], actual: &[String]) -> bool {
    let mut at = 0;
    for line in shown.iter().filter(|l| l.trim() != "...") {
        match actual[at..].iter().position(|a| line_matches(line, a)) {
            Some(i) => at += i + 1,
            None => return false,
        }
    }
    true
}

/// A page's scratch directory, its namespaces and the background commands started in them.
struct Page {
    dir: TempDir,
    bin: PathBuf,
    sessions: BTreeMap<String, Namespace>,
    background: BTreeMap<String, Vec<(Child, PathBuf)>>,
}

impl Page {
    fn new(name: &str) -> Self {
        let dir = TempDir::new(&format!("doc-{}", name.replace(['/', '.'], "-")));
        for linked in ["policies", "examples", "fixtures", "deploy"] {
            std::os::unix::fs::symlink(repo(linked), dir.join(linked))
                .unwrap_or_else(|e| panic!("link {linked}: {e}"));
        }
        let bin = Path::new(env!("CARGO_BIN_EXE_sluice"))
            .parent()
            .expect("the binary is in a directory")
            .to_path_buf();
        Self {
            dir,
            bin,
            sessions: BTreeMap::new(),
            background: BTreeMap::new(),
        }
    }

    fn bash(&mut self, session: Option<&str>, command: &str) -> Command {
        let script = format!("exec 2>&1\n{command}");
        let mut c = match session {
            Some(name) => {
                // Unique in the process: pages run in parallel and may share session names.
                static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
                let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let tag = format!("doc{n}{}", &name[..name.len().min(6)]);
                let ns = self
                    .sessions
                    .entry(name.to_string())
                    .or_insert_with(|| Namespace::new(&tag).unwrap_or_else(|e| panic!("{e}")));
                ns.command(&["bash", "-c", &script])
            }
            None => {
                let mut c = Command::new("bash");
                c.args(["-c", &script]);
                c
            }
        };
        let path = format!(
            "{}:{}:/usr/local/sbin:/usr/sbin:/sbin",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        c.current_dir(self.dir.path())
            .env("PATH", path)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null());
        c
    }

    /// Runs one foreground command; what it printed, stdout and stderr interleaved.
    fn run(&mut self, session: Option<&str>, command: &str) -> Vec<String> {
        let mut c = self.bash(session, command);
        let out = c
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .and_then(|child| wait_for(child, DOC_WAIT))
            .unwrap_or_else(|e| panic!("running `{command}`: {e}"));
        lines(&redact(&out))
    }

    /// Starts a background command; waits until it has printed `shown`.
    fn start(&mut self, session: &str, command: &str, shown: &[String]) -> Vec<String> {
        let n = self.background.values().map(Vec::len).sum::<usize>();
        let log = self.dir.join(&format!(".background-{n}.log"));
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("create log: {e}"));
        // `exec`: the SIGTERM at the end reaches the server itself, not a shell around it.
        let command = format!("exec {}", command.trim_end_matches('&').trim_end());
        let mut c = self.bash(Some(session), &command);
        let child = c
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting `{command}`: {e}"));
        self.background
            .entry(session.to_string())
            .or_default()
            .push((child, log.clone()));
        await_lines(shown, || read_lines(&log))
    }

    fn background_output(&self, session: &str) -> Vec<String> {
        self.background
            .get(session)
            .into_iter()
            .flatten()
            .flat_map(|(_, log)| read_lines(log))
            .collect()
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        for (mut child, _) in std::mem::take(&mut self.background).into_values().flatten() {
            // SIGTERM first, as a user's Ctrl-C would: the server's own shutdown runs.
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn wait_for(mut child: Child, timeout: Duration) -> std::io::Result<String> {
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let deadline = Instant::now() + timeout;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other(format!(
                "still running after {timeout:?}"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let buf = reader.join().unwrap_or_default();
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

fn read_lines(path: &Path) -> Vec<String> {
    lines(&redact(&std::fs::read_to_string(path).unwrap_or_default()))
}

/// Polls `output` until `shown` appears in it; the output either way.
fn await_lines(shown: &[String], output: impl Fn() -> Vec<String>) -> Vec<String> {
    let deadline = Instant::now() + DOC_WAIT;
    loop {
        let now = output();
        if appears_in(shown, &now) || Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What one block came to.
enum Outcome {
    Matches,
    /// Differs; the block's body as the binary printed it, for a rewrite.
    Differs(String, Vec<String>),
    /// Wrong in a way a rewrite cannot fix (a log line missing, a fence that does not run).
    Unfixable(String),
}

fn check_block(run: &mut Page, page: &str, block: &Block, lines: &[&str]) -> Outcome {
    let body: Vec<String> = lines[block.body.clone()]
        .iter()
        .map(|l| {
            l.strip_prefix(block.indent.as_str())
                .unwrap_or(l)
                .to_string()
        })
        .collect();
    let at = block.body.start;
    let (expected, actual) = match (&block.mode, block.info.as_str()) {
        (Mode::Recorded, _) => return Outcome::Matches,
        (Mode::Log(session), _) => {
            let actual = await_lines(&body, || run.background_output(session));
            if appears_in(&body, &actual) {
                return Outcome::Matches;
            }
            return Outcome::Unfixable(format!(
                "{page}:{at}: these log lines did not appear:\n{}\n--- the log:\n{}",
                body.join("\n"),
                actual.join("\n")
            ));
        }
        (mode, "console") => {
            let session = match mode {
                Mode::Session(s) => Some(s.as_str()),
                _ => None,
            };
            run_block(run, session, &body)
        }
        (_, info) if body.iter().any(|l| l.starts_with("$ ")) => {
            return Outcome::Unfixable(format!(
                "{page}:{at}: a ```{info} block shows a `$ ` command: make it ```console so it \
                 runs, or mark it <!-- doc-run recorded --> if no test can repeat it"
            ));
        }
        _ => return Outcome::Matches,
    };
    if matches(&expected, &actual) {
        return Outcome::Matches;
    }
    let problem = format!(
        "{page}:{at}: the block shows\n{}\n--- the binary printed\n{}",
        expected.join("\n"),
        actual.join("\n")
    );
    let indented = actual
        .iter()
        .map(|l| format!("{}{l}", block.indent))
        .collect();
    Outcome::Differs(problem, indented)
}

/// Runs every block of `page` (a path in the repository). Fails the test listing every block
/// whose output differs, or with `DOC_RUN=overwrite` rewrites them.
pub fn check_page(page: &str) {
    let path = repo(page);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{page}: {e}"));
    let lines: Vec<&str> = text.lines().collect();
    let overwrite = std::env::var("DOC_RUN").is_ok_and(|v| v == "overwrite");
    let needs_root = blocks(&lines)
        .iter()
        .any(|b| matches!(b.mode, Mode::Session(_) | Mode::Log(_)));
    if needs_root && !super::netns::is_root() {
        eprintln!("{page}: skipped: its server blocks run in network namespaces (root only)");
        return;
    }
    let mut run = Page::new(page);
    let mut replaced: Vec<(std::ops::Range<usize>, Vec<String>)> = Vec::new();
    let mut problems = Vec::new();
    let mut unfixable = 0;
    for block in blocks(&lines) {
        match check_block(&mut run, page, &block, &lines) {
            Outcome::Matches => {}
            Outcome::Differs(problem, body) => {
                problems.push(problem);
                replaced.push((block.body.clone(), body));
            }
            Outcome::Unfixable(problem) => {
                unfixable += 1;
                problems.push(problem);
            }
        }
    }
    drop(run);
    if overwrite && !replaced.is_empty() {
        write_page(&path, &lines, replaced, text.ends_with('\n'));
        eprintln!("{page}: rewrote {} block(s)", problems.len() - unfixable);
        if unfixable == 0 {
            return;
        }
    }
    assert!(
        problems.is_empty(),
        "{} block(s) of {page} no longer match the binary (rerun scripts/doc-run to rewrite \
         them, then review the diff):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

/// Runs a block's commands in order: the block as shown (with each step's output as the doc
/// has it when it matched, so placeholders survive a rewrite) and as it ran.
fn run_block(run: &mut Page, session: Option<&str>, body: &[String]) -> (Vec<String>, Vec<String>) {
    let mut expected = Vec::new();
    let mut actual = Vec::new();
    for step in steps(body) {
        // Each command has a shell of its own: `$?` of the previous one is not there.
        assert!(
            step.command.trim() != "echo $?",
            "`$ echo $?` on its own line: write `COMMAND; echo \"exit $?\"` instead"
        );
        let printed = match session {
            Some(s) if step.command.trim_end().ends_with('&') => {
                let all = run.start(s, &step.command, &step.shown);
                if appears_in(&step.shown, &all) {
                    step.shown.clone()
                } else {
                    all
                }
            }
            _ => run.run(session, &step.command),
        };
        // Blank lines after a command's output only space the page out.
        let trail = step.shown.iter().rev().take_while(|l| l.is_empty()).count();
        let shown = &step.shown[..step.shown.len() - trail];
        let kept = if matches(shown, &printed) {
            step.shown.clone()
        } else {
            printed
                .into_iter()
                .chain(vec![String::new(); trail])
                .collect()
        };
        for (i, line) in step.command.lines().enumerate() {
            let line = if i == 0 {
                format!("$ {line}")
            } else {
                line.to_string()
            };
            expected.push(line.clone());
            actual.push(line);
        }
        expected.extend(step.shown);
        actual.extend(kept);
    }
    (expected, actual)
}

fn write_page(
    path: &Path,
    lines: &[&str],
    replaced: Vec<(std::ops::Range<usize>, Vec<String>)>,
    newline: bool,
) {
    let mut out: Vec<String> = Vec::new();
    let mut at = 0;
    for (range, with) in replaced {
        out.extend(lines[at..range.start].iter().map(|l| l.to_string()));
        out.extend(with);
        at = range.end;
    }
    out.extend(lines[at..].iter().map(|l| l.to_string()));
    let mut text = out.join("\n");
    if newline {
        text.push('\n');
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
