//! Whole call flows, end to end: the real service dials the project's Telnyx simulator over HTTP,
//! receives its signed webhooks, speaks a joke and hangs up. Each scenario checks the final
//! status, the history and the exact number of requests the simulator received.

use crate::common;

use std::time::Duration;

use base64::Engine;
use common::flow::{SOON, counts, dial_bodies, requests_of, run_to_the_end};
use common::{Options, TestApp, spawn_app, spawn_app_with};
use serde_json::Value;
use telnyx_sim::{ApiFault, ApiFaultKind, Behaviour, FaultTarget, Faults, JournalEntry, RequestKind, test_number};

#[tokio::test]
async fn an_answered_call_hears_a_joke_and_is_hung_up_and_completed() {
    let app = spawn_app().await;

    let call = run_to_the_end(&app, Behaviour::Answer).await;

    assert_eq!(call["status"], "completed");
    let kinds = TestApp::event_kinds(&call);
    for expected in [
        "scheduled",
        "dialing",
        "call.initiated",
        "call.answered",
        "speak_requested",
        "call.speak.ended",
        "hangup_requested",
        "call.hangup",
    ] {
        assert!(kinds.iter().any(|k| k == expected), "{expected} missing from {kinds:?}");
    }
    assert!(call["joke"].as_str().is_some_and(|joke| !joke.is_empty()));
    assert_eq!(counts(&app), [1, 1, 1]);
}

#[tokio::test]
async fn the_dial_carries_our_call_id_webhook_url_and_a_command_id() {
    let app = spawn_app().await;

    let call = run_to_the_end(&app, Behaviour::Answer).await;

    let dials = dial_bodies(&app);
    assert_eq!(dials.len(), 1);
    let dial = &dials[0];
    let state = base64::engine::general_purpose::STANDARD
        .decode(dial["client_state"].as_str().expect("client_state"))
        .expect("base64");
    assert_eq!(String::from_utf8(state).expect("utf-8"), call["id"].as_str().expect("id"));
    assert_eq!(dial["webhook_url"], format!("{}/webhook", app.base));
    assert_eq!(dial["connection_id"], "test-connection");
    assert_eq!(dial["from"], "+12025550199");
    assert!(dial["command_id"].as_str().is_some_and(|id| id.len() == 36));
}

#[tokio::test]
async fn the_dial_asks_telnyx_for_a_time_limit_and_the_most_webhook_retries_for_every_event_the_flow_needs() {
    let app = spawn_app().await;

    run_to_the_end(&app, Behaviour::Answer).await;

    let dials = dial_bodies(&app);
    let dial = &dials[0];
    assert_eq!(crate::telnyx_client::schema_problems("CallRequest", dial), Vec::<String>::new());
    assert_eq!(dial["time_limit_secs"], 300, "the default time limit");
    let policies = dial["webhook_retries_policies"].as_object().expect("retry policies");
    for event in [
        "call.initiated",
        "call.answered",
        "call.machine.detection.ended",
        "call.machine.greeting.ended",
        "call.speak.started",
        "call.speak.ended",
        "call.hangup",
    ] {
        let pauses: Vec<u64> = serde_json::from_value(policies[event]["retries_ms"].clone()).expect(event);
        assert_eq!((pauses.len(), pauses.iter().sum::<u64>()), (5, 60_000), "{event}: Telnyx's most");
    }
}

#[tokio::test]
async fn a_busy_line_ends_busy_without_a_joke() {
    let app = spawn_app().await;
    let call = run_to_the_end(&app, Behaviour::Busy).await;
    assert_eq!(call["status"], "busy");
    assert_eq!(counts(&app), [1, 0, 0]);
}

#[tokio::test]
async fn an_unanswered_call_ends_no_answer() {
    let app = spawn_app().await;
    let call = run_to_the_end(&app, Behaviour::NoAnswer).await;
    assert_eq!(call["status"], "no_answer");
    assert_eq!(counts(&app), [1, 0, 0]);
}

