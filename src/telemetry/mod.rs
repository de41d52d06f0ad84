//! Telemetry: Prometheus metrics, logging setup, and rate-limited logging of denied decisions.
//! Nothing here may block the data path.

pub mod collector;
pub mod decision_log;
pub mod error;
pub mod exposition;
pub mod metrics;
pub mod policy_metrics;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub use error::TelemetryError;
pub use metrics::Metrics;

/// A short unique id for one decision, shown to the client on a deny and in the logs, so an
/// operator can match a refused request with its log line. Process-random prefix + counter.
pub fn decision_id() -> String {
    static PREFIX: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        (t as u32) ^ (std::process::id().rotate_left(16))
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:08x}-{n:08x}")
}

/// Allows at most `per_second` events a second and counts the rest, without locks.
#[derive(Debug)]
pub struct RateLimiter {
    per_second: u64,
    window: AtomicU64,
    used: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimiter {
    pub const fn new(per_second: u64) -> Self {
        Self {
            per_second,
            window: AtomicU64::new(0),
            used: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// True when the event may be logged now.
    pub fn allow(&self) -> bool {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if self.window.swap(now, Ordering::Relaxed) != now {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < self.per_second {
            true
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// Events not logged so far.
    pub fn suppressed(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }
}

/// Log lines the writer can hold before it drops (and counts) new ones: a stalled stderr (a
/// full pipe, a stopped log shipper) must never stall a connection that logs a deny.
const LOG_QUEUE_LINES: usize = 4 * 1024;

static LOG_DROPS: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

/// Log lines dropped because the writer's queue was full (`sluice_log_lines_dropped_total`).
pub fn log_lines_dropped() -> u64 {
    LOG_DROPS.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// Keeps the log writer's thread alive; dropping it flushes what is queued.
pub struct LogGuard(#[allow(dead_code)] Option<tracing_appender::non_blocking::WorkerGuard>);

/// Sets up tracing to stderr through a non-blocking, lossy writer (a bounded queue drained by
/// one thread; overflow is counted): human-readable text, or one JSON object per line.
/// `level` is a tracing filter (`info`, `sluice=debug,warn`); `RUST_LOG` overrides it.
/// Hold the returned guard until exit.
pub fn init_logging(
    format: crate::config::LogFormat,
    level: &str,
) -> Result<LogGuard, TelemetryError> {
    use tracing_subscriber::EnvFilter;
    let bad = |key| {
        move |e: tracing_subscriber::filter::ParseError| TelemetryError::LogFilter {
            key,
            reason: e.to_string(),
        }
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.is_empty() => EnvFilter::try_new(&v).map_err(bad("RUST_LOG"))?,
        _ => EnvFilter::try_new(level).map_err(bad("log.level"))?,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("sluice-log")
        .finish(std::io::stderr());
    let drops = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false)
        .with_ansi(ansi);
    let result = match format {
        crate::config::LogFormat::Text => builder.try_init(),
        crate::config::LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests calling twice) is harmless: the first subscriber stays.
    if result.is_err() {
        return Ok(LogGuard(None));
    }
    let _ = LOG_DROPS.set(drops);
    Ok(LogGuard(Some(guard)))
}
