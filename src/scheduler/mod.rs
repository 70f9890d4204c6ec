//! Firing calls on time: the timed queue (a min-heap over the next window of due calls, woken
//! early when an earlier call is scheduled here or on another instance), the materialiser that
//! turns recurring rules into calls, and the housekeeping jobs. Dial pacing is the store's: it
//! holds for every instance sharing it.

pub mod housekeeping;
pub mod materialise;
mod queue;

use async_trait::async_trait;

use crate::calls::Call;

pub use queue::{QueueHandle, QueueSettings, StepOutcome, TimedQueue};

/// What the queue hands a claimed call to (the call flow, or a no-op in benchmarks).
#[async_trait]
pub trait Dispatch: Send + Sync + 'static {
    /// Dials a call the queue has just claimed; runs in its own task.
    async fn dispatch(&self, call: Call);
}
