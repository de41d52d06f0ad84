//! `sluice log`: queries the local decision log (the SQLite file `sluice serve` writes).
//!
//! Not here: writing the log (`telemetry/decision_log.rs`).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OpenFlags, params_from_iter};
use serde_json::json;

use crate::config::{Config, DEFAULT_DECISION_LOG, parse_duration};

/// Show recorded decisions, newest first.
///
/// Every denied decision is recorded, allowed ones at `decision_log.sample_allowed`. Payloads
/// are never recorded. Examples:
///
///   sluice log --since 10m --verdict deny
///   sluice log --target historian --format json --limit 5
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Every denied decision is recorded, allowed ones at decision_log.sample_allowed; \
payloads never are. Newest first.\n\nExamples:\n  sluice log --since 10m --verdict deny\n  \
sluice log -c /etc/sluice/sluice.yaml --target historian --format json --limit 5"
)]
pub struct LogArgs {
    /// The decision log database [default: decision_log.path of --config, else
    /// /var/lib/sluice/decisions.db]
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Config file to take decision_log.path from
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Only decisions newer than this: a duration back from now (10m, 2h) or an RFC 3339 time
    #[arg(long, value_name = "AGE|TIME")]
    pub since: Option<String>,
    /// Only this verdict
    #[arg(long, value_enum)]
    pub verdict: Option<VerdictArg>,
    /// Only targets (host:port) containing this text
    #[arg(long, value_name = "SUBSTRING")]
    pub target: Option<String>,
    /// At most this many decisions
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub limit: u32,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum VerdictArg {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

struct Row {
    time_ms: i64,
    decision_id: String,
    protocol: String,
    operation: String,
    workload: String,
    client_id: String,
    target: String,
    resource: String,
    verdict: String,
    reasons: String,
    revision: String,
}

pub fn run(args: LogArgs) -> i32 {
    match query(&args) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("sluice log: {e}");
            1
        }
    }
}

fn db_path(args: &LogArgs) -> Result<PathBuf, String> {
    if let Some(db) = &args.db {
        return Ok(db.clone());
    }
    if let Some(c) = &args.config {
        let cfg = Config::load(c).map_err(|e| e.to_string())?;
        return Ok(cfg
            .decision_log
            .map(|d| d.path)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DECISION_LOG)));
    }
    Ok(PathBuf::from(DEFAULT_DECISION_LOG))
}

/// `10m` back from now, or an RFC 3339 time; as milliseconds since the epoch.
fn parse_since(s: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let d: Duration = parse_duration(s).map_err(|_| {
        format!("--since {s:?}: expected a duration like 10m or 2h, or an RFC 3339 time like 2026-11-25T21:00:00Z")
    })?;
    Ok(now_ms.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
}

fn query(args: &LogArgs) -> Result<String, String> {
    let path = db_path(args)?;
    if !path.exists() {
        return Err(format!(
            "{}: no decision log here (is decision_log.path set in the config of sluice serve?)",
            path.display()
        ));
    }
    let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let _ = conn.busy_timeout(Duration::from_secs(2));
    let mut sql = String::from(
        "SELECT time_ms, decision_id, protocol, operation, workload, client_id, target, resource,
         verdict, reasons, revision FROM decisions WHERE 1=1",
    );
    let mut params: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(s) = &args.since {
        sql.push_str(" AND time_ms >= ?");
        params.push(parse_since(s, crate::telemetry::decision_log::now_ms())?.into());
    }
    if let Some(v) = args.verdict {
        sql.push_str(" AND verdict = ?");
        params.push(
            match v {
                VerdictArg::Allow => "allow",
                VerdictArg::Deny => "deny",
            }
            .to_string()
            .into(),
        );
    }
    if let Some(t) = &args.target {
        sql.push_str(" AND instr(target, ?) > 0");
        params.push(t.clone().into());
    }
    sql.push_str(" ORDER BY time_ms DESC, id DESC LIMIT ?");
    params.push(i64::from(args.limit).into());
    let shown = path.display();
    let mut stmt = conn
        .prepare(&sql)
        .map_err(|e| format!("{shown}: not a sluice decision log: {e}"))?;
    let rows = stmt
        .query_map(params_from_iter(params), |r| {
            Ok(Row {
                time_ms: r.get(0)?,
                decision_id: r.get(1)?,
                protocol: r.get(2)?,
                operation: r.get(3)?,
                workload: r.get(4)?,
                client_id: r.get(5)?,
                target: r.get(6)?,
                resource: r.get(7)?,
                verdict: r.get(8)?,
                reasons: r.get(9)?,
                revision: r.get(10)?,
            })
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{shown}: {e}"))?;
    Ok(match args.format {
        Format::Json => render_json(&rows),
        Format::Text => render_text(&rows),
    })
}

fn time_text(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

fn reasons_list(r: &Row) -> Vec<String> {
    serde_json::from_str(&r.reasons).unwrap_or_default()
}

fn render_json(rows: &[Row]) -> String {
    let docs: Vec<_> = rows
        .iter()
        .map(|r| {
            json!({
                "time": time_text(r.time_ms),
                "decision_id": r.decision_id,
                "protocol": r.protocol,
                "operation": r.operation,
                "source": {"workload": r.workload, "client_id": r.client_id},
                "target": r.target,
                "resource": r.resource,
                "verdict": r.verdict,
                "reasons": reasons_list(r),
                "revision": r.revision,
            })
        })
        .collect();
    let mut out = serde_json::to_string_pretty(&docs).unwrap_or_else(|_| "[]".into());
    out.push('\n');
    out
}

fn render_text(rows: &[Row]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        out.push_str("no decisions match\n");
        return out;
    }
    for r in rows {
        let source = match (r.workload.is_empty(), r.client_id.is_empty()) {
            (false, false) => format!("{}/{}", r.workload, r.client_id),
            (false, true) => r.workload.clone(),
            (true, false) => r.client_id.clone(),
            (true, true) => "-".into(),
        };
        let mut line = format!(
            "{} {:<5} {} {} {} {} -> {}",
            time_text(r.time_ms),
            r.verdict,
            r.decision_id,
            r.protocol,
            r.operation,
            source,
            r.target
        );
        if !r.resource.is_empty() {
            line.push(' ');
            line.push_str(&r.resource);
        }
        if !r.revision.is_empty() {
            line.push_str(&format!(" rev={}", r.revision));
        }
        let reasons = reasons_list(r);
        if !reasons.is_empty() {
            line.push_str(&format!(" reasons={}", reasons.join("; ")));
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_and_rfc3339() {
        assert_eq!(parse_since("10m", 1_000_000), Ok(400_000));
        assert_eq!(parse_since("1970-01-01T00:00:01Z", 0), Ok(1000));
        assert!(parse_since("yesterday", 0).is_err_and(|e| e.starts_with("--since \"yesterday\"")));
    }
}
