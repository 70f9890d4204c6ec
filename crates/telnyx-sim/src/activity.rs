//! What the simulator still has in hand (live calls, webhooks not yet delivered or given up),
//! watched so tests can await "all quiet" instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch};

use crate::events::Event;

/// Work in progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// Calls that have not hung up yet.
    pub live_calls: usize,
    /// Events queued or being delivered (retries included).
    pub pending_deliveries: usize,
}

impl Activity {
    /// Nothing left to do: every call ended and every webhook delivered or given up.
    pub fn is_idle(&self) -> bool {
        self.live_calls == 0 && self.pending_deliveries == 0
    }
}

pub(crate) struct ActivityTracker {
    state: watch::Sender<Activity>,
}

impl ActivityTracker {
    pub(crate) fn new() -> Self {
        Self { state: watch::Sender::new(Activity::default()) }
    }

    pub(crate) fn current(&self) -> Activity {
        *self.state.borrow()
    }

    fn change(&self, change: impl FnOnce(&mut Activity)) {
        self.state.send_modify(change);
    }

    pub(crate) fn delivery_finished(&self) {
        self.change(|a| a.pending_deliveries = a.pending_deliveries.saturating_sub(1));
    }

    /// Waits until idle; `Err` with the activity left when `limit` passes first.
    pub(crate) async fn wait_idle(&self, limit: Duration) -> Result<(), Activity> {
        let mut watcher = self.state.subscribe();
        match tokio::time::timeout(limit, watcher.wait_for(Activity::is_idle)).await {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.current()),
        }
    }
}

/// A call's way out to the delivery worker; open while the call is live.
pub(crate) struct Outbox {
    sender: Option<mpsc::UnboundedSender<Event>>,
    activity: Arc<ActivityTracker>,
}

impl Outbox {
    /// Opens the outbox of a new call: the call counts as live until [`Outbox::close`].
    pub(crate) fn open(activity: Arc<ActivityTracker>) -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        activity.change(|a| a.live_calls += 1);
        let outbox = Self { sender: Some(sender), activity };
        (outbox, receiver)
    }

    /// Queues an event for delivery, in order after the call's earlier events.
    pub(crate) fn send(&self, event: Event) {
        let Some(sender) = &self.sender else {
            return;
        };
        self.activity.change(|a| a.pending_deliveries += 1);
        if sender.send(event).is_err() {
            // The worker is gone (simulator stopping): the event will never be delivered.
            self.activity.delivery_finished();
        }
    }

    /// The call has ended: no more events; the worker finishes what is queued, then stops.
    pub(crate) fn close(&mut self) {
        if self.sender.take().is_some() {
            self.activity.change(|a| a.live_calls = a.live_calls.saturating_sub(1));
        }
    }
}