#[tokio::test]
async fn a_rejected_call_ends_rejected() {
    let app = spawn_app().await;
    let call = run_to_the_end(&app, Behaviour::Reject).await;
    assert_eq!(call["status"], "rejected");
    assert_eq!(counts(&app), [1, 0, 0]);
}

#[tokio::test]
async fn a_callee_who_hangs_up_mid_joke_ends_the_call_without_our_hangup() {
    let app = spawn_app().await;
    let call = run_to_the_end(&app, Behaviour::HangupMidJoke).await;
    assert_eq!(call["status"], "completed");
    let [dials, speaks, _] = counts(&app);
    assert_eq!([dials, speaks], [1, 1]);
    let hangup = call["events"].as_array().expect("events").iter().find(|e| e["kind"] == "call.hangup").cloned();
    assert!(hangup.is_some_and(|e| e["detail"].as_str().is_some_and(|d| d.contains("callee"))));
}

#[tokio::test]
async fn a_dial_that_meets_a_500_is_retried_once_and_completes() {
    let mut options = Options::default();
    options.sim.faults =
        Faults { api: vec![ApiFault::next(ApiFaultKind::InternalError, 1).on(FaultTarget::Dial)], ..Faults::default() };
    let app = spawn_app_with(options).await;

    let call = run_to_the_end(&app, Behaviour::Answer).await;

    assert_eq!(call["status"], "completed");
    let dials = dial_bodies(&app);
    assert_eq!(dials.len(), 2);
    assert_eq!(dials[0]["command_id"], dials[1]["command_id"], "a retry must reuse the command id");
}

#[tokio::test]
async fn a_dial_telnyx_keeps_refusing_ends_failed_with_the_reason() {
    let mut options = Options::default();
    options.sim.faults = Faults {
        api: vec![ApiFault::next(ApiFaultKind::InternalError, 10).on(FaultTarget::Dial)],
        ..Faults::default()
    };
    let app = spawn_app_with(options).await;

    let created = app.schedule_in(test_number(Behaviour::Answer), SOON).await;
    let call = app.wait_until_final(created["id"].as_str().expect("id")).await;

    assert_eq!(call["status"], "failed");
    assert!(call["last_error"].as_str().is_some_and(|e| !e.is_empty()));
    assert_eq!(app.sim.count_requests(RequestKind::Speak), 0);
}

#[tokio::test]
async fn a_429_with_retry_after_is_honoured_and_the_call_completes() {
    let mut options = Options::default();
    options.sim.faults =
        Faults { api: vec![ApiFault::next(ApiFaultKind::RateLimited, 1).on(FaultTarget::Dial)], ..Faults::default() };
    let app = spawn_app_with(options).await;

    let call = run_to_the_end(&app, Behaviour::Answer).await;

    assert_eq!(call["status"], "completed");
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 2);
}

#[tokio::test]
async fn a_dial_whose_answer_never_comes_is_reconciled_from_webhooks_not_redialed() {
    let mut options = Options::default();
    let mut slow = ApiFault::next(ApiFaultKind::Slow, 1).on(FaultTarget::Dial);
    slow.hold_ms = 15_000;
    options.sim.faults = Faults { api: vec![slow], ..Faults::default() };
    options.env.push(("DIALAJOKE_TELNYX_TIMEOUT_SECS", "1".to_owned()));
    let app = spawn_app_with(options).await;

    let call = run_to_the_end(&app, Behaviour::Answer).await;
    let id = call["id"].as_str().expect("id");
    let call = app.wait_for(id, |c| TestApp::event_kinds(c).contains(&"dial_ambiguous".to_owned())).await;

    assert_eq!(call["status"], "completed");
    assert_eq!(counts(&app), [1, 1, 1]);
}

#[tokio::test]
async fn duplicated_and_reordered_webhooks_still_give_one_completed_call() {
    let mut options = Options::default();
    options.sim.faults.webhooks.duplicate = true;
    options.sim.faults.webhooks.reorder = true;
    let app = spawn_app_with(options).await;

    let call = run_to_the_end(&app, Behaviour::Answer).await;

    assert!(common::is_final(&call["status"]));
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 1);
    assert!(app.sim.count_requests(RequestKind::Speak) <= 1);
}

