//! `sluice spool`: inspects an export bridge's spool file — counts (`stats`), the waiting
//! messages (`ls`), and removing messages by topic filter (`purge --topic`). Safe beside a
//! running gateway (SQLite WAL; the gateway re-reads its counts within seconds). `stats` and
//! `ls` open the file read-only, so they also work on a full disk.
//!
//! Not here: the spool itself (bridge/spool.rs). Payloads are never printed.

use std::path::PathBuf;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;

use crate::bridge::spool::{Message, Spool, SpoolError};
use crate::config::check_filter;

const SPOOL_HELP: &str = "\
The spool is the SQLite file of a bridge (bridges[].spool.path). Payloads are never printed.

Examples:
  sluice spool stats /var/lib/sluice/spool/cloud.db
  sluice spool ls /var/lib/sluice/spool/cloud.db --topic 'plant/+/aggregates/#' --limit 20
  sluice spool purge /var/lib/sluice/spool/cloud.db --topic plant/line1/raw/# --format json

Exit codes: 0 success, 1 when the file is missing, not a spool, or the filter is invalid.";

/// `sluice spool` arguments.
#[derive(Debug, clap::Args)]
#[command(after_long_help = SPOOL_HELP)]
pub struct SpoolArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Messages, bytes, oldest and newest message of a spool
    Stats(Common),
    /// The waiting messages, oldest first (never payloads)
    Ls {
        #[command(flatten)]
        common: Common,
        /// Only messages whose topic matches this MQTT filter
        #[arg(long, value_name = "FILTER")]
        topic: Option<String>,
        /// At most this many messages
        #[arg(long, default_value_t = 100, value_name = "N")]
        limit: usize,
    },
    /// Remove every message whose topic matches the filter
    Purge {
        #[command(flatten)]
        common: Common,
        /// MQTT topic filter of the messages to remove (`#` for all)
        #[arg(long, value_name = "FILTER")]
        topic: String,
    },
}

#[derive(Debug, clap::Args)]
pub struct Common {
    /// The spool file (bridges[].spool.path)
    #[arg(value_name = "SPOOL")]
    pub path: PathBuf,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// A `sluice spool` failure, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum SpoolCmdError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error("--topic: {0}")]
    Filter(#[from] crate::config::FilterError),
}

pub fn run(args: SpoolArgs) -> i32 {
    match execute(&args.action) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("sluice spool: {e}");
            1
        }
    }
}

fn execute(action: &Action) -> Result<String, SpoolCmdError> {
    match action {
        Action::Stats(c) => stats(c),
        Action::Ls {
            common,
            topic,
            limit,
        } => {
            if let Some(t) = topic {
                check_filter(t)?;
            }
            let spool = Spool::open_read_only(&common.path)?;
            let rows = spool.list(topic.as_deref(), *limit)?;
            Ok(list(&rows, common.format))
        }
        Action::Purge { common, topic } => {
            check_filter(topic)?;
            let mut spool = Spool::open_existing(&common.path)?;
            let n = spool.purge(topic)?;
            Ok(match common.format {
                Format::Json => format!("{}\n", json!({"purged": n, "topic": topic})),
                Format::Text => format!("purged {n} messages matching {topic}\n"),
            })
        }
    }
}

fn time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

fn stats(c: &Common) -> Result<String, SpoolCmdError> {
    let spool = Spool::open_read_only(&c.path)?;
    let s = spool.stats()?;
    let now = crate::telemetry::decision_log::now_ms();
    let age = s.oldest_ms.map(|t| (now - t).max(0) / 1000);
    Ok(match c.format {
        Format::Json => format!(
            "{}\n",
            json!({
                "path": c.path.display().to_string(),
                "messages": s.messages,
                "bytes": s.bytes,
                "oldest": s.oldest_ms.map(time),
                "newest": s.newest_ms.map(time),
                "oldest_age_seconds": age,
            })
        ),
        Format::Text => {
            let mut out = format!(
                "spool:    {}\nmessages: {}\nbytes:    {}\n",
                c.path.display(),
                s.messages,
                s.bytes
            );
            if let (Some(o), Some(n), Some(age)) = (s.oldest_ms, s.newest_ms, age) {
                out.push_str(&format!(
                    "oldest:   {} ({age}s ago)\nnewest:   {}\n",
                    time(o),
                    time(n)
                ));
            }
            out
        }
    })
}

fn list(rows: &[Message], format: Format) -> String {
    match format {
        Format::Json => {
            let items: Vec<_> = rows
                .iter()
                .map(|m| {
                    json!({
                        "id": m.id,
                        "stored": time(m.stored_ms),
                        "topic": m.topic,
                        "qos": m.qos,
                        "retain": m.retain,
                        "bytes": m.payload.len(),
                        "attempts": m.attempts,
                    })
                })
                .collect();
            format!("{}\n", serde_json::Value::from(items))
        }
        Format::Text => {
            let mut out = String::from("ID\tSTORED\tQOS\tBYTES\tATTEMPTS\tTOPIC\n");
            for m in rows {
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
                    m.id,
                    time(m.stored_ms),
                    m.qos,
                    m.payload.len(),
                    m.attempts,
                    m.topic
                ));
            }
            out
        }
    }
}
