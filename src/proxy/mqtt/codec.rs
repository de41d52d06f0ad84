//! The MQTT 3.1, 3.1.1 and 5.0 codec, as the gateway imports it: framing and field readers
//! (frame.rs) and packet inspections (inspect.rs) under one name; pure bytes in, frames and
//! inspections out, no I/O. The packets sluice sends itself are built in encode.rs.
//!
//! Not here: decisions, sockets, session state (session.rs).

pub use super::frame::*;
pub use super::inspect::*;

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
