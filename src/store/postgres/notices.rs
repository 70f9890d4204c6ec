//! `LISTEN/NOTIFY` between the instances sharing one database. Every change to a call is
//! announced on one channel, inside the transaction that makes it (PostgreSQL delivers it only if
//! that commits); each instance listens, skips its own announcements, and passes the others on to
//! its live page feed and, for calls scheduled or cancelled, to its timed queue.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::domain::{CallId, DueAt};
use crate::store::{ChangeFeed, QueueNotice};

/// The channel every instance of one database listens on.
pub(super) const CHANNEL: &str = "dialajoke_calls";

/// How long to wait before listening again after the listener failed.
const RELISTEN_AFTER: Duration = Duration::from_secs(1);

/// What happened to a call, as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Note {
    /// Its status or history changed.
    Changed(CallId),
    /// It was scheduled, due then.
    Scheduled(CallId, DueAt),
    /// It was cancelled.
    Cancelled(CallId),
}

/// The announcement's text: `<sender> <kind> <call id> [<due, Unix microseconds>]`.
pub(super) fn encode(sender: &str, note: Note) -> String {
    match note {
        Note::Changed(id) => format!("{sender} c {id}"),
        Note::Scheduled(id, due) => format!("{sender} s {id} {}", due.instant().timestamp_micros()),
        Note::Cancelled(id) => format!("{sender} x {id}"),
    }
}

fn decode(text: &str) -> Option<(&str, Note)> {
    let mut parts = text.split(' ');
    let (sender, kind, id) = (parts.next()?, parts.next()?, parts.next()?.parse().ok()?);
    let note = match kind {
        "c" => Note::Changed(id),
        "x" => Note::Cancelled(id),
        "s" => {
            let due = DateTime::<Utc>::from_timestamp_micros(parts.next()?.parse().ok()?)?;
            Note::Scheduled(id, DueAt::from_stored(due))
        }
        _ => return None,
    };
    Some((sender, note))
}

/// Where announcements from other instances go.
pub(super) struct Hearers {
    /// This store's own sender name.
    pub own: String,
    /// The live page feed.
    pub changes: ChangeFeed,
    /// The timed queue.
    pub queue: broadcast::Sender<QueueNotice>,
}

impl Hearers {
    fn hear(&self, text: &str) {
        let Some((sender, note)) = decode(text) else {
            tracing::warn!(notice = text, "unreadable notice on {CHANNEL}; ignored");
            return;
        };
        if sender == self.own {
            return;
        }
        // Errors only mean nobody is listening right now.
        match note {
            Note::Changed(id) => self.changes.publish(id),
            Note::Scheduled(id, due) => {
                self.changes.publish(id);
                let _ = self.queue.send(QueueNotice::Scheduled(id, due));
            }
            Note::Cancelled(id) => {
                self.changes.publish(id);
                let _ = self.queue.send(QueueNotice::Cancelled(id));
            }
        }
    }
}

/// Starts listening; once this returns, every change committed afterwards is heard.
pub(super) async fn start_listening(pool: &PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Hears notices until `stop` fires. When the connection is lost, notices may have been missed:
/// the queue is told to reload, and listening starts again.
pub(super) async fn listen(pool: PgPool, mut listener: PgListener, hearers: Hearers, stop: CancellationToken) {
    loop {
        let heard = tokio::select! {
            () = stop.cancelled() => return,
            heard = hear_all(&mut listener, &hearers) => heard,
        };
        if let Err(error) = heard {
            tracing::warn!(error = ?error, "lost the database notices; listening again");
        }
        loop {
            let _ = hearers.queue.send(QueueNotice::Resync);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RELISTEN_AFTER) => {}
            }
            match start_listening(&pool).await {
                Ok(again) => {
                    listener = again;
                    // Anything announced while no one listened was missed.
                    let _ = hearers.queue.send(QueueNotice::Resync);
                    break;
                }
                Err(error) => tracing::warn!(error = ?error, "cannot listen to the database notices yet"),
            }
        }
    }
}

async fn hear_all(listener: &mut PgListener, hearers: &Hearers) -> Result<(), sqlx::Error> {
    // `try_recv` gives None when the connection dropped, instead of silently reconnecting.
    while let Some(notification) = listener.try_recv().await? {
        hearers.hear(notification.payload());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_note_reads_back_as_it_was_written() {
        let id = CallId::new();
        let due = DueAt::from_stored(DateTime::from_timestamp_micros(1_780_000_000_123_456).expect("instant"));
        for note in [Note::Changed(id), Note::Scheduled(id, due), Note::Cancelled(id)] {
            assert_eq!(decode(&encode("me", note)), Some(("me", note)));
        }
    }

    #[test]
    fn garbage_is_not_a_note() {
        assert_eq!(decode("me s not-an-id 12"), None);
        assert_eq!(decode("me q 0e7f4d1c-2b8a-4f4e-9a51-3a8e0f1c2d3e"), None);
    }
}
