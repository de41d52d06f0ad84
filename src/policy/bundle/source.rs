//! Policy sources and activation: watched `policy.paths`, an OPA bundle from a file or a
//! polled HTTP(S) server, the persisted copy of the last activated bundle, and the fallback
//! when there is none (`policy.on_missing_policy`).
//!
//! Every change goes through [`Activator`]: the new generation is read, verified and compiled
//! completely ([`Decider::reload`]) before it replaces the old one; on any error the old
//! generation keeps serving and the error is counted, recorded in [`PolicyStatus`] and logged
//! once (again only when the reason changes).
//!
//! Not here: HTTP details (`fetch.rs`), bundle format and signatures (`bundle.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use super::archive::read_bundle;
use super::error::BundleError;
use super::fetch::{BundleServer, Fetched, next_delay};
use super::persist::{load_persisted, persist};
use super::signature::VerificationKey;
use super::status::{Origin, PolicyStatus};
use crate::config::{OnMissingPolicy, PolicyConfig};
use crate::policy::loader::{Module, PolicySet};
use crate::policy::{Decider, DeciderOptions};

/// How often watched files are looked at; a change is activated well within a second.
pub const WATCH_INTERVAL: Duration = Duration::from_millis(250);
/// A change must hold still this long before it is loaded (editors write in several steps).
pub const DEBOUNCE: Duration = Duration::from_millis(100);

enum Kind {
    Embedded,
    Paths { paths: Vec<PathBuf>, watch: bool },
    File(PathBuf),
    Server(BundleServer),
}

/// The policy sources of one gateway, from the `policy` section of the config.
pub struct PolicySources {
    kind: Kind,
    act: ActivatorConfig,
    on_missing: OnMissingPolicy,
    decision: String,
    poll_min: Duration,
    poll_max: Duration,
}

#[derive(Clone)]
struct ActivatorConfig {
    key: Option<VerificationKey>,
    persist_dir: Option<PathBuf>,
    max_size: u64,
    rego_v0: bool,
}

/// What serves first, chosen without waiting for the network.
pub struct Startup {
    pub policy: PolicySet,
    pub revision: String,
    pub origin: Origin,
    /// ETag of the persisted bundle, so the first poll can be answered `304`.
    etag: Option<String>,
    /// Why the configured source could not serve (recorded in the status).
    pub problem: Option<String>,
    /// What watched files looked like before they were loaded, so that a change made while
    /// the gateway starts is not missed.
    seen: Option<SnapshotResult>,
}

type SnapshotResult = Result<Vec<(PathBuf, u64, Option<SystemTime>)>, String>;

impl PolicySources {
    /// Resolves the config: reads the public key, checks the bundle URL and CA.
    pub fn from_config(cfg: &PolicyConfig) -> Result<Self, BundleError> {
        let mut act = ActivatorConfig {
            key: None,
            persist_dir: None,
            max_size: 32 * 1024 * 1024,
            rego_v0: cfg.v0_compatible,
        };
        let (mut poll_min, mut poll_max) = (Duration::from_secs(10), Duration::from_secs(30));
        let kind = if let Some(b) = &cfg.bundle {
            act.max_size = b.max_size.get();
            act.persist_dir = b.persist_dir.clone();
            (poll_min, poll_max) = (b.poll_min.get(), b.poll_max.get());
            if b.require_signature && b.public_key.is_none() {
                return Err(BundleError::Setting(
                    "policy.bundle.require_signature: true needs policy.bundle.public_key, the \
                     PEM key the bundles are signed with"
                        .into(),
                ));
            }
            if let Some(p) = &b.public_key {
                let pem = std::fs::read(p).map_err(|e| {
                    BundleError::Setting(format!("policy.bundle.public_key: {}: {e}", p.display()))
                })?;
                act.key = Some(
                    VerificationKey::from_pem(&pem, b.key_id.clone(), b.scope.clone()).map_err(
                        |e| {
                            BundleError::Setting(format!(
                                "policy.bundle.public_key: {}: {e}",
                                p.display()
                            ))
                        },
                    )?,
                );
            }
            match (&b.url, &b.file) {
                (Some(url), _) => Kind::Server(BundleServer::new(
                    url,
                    b.ca.as_deref(),
                    b.timeout.get(),
                    b.max_size.get(),
                    b.token_file.as_deref().map(read_token).transpose()?,
                )?),
                (None, Some(file)) => Kind::File(file.clone()),
                (None, None) => {
                    return Err(BundleError::Setting(
                        "policy.bundle: needs `url` or `file`".into(),
                    ));
                }
            }
        } else if cfg.paths.is_empty() {
            Kind::Embedded
        } else {
            Kind::Paths {
                paths: cfg.paths.clone(),
                watch: cfg.watch,
            }
        };
        Ok(Self {
            kind,
            act,
            on_missing: cfg.on_missing_policy,
            decision: cfg.decision.clone(),
            poll_min,
            poll_max,
        })
    }

