//! The service as its users and Telnyx meet it, in one test binary (so the suite links once):
//! the JSON API and the pages, webhook intake and the call flow against the Telnyx simulator,
//! the store's contract on both backends, the timed queue and the materialiser, hostile input
//! and abuse, start-up, secrets, and the properties the parsers and the state machine keep.

use dialajoke_test_support as common;

mod abuse;
mod api;
mod call_flow;
mod health;
mod hostile_input;
mod jokes;
mod live;
mod machines;
mod materialise;
mod pages;
mod problems;
mod properties;
mod recurring;
mod retries;
mod secrets;
mod signature_vectors;
mod startup;
mod store;
mod store_rules;
mod telnyx_client;
mod telnyx_webhooks;
mod timed_queue;
mod webhook_intake;
