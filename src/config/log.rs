//! `log`: the format and level of sluice's own log.
//!
//! Not here: setting up logging (`telemetry/`).

use serde::{Deserialize, Serialize};

use super::error::{ConfigError, invalid};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: `info`, `debug`, `sluice=debug,warn`.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// The level names a directive may use.
const LEVELS: &[&str] = &["trace", "debug", "info", "warn", "error", "off"];

impl LogConfig {
    /// A level (`info`) or a tracing filter whose every directive names a level
    /// (`sluice=debug,warn`). A bare word that is not a level, like `warning` or `verbose`, is
    /// refused: the filter would read it as a module name and discard every line.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_level(&self.level).map_err(|e| invalid("log.level", e))
    }
}

fn check_level(text: &str) -> Result<(), String> {
    let refuse = || {
        format!(
            "{text:?} is not a log level; use trace, debug, info, warn, error, \
             or a tracing filter like sluice=debug,warn"
        )
    };
    if text.trim().is_empty() {
        return Err(refuse());
    }
    for directive in text.split(',').map(str::trim) {
        let level = match directive.rsplit_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            Some(_) => return Err(refuse()),
            None => directive,
        };
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(refuse());
        }
    }
    tracing_subscriber::EnvFilter::try_new(text).map_err(|_| refuse())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_level;

    #[test]
    fn levels_and_filters_pass_and_misspelled_levels_do_not() {
        for ok in ["info", "WARN", "sluice=debug,warn", "off"] {
            assert_eq!(check_level(ok), Ok(()), "{ok}");
        }
        for bad in ["warning", "verbose", "sluice=loud", "", "info,"] {
            assert!(check_level(bad).is_err(), "{bad}");
        }
    }
}
