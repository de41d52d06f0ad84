//! Serving a metrics registry the way the scraper asks for it: OpenMetrics when the `Accept`
//! header names it (Prometheus does), otherwise the classic Prometheus text format 0.0.4, which
//! `curl`, `promtool check metrics` and older scrapers read.
//!
//! prometheus-client only writes OpenMetrics; the two differ in small ways this converts:
//! counter families are named without `_total` in OpenMetrics `# HELP`/`# TYPE` lines, `# UNIT`
//! and `# EOF` lines do not exist in 0.0.4, and `unknown` is `untyped` there.

use std::collections::HashSet;

use prometheus_client::registry::Registry;

use super::error::TelemetryError;

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const TEXT_0_0_4: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Encodes `registry` for a request with this `Accept` header; returns body and content type.
pub fn render(
    registry: &Registry,
    accept: Option<&str>,
) -> Result<(String, &'static str), TelemetryError> {
    let mut out = String::with_capacity(8192);
    prometheus_client::encoding::text::encode(&mut out, registry)
        .map_err(TelemetryError::Exposition)?;
    if accept.is_some_and(|a| a.contains("application/openmetrics-text")) {
        Ok((out, OPENMETRICS))
    } else {
        Ok((openmetrics_to_text(&out), TEXT_0_0_4))
    }
}

/// Rewrites OpenMetrics text as Prometheus text format 0.0.4.
pub fn openmetrics_to_text(om: &str) -> String {
    let counters: HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(om.len() + 64);
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
            let tail = if tail == "unknown" { "untyped" } else { tail };
            let name = if counters.contains(name) && !name.ends_with("_total") {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            Some(format!("{prefix}{name} {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gain_total_in_metadata_and_eof_goes() {
        let om = "# HELP sluice_decisions Policy decisions.\n# TYPE sluice_decisions counter\n\
                  sluice_decisions_total{verdict=\"deny\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n# EOF\n";
        assert_eq!(
            openmetrics_to_text(om),
            "# HELP sluice_decisions_total Policy decisions.\n# TYPE sluice_decisions_total counter\n\
             sluice_decisions_total{verdict=\"deny\"} 3\n# HELP g A gauge.\n# TYPE g gauge\ng 1\n"
        );
    }
}
