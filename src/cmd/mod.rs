//! One file per subcommand: its clap arguments and its output.

pub mod spool;
