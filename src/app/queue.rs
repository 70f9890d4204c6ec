//! The timed queue. Only the next `window` scheduled calls are held in memory (a min-heap of due
//! instants), so memory stays flat however many calls are pending. The heap only says *when* to
//! wake, by the store's clock: due calls are then claimed from the store in one atomic step within
//! the dial limits every instance shares, which is what makes "dial once" hold across restarts
//! and across instances. Calls scheduled or cancelled on other instances arrive as notices.
//! Just before the claim, due calls are checked against the callees' calling hours once more, so
//! a call held up by an outage never rings at 3 a.m.: it is moved to the next allowed time or
//! marked missed, as configured.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::hours::{CallingHours, QuietAction, callee_zone, quiet_hours_message};
use crate::domain::state::{self, CallEvent, Transition};
use crate::domain::{Call, CallId, CallStatus, DueAt, HistoryEntry};
use crate::store::{CallPatch, Claimed, DialLimits, HeldBack, LeaseTerms, QueueNotice, Store, StoreError};

/// What the queue hands a claimed call to (the call flow, or a no-op in benchmarks).
#[async_trait]
pub trait Dispatch: Send + Sync + 'static {
    /// Dials a call the queue has just claimed; runs in its own task.
    async fn dispatch(&self, call: Call);
}

/// How long to wait before trying again when the limit of calls at once is reached (those calls
/// may end on any instance, so there is nothing local to wait for).
const FULL_RETRY: Duration = Duration::from_millis(250);

/// How the queue behaves.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// This instance's name on its claims, and how long a claim holds.
    pub lease: LeaseTerms,
    /// Calls overdue by more than this when first seen are marked missed instead of dialed.
    pub grace: Duration,
    /// How many scheduled calls the in-memory window holds.
    pub window: u32,
    /// Most calls claimed in one step.
    pub batch: u32,
    /// Dial pacing and the most calls at once, for all instances together.
    pub limits: DialLimits,
    /// When callees may be rung.
    pub calling_hours: CallingHours,
    /// What happens to a due call in its callee's quiet hours.
    pub quiet: QuietAction,
}

/// What one step of the queue did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// These calls were claimed and handed to the dispatcher.
    Dispatched(Vec<CallId>),
    /// Nothing is due; the next call falls due then (None: nothing scheduled).
    Idle(Option<DateTime<Utc>>),
    /// Calls are due but pacing allows no dial before this instant (store's clock).
    Paced(DateTime<Utc>),
    /// Calls are due but as many calls as allowed are in progress.
    Full,
}

#[derive(Debug, Default)]
struct Window {
    heap: BinaryHeap<Reverse<(DueAt, CallId)>>,
    /// The latest due instant loaded when the window was filled to capacity; calls due later are
    /// not in the heap and are picked up by the next refill. None: every scheduled call is here.
    loaded_until: Option<DueAt>,
    /// The heap no longer mirrors the store; rebuild it before trusting it.
    stale: bool,
}

struct Inner {
    store: Arc<dyn Store>,
    dispatcher: Arc<dyn Dispatch>,
    settings: QueueSettings,
    window: Mutex<Window>,
    wake: Notify,
    tasks: TaskTracker,
}

