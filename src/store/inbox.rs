//! The webhook inbox: every event recorded once by its id before it is answered, then applied
//! one call at a time, in arrival order, under a lock every instance respects.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{EventsLock, StoreError};

/// A webhook event as kept in the inbox.
#[derive(Debug, Clone)]
pub struct InboxEvent {
    /// Telnyx's event id (`data.id`), unique.
    pub event_id: String,
    /// Groups the events of one call (our call id, or Telnyx's call_control_id when unknown).
    pub call_key: String,
    /// `data.event_type`.
    pub event_type: String,
    /// The raw body as received.
    pub body: Vec<u8>,
    /// When it arrived.
    pub received_at: DateTime<Utc>,
}

/// An inbox event waiting to be applied.
#[derive(Debug, Clone)]
pub struct PendingEvent {
    /// Arrival order.
    pub seq: i64,
    /// The raw body.
    pub body: Vec<u8>,
    /// How many times applying it failed already.
    pub attempts: u32,
}

/// The inbox as the intake and the call flow see it (see the [module docs](self)).
#[async_trait]
pub trait Inbox: Send + Sync {
    /// Records a webhook event; false when its id was already recorded (by any instance).
    async fn inbox_insert(&self, event: &InboxEvent) -> Result<bool, StoreError>;
    /// Records several events in one transaction; one flag per event, as [`Inbox::inbox_insert`]
    /// gives. Backends without cheap transactions may keep this default, one insert each.
    async fn inbox_insert_group(&self, events: &[InboxEvent]) -> Result<Vec<bool>, StoreError> {
        let mut fresh = Vec::with_capacity(events.len());
        for event in events {
            fresh.push(self.inbox_insert(event).await?);
        }
        Ok(fresh)
    }
    /// The unapplied events of one call, in arrival order.
    async fn inbox_pending(&self, call_key: &str) -> Result<Vec<PendingEvent>, StoreError>;
    /// The call keys that have unapplied events.
    async fn inbox_pending_keys(&self) -> Result<Vec<String>, StoreError>;
    /// Marks an event applied (`error` None) or records a failed attempt to apply it; with
    /// `give_up` the event is closed with its error kept.
    async fn inbox_finish(&self, seq: i64, error: Option<&str>, give_up: bool) -> Result<(), StoreError>;
    /// The right to apply one call's events, held by one instance at a time; None when another
    /// instance holds it now (it looks for newer events of the call before it lets go).
    async fn lock_events(&self, call_key: &str) -> Result<Option<EventsLock>, StoreError>;
}
