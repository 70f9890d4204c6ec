//! Call identifiers shaped like Telnyx's: `v3:` plus url-safe random text for the
//! call_control_id, UUIDs for the leg and the session.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The three ids Telnyx gives every call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallIds {
    /// Names the call in commands and webhooks.
    pub call_control_id: String,
    /// Names this leg.
    pub call_leg_id: String,
    /// Names the session the leg belongs to.
    pub call_session_id: String,
}

impl CallIds {
    pub(crate) fn fresh() -> Self {
        let mut random = [0u8; 40];
        rand::thread_rng().fill(&mut random[..]);
        Self {
            call_control_id: format!("v3:{}", URL_SAFE_NO_PAD.encode(random)),
            call_leg_id: Uuid::new_v4().to_string(),
            call_session_id: Uuid::new_v4().to_string(),
        }
    }
}