/// The timed queue; cheap to clone.
#[derive(Clone)]
pub struct TimedQueue {
    inner: Arc<Inner>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the window half-updated (every update is one
    // push, pop or replacement), so a poisoned lock is still safe to use.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl TimedQueue {
    /// A queue over `store` that hands claimed calls to `dispatcher`.
    pub fn new(store: Arc<dyn Store>, dispatcher: Arc<dyn Dispatch>, settings: QueueSettings) -> Self {
        let window = Window { stale: true, ..Window::default() };
        let inner = Inner {
            store,
            dispatcher,
            settings,
            window: Mutex::new(window),
            wake: Notify::new(),
            tasks: TaskTracker::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// A handle that tells this queue about new calls without keeping it alive (for parts the
    /// queue itself holds, such as the call flow that schedules retries).
    pub fn downgrade(&self) -> QueueHandle {
        QueueHandle(Arc::downgrade(&self.inner))
    }

    /// Tells the queue a call was scheduled, so it wakes early if this call is the next one due.
    pub fn scheduled(&self, id: CallId, due: DueAt) {
        let mut window = locked(&self.inner.window);
        if window.loaded_until.is_some_and(|last| due > last) {
            return;
        }
        let earlier = window.heap.peek().is_none_or(|Reverse((head, _))| due < *head);
        window.heap.push(Reverse((due, id)));
        drop(window);
        if earlier {
            self.inner.wake.notify_one();
        }
    }

    /// Tells the queue a call was cancelled, so it does not wake for it if it was the next one.
    pub fn cancelled(&self, id: CallId) {
        let mut window = locked(&self.inner.window);
        if window.heap.peek().is_some_and(|Reverse((_, head))| *head == id) {
            window.heap.pop();
            drop(window);
            self.inner.wake.notify_one();
        }
    }

    fn hear(&self, notice: QueueNotice) {
        match notice {
            QueueNotice::Scheduled(id, due) => self.scheduled(id, due),
            QueueNotice::Cancelled(id) => self.cancelled(id),
            QueueNotice::Resync => self.resync(),
        }
    }

    fn resync(&self) {
        locked(&self.inner.window).stale = true;
        self.inner.wake.notify_one();
    }

    /// Runs until `shutdown` fires, then waits for in-flight dispatches up to `drain`.
    pub async fn run(&self, shutdown: CancellationToken, drain: Duration) {
        let mut notices = self.inner.store.queue_notices();
        let mut failures = 0u32;
        while !shutdown.is_cancelled() {
            let wait = match self.step_at().await {
                Ok((StepOutcome::Dispatched(_), _)) => {
                    failures = 0;
                    continue;
                }
                Ok((StepOutcome::Idle(next), now)) => next.map(|at| instant_of(at, now, Instant::now())),
                Ok((StepOutcome::Paced(at), now)) => Some(instant_of(at, now, Instant::now())),
                Ok((StepOutcome::Full, _)) => Some(Instant::now() + FULL_RETRY),
                Err(error) => {
                    failures += 1;
                    tracing::error!(error = ?error, failures, "timed queue step failed; retrying");
                    locked(&self.inner.window).stale = true;
                    Some(Instant::now() + Duration::from_millis(200 * u64::from(failures.min(25))))
                }
            };
            self.sleep(wait, &mut notices, &shutdown).await;
        }
        self.inner.tasks.close();
        if tokio::time::timeout(drain, self.inner.tasks.wait()).await.is_err() {
            tracing::warn!("shutdown: dials still in flight after {drain:?}; their calls are reconciled at next start");
        }
    }

    /// Sleeps until `until`, an earlier call, or shutdown, taking in notices meanwhile.
    async fn sleep(&self, until: Option<Instant>, notices: &mut Receiver<QueueNotice>, shutdown: &CancellationToken) {
        let until = until.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(until) => return,
                () = self.inner.wake.notified() => return,
                () = shutdown.cancelled() => return,
                notice = notices.recv() => match notice {
                    Ok(notice) => self.hear(notice),
                    Err(RecvError::Lagged(_)) => self.resync(),
                    // The store keeps the sender while it lives; without it there is nothing to hear.
                    Err(RecvError::Closed) => *notices = self.inner.store.queue_notices(),
                },
            }
        }
    }

    /// One step: refill the window if needed, mark long-overdue calls missed, and claim and
    /// dispatch what is due by the store's clock. Public so tests drive the queue without sleeping.
    pub async fn step(&self) -> Result<StepOutcome, StoreError> {
        self.step_at().await.map(|(outcome, _)| outcome)
    }

    /// A step, and the store's clock when it looked.
    async fn step_at(&self) -> Result<(StepOutcome, DateTime<Utc>), StoreError> {
        self.refill_if_stale().await?;
        let now = self.inner.store.now().await?;
        let head = locked(&self.inner.window).heap.peek().map(|Reverse((due, _))| due.instant());
        let Some(head) = head.filter(|&due| due <= now) else {
            return Ok((StepOutcome::Idle(head), now));
        };
        let grace = chrono::Duration::from_std(self.inner.settings.grace).unwrap_or(chrono::Duration::MAX);
        if head < now - grace {
            self.mark_missed().await?;
            return Ok((StepOutcome::Dispatched(Vec::new()), now));
        }
        let settings = &self.inner.settings;
        self.hold_quiet_calls(now, settings.batch).await?;
        let claimed = self.inner.store.claim_due(&settings.lease, settings.batch, &settings.limits).await?;
        Ok((self.dispatch(claimed, now), now))
    }

    /// Moves or marks the due calls that are in their callee's quiet hours at `now`.
    async fn hold_quiet_calls(&self, now: DateTime<Utc>, limit: u32) -> Result<(), StoreError> {
        let hours = self.inner.settings.calling_hours;
        if hours == CallingHours::Always {
            return Ok(());
        }
        for call in self.inner.store.due_calls(now, limit).await? {
            let zone = callee_zone(call.timezone, &call.to);
            if let Some(allowed) = hours.next_allowed(now, zone) {
                let reason = quiet_hours_message(&hours, now, allowed, zone);
                self.hold(call, DueAt::planned(allowed), reason).await?;
            }
        }
        Ok(())
    }

    async fn hold(&self, call: Call, allowed: DueAt, reason: String) -> Result<(), StoreError> {
        let store = &self.inner.store;
        match self.inner.settings.quiet {
            QuietAction::Defer => {
                let entry = HistoryEntry::now("deferred", Some(reason));
                match store.reschedule(call.id, call.due_at, allowed, &entry).await {
                    Ok(true) => self.scheduled(call.id, allowed),
                    Ok(false) => {}
                    // The end of quiet hours is already as crowded as the limits allow.
                    Err(StoreError::LimitReached(hit)) => {
                        let reason = format!("not moved out of quiet hours: {hit}");
                        self.miss(&call, "limit_reached", reason).await?;
                    }
                    Err(error) => return Err(error),
                }
            }
            QuietAction::Mark => self.miss(&call, "quiet_hours", reason).await?,
        }
        Ok(())
    }

    /// Ends a scheduled call `missed` for `reason`, recorded in its history as `kind`.
    async fn miss(&self, call: &Call, kind: &str, reason: String) -> Result<(), StoreError> {
        if let Transition::To(next) = state::transition(call.status, &CallEvent::Missed) {
            let patch = CallPatch { last_error: Some(reason.clone()), ..CallPatch::default() };
            let entry = HistoryEntry::now(kind, Some(reason));
            self.inner.store.change_status(call.id, CallStatus::Scheduled, next, &patch, &entry).await?;
        }
        Ok(())
    }

    fn dispatch(&self, claimed: Claimed, now: DateTime<Utc>) -> StepOutcome {
        let ids: Vec<CallId> = claimed.calls.iter().map(|call| call.id).collect();
        self.forget(&ids, &claimed, now);
        for call in claimed.calls {
            let dispatcher = Arc::clone(&self.inner.dispatcher);
            self.inner.tasks.spawn(async move { dispatcher.dispatch(call).await });
        }
        match claimed.held_back {
            Some(HeldBack::Pacing(at)) if ids.is_empty() => StepOutcome::Paced(at),
            Some(HeldBack::ActiveCalls) if ids.is_empty() => StepOutcome::Full,
            _ => StepOutcome::Dispatched(ids),
        }
    }

    /// Takes what a claim settled out of the window.
    fn forget(&self, ids: &[CallId], claimed: &Claimed, now: DateTime<Utc>) {
        let mut window = locked(&self.inner.window);
        let batch = usize::try_from(self.inner.settings.batch).unwrap_or(usize::MAX);
        if claimed.held_back.is_none() && ids.len() < batch {
            // Every call due by now was claimed, here or by another instance, or cancelled.
            while window.heap.peek().is_some_and(|Reverse((due, _))| due.instant() <= now) {
                window.heap.pop();
            }
        } else {
            // Due calls remain; only the ones claimed here are known to be gone.
            let claimed: HashSet<&CallId> = ids.iter().collect();
            window.heap.retain(|Reverse((_, id))| !claimed.contains(id));
        }
        // A drained partial window hides later calls.
        window.stale |= window.heap.is_empty() && window.loaded_until.is_some();
    }

    async fn mark_missed(&self) -> Result<(), StoreError> {
        let missed = self.inner.store.mark_missed(self.inner.settings.grace).await?;
        if !missed.is_empty() {
            tracing::warn!(count = missed.len(), "calls fell due while the service was down and were marked missed");
        }
        locked(&self.inner.window).stale = true;
        Ok(())
    }

    async fn refill_if_stale(&self) -> Result<(), StoreError> {
        if !locked(&self.inner.window).stale {
            return Ok(());
        }
        let size = self.inner.settings.window;
        let due = self.inner.store.next_due(size).await?;
        let full = due.len() as u64 >= u64::from(size);
        let loaded_until = if full { due.last().map(|(_, at)| *at) } else { None };
        let mut heap: BinaryHeap<_> = due.into_iter().map(|(id, at)| Reverse((at, id))).collect();
        let mut window = locked(&self.inner.window);
        // Keep what was pushed while the store was being read: those calls may have been
        // committed after the read. A duplicate entry only costs one empty wake-up.
        let kept = window.heap.drain().filter(|Reverse((at, _))| loaded_until.is_none_or(|last| *at <= last));
        heap.extend(kept.collect::<Vec<_>>());
        window.heap = heap;
        window.loaded_until = loaded_until;
        window.stale = false;
        Ok(())
    }
}

/// Tells a queue about new calls while it lives (see [`TimedQueue::downgrade`]).
#[derive(Clone, Default)]
pub struct QueueHandle(Weak<Inner>);

impl QueueHandle {
    /// Like [`TimedQueue::scheduled`]; does nothing once the queue is gone.
    pub fn scheduled(&self, id: CallId, due: DueAt) {
        if let Some(inner) = self.0.upgrade() {
            TimedQueue { inner }.scheduled(id, due);
        }
    }
}

/// The moment on this instance's monotonic timer (which read `clock` when the store's clock read
/// `now`) when the store's clock reaches `at`: sleeping by a duration keeps this instance's own
/// wall clock out of it. A moment already past is now, not never: the queue once slept for an
/// hour over a head that fell due after the step looked.
fn instant_of(at: DateTime<Utc>, now: DateTime<Utc>, clock: Instant) -> Instant {
    clock + (at - now).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_due_in_the_future_is_waited_for_and_one_already_due_wakes_at_once() {
        let (now, clock) = (Utc::now(), Instant::now());
        let second = chrono::Duration::seconds(1);
        assert_eq!(instant_of(now + second, now, clock), clock + Duration::from_secs(1));
        assert_eq!(instant_of(now - second, now, clock), clock);
    }
}
