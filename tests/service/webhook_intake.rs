//! Webhook intake over real HTTP: only correctly signed, fresh, well-formed JSON events are
//! recorded in the inbox, each event once, and every refusal is a problem document saying why.

use crate::common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use common::{SIGNING_SEED, TestApp, post_trickled, spawn_app, webhook_event};
use dialajoke::telnyx::signature::Signer;
use futures_util::future::join_all;
use serde_json::Value;
use telnyx_sim::{Behaviour, test_number};

const SIGNATURE: &str = "telnyx-signature-ed25519";
const TIMESTAMP: &str = "telnyx-timestamp";
/// How long the background task may take to apply one event before a test gives up.
const PROCESS_BOUND: Duration = Duration::from_secs(10);

fn answered() -> (String, Vec<u8>) {
    webhook_event("call.answered", |_| {})
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn trusted() -> Signer {
    Signer::from_seed(&SIGNING_SEED)
}

/// A webhook request as Telnyx would send it, before any header is set.
fn post(app: &TestApp, body: Vec<u8>) -> reqwest::RequestBuilder {
    app.http.post(format!("{}/webhook", app.base)).body(body)
}

async fn assert_acknowledged(response: reqwest::Response) {
    assert_eq!(response.status(), 200);
    assert!(response.bytes().await.expect("body").is_empty(), "an acknowledgement has no body");
}

/// Checks the status and media type and returns the problem's `detail`.
async fn problem_detail(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    let problem: Value = response.json().await.expect("problem JSON");
    assert_eq!(problem["status"], status);
    problem["detail"].as_str().expect("detail").to_owned()
}

/// Polls (bounded) until the inbox row of `event_id` has been processed; returns `processed_at`.
async fn wait_until_processed(app: &TestApp, event_id: &str) -> i64 {
    let db = app.db().await;
    common::poll::poll_until(&format!("event {event_id} was processed"), PROCESS_BOUND, || async {
        let processed: Option<i64> = sqlx::query_scalar("SELECT processed_at FROM inbox WHERE event_id = ?")
            .bind(event_id)
            .fetch_one(&db)
            .await
            .expect("the event is in the inbox");
        processed.ok_or("not yet")
    })
    .await
}

#[tokio::test]
async fn a_correctly_signed_webhook_is_acknowledged_with_an_empty_200_and_recorded_once() {
    let app = spawn_app().await;
    let (id, body) = answered();

    let response = app.post_webhook(body).await;

    assert_acknowledged(response).await;
    assert_eq!(app.count_rows("inbox").await, 1);
    let db = app.db().await;
    let stored: String = sqlx::query_scalar("SELECT event_id FROM inbox").fetch_one(&db).await.expect("row");
    assert_eq!(stored, id);
}

#[tokio::test]
async fn the_same_event_delivered_twice_is_acknowledged_twice_and_recorded_once() {
    let app = spawn_app().await;
    let (_, body) = answered();

    let first = app.post_webhook(body.clone()).await;
    let second = app.post_webhook(body).await;

    assert_acknowledged(first).await;
    assert_acknowledged(second).await;
    assert_eq!(app.count_rows("inbox").await, 1);
}

#[tokio::test]
async fn the_same_event_delivered_32_times_at_once_is_acknowledged_every_time_and_recorded_once() {
    // Concurrent deliveries are written in shared transactions: copies of one event can land in
    // the same group and must still count once.
    let app = spawn_app().await;
    let (event_id, body) = answered();

    let responses = join_all((0..32).map(|_| app.post_webhook(body.clone()))).await;

    for response in responses {
        assert_acknowledged(response).await;
    }
    assert_eq!(app.count_rows("inbox").await, 1);
    wait_until_processed(&app, &event_id).await;
}

#[tokio::test]
async fn a_signature_made_with_another_key_is_refused_as_unauthorized() {
    let app = spawn_app().await;
    let stranger = Signer::from_seed(&[9; 32]);

    let response = app.post_webhook_signed_by(&stranger, now(), answered().1).await;

    assert!(problem_detail(response, 401).await.contains("does not match"));
    assert_eq!(app.count_rows("inbox").await, 0);
}

#[tokio::test]
async fn a_body_changed_after_signing_is_refused_as_unauthorized() {
    let app = spawn_app().await;
    let (_, body) = answered();
    let timestamp = now();
    let signature = trusted().sign(timestamp, &body);
    let tampered = String::from_utf8(body).expect("UTF-8").replace("call.answered", "call.hangup");

    let response = post(&app, tampered.into_bytes())
        .header("content-type", "application/json")
        .header(TIMESTAMP, timestamp.to_string())
        .header(SIGNATURE, signature)
        .send()
        .await
        .expect("request sent");

    assert!(problem_detail(response, 401).await.contains("does not match"));
    assert_eq!(app.count_rows("inbox").await, 0);
}

#[tokio::test]
async fn a_timestamp_more_than_five_minutes_away_either_way_is_refused_as_unauthorized() {
    let app = spawn_app().await;
    for skew in [-301, 301] {
        let response = app.post_webhook_signed_by(&trusted(), now() + skew, answered().1).await;

        let detail = problem_detail(response, 401).await;
        assert!(detail.contains("outside the accepted window"), "skew {skew}: {detail}");
    }
    assert_eq!(app.count_rows("inbox").await, 0);
}

#[tokio::test]
async fn a_missing_signature_or_timestamp_header_is_refused_and_named() {
    let app = spawn_app().await;
    let (_, body) = answered();
    let timestamp = now();
    let signature = trusted().sign(timestamp, &body);
    let cases = [(TIMESTAMP, timestamp.to_string(), SIGNATURE), (SIGNATURE, signature, TIMESTAMP)];
    for (sent, value, missing) in cases {
        let response = post(&app, body.clone())
            .header("content-type", "application/json")
            .header(sent, value)
            .send()
            .await
            .expect("request sent");

        let detail = problem_detail(response, 401).await;
        assert!(detail.contains(&format!("missing header {missing}")), "{detail}");
    }
    assert_eq!(app.count_rows("inbox").await, 0);
}

#[tokio::test]
async fn a_signed_body_that_is_not_json_is_a_400_problem_and_nothing_is_recorded() {
    let app = spawn_app().await;

    let response = app.post_webhook(b"{\"data\": ".to_vec()).await;

    assert!(problem_detail(response, 400).await.contains("not valid JSON"));
    assert_eq!(app.count_rows("inbox").await, 0);
}

#[tokio::test]
async fn a_signed_event_without_an_id_is_a_400_problem_naming_data_id() {
    let app = spawn_app().await;
    let (_, body) = webhook_event("call.answered", |body| {
        body["data"].as_object_mut().expect("data object").remove("id");
    });

    let response = app.post_webhook(body).await;

    assert!(problem_detail(response, 400).await.contains("data.id"));
    assert_eq!(app.count_rows("inbox").await, 0);
}

#[tokio::test]
async fn a_signed_webhook_sent_as_plain_text_is_a_415_problem() {
    let app = spawn_app().await;
    let (_, body) = answered();
    let timestamp = now();
    let signature = trusted().sign(timestamp, &body);

    let response = post(&app, body)
        .header("content-type", "text/plain")
        .header(TIMESTAMP, timestamp.to_string())
        .header(SIGNATURE, signature)
        .send()
        .await
        .expect("request sent");

    assert!(problem_detail(response, 415).await.contains("application/json"));
    assert_eq!(app.count_rows("inbox").await, 0);
}

#[tokio::test]
async fn a_body_over_64_kib_is_a_413_problem_and_nothing_is_recorded() {
    let app = spawn_app().await;
    let (_, body) = webhook_event("call.answered", |body| {
        body["data"]["payload"]["padding"] = Value::String("x".repeat(64 * 1024));
    });

    let response = app.post_webhook(body).await;

    problem_detail(response, 413).await;
    assert_eq!(app.count_rows("inbox").await, 0);
}

#[tokio::test]
async fn an_unknown_event_type_is_acknowledged_and_recorded() {
    let app = spawn_app().await;
    let (id, body) = webhook_event("call.answered", |body| body["data"]["event_type"] = "call.cost".into());

    let response = app.post_webhook(body).await;

    assert_acknowledged(response).await;
    let db = app.db().await;
    let kind: String = sqlx::query_scalar("SELECT event_type FROM inbox WHERE event_id = ?")
        .bind(&id)
        .fetch_one(&db)
        .await
        .expect("recorded");
    assert_eq!(kind, "call.cost");
}

#[tokio::test]
async fn an_event_for_no_known_call_is_recorded_processed_and_changes_nothing() {
    let app = spawn_app().await;
    let (id, body) = webhook_event("call.hangup", |body| {
        let payload = &mut body["data"]["payload"];
        payload["client_state"] = Value::Null;
        payload["call_control_id"] = format!("v3:unknown-{}", uuid::Uuid::new_v4()).into();
    });

    let response = app.post_webhook(body).await;

    assert_acknowledged(response).await;
    assert!(wait_until_processed(&app, &id).await > 0);
    let db = app.db().await;
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM inbox WHERE event_id = ?")
        .bind(&id)
        .fetch_one(&db)
        .await
        .expect("recorded");
    assert_eq!(error, None);
    assert_eq!(app.count_rows("calls").await, 0);
    assert_eq!(app.count_rows("call_events").await, 0);
    assert!(app.sim.journal().is_empty(), "no command was sent to Telnyx");
}

/// The official example of `name` rewritten to be about our call `call_id` (its `client_state`)
/// on the Telnyx leg `leg`.
fn event_for_call(name: &str, call_id: &str, leg: &str) -> (String, Vec<u8>) {
    webhook_event(name, |body| {
        let payload = &mut body["data"]["payload"];
        payload["client_state"] = base64::engine::general_purpose::STANDARD.encode(call_id).into();
        payload["call_control_id"] = leg.into();
    })
}

/// The `detail` of every history entry of `call` of the given `kind`.
fn details_of(call: &Value, kind: &str) -> Vec<String> {
    let events = call["events"].as_array().cloned().unwrap_or_default();
    events.iter().filter(|e| e["kind"] == kind).filter_map(|e| e["detail"].as_str().map(str::to_owned)).collect()
}

#[tokio::test]
async fn signed_hangup_and_answer_events_for_a_call_never_dialed_leave_it_scheduled_and_say_why() {
    let app = spawn_app().await;
    let created = app.schedule_in(test_number(Behaviour::Answer), Duration::from_secs(3600)).await;
    let id = created["id"].as_str().expect("id");

    for name in ["call.hangup", "call.answered"] {
        let (event_id, body) = event_for_call(name, id, "v3:a-leg-we-never-dialed");
        assert_acknowledged(app.post_webhook(body).await).await;
        wait_until_processed(&app, &event_id).await;
    }

    let call = app.call(id).await;
    assert_eq!(call["status"], "scheduled");
    assert_eq!(call["call_control_id"], Value::Null);
    let ignored = details_of(&call, "event_ignored");
    assert_eq!(ignored.len(), 2, "{call:#}");
    assert!(ignored[0].contains("call.hangup") && ignored[0].contains("never dialed"), "{}", ignored[0]);
    assert!(ignored[1].contains("call.answered"), "{}", ignored[1]);
    let open: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL OR last_error IS NOT NULL")
            .fetch_one(&app.db().await)
            .await
            .expect("count");
    assert_eq!(open, 0, "ignored events are closed without an error, not retried");
    assert!(app.sim.journal().is_empty(), "no command was sent to Telnyx");
}

#[tokio::test]
async fn a_burst_of_200_distinct_signed_webhooks_is_all_acknowledged_and_recorded() {
    let app = spawn_app().await;
    let bodies: Vec<Vec<u8>> = (0..200).map(|_| answered().1).collect();

    let responses = join_all(bodies.into_iter().map(|body| app.post_webhook(body))).await;

    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert!(statuses.iter().all(|&s| s == 200), "{statuses:?}");
    assert_eq!(app.count_rows("inbox").await, 200);
}

/// Sends the head of a correctly signed webhook, then its body one byte every `pace`; returns
/// what the service answered and when, from the end of the head.
async fn trickle_webhook(app: &TestApp, pace: Duration) -> ((u16, String, Vec<u8>), Duration) {
    let (_, body) = answered();
    let timestamp = now();
    let signature = trusted().sign(timestamp, &body);
    let headers = [
        "content-type: application/json".to_owned(),
        format!("{TIMESTAMP}: {timestamp}"),
        format!("{SIGNATURE}: {signature}"),
    ];
    post_trickled(app, "/webhook", &headers, body, pace).await
}

/// Runs `work` while asking `/health` every 50 ms; returns its output, the slowest health answer
/// and how many were asked. Every health answer must be a 200.
async fn while_probing_health<T>(app: &TestApp, work: impl std::future::Future<Output = T>) -> (T, Duration, usize) {
    let busy = AtomicBool::new(true);
    let work = async {
        let output = work.await;
        busy.store(false, Ordering::SeqCst);
        output
    };
    let probe = async {
        let (mut slowest, mut probes) = (Duration::ZERO, 0);
        while busy.load(Ordering::SeqCst) {
            let started = tokio::time::Instant::now();
            let health = app.http.get(format!("{}/health", app.base)).send().await.expect("health answered");
            assert_eq!(health.status(), 200);
            slowest = slowest.max(started.elapsed());
            probes += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        (slowest, probes)
    };
    let (output, (slowest, probes)) = tokio::join!(work, probe);
    (output, slowest, probes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_trickled_byte_by_byte_are_cut_off_with_a_408_problem_while_other_requests_are_answered() {
    use dialajoke::web::deadline::BODY_DEADLINE;
    let app = spawn_app().await;

    let slow = join_all((0..16).map(|_| trickle_webhook(&app, Duration::from_millis(100))));
    let (answers, slowest_health, probes) = while_probing_health(&app, slow).await;

    assert!(probes > 10, "/health was asked only {probes} times");
    assert!(slowest_health < Duration::from_secs(1), "/health took {slowest_health:?}");
    for ((status, head, body), took) in answers {
        assert_eq!(status, 408);
        assert!(head.contains("content-type: application/problem+json"), "{head}");
        let problem: Value = serde_json::from_slice(&body).expect("problem JSON");
        assert_eq!(problem["status"], 408);
        assert!(took >= BODY_DEADLINE - Duration::from_millis(200), "cut off after only {took:?}");
        assert!(took < BODY_DEADLINE + Duration::from_secs(3), "cut off only after {took:?}");
    }
    assert_eq!(app.count_rows("inbox").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_2000_signed_webhooks_over_64_connections_is_all_recorded_while_health_keeps_answering() {
    let app = spawn_app().await;
    let mut lanes: Vec<Vec<Vec<u8>>> = vec![Vec::new(); 64];
    for index in 0..2000 {
        lanes[index % 64].push(answered().1);
    }
    let lane = |bodies: Vec<Vec<u8>>| async {
        let mut statuses = Vec::with_capacity(bodies.len());
        for body in bodies {
            statuses.push(app.post_webhook(body).await.status().as_u16());
        }
        statuses
    };

    let flood = join_all(lanes.into_iter().map(lane));
    let (statuses, slowest_health, probes) = while_probing_health(&app, flood).await;

    let statuses: Vec<u16> = statuses.into_iter().flatten().collect();
    assert_eq!(statuses.len(), 2000);
    assert!(statuses.iter().all(|&s| s == 200), "not all acknowledged");
    assert!(probes > 0, "the flood ended before /health was asked");
    assert!(slowest_health < Duration::from_secs(2), "/health took {slowest_health:?} during the flood");
    assert_eq!(app.count_rows("inbox").await, 2000);
}