    /// A one-line description for logs and the status document.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Embedded => "embedded policies".into(),
            Kind::Paths { paths, .. } => format!(
                "policy.paths {}",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Kind::File(f) => format!("bundle file {}", f.display()),
            Kind::Server(s) => format!("bundle {}", s.url()),
        }
    }

    pub fn is_bundle(&self) -> bool {
        matches!(self.kind, Kind::File(_) | Kind::Server(_))
    }

    /// The first generation, as `sluice serve` starts it: the initial policy compiled into a
    /// Decider, and a status recording it (and why the configured source could not serve).
    pub fn open(
        &self,
        opts: DeciderOptions,
    ) -> Result<(Startup, Decider, Arc<PolicyStatus>), BundleError> {
        let startup = self.initial()?;
        let decider = Decider::with_revision(&startup.policy, opts, &startup.revision)
            .map_err(|e| BundleError::Startup(e.to_string()))?;
        let status = Arc::new(PolicyStatus::new(self.describe(), self.is_bundle()));
        status.started(startup.origin, &startup.revision, decider.generation());
        if let Some(problem) = &startup.problem {
            status.failed(problem);
        }
        Ok((startup, decider, status))
    }

    /// The first policy, at once: `policy.paths` (an error here is a startup error), the
    /// bundle file (unusable: the persisted bundle, else a startup error), else for a server
    /// the persisted bundle, else `on_missing_policy`. A bundle server is
    /// never waited for; it is polled once [`PolicySources::start`] runs.
    pub fn initial(&self) -> Result<Startup, BundleError> {
        let seen = match &self.kind {
            Kind::Paths { paths, watch: true } => Some(snapshot(paths)),
            Kind::File(f) => Some(snapshot(std::slice::from_ref(f))),
            _ => None,
        };
        let startup = |policy, revision: String, origin, problem| Startup {
            policy,
            revision,
            origin,
            etag: None,
            problem,
            seen: seen.clone(),
        };
        match &self.kind {
            Kind::Embedded => {
                let set = PolicySet::embedded();
                let rev = content_revision(&set);
                Ok(startup(set, rev, Origin::Embedded, None))
            }
            Kind::Paths { paths, .. } => {
                let set = PolicySet::load(paths, self.act.rego_v0)
                    .map_err(|e| BundleError::Disk(e.to_string()))?;
                let rev = content_revision(&set);
                Ok(startup(set, rev, Origin::Paths, None))
            }
            Kind::File(file) => {
                let problem = match std::fs::read(file) {
                    Ok(bytes) => match read_bundle(
                        &bytes,
                        self.act.max_size,
                        self.act.key.as_ref(),
                        self.act.rego_v0,
                    ) {
                        Ok(b) => return Ok(startup(b.policy, b.revision, Origin::Bundle, None)),
                        Err(e) => BundleError::Disk(format!("{}: {e}", file.display())),
                    },
                    Err(e) => BundleError::Disk(format!("{}: {e}", file.display())),
                };
                // Fail closed: the configured file is the policy. Only a persisted bundle (the
                // documented offline fallback) may stand in for it; serve then warns.
                let mut s = self.persisted_or_missing(Some(problem.to_string()));
                if s.origin != Origin::Persisted {
                    return Err(BundleError::Disk(format!(
                        "policy.bundle.file: {problem}; name a readable bundle (.tar.gz), or set \
                         policy.bundle.persist_dir holding a persisted bundle to serve meanwhile"
                    )));
                }
                s.seen = seen;
                Ok(s)
            }
            Kind::Server(_) => Ok(self.persisted_or_missing(None)),
        }
    }

    fn persisted_or_missing(&self, problem: Option<String>) -> Startup {
        let mut problem = problem;
        if let Some(dir) = &self.act.persist_dir {
            match load_persisted(
                dir,
                self.act.max_size,
                self.act.key.as_ref(),
                self.act.rego_v0,
            ) {
                Ok(Some((b, etag))) => {
                    return Startup {
                        policy: b.policy,
                        revision: b.revision,
                        origin: Origin::Persisted,
                        etag,
                        problem,
                        seen: None,
                    };
                }
                Ok(None) => {}
                Err(e) => problem = Some(e.to_string()),
            }
        }
        let (policy, origin) = match self.on_missing {
            OnMissingPolicy::Embedded => (PolicySet::embedded(), Origin::Embedded),
            OnMissingPolicy::DenyExports => {
                (deny_exports_policy(&self.decision), Origin::DenyExports)
            }
        };
        Startup {
            policy,
            revision: String::new(),
            origin,
            etag: None,
            problem,
            seen: None,
        }
    }

    /// Starts watching or polling (nothing for the embedded set or unwatched paths). Watchers
    /// run on their own threads; the bundle server is polled on the current tokio runtime.
    /// Stops when the returned handle is dropped.
    pub fn start(
        self,
        decider: Decider,
        status: Arc<PolicyStatus>,
        startup: &Startup,
    ) -> Result<SourceHandle, BundleError> {
        let stop = Arc::new(AtomicBool::new(false));
        let act = Activator {
            decider,
            status,
            cfg: self.act.clone(),
            source: self.describe(),
        };
        let mut handle = SourceHandle {
            stop: stop.clone(),
            task: None,
            thread: None,
        };
        match self.kind {
            Kind::Embedded | Kind::Paths { watch: false, .. } => {}
            Kind::Paths { paths, watch: true } => {
                let rego_v0 = self.act.rego_v0;
                handle.thread = Some(spawn_watch(
                    "policy-watch",
                    stop,
                    paths.clone(),
                    startup.seen.clone(),
                    move |snap| match snap {
                        Err(e) => act.fail(e),
                        Ok(_) => match PolicySet::load(&paths, rego_v0) {
                            Err(e) => act.fail(&e.to_string()),
                            Ok(set) => {
                                let rev = content_revision(&set);
                                act.activate(&set, &rev, Origin::Paths);
                            }
                        },
                    },
                )?);
            }
            Kind::File(file) => {
                handle.thread = Some(spawn_watch(
                    "bundle-watch",
                    stop,
                    vec![file.clone()],
                    startup.seen.clone(),
                    move |snap| match snap.map_err(str::to_string).and_then(|_| {
                        std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))
                    }) {
                        Err(e) => act.fail(&e),
                        Ok(bytes) => {
                            let _ = act.activate_bundle(&bytes, None);
                        }
                    },
                )?);
            }
            Kind::Server(server) => {
                let rt = tokio::runtime::Handle::try_current().map_err(|_| {
                    BundleError::Startup(
                        "polling a bundle server needs a tokio runtime".to_string(),
                    )
                })?;
                let etag = startup.etag.clone();
                let (min, max) = (self.poll_min, self.poll_max);
                handle.task = Some(rt.spawn(poll_server(server, act, etag, min, max)));
            }
        }
        Ok(handle)
    }
}

