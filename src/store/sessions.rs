//! The web's own durable state: the server secret that keys the anti-forgery tokens, and the
//! sign-in sessions. Both live in the database so every instance sharing it agrees on them and
//! they outlast restarts; a session ended on one instance is ended on all. A role of its own,
//! apart from the calls and rules.

use std::time::Duration;

use async_trait::async_trait;

use super::StoreError;

/// Sessions and the server secret (see the module docs).
#[async_trait]
pub trait Sessions: Send + Sync {
    /// The server secret: `fresh` is kept when there is none yet, and whatever is kept is
    /// returned, so concurrent first starts of several instances agree on one.
    async fn server_secret(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError>;
    /// Records a session by its key (a keyed hash of the cookie, never the cookie itself),
    /// valid for `ttl` by the store's clock; sessions that ran out are dropped on the way.
    async fn start_session(&self, key: &str, ttl: Duration) -> Result<(), StoreError>;
    /// True when the session is recorded and has not run out.
    async fn session_active(&self, key: &str) -> Result<bool, StoreError>;
    /// Ends a session; ending one that is not there does nothing.
    async fn end_session(&self, key: &str) -> Result<(), StoreError>;
}
