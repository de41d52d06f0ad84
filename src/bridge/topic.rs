//! MQTT topic filters as the bridge uses them: `sluice spool ls|purge --topic FILTER`.
//!
//! Not here: validating a filter (config/bridge.rs `check_filter`).

/// MQTT topic filter matching (`+` one level, `#` the rest).
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    let mut t = topic.split('/');
    for f in filter.split('/') {
        match (f, t.next()) {
            ("#", _) => return true,
            ("+", Some(_)) => {}
            (f, Some(l)) if f == l => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_match_like_mqtt() {
        assert!(topic_matches(
            "plant/+/aggregates/#",
            "plant/l1/aggregates/h"
        ));
        assert!(topic_matches("plant/#", "plant"));
        assert!(topic_matches("a/+", "a/b"));
        assert!(!topic_matches("a/+", "a/b/c"));
        assert!(!topic_matches("a/b", "a"));
    }
}
