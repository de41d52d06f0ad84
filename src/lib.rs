//! sluice: a data-locality firewall for factory edge computing.
//!
//! The binary (`src/main.rs`) is a thin CLI over these modules; see DESIGN.md for the data flow.

pub mod admin;
pub mod admission;
pub mod bridge;
pub mod cmd;
pub mod config;
pub mod drain;
#[doc(hidden)]
pub mod fuzzing;
pub mod heap;
pub mod policy;
pub mod proxy;
pub mod site;
pub mod telemetry;
