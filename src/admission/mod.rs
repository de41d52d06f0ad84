//! The Gatekeeper-compatible admission webhook (`sluice webhook`) and the test-suite runner
//! (`sluice verify`): ConstraintTemplates compiled with regorus, constraints matched with
//! Gatekeeper's rules, AdmissionReviews answered as Gatekeeper answers them.
//!
//! Layout: manifests (YAML documents) → templates, constraints, inventory → policies (the
//! loaded set) → matching + review (evaluation) → response (AdmissionReview envelope) → server
//! (HTTPS, metrics, certificate reload); suite + verify_report for `sluice verify`.
//!
//! Not here: the command lines (`cmd/webhook.rs`, `cmd/verify.rs`).

pub mod certs;
pub mod constraints;
pub mod error;
pub mod inventory;
pub mod manifests;
pub mod matching;
pub mod metrics;
pub mod policies;
pub mod response;
pub mod review;
pub mod schema;
pub mod server;
pub mod service;
pub mod suite;
pub mod templates;
pub mod verify_report;