#[tokio::test]
async fn a_call_pending_across_a_restart_is_dialed_once_after_it() {
    let mut app = spawn_app().await;
    let created = app.schedule_in(test_number(Behaviour::Answer), Duration::from_secs(2)).await;
    let id = created["id"].as_str().expect("id").to_owned();

    app.restart().await;
    let call = app.wait_until_final(&id).await;

    assert_eq!(call["status"], "completed");
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 1);
}

#[tokio::test]
async fn a_call_that_fell_due_long_before_a_restart_is_marked_missed() {
    let mut options = Options::default();
    options.env.push(("DIALAJOKE_GRACE_SECS", "1".to_owned()));
    let mut app = spawn_app_with(options).await;
    app.stop().await;
    // Written straight into the store: a call the API accepted before the service went down,
    // due 30 s ago (the API itself only accepts future times).
    let id = uuid::Uuid::new_v4().to_string();
    let due = chrono::Utc::now().timestamp_millis() - 30_000;
    sqlx::query(
        "INSERT INTO calls (id, to_number, due_at, timezone, status, created_at, updated_at) \
         VALUES (?, '+12015550100', ?, 'UTC', 'scheduled', ?, ?)",
    )
    .bind(&id)
    .bind(due)
    .bind(due)
    .bind(due)
    .execute(&app.db().await)
    .await
    .expect("insert");

    app.start().await;
    let call = app.wait_until_final(&id).await;

    assert_eq!(call["status"], "missed");
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 0);
}

#[tokio::test]
async fn an_answering_machine_hears_the_joke_too() {
    let app = spawn_app().await;
    let call = run_to_the_end(&app, Behaviour::Machine).await;
    assert_eq!(call["status"], "completed");
    assert_eq!(counts(&app), [1, 1, 1]);
}

#[tokio::test]
async fn the_same_number_never_hears_the_same_joke_twice_in_a_row() {
    let app = spawn_app().await;
    let mut jokes = Vec::new();
    for _ in 0..4 {
        let call = run_to_the_end(&app, Behaviour::Answer).await;
        jokes.push(call["joke"].as_str().expect("joke").to_owned());
    }
    for pair in jokes.windows(2) {
        assert_ne!(pair[0], pair[1]);
    }
}

#[tokio::test]
async fn a_burst_of_due_calls_is_paced_to_the_configured_dial_rate() {
    let mut options = Options::default();
    options.env.push(("DIALAJOKE_DIAL_LIMIT", "4".to_owned()));
    options.env.push(("DIALAJOKE_DIAL_WINDOW_SECS", "1".to_owned()));
    let app = spawn_app_with(options).await;
    let at = common::at_in(SOON);
    let mut ids = Vec::new();
    for _ in 0..12 {
        let response = app.post_call(&serde_json::json!({"to": test_number(Behaviour::Busy), "at": at})).await;
        ids.push(response.json::<Value>().await.expect("JSON")["id"].as_str().expect("id").to_owned());
    }

    for id in &ids {
        assert_eq!(app.wait_until_final(id).await["status"], "busy");
    }

    assert_eq!(app.sim.count_requests(RequestKind::Dial), 12);
    assert!(
        app.sim.max_dials_in_window(Duration::from_secs(1)) <= 4,
        "{}",
        app.sim.max_dials_in_window(Duration::from_secs(1))
    );
}

#[tokio::test]
async fn webhooks_sent_while_the_service_was_briefly_down_are_delivered_again_and_the_call_completes() {
    let mut options = Options::default();
    options.sim.timing.ring = Duration::from_millis(1500);
    options.sim.timing.first_retry = Duration::from_millis(500);
    options.sim.timing.delivery_attempts = 6;
    let mut app = spawn_app_with(options).await;
    let created = app.schedule_in(test_number(Behaviour::Answer), SOON).await;
    let id = created["id"].as_str().expect("id").to_owned();
    app.wait_for(&id, |call| call["status"] == "ringing").await;

    app.stop().await;
    common::wait_until("a webhook delivery failed while the service was down", || {
        app.sim.journal().iter().any(|entry| matches!(entry, JournalEntry::Delivery(d) if !d.outcome.is_delivered()))
    })
    .await;
    app.start_on_same_port().await;
    let call = app.wait_until_final(&id).await;

    assert_eq!(call["status"], "completed");
    assert_eq!(counts(&app), [1, 1, 1]);
}

