//! `sluice serve`: the gateway process (HTTP forward proxy, MQTT proxies, admin endpoint).

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// YAML config file; without it the embedded defaults serve
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

pub fn run(_args: ServeArgs) -> i32 {
    eprintln!("sluice serve: the gateway is not built yet");
    1
}
