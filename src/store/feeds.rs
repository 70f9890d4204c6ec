//! What the store tells the rest of the instance besides answers to its questions: which calls
//! changed (for the live page), which calls other instances scheduled or cancelled (for the timed
//! queue), and the cluster-wide right to apply one call's webhook events.

use async_trait::async_trait;
use tokio::sync::broadcast;

use crate::domain::{CallId, DueAt};

/// How many notices a slow listener may fall behind before it is told it lagged.
const FEED_CAPACITY: usize = 1024;

/// Announces the ids of calls whose status or history changed, after the change is stored, to
/// whoever listens (the page's live view). Nobody listening costs nothing.
#[derive(Debug, Clone)]
pub struct ChangeFeed(broadcast::Sender<CallId>);

impl ChangeFeed {
    /// A feed with no listeners yet.
    pub fn new() -> Self {
        Self(broadcast::channel(FEED_CAPACITY).0)
    }

    /// Announces that `id` changed.
    pub fn publish(&self, id: CallId) {
        // An error only means nobody is listening right now.
        let _ = self.0.send(id);
    }

    /// A listener that hears every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<CallId> {
        self.0.subscribe()
    }
}

impl Default for ChangeFeed {
    fn default() -> Self {
        Self::new()
    }
}

/// News for the timed queue from another instance sharing the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueNotice {
    /// A call was scheduled.
    Scheduled(CallId, DueAt),
    /// A call was cancelled.
    Cancelled(CallId),
    /// Notices may have been missed (the connection they come over was lost): reload.
    Resync,
}

/// A channel of [`QueueNotice`]s.
pub(super) fn queue_notice_channel() -> broadcast::Sender<QueueNotice> {
    broadcast::channel(FEED_CAPACITY).0
}

/// The right to apply one call's webhook events, held by one instance at a time. Dropping it lets
/// go too; [`EventsLock::release`] lets go at once.
pub struct EventsLock {
    held: Option<Box<dyn HeldLock>>,
}

/// How a backend lets go of a lock it handed out.
#[async_trait]
pub(super) trait HeldLock: Send {
    /// Lets go.
    async fn release(self: Box<Self>);
}

impl EventsLock {
    /// A lock the backend holds until released.
    pub(super) fn held(lock: Box<dyn HeldLock>) -> Self {
        Self { held: Some(lock) }
    }

    /// Lets go of the lock.
    pub async fn release(mut self) {
        if let Some(lock) = self.held.take() {
            lock.release().await;
        }
    }
}
