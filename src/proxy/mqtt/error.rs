//! Why an MQTT session ended abnormally: a kind (the `errors{protocol="mqtt",kind}` label)
//! and a message for the debug log. Shared by the handshake (session.rs) and the relay.
//!
//! Not here: codec errors (frame.rs's `CodecError`, converted here).

use super::frame::CodecError;

/// Why a session ended abnormally (counted as `errors{protocol="mqtt",kind}`).
#[derive(Debug)]
pub(super) struct SessionError {
    pub kind: &'static str,
    pub message: String,
}

impl SessionError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<CodecError> for SessionError {
    fn from(e: CodecError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}
