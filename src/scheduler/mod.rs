//! Firing calls on time: the timed queue (a min-heap over the next window of due calls, woken
//! early when an earlier call is scheduled), dial pacing, the materialiser that turns recurring
//! rules into calls, and the housekeeping jobs.

pub mod housekeeping;
pub mod materialise;
pub mod pacing;
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
