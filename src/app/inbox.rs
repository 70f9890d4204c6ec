//! The inbox's front door: webhook events are written in groups. Whatever arrives while one group
//! is being committed waits and goes into the next, so under load one transaction records many
//! events and at rest each event is committed alone, at once. Nobody is answered before their
//! event's group is committed.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use crate::store::{InboxEvent, Store, StoreError};

/// Most events in one transaction: big enough to amortise a commit, small enough that the first
/// event of a group does not wait long for the last.
const MAX_GROUP: usize = 256;

/// How many events may wait for the writer before senders wait too (back-pressure).
const QUEUE: usize = 4096;

struct Waiting {
    event: InboxEvent,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// Records webhook events in the store, grouping concurrent ones into one transaction.
#[derive(Clone)]
pub struct Inbox {
    store: Arc<dyn Store>,
    waiting: mpsc::Sender<Waiting>,
}

impl Inbox {
    /// Starts the writer task (needs a Tokio runtime); it ends when the last `Inbox` is dropped.
    pub fn start(store: Arc<dyn Store>) -> Self {
        let (waiting, queue) = mpsc::channel(QUEUE);
        tokio::spawn(write_groups(Arc::clone(&store), queue));
        Self { store, waiting }
    }

    /// Records `event`; true when it is new, false for an event id already recorded.
    pub async fn record(&self, event: InboxEvent) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        match self.waiting.send(Waiting { event, reply }).await {
            Ok(()) => match answer.await {
                Ok(recorded) => recorded,
                // The writer stopped between taking the event and answering: it is unknown whether
                // the group was committed, and recording again is safe (event ids are unique).
                Err(_) => Err(StoreError::WriteFailed("the inbox writer stopped".into())),
            },
            // The writer has stopped (shutdown): record this one directly.
            Err(mpsc::error::SendError(waiting)) => self.store.inbox_insert(&waiting.event).await,
        }
    }
}

async fn write_groups(store: Arc<dyn Store>, mut queue: mpsc::Receiver<Waiting>) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut group, MAX_GROUP).await > 0 {
        let events: Vec<InboxEvent> = group.iter().map(|w| w.event.clone()).collect();
        match store.inbox_insert_group(&events).await {
            Ok(fresh) => group.drain(..).zip(fresh).for_each(|(w, fresh)| drop(w.reply.send(Ok(fresh)))),
            Err(error) => {
                tracing::error!(error = ?error, events = group.len(), "could not record webhook events");
                let message = error.to_string();
                group.drain(..).for_each(|w| drop(w.reply.send(Err(StoreError::WriteFailed(message.clone())))));
            }
        }
    }
}
