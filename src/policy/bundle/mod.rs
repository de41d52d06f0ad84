//! OPA bundles: the `.tar.gz` archive and its checks (`archive`), signatures (`signature`),
//! fetching from a bundle server (`fetch`), keeping the last good bundle on disk (`persist`),
//! where the serving policy comes from and how a new generation is activated (`source`), and
//! what the admin endpoint and the metrics report about it (`status`).
//!
//! Not here: compiling policies (`policy/loader.rs`) or deciding (`policy/decider.rs`).

pub mod archive;
pub mod error;
pub mod fetch;
pub mod persist;
pub mod signature;
pub mod source;
pub mod status;

pub use archive::{Bundle, read_bundle};
pub use error::BundleError;
pub use signature::VerificationKey;