/// Writes a call straight into the store as the queue leaves it between claiming a call and
/// hearing back from Telnyx: `dialing`, leased by this single instance, claimed `claimed_ago`.
async fn leave_mid_dial(app: &TestApp, claimed_ago: chrono::Duration) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let now = chrono::Utc::now();
    let claimed = (now - claimed_ago).timestamp_millis();
    sqlx::query(
        "INSERT INTO calls (id, to_number, due_at, timezone, status, attempt, lease_owner, lease_until, \
         dial_started_at, created_at, updated_at) VALUES (?, '+12015550100', ?, 'UTC', 'dialing', 1, 'single', ?, ?, ?, ?)",
    )
    .bind(&id)
    .bind(claimed)
    .bind((now + chrono::Duration::minutes(2)).timestamp_millis())
    .bind(claimed)
    .bind(claimed)
    .bind(claimed)
    .execute(&app.db().await)
    .await
    .expect("insert");
    id
}

#[tokio::test]
async fn a_dial_cut_short_by_a_crash_is_resent_with_the_same_command_id_and_completes() {
    let mut app = spawn_app().await;
    app.stop().await;
    let id = leave_mid_dial(&app, chrono::Duration::seconds(2)).await;

    app.start().await;
    let call = app.wait_until_final(&id).await;

    assert_eq!(call["status"], "completed");
    assert!(TestApp::event_kinds(&call).contains(&"dial_resent".to_owned()));
    let dials = dial_bodies(&app);
    assert_eq!(dials.len(), 1);
    let expected = id.parse::<dialajoke::domain::CallId>().expect("id").command_id("dial", 1);
    assert_eq!(dials[0]["command_id"], expected);
}

#[tokio::test]
async fn a_dial_cut_short_too_long_ago_is_failed_not_redialed() {
    let mut app = spawn_app().await;
    app.stop().await;
    let id = leave_mid_dial(&app, chrono::Duration::minutes(5)).await;

    app.start().await;
    let call = app.wait_until_final(&id).await;

    assert_eq!(call["status"], "failed");
    assert!(call["last_error"].as_str().is_some_and(|e| e.contains("not re-dialed")));
    assert_eq!(app.sim.count_requests(RequestKind::Dial), 0);
}

/// The API requests of `kind` the simulator received, in order.
/// Every API request fails: half of them with a 500, the rest with a 429 asking for a second's wait.
fn telnyx_outage() -> Faults {
    let mut failing = ApiFault::next(ApiFaultKind::InternalError, u32::MAX);
    failing.probability = Some(0.5);
    let mut limited = ApiFault::next(ApiFaultKind::RateLimited, u32::MAX);
    limited.retry_after_secs = 1;
    Faults { api: vec![failing, limited], seed: 7, ..Faults::default() }
}

