//! Decisions asked of the library's `Decider` directly, for the tests that check verdicts
//! without a process: the test source, a local MQTT publish input, and the `policy:` section of
//! a config. Not for the gateway: tests of `sluice serve` go through the launcher.

use sluice::policy::{Decider, Input, Operation, Protocol, Source, Target, Zone};

/// The workload and client every decision test speaks for.
pub fn source() -> Source {
    Source {
        workload: "iot-data-processor".into(),
        client_id: "press-7".into(),
        ..Source::default()
    }
}

/// Whether a local MQTT publish to `port` is allowed.
pub fn allows(decider: &Decider, port: u16) -> bool {
    let s = source();
    decider
        .decide(&publish(&s, "broker.plant.local", port, Zone::Local))
        .allowed()
}

pub fn publish<'a>(s: &'a Source, host: &'a str, port: u16, zone: Zone) -> Input<'a> {
    Input {
        protocol: Protocol::Mqtt,
        operation: Operation::Publish,
        source: s,
        target: Target {
            host,
            port,
            ip: None,
            zone,
        },
        mqtt: Some(sluice::policy::MqttFacts {
            topic: "plant/line1/press7/temp",
            qos: 1,
            retain: false,
        }),
        http: None,
    }
}

/// Parses a `policy:` YAML fragment (as in the config file) into the policy section.
pub fn policy_config(yaml: &str) -> sluice::config::PolicyConfig {
    sluice::config::Config::parse(yaml)
        .unwrap_or_else(|e| panic!("config: {e}"))
        .policy
}