/// The bearer token in `policy.bundle.token_file` (a mounted Secret): its first line.
fn read_token(path: &Path) -> Result<String, BundleError> {
    let setting = |why: String| {
        BundleError::Setting(format!(
            "policy.bundle.token_file: {}: {why}",
            path.display()
        ))
    };
    let text = std::fs::read_to_string(path).map_err(|e| setting(e.to_string()))?;
    let token = text.lines().next().unwrap_or_default().trim();
    if token.is_empty() {
        return Err(setting("the file is empty".into()));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(setting(
            "the token must be printable ASCII without spaces".into(),
        ));
    }
    Ok(token.to_string())
}

/// Stops the watcher thread or poller task when dropped.
pub struct SourceHandle {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for SourceHandle {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Makes new generations live, or records why not.
#[derive(Clone)]
struct Activator {
    decider: Decider,
    status: Arc<PolicyStatus>,
    cfg: ActivatorConfig,
    source: String,
}

impl Activator {
    fn activate(&self, set: &PolicySet, revision: &str, origin: Origin) -> bool {
        match self.decider.reload(set, revision) {
            Ok(generation) => {
                self.status.activated(origin, revision, generation);
                tracing::info!(source = %self.source, revision, generation, "policy activated");
                true
            }
            Err(e) => {
                self.fail(&format!("{}: {e}", self.source));
                false
            }
        }
    }

    /// Reads, verifies, compiles and activates a bundle, then persists it.
    fn activate_bundle(&self, bytes: &[u8], etag: Option<&str>) -> bool {
        let bundle = match read_bundle(
            bytes,
            self.cfg.max_size,
            self.cfg.key.as_ref(),
            self.cfg.rego_v0,
        ) {
            Ok(b) => b,
            Err(e) => {
                self.fail(&format!("{}: {e}", self.source));
                return false;
            }
        };
        if !self.activate(&bundle.policy, &bundle.revision, Origin::Bundle) {
            return false;
        }
        if let Some(dir) = &self.cfg.persist_dir {
            if let Err(e) = persist(dir, bytes, &bundle.revision, etag) {
                // Serving goes on; only a restart without the server is affected.
                self.fail(&format!("persisting bundle to {}: {e}", dir.display()));
            }
        }
        true
    }

