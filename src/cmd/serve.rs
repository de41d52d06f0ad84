//! `sluice serve`: the gateway process. Reads the config, binds every listener (so a port in
//! use fails fast, as one line), compiles the policies, starts the HTTP forward proxy, the MQTT
//! proxies and the admin endpoint, reports ready, and on SIGTERM/SIGINT stops accepting, lets
//! open requests finish within `http.shutdown_grace`, and exits 0.
//!
//! Not here: what each listener does (proxy/http, proxy/mqtt, admin.rs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::admin::{self, Admin};
use crate::config::{Config, LogFormat};
use crate::drain::{self, Watch};
use crate::policy::bundle::source::PolicySources;
use crate::policy::bundle::status::Origin;
use crate::policy::{DeciderOptions, Source};
use crate::proxy::Gateway;
use crate::proxy::http::{self, HttpProxy};
use crate::site::Site;
use crate::telemetry::decision_log::DecisionLog;

const SERVE_HELP: &str = "\
Without -c, the embedded defaults serve: the HTTP forward proxy on 127.0.0.1:3128, the admin
endpoint on 127.0.0.1:9901 (/metrics, /healthz, /readyz, OPA's /v1/data), the shipped policies
(data.manufacturing.smart). Point processors at the proxy:

  HTTP_PROXY=http://127.0.0.1:3128 HTTPS_PROXY=http://127.0.0.1:3128

Every request and CONNECT tunnel is judged before a byte (or a DNS lookup) leaves; a refusal
is 403 with the policy's reasons and a decision id that is also in the log.
SIGTERM/SIGINT: stop accepting, finish open requests within http.shutdown_grace, exit 0.
Exit codes: 0 after a clean shutdown, 1 for a config, policy or listen error.";

/// The gateway's command line.
#[derive(Debug, clap::Args)]
#[command(after_long_help = SERVE_HELP)]
pub struct ServeArgs {
    /// YAML config file; without it the embedded defaults serve
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format (overrides log.format): text or json
    #[arg(long = "log-format", value_name = "FORMAT", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!("{other:?} is not a log format (text, json)")),
    }
}

pub fn run(args: ServeArgs) -> i32 {
    let started = Instant::now();
    let config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sluice serve: {e}");
                return 1;
            }
        },
        // The embedded defaults are the empty file's (Config::default() has no `http`).
        None => match Config::parse("") {
            Ok(c) => c,
            Err(e) => {
                eprintln!("sluice serve: {e}");
                return 1;
            }
        },
    };
    let format = args.log_format.unwrap_or(config.log.format);
    let (_log, runtime) =
        match super::start_process("serve", format, &config.log.level, config.runtime.workers) {
            Ok(started) => started,
            Err(code) => return code,
        };
    match runtime.block_on(serve(config, started)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sluice serve: {e}");
            1
        }
    }
}

async fn bind(addr: SocketAddr, key: &str) -> Result<TcpListener, String> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr} ({key}): {e}"))
}

async fn serve(config: Config, started: Instant) -> Result<(), String> {
    // Bind first: a port in use is the most common start failure and needs no policy.
    let admin_listener = bind(config.admin.listen, "admin.listen").await?;
    let http_listener = match &config.http {
        Some(h) => Some(bind(h.listen, "http.listen").await?),
        None => None,
    };
    // Two drains: the data path's, then the admin's, so that probes see 503 while open
    // requests finish.
    let (admin_drain, admin_watch) = drain::channel();
    let admin = Arc::new(Admin::default());
    let admin_addr = admin_listener.local_addr().map_err(|e| e.to_string())?;
    let admin_task = admin::spawn(admin.clone(), admin_listener, admin_watch);

    let policy = open_policy(&config).await?;
    let gateway = policy.gateway.clone();
    admin.attach(gateway.clone());

    let (data_drain, data_watch) = drain::channel();
    let mut listening = vec![format!("admin={admin_addr}")];
    let tasks =
        start_data_path(&config, &gateway, http_listener, data_watch, &mut listening).await?;
    admin.set_ready(true);
    // Start-up's garbage (the compile, the config) goes back before the first request.
    crate::heap::spawn_trimmer();
    tracing::info!(
        listening = %listening.join(" "),
        policy = %policy.name,
        decision = %config.policy.decision,
        revision = %gateway.decider.revision(),
        origin = policy.origin.as_str(),
        generation = gateway.decider.generation(),
        policy_load_ms = format_args!("{:.2}", gateway.decider.load_time().as_secs_f64() * 1e3),
        startup_ms = format_args!("{:.2}", started.elapsed().as_secs_f64() * 1e3),
        "sluice serving"
    );

    let signal = wait_for_signal().await;
    admin.set_ready(false);
    // MQTT-only gateways still give sessions time to receive their DISCONNECT.
    let grace = config
        .http
        .as_ref()
        .map(|h| h.shutdown_grace.get())
        .unwrap_or_else(|| crate::config::HttpConfig::default().shutdown_grace.get());
    tracing::info!(
        signal,
        grace = %format_args!("{}s", grace.as_secs_f64()),
        // Every accept loop and the HTTP proxy hold a watch too; the rest are connections.
        open = data_drain
            .open()
            .saturating_sub(tasks.len() + usize::from(config.http.is_some())),
        "shutting down: no new connections, finishing open requests"
    );
    let left = data_drain.drain(grace).await;
    if left > 0 {
        tracing::warn!(
            open = left,
            "shutdown grace over; closing connections still open"
        );
    }
    if let Some(log) = &gateway.decision_log {
        if !log.flush(std::time::Duration::from_secs(2)) {
            tracing::warn!("decision log: entries still queued at exit were not written");
        }
    }
    admin_drain.drain(std::time::Duration::from_secs(1)).await;
    admin_task.abort();
    drop(policy);
    Ok(())
}