#[tokio::test]
async fn a_telnyx_outage_fails_the_calls_due_in_it_after_bounded_retries_without_holding_up_intake() {
    let mut options = Options::default();
    options.sim.faults = telnyx_outage();
    let app = spawn_app_with(options).await;
    let mut during = Vec::new();
    for _ in 0..3 {
        during.push(app.schedule_in(test_number(Behaviour::Answer), SOON).await["id"].as_str().expect("id").to_owned());
    }
    common::wait_until("Telnyx refused a dial", || {
        requests_of(&app, RequestKind::Dial).iter().any(|r| r.status.is_some())
    })
    .await;

    let started = tokio::time::Instant::now();
    let later = app.schedule_in(test_number(Behaviour::Answer), Duration::from_secs(10)).await;
    let scheduling_took = started.elapsed();
    let started = tokio::time::Instant::now();
    let (_, event) = common::webhook_event("call.answered", |_| {});
    let webhook = app.post_webhook(event).await;
    let webhook_took = started.elapsed();
    let intake_done = chrono::Utc::now();
    let outcomes = futures_util::future::join_all(during.iter().map(|id| app.wait_until_final(id))).await;
    app.sim.set_faults(Faults::default());
    let later = app.wait_until_final(later["id"].as_str().expect("id")).await;

    assert!(scheduling_took < Duration::from_secs(2), "scheduling took {scheduling_took:?}");
    assert_eq!(webhook.status(), 200);
    assert!(webhook_took < Duration::from_secs(2), "the webhook took {webhook_took:?}");
    let dials = requests_of(&app, RequestKind::Dial);
    assert!(dials.iter().any(|dial| dial.at > intake_done), "the dials were still failing after intake answered");
    for call in &outcomes {
        assert_eq!(call["status"], "failed");
        assert!(call["last_error"].as_str().is_some_and(|e| e.contains("after 4 attempts")), "{call:#}");
        let state = dial_state(call);
        let tries: Vec<&Value> =
            dials.iter().filter(|d| d.body["client_state"] == state).map(|d| &d.body["command_id"]).collect();
        assert_eq!(tries.len(), 4, "a dial is tried 4 times in all");
        assert!(tries.iter().all(|id| *id == tries[0]), "every try carries the same command id");
    }
    assert_eq!(later["status"], "completed");
}

/// The `client_state` our dials carry for `call`.
fn dial_state(call: &Value) -> String {
    base64::engine::general_purpose::STANDARD.encode(call["id"].as_str().expect("id"))
}

#[tokio::test]
async fn speak_and_hangup_cut_off_by_a_connection_reset_are_resent_with_the_same_command_id() {
    let reset_next_command =
        || Faults { api: vec![ApiFault::next(ApiFaultKind::Reset, 1).on(FaultTarget::Commands)], ..Faults::default() };
    let mut options = Options::default();
    // A joke takes seconds, which leaves time to arm the reset of the hangup while it is told.
    options.sim.timing.speak_per_char = Duration::from_millis(20);
    options.sim.faults = reset_next_command();
    let app = spawn_app_with(options).await;
    let created = app.schedule_in(test_number(Behaviour::Answer), SOON).await;
    let id = created["id"].as_str().expect("id");

    app.wait_for(id, |call| TestApp::event_kinds(call).contains(&"speak_requested".to_owned())).await;
    app.sim.set_faults(reset_next_command());
    let call = app.wait_until_final(id).await;
    app.sim.wait_until_idle(common::FLOW_BOUND).await.expect("simulator settles");

    assert_eq!(call["status"], "completed");
    for kind in [RequestKind::Speak, RequestKind::Hangup] {
        let requests = requests_of(&app, kind);
        let statuses: Vec<Option<u16>> = requests.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [None, Some(200)], "{kind:?}: reset, then resent");
        assert_eq!(requests[0].body["command_id"], requests[1].body["command_id"], "{kind:?}");
    }
    assert_eq!(app.sim.calls()[0].speaks_started, 1, "the joke was told once");
}

#[tokio::test]
async fn a_restart_while_telnyx_asks_to_wait_holds_up_neither_scheduling_nor_calls_due_after_it() {
    let mut throttled = ApiFault::next(ApiFaultKind::RateLimited, 1).on(FaultTarget::Dial);
    throttled.retry_after_secs = 10;
    let mut options = Options::default();
    options.sim.faults = Faults { api: vec![throttled], ..Faults::default() };
    let mut app = spawn_app_with(options).await;
    app.stop().await;
    let orphan = leave_mid_dial(&app, chrono::Duration::seconds(2)).await;

    app.start().await;
    let started = tokio::time::Instant::now();
    let due = app.schedule_in(test_number(Behaviour::Busy), SOON).await;
    let scheduling_took = started.elapsed();
    let due = app.wait_until_final(due["id"].as_str().expect("id")).await;
    let orphan_then = app.call(&orphan).await;
    let orphan = app.wait_until_final(&orphan).await;

    assert!(scheduling_took < Duration::from_secs(2), "scheduling took {scheduling_took:?}");
    assert_eq!(due["status"], "busy");
    assert_eq!(orphan_then["status"], "dialing", "the resent dial was still waiting out Telnyx's Retry-After");
    assert_eq!(orphan["status"], "completed");
}

