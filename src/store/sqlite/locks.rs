//! The events locks of the embedded store: only one instance uses the file, so they are held in
//! memory, a set of the call keys whose events are being applied.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

use crate::store::EventsLock;
use crate::store::feeds::HeldLock;

/// The call keys held now; cheap to clone.
#[derive(Debug, Clone, Default)]
pub(super) struct EventsLocks(Arc<Mutex<HashSet<String>>>);

impl EventsLocks {
    /// Holds `key` unless someone holds it already.
    pub(super) fn try_hold(&self, key: &str) -> Option<EventsLock> {
        let fresh = self.0.lock().unwrap_or_else(PoisonError::into_inner).insert(key.to_owned());
        fresh.then(|| EventsLock::held(Box::new(Held { locks: self.clone(), key: key.to_owned() })))
    }
}

/// One held key, let go when dropped.
struct Held {
    locks: EventsLocks,
    key: String,
}

#[async_trait]
impl HeldLock for Held {
    async fn release(self: Box<Self>) {}
}

impl Drop for Held {
    fn drop(&mut self) {
        self.locks.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.key);
    }
}