/// The gateway with its first policy, and what keeps the policy sources running.
struct OpenPolicy {
    gateway: Arc<Gateway>,
    name: String,
    origin: Origin,
    /// Watchers and the bundle poller; dropped at exit.
    _sources: Box<dyn std::any::Any + Send>,
}

/// Chooses the first policy without waiting for any network — policy.paths, the bundle file,
/// the persisted bundle, else policy.on_missing_policy — and starts the sources (a bundle
/// server is polled from now on).
async fn open_policy(config: &Config) -> Result<OpenPolicy, String> {
    crate::policy::engine::set_strict_builtin_errors(config.policy.strict_builtin_errors);
    let sources = PolicySources::from_config(&config.policy).map_err(|e| e.to_string())?;
    let (startup, decider, status) = sources
        .open(DeciderOptions {
            decision: config.policy.decision.clone(),
            eval_timeout: config.policy.eval_timeout.get(),
            cache_capacity: config.cache.capacity,
            cache_ttl: config.cache.ttl.get(),
        })
        .map_err(|e| e.to_string())?;
    match (&startup.problem, startup.origin) {
        // The documented offline fallback: one WARN saying what is wrong and what serves.
        (Some(problem), Origin::Persisted) => tracing::warn!(
            revision = %startup.revision,
            "policy source not usable at start: {problem}; serving the persisted bundle from policy.bundle.persist_dir"
        ),
        (Some(problem), _) => tracing::warn!("policy source not usable at start: {problem}"),
        (None, _) => {}
    }
    match startup.origin {
        Origin::Persisted if startup.problem.is_some() => {}
        Origin::Persisted => tracing::info!(
            revision = %startup.revision,
            "bundle server not reached yet: serving the persisted bundle"
        ),
        Origin::Embedded | Origin::DenyExports if sources.is_bundle() => tracing::warn!(
            on_missing_policy = startup.origin.as_str(),
            "no bundle activated yet and none persisted: serving policy.on_missing_policy until one arrives"
        ),
        _ => {}
    }
    let decision_log = match &config.decision_log {
        Some(cfg) => Some(DecisionLog::open(cfg).map_err(|e| e.to_string())?),
        None => None,
    };
    let identity = config.identity.resolved();
    let source = Source {
        workload: identity.workload,
        namespace: identity.namespace,
        node: identity.node,
        site: config.site.name.clone(),
        ..Source::default()
    };
    let gateway = Arc::new(
        Gateway::new(decider, Site::new(&config.site), source)
            .with_policy_status(status.clone())
            .with_decision_log(decision_log)
            .with_revalidation(config.policy.revalidate),
    );
    let name = sources.describe();
    let running = sources
        .start(gateway.decider.clone(), status, &startup)
        .map_err(|e| e.to_string())?;
    Ok(OpenPolicy {
        gateway,
        name,
        origin: startup.origin,
        _sources: Box::new(running),
    })
}

/// Starts the HTTP proxy and the MQTT listeners on the data path's drain; adds each to
/// `listening` (the startup line). The watch is consumed: the drain then waits only for them.
async fn start_data_path(
    config: &Config,
    gateway: &Arc<Gateway>,
    http_listener: Option<TcpListener>,
    data_watch: Watch,
    listening: &mut Vec<String>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    if let (Some(cfg), Some(listener)) = (&config.http, http_listener) {
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        let proxy = HttpProxy::new(gateway.clone(), cfg.clone(), local, data_watch.clone());
        tasks.push(http::spawn(proxy, listener, data_watch.clone()));
        listening.push(format!("http={local}"));
    }
    tasks.extend(start_mqtt(config, gateway.clone(), data_watch.clone()).await?);
    let bridges = crate::bridge::start(&config.bridges, gateway.clone(), data_watch.clone());
    tasks.extend(bridges.await.map_err(|e| e.to_string())?);
    for m in &config.mqtt {
        listening.push(format!("mqtt={}->{}", m.listen, m.upstream));
    }
    let intercept = crate::proxy::transparent::start::start(config, gateway.clone(), data_watch)
        .await
        .map_err(|e| e.to_string())?;
    tasks.extend(intercept.tasks);
    listening.extend(intercept.listening);
    Ok(tasks)
}

/// Starts the MQTT listeners (each bound before the gateway reports ready).
async fn start_mqtt(
    config: &Config,
    gateway: Arc<Gateway>,
    drain: Watch,
) -> Result<Vec<JoinHandle<()>>, String> {
    crate::proxy::mqtt::spawn_listeners(&config.mqtt, gateway, drain)
        .await
        .map_err(|e| e.to_string())
}

async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers, only Ctrl-C through tokio's portable path remains.
        let _ = tokio::signal::ctrl_c().await;
        return "SIGINT";
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
