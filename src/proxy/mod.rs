//! The data path, as the flow reads: a [`listener`] accepts (limits, backoff, drain), the
//! protocol code (`http/`, `mqtt/`) parses only what a decision needs, the [`judge`] stage
//! decides (zone → DNS rule → `Input` → verdict, every deny counted and logged), [`socket`]
//! connects to exactly the judged address, and [`copy`] relays bytes that are only copied.
//! `docs/architecture.md` describes each stage and where a new protocol plugs in.

pub mod copy;
pub mod dns;
pub mod error;
pub mod http;
pub mod judge;
pub mod listener;
pub mod mqtt;
pub mod revalidate;
pub mod sni;
pub mod socket;
pub mod tls;
pub mod transparent;

pub use judge::{Ask, Decision, Gateway, Judged};