#[tokio::test]
async fn a_webhook_acknowledged_but_not_applied_before_a_crash_is_applied_at_the_next_start() {
    let mut app = spawn_app().await;
    app.stop().await;
    // Written straight into the store, as a crash leaves them: a ringing call, and its busy
    // hangup recorded in the inbox (so already acknowledged to Telnyx) but never applied.
    let id = uuid::Uuid::new_v4().to_string();
    let (event_id, body) = common::webhook_event("call.hangup", |body| {
        let payload = &mut body["data"]["payload"];
        payload["client_state"] = base64::engine::general_purpose::STANDARD.encode(&id).into();
        payload["call_control_id"] = "v3:crashed".into();
        payload["hangup_cause"] = "user_busy".into();
    });
    let now = chrono::Utc::now().timestamp_millis();
    let db = app.db().await;
    sqlx::query(
        "INSERT INTO calls (id, to_number, due_at, timezone, status, attempt, call_control_id, created_at, updated_at) \
         VALUES (?, '+12015550101', ?, 'UTC', 'ringing', 1, 'v3:crashed', ?, ?)",
    )
    .bind(&id)
    .bind(now)
    .bind(now)
    .bind(now)
    .execute(&db)
    .await
    .expect("call inserted");
    sqlx::query(
        "INSERT INTO inbox (event_id, call_key, event_type, body, received_at) VALUES (?, ?, 'call.hangup', ?, ?)",
    )
    .bind(&event_id)
    .bind(&id)
    .bind(body)
    .bind(now)
    .execute(&db)
    .await
    .expect("event inserted");

    app.start().await;
    let call = app.wait_until_final(&id).await;

    assert_eq!(call["status"], "busy");
    let applied: Option<i64> = sqlx::query_scalar("SELECT processed_at FROM inbox WHERE event_id = ?")
        .bind(&event_id)
        .fetch_one(&app.db().await)
        .await
        .expect("event kept");
    assert!(applied.is_some(), "the event is marked applied");
}

#[tokio::test]
async fn a_signed_hangup_for_another_leg_neither_ends_a_ringing_call_nor_takes_over_its_control_id() {
    let mut options = Options::default();
    // The callee does not answer for a minute: the call rings while the stray event arrives.
    options.sim.timing.no_answer_cap = Duration::from_secs(60);
    let app = spawn_app_with(options).await;
    let created = app.schedule_in(test_number(Behaviour::NoAnswer), SOON).await;
    let id = created["id"].as_str().expect("id");
    let ringing = app.wait_for(id, |call| call["status"] == "ringing" && call["call_control_id"].is_string()).await;
    let (event_id, body) = common::webhook_event("call.hangup", |body| {
        let payload = &mut body["data"]["payload"];
        payload["client_state"] = dial_state(&ringing).into();
        payload["call_control_id"] = "v3:someone-elses-leg".into();
        payload["hangup_cause"] = "normal_clearing".into();
    });

    let response = app.post_webhook(body).await;
    assert_eq!(response.status(), 200);
    common::flow::wait_until_applied(&app).await;

    let call = app.call(id).await;
    assert_eq!(call["status"], "ringing");
    assert_eq!(call["call_control_id"], ringing["call_control_id"]);
    let ignored: Vec<&Value> =
        call["events"].as_array().expect("events").iter().filter(|e| e["kind"] == "event_ignored").collect();
    assert_eq!(ignored.len(), 1, "{call:#}");
    let detail = ignored[0]["detail"].as_str().expect("detail");
    assert!(detail.contains("call.hangup") && detail.contains("v3:someone-elses-leg"), "{detail}");
    let error: Option<String> = sqlx::query_scalar("SELECT last_error FROM inbox WHERE event_id = ?")
        .bind(&event_id)
        .fetch_one(&app.db().await)
        .await
        .expect("recorded");
    assert_eq!(error, None, "an ignored event is closed, not retried");
}
