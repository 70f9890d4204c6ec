//! The Telnyx simulator, held to the official Call Control schemas and examples: API answers,
//! signed webhooks, callee behaviours by number, delivery retries and injected faults.

mod api;
mod behaviours;
mod faults;
mod support;
mod webhooks;
