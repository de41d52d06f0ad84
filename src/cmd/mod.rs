//! Subcommands whose clap arguments and output live in one file each.

pub mod iptables;
