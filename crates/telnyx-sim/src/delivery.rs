//! Webhook delivery the way Telnyx does it: one worker per call sends that call's events in
//! order, each signed with Ed25519 over `<timestamp>|<body>`, retried with exponential back-off
//! on a non-2xx answer or a timeout (re-signed, `meta.attempt` counting up), then given up.
//! Injected webhook faults (delay, duplicate, reorder, drop, give up early) apply here.

use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::Instant;

use crate::core::Core;
use crate::events::Event;
use crate::journal::{DeliveryOutcome, DeliveryRecord, JournalEntry};

/// Starts the worker that delivers one call's events until the call's outbox closes.
pub(crate) fn spawn_worker(core: &Arc<Core>, events: UnboundedReceiver<Event>) {
    let worker_core = Arc::clone(core);
    core.spawn(run(worker_core, events));
}

async fn run(core: Arc<Core>, mut events: UnboundedReceiver<Event>) {
    while let Some(batch) = next_batch(&core, &mut events).await {
        for event in batch {
            deliver(&core, &event).await;
            core.activity.delivery_finished();
        }
    }
}

/// The next event, or with reordering on, every event that arrives within the reorder
/// window, in a shuffled order.
async fn next_batch(core: &Core, events: &mut UnboundedReceiver<Event>) -> Option<Vec<Event>> {
    let first = events.recv().await?;
    let faults = core.faults.webhooks();
    if !faults.reorder {
        return Some(vec![first]);
    }
    let deadline = Instant::now() + Duration::from_millis(faults.reorder_window_ms);
    let mut gathered = vec![Some(first)];
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
        gathered.push(Some(event));
    }
    let order = core.faults.shuffled_order(gathered.len());
    Some(order.into_iter().filter_map(|index| gathered[index].take()).collect())
}

/// Delivers one event with the webhook faults in force.
async fn deliver(core: &Core, event: &Event) {
    let faults = core.faults.webhooks();
    if faults.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.delay_ms)).await;
    }
    if faults.drop_event_types.iter().any(|dropped| dropped == event.event_type.as_str()) {
        record(core, event, 1, DeliveryOutcome::Dropped, true);
        return;
    }
    let pauses = retry_pauses(core, event, faults.give_up_after);
    let copies = if faults.duplicate { 2 } else { 1 };
    for _ in 0..copies {
        deliver_with_retries(core, event, &pauses).await;
    }
}

/// The pause before each further attempt: the dial's policy for this event type when it set
/// one (as Telnyx honours it), else the simulator's schedule; `give_up_after` (a fault) caps both.
fn retry_pauses(core: &Core, event: &Event, give_up_after: Option<u32>) -> Vec<Duration> {
    let timing = &core.timing;
    match (&event.retries, give_up_after) {
        (Some(policy), None) => policy.clone(),
        (Some(policy), Some(attempts)) => policy.iter().take(attempts.max(1) as usize - 1).copied().collect(),
        (None, attempts) => {
            let attempts = attempts.unwrap_or(timing.delivery_attempts).max(1);
            (2..=attempts).map(|next| timing.retry_delay(next)).collect()
        }
    }
}

async fn deliver_with_retries(core: &Core, event: &Event, pauses: &[Duration]) {
    let attempts = pauses.len() as u32 + 1;
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(pauses[attempt as usize - 2]).await;
        }
        let outcome = attempt_once(core, event, attempt).await;
        let delivered = outcome.is_delivered();
        record(core, event, attempt, outcome, !delivered && attempt == attempts);
        if delivered {
            return;
        }
    }
}

/// One signed POST; success is any 2xx, as at Telnyx (the answer's body is ignored).
async fn attempt_once(core: &Core, event: &Event, attempt: u32) -> DeliveryOutcome {
    let body = event.envelope(attempt).to_string();
    let timestamp = Utc::now().timestamp();
    let signature = core.signer.sign(timestamp, &body);
    let sent = core
        .http
        .post(&event.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("telnyx-signature-ed25519", signature)
        .header("telnyx-timestamp", timestamp.to_string())
        .body(body)
        .send()
        .await;
    match sent {
        Ok(answer) if answer.status().is_success() => DeliveryOutcome::Delivered { status: answer.status().as_u16() },
        Ok(answer) => DeliveryOutcome::Refused { status: answer.status().as_u16() },
        Err(error) => DeliveryOutcome::Failed { error: describe(&error) },
    }
}

/// The error with its causes, since reqwest's own message hides what actually failed.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text = format!("{text}: {inner}");
        cause = inner.source();
    }
    text
}

fn record(core: &Core, event: &Event, attempt: u32, outcome: DeliveryOutcome, gave_up: bool) {
    core.journal.record(JournalEntry::Delivery(DeliveryRecord {
        at: Utc::now(),
        event_id: event.id,
        event_type: event.event_type.as_str().to_owned(),
        call_control_id: event.call_control_id.clone(),
        url: event.url.clone(),
        attempt,
        outcome,
        gave_up,
    }));
}