    fn fail(&self, message: &str) {
        if self.status.failed(message) {
            tracing::warn!(
                revision = %self.decider.revision(),
                "policy not activated, the previous generation keeps enforcing: {message}"
            );
        }
    }
}

async fn poll_server(
    server: BundleServer,
    act: Activator,
    mut etag: Option<String>,
    min: Duration,
    max: Duration,
) {
    let mut failures: u32 = 0;
    let mut last: Option<Vec<u8>> = None;
    loop {
        match server.fetch(etag.as_deref()).await {
            Ok(Fetched::NotModified) => {
                act.status.requested(true, false);
                act.status.not_modified.fetch_add(1, Ordering::Relaxed);
                failures = 0;
            }
            Ok(Fetched::Bundle { bytes, etag: tag }) => {
                act.status.requested(true, true);
                // A server without ETags sends the same bytes every time: not a new generation.
                let digest = ring::digest::digest(&ring::digest::SHA256, &bytes);
                if last.as_deref() == Some(digest.as_ref()) {
                    act.status.not_modified.fetch_add(1, Ordering::Relaxed);
                    failures = 0;
                    tokio::time::sleep(next_delay(min, max, failures)).await;
                    continue;
                }
                let a = act.clone();
                let t = tag.clone();
                let ok =
                    tokio::task::spawn_blocking(move || a.activate_bundle(&bytes, t.as_deref()))
                        .await
                        .unwrap_or(false);
                if ok {
                    etag = tag;
                    last = Some(digest.as_ref().to_vec());
                    failures = 0;
                } else {
                    failures = failures.saturating_add(1);
                }
            }
            Err(e) => {
                act.status.requested(false, false);
                act.fail(&e.to_string());
                failures = failures.saturating_add(1);
            }
        }
        tokio::time::sleep(next_delay(min, max, failures)).await;
    }
}

type Snapshot<'a> = Result<&'a [(PathBuf, u64, Option<SystemTime>)], &'a str>;

/// Polls `paths` every [`WATCH_INTERVAL`]; calls `on_change` once a change has held still
/// for [`DEBOUNCE`].
fn spawn_watch<F>(
    name: &str,
    stop: Arc<AtomicBool>,
    paths: Vec<PathBuf>,
    seen: Option<SnapshotResult>,
    mut on_change: F,
) -> Result<std::thread::JoinHandle<()>, BundleError>
where
    F: FnMut(Snapshot<'_>) + Send + 'static,
{
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut seen = seen.unwrap_or_else(|| snapshot(&paths));
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(WATCH_INTERVAL);
                let mut now = snapshot(&paths);
                if now == seen {
                    continue;
                }
                loop {
                    std::thread::sleep(DEBOUNCE);
                    let again = snapshot(&paths);
                    if again == now {
                        break;
                    }
                    now = again;
                }
                on_change(now.as_deref().map_err(String::as_str));
                seen = now;
            }
        })
        .map_err(|e| BundleError::Startup(format!("cannot start the policy watcher: {e}")))
}

/// Every file and directory under `paths` with size and modification time.
fn snapshot(paths: &[PathBuf]) -> SnapshotResult {
    fn walk(p: &Path, out: &mut Vec<(PathBuf, u64, Option<SystemTime>)>) -> Result<(), String> {
        let meta = std::fs::metadata(p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                format!("{}: no such file or directory", p.display())
            } else {
                format!("{}: {e}", p.display())
            }
        })?;
        out.push((p.to_path_buf(), meta.len(), meta.modified().ok()));
        if meta.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| format!("{}: {e}", p.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for e in entries {
                walk(&e, out)?;
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for p in paths {
        walk(p, &mut out)?;
    }
    Ok(out)
}

/// A revision for policies from `policy.paths`: a digest of their content.
pub fn content_revision(set: &PolicySet) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for m in &set.modules {
        ctx.update(m.path.as_bytes());
        ctx.update(&[0]);
        ctx.update(m.text.as_bytes());
        ctx.update(&[0]);
    }
    ctx.update(set.data.to_string().as_bytes());
    let digest = ctx.finish();
    let hex: String = digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The `on_missing_policy: deny_exports` policy, in the configured decision package: local
/// traffic passes, exports are denied with a reason saying why.
pub fn deny_exports_policy(decision: &str) -> PolicySet {
    let package = decision.trim_start_matches("data.").trim_end_matches('.');
    let text = format!(
        "package {package}\n\n\
         default allow := false\n\n\
         allow if input.action != \"export\"\n\n\
         deny contains \"no policy bundle activated yet: exports are denied (policy.on_missing_policy: deny_exports)\" if {{\n\
         \tinput.action == \"export\"\n}}\n"
    );
    PolicySet {
        modules: vec![Module {
            path: "builtin:/deny_exports.rego".into(),
            text,
        }],
        data: serde_json::Value::Object(Default::default()),
        rego_v0: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_exports_policy_compiles_in_any_decision_package() {
        for d in ["data.manufacturing.smart", "data.plant.gate"] {
            let set = deny_exports_policy(d);
            assert!(set.engine().is_ok(), "{d}");
        }
    }
}
