//! Housekeeping on a fixed cron schedule (tokio-cron-scheduler, which suits coarse periodic
//! chores; it is not precise or scalable enough to be the timed queue for calls): give recurring
//! rules their next calls, recover dials whose outcome is unknown, and retry inbox events that
//! failed to apply.

use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};

use super::materialiser::Materialiser;
use crate::app::flow::CallFlow;

/// Every 15 seconds, at 0, 15, 30 and 45 s past the minute.
const EVERY_15_SECONDS: &str = "0/15 * * * * *";

/// Starts the housekeeping jobs; shut the returned scheduler down at exit.
pub async fn start(flow: CallFlow, materialiser: Materialiser) -> Result<JobScheduler, JobSchedulerError> {
    let scheduler = JobScheduler::new().await?;
    let job = Job::new_async(EVERY_15_SECONDS, move |_, _| {
        let (flow, materialiser) = (flow.clone(), materialiser.clone());
        Box::pin(async move { sweep(&flow, &materialiser, false).await })
    })?;
    scheduler.add(job).await?;
    scheduler.start().await?;
    Ok(scheduler)
}

/// One housekeeping pass: gives rules their next calls (deciding catch-up for what fell due
/// while the service was down), takes over orphaned dials and starts resending or failing them,
/// and starts re-applying pending inbox events, all but the first in the background. At start-up
/// (`starting`), this instance's own claims from its previous run are orphaned too.
pub async fn sweep(flow: &CallFlow, materialiser: &Materialiser, starting: bool) {
    if let Err(error) = materialiser.pass_now().await {
        tracing::error!(error = ?error, "could not give recurring rules their next calls");
    }
    match flow.recover_orphaned_dials(starting).await {
        Ok(0) => {}
        Ok(count) => tracing::warn!(count, "dials whose outcome was unknown are being resent or failed"),
        Err(error) => tracing::error!(error = ?error, "could not reconcile orphaned dials"),
    }
    if let Err(error) = flow.drain_all().await {
        tracing::error!(error = ?error, "could not retry pending webhook events");
    }
}
