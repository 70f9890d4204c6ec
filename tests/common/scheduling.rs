//! Scheduling calls through the API under load, when the service (or one of its instances) may be
//! down: each call has its own `Idempotency-Key`, so a request cut off by a kill is simply sent
//! again until a live service answers, without ever scheduling the call twice.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use telnyx_sim::{Behaviour, test_number};

/// How long one call may keep failing to be scheduled (the service being down) before the test
/// gives up.
const POST_BOUND: Duration = Duration::from_secs(30);

/// A client for loads: no proxies, a bound on each request.
pub fn load_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().expect("client")
}

/// Schedules a call to the `behaviour` test number due `at`, sending the request again until the
/// service answers it; returns the call id and how many requests it took.
pub async fn post_until_accepted(
    http: &reqwest::Client,
    base: &str,
    key: &str,
    behaviour: Behaviour,
    at: DateTime<Utc>,
) -> (String, usize) {
    let body = json!({ "to": test_number(behaviour), "at": at.to_rfc3339_opts(SecondsFormat::Millis, true) });
    let attempts = std::sync::atomic::AtomicUsize::new(0);
    let id = super::poll::poll_until(&format!("{key} was scheduled"), POST_BOUND, || async {
        attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = http.post(format!("{base}/api/calls")).header("idempotency-key", key).json(&body).send().await;
        match sent {
            Ok(response) if response.status() == 201 => {
                let created: Value = response.json().await.expect("call JSON");
                Ok(created["id"].as_str().expect("id").to_owned())
            }
            // The service is down or restarting (connection refused or cut, or unavailable).
            Ok(response) if response.status().is_server_error() => Err(response.status().to_string()),
            Err(error) => Err(error.to_string()),
            Ok(response) => {
                let status = response.status();
                panic!("scheduling {key} was refused with {status}: {}", response.text().await.unwrap_or_default())
            }
        }
    })
    .await;
    (id, attempts.into_inner())
}
