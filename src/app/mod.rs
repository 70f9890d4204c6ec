//! The application: what the service does with the domain's values, the store and the Telnyx
//! client. The calls and rules services answer the web layer; the timed queue fires calls on
//! time and the materialiser gives rules their calls; the call flow reacts to Telnyx's webhooks,
//! which the inbox records first; housekeeping runs the periodic sweeps.

pub mod calls;
pub mod flow;
pub mod housekeeping;
pub mod inbox;
pub mod materialiser;
pub mod queue;
pub mod rule_checks;
pub mod rules;
