//! The store's contract, one suite for both backends (`sqlite::…` and `postgres::…`): claims take
//! each due call once, by the store's clock, within the dial limits; leases fence off their
//! former holders; takeovers happen once and only to orphaned dials; the inbox records each event
//! once; the first server secret kept is everyone's; sessions end when ended or run out. The
//! last tests are PostgreSQL's own: what several instances sharing one database see of each
//! other.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::backends::{Backend, TestStore, eventually, on_both_backends};
use dialajoke::domain::limits::{Limits, Scope, Window};
use dialajoke::domain::{CallId, CallStatus, DueAt, HistoryEntry, PhoneNumber, Schedule, Timezone};
use dialajoke::store::{
    CallPatch, Claimed, DialLimits, HeldBack, InboxEvent, Inserted, LeaseTerms, ListQuery, NewCall, QueueNotice, Store,
    StoreError, TakenOver, Takeover,
};

fn terms(owner: &str, ttl: Duration) -> LeaseTerms {
    LeaseTerms { owner: owner.into(), ttl }
}

const LONG: Duration = Duration::from_secs(60);
/// A lease that has run out by the time anyone looks.
const BRIEF: Duration = Duration::from_millis(1);

fn secs(n: i64) -> chrono::Duration {
    chrono::Duration::seconds(n)
}

fn ids(claimed: &Claimed) -> Vec<CallId> {
    claimed.calls.iter().map(|call| call.id).collect()
}

fn rate(dials: u32, window: Duration) -> DialLimits {
    DialLimits { rate: Some((dials, window)), max_active: None }
}

async fn claim(t: &TestStore, owner: &str, ttl: Duration, batch: u32, limits: DialLimits) -> Claimed {
    t.store.claim_due(&terms(owner, ttl), batch, &limits).await.expect("claim")
}

async fn take_over(
    t: &TestStore,
    id: CallId,
    owner: &str,
    takeover: Takeover,
    limits: DialLimits,
) -> Option<TakenOver> {
    t.store.take_over_dial(id, &terms(owner, LONG), &limits, &takeover).await.expect("takeover")
}

fn by_others(resend_within: Duration) -> Takeover {
    Takeover { own_previous_run: false, resend_within }
}

/// Waits until the store's clock says the lease on `id` ran out.
async fn until_orphaned(t: &TestStore, id: CallId) {
    eventually("the lease ran out", || async {
        t.store.orphaned_dials(None).await.expect("orphans").iter().any(|call| call.id == id).then_some(())
    })
    .await;
}

async fn status(t: &TestStore, id: CallId) -> CallStatus {
    t.store.get_call(id).await.expect("read").expect("exists").status
}

/// Moves a call from one status to another, as the call flow or a cancellation would.
async fn move_call(store: &dyn Store, id: CallId, from: CallStatus, to: CallStatus) -> bool {
    let entry = HistoryEntry::now(to.as_str(), None);
    store.change_status(id, from, to, &CallPatch::default(), &entry).await.expect("status change")
}

on_both_backends!(
    a_stored_call_reads_back_with_its_first_history_entry,
    a_due_call_is_claimed_once_under_a_lease_with_its_attempt_bumped,
    a_call_not_yet_due_by_the_stores_clock_is_not_claimed,
    claimers_racing_each_other_claim_every_call_exactly_once,
    a_full_dial_window_holds_claims_back_until_its_oldest_dial_ages_out,
    the_limit_of_calls_at_once_frees_up_when_a_call_ends,
    only_the_lease_holder_under_the_current_attempt_can_renew_it,
    a_live_lease_is_never_taken_over,
    an_expired_lease_is_taken_over_once_and_its_former_holder_is_fenced_off,
    a_dial_too_old_to_resend_is_taken_over_to_be_abandoned,
    at_start_up_an_instance_takes_back_its_own_unfinished_dials,
    a_resent_dial_counts_against_the_dial_rate_and_waits_for_room,
    calls_overdue_beyond_the_grace_period_are_marked_missed,
    an_event_is_recorded_once_and_pending_events_come_in_arrival_order,
    a_calls_events_lock_is_held_by_one_holder_at_a_time,
    listings_filter_by_status_and_count_the_calls_that_ended,
    calls_ringing_within_an_hour_of_one_another_keep_to_the_limits_per_number_and_in_all,
    calls_that_never_ring_do_not_count_against_the_limits,
    writers_racing_on_two_instances_never_overshoot_a_limit,
    the_first_server_secret_kept_is_the_one_every_caller_gets,
    a_session_is_active_until_it_is_ended_or_runs_out,
);

async fn a_stored_call_reads_back_with_its_first_history_entry(t: TestStore) {
    let due = t.now().await + secs(90);

    let id = t.add_call(due).await;

    let call = t.store.get_call(id).await.expect("read").expect("exists");
    assert_eq!((call.status, call.attempt), (CallStatus::Scheduled, 0));
    assert_eq!(call.due_at.instant().timestamp_millis(), due.timestamp_millis());
    let history = t.store.history(id).await.expect("history");
    assert_eq!(history.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["scheduled"]);
}

async fn a_due_call_is_claimed_once_under_a_lease_with_its_attempt_bumped(t: TestStore) {
    let id = t.add_call(t.now().await - secs(1)).await;

    let first = claim(&t, "a", LONG, 10, DialLimits::unlimited()).await;
    let second = claim(&t, "b", LONG, 10, DialLimits::unlimited()).await;

    assert_eq!(ids(&first), [id]);
    assert!(second.calls.is_empty(), "claimed twice: {second:?}");
    let call = t.store.get_call(id).await.expect("read").expect("exists");
    assert_eq!((call.status, call.attempt), (CallStatus::Dialing, 1));
    let kinds: Vec<String> = t.store.history(id).await.expect("history").into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["scheduled", "dialing"]);
}

async fn a_call_not_yet_due_by_the_stores_clock_is_not_claimed(t: TestStore) {
    let id = t.add_call(t.now().await + secs(30)).await;

    let claimed = claim(&t, "a", LONG, 10, DialLimits::unlimited()).await;

    assert!(claimed.calls.is_empty() && claimed.held_back.is_none(), "{claimed:?}");
    assert_eq!(status(&t, id).await, CallStatus::Scheduled);
}

async fn claimers_racing_each_other_claim_every_call_exactly_once(t: TestStore) {
    let due = t.now().await - secs(1);
    for _ in 0..200 {
        t.add_call(due).await;
    }
    let mut claimers = Vec::new();
    for index in 0..4 {
        let store = t.another_instance().await;
        claimers.push(tokio::spawn(async move {
            let (owner, mut mine) = (format!("instance-{index}"), Vec::new());
            loop {
                let claimed = store.claim_due(&terms(&owner, LONG), 7, &DialLimits::unlimited()).await.expect("claim");
                if claimed.calls.is_empty() {
                    return mine;
                }
                mine.extend(claimed.calls.into_iter().map(|call| call.id));
            }
        }));
    }

    let mut times_claimed: HashMap<CallId, usize> = HashMap::new();
    for claimer in claimers {
        for id in claimer.await.expect("claimer ran") {
            *times_claimed.entry(id).or_default() += 1;
        }
    }

    assert_eq!(times_claimed.len(), 200);
    assert!(times_claimed.values().all(|times| *times == 1), "some calls were claimed twice");
}

async fn a_full_dial_window_holds_claims_back_until_its_oldest_dial_ages_out(t: TestStore) {
    let due = t.now().await - secs(1);
    for _ in 0..5 {
        t.add_call(due).await;
    }
    let limits = rate(3, LONG);

    let first = claim(&t, "a", LONG, 10, limits).await;
    let second = claim(&t, "b", LONG, 10, limits).await;

    assert_eq!(first.calls.len(), 3);
    let Some(HeldBack::Pacing(free_at)) = first.held_back else { panic!("not paced: {first:?}") };
    let dialed_at = first.calls[0].updated_at;
    assert!((free_at - dialed_at - secs(60)).num_milliseconds().abs() < 1000, "{free_at} vs {dialed_at}");
    assert!(second.calls.is_empty());
    assert_eq!(second.held_back, Some(HeldBack::Pacing(free_at)));
}

async fn the_limit_of_calls_at_once_frees_up_when_a_call_ends(t: TestStore) {
    let due = t.now().await - secs(1);
    for _ in 0..3 {
        t.add_call(due).await;
    }
    let limits = DialLimits { rate: None, max_active: Some(2) };

    let first = claim(&t, "a", LONG, 10, limits).await;
    let while_full = claim(&t, "a", LONG, 10, limits).await;
    let ended = first.calls[0].id;
    assert!(move_call(t.store.as_ref(), ended, CallStatus::Dialing, CallStatus::Failed).await);
    let after_one_ended = claim(&t, "a", LONG, 10, limits).await;

    assert_eq!((first.calls.len(), first.held_back), (2, Some(HeldBack::ActiveCalls)));
    assert_eq!((while_full.calls.len(), while_full.held_back), (0, Some(HeldBack::ActiveCalls)));
    assert_eq!(after_one_ended.calls.len(), 1);
}

async fn only_the_lease_holder_under_the_current_attempt_can_renew_it(t: TestStore) {
    let id = t.add_call(t.now().await - secs(1)).await;
    claim(&t, "a", LONG, 1, DialLimits::unlimited()).await;

    let renew = |owner: &'static str, attempt: u32| {
        let store = std::sync::Arc::clone(&t.store);
        async move { store.renew_lease(id, &terms(owner, LONG), attempt).await.expect("renew") }
    };

    assert!(renew("a", 1).await);
    assert!(!renew("b", 1).await, "another instance renewed the lease");
    assert!(!renew("a", 2).await, "a later attempt's token renewed this one's lease");
}

async fn a_live_lease_is_never_taken_over(t: TestStore) {
    let id = t.add_call(t.now().await - secs(1)).await;
    claim(&t, "a", LONG, 1, DialLimits::unlimited()).await;

    let orphans = t.store.orphaned_dials(None).await.expect("orphans");
    let taken = take_over(&t, id, "b", by_others(Duration::from_secs(45)), DialLimits::unlimited()).await;

    assert!(orphans.is_empty(), "{orphans:?}");
    assert!(taken.is_none(), "a live lease was taken over: {taken:?}");
}

async fn an_expired_lease_is_taken_over_once_and_its_former_holder_is_fenced_off(t: TestStore) {
    let id = t.add_call(t.now().await - secs(1)).await;
    claim(&t, "a", BRIEF, 1, DialLimits::unlimited()).await;
    until_orphaned(&t, id).await;

    let by_b = take_over(&t, id, "b", by_others(Duration::from_secs(45)), DialLimits::unlimited()).await;
    let by_c = take_over(&t, id, "c", by_others(Duration::from_secs(45)), DialLimits::unlimited()).await;

    let Some(TakenOver::Resend(call)) = by_b else { panic!("not taken over for a resend: {by_b:?}") };
    assert_eq!(call.attempt, 2);
    assert!(by_c.is_none(), "taken over twice: {by_c:?}");
    assert!(!t.store.renew_lease(id, &terms("a", LONG), 1).await.expect("renew"), "the former holder renewed");
    assert!(t.store.renew_lease(id, &terms("b", LONG), 2).await.expect("renew"));
}

async fn a_dial_too_old_to_resend_is_taken_over_to_be_abandoned(t: TestStore) {
    let id = t.add_call(t.now().await - secs(1)).await;
    claim(&t, "a", BRIEF, 1, DialLimits::unlimited()).await;
    until_orphaned(&t, id).await;

    let taken = take_over(&t, id, "b", by_others(Duration::ZERO), DialLimits::unlimited()).await;

    assert!(matches!(taken, Some(TakenOver::Abandon(_))), "{taken:?}");
}

async fn at_start_up_an_instance_takes_back_its_own_unfinished_dials(t: TestStore) {
    let id = t.add_call(t.now().await - secs(1)).await;
    claim(&t, "a", LONG, 1, DialLimits::unlimited()).await;
    let restart = Takeover { own_previous_run: true, resend_within: Duration::from_secs(45) };

    let own = t.store.orphaned_dials(Some("a")).await.expect("orphans");
    let by_other = take_over(&t, id, "b", restart, DialLimits::unlimited()).await;
    let by_itself = take_over(&t, id, "a", restart, DialLimits::unlimited()).await;

    assert_eq!(own.iter().map(|call| call.id).collect::<Vec<_>>(), [id]);
    assert!(by_other.is_none(), "another instance took a live lease: {by_other:?}");
    assert!(matches!(by_itself, Some(TakenOver::Resend(ref call)) if call.attempt == 2), "{by_itself:?}");
}

async fn a_resent_dial_counts_against_the_dial_rate_and_waits_for_room(t: TestStore) {
    let now = t.now().await;
    let (first, second) = (t.add_call(now - secs(2)).await, t.add_call(now - secs(1)).await);
    let limits = rate(2, LONG);
    assert_eq!(ids(&claim(&t, "a", BRIEF, 1, limits).await), [first]);
    until_orphaned(&t, first).await;

    let resent = take_over(&t, first, "b", by_others(Duration::from_secs(45)), limits).await;
    let after_resend = claim(&t, "a", BRIEF, 1, limits).await;

    assert!(matches!(resent, Some(TakenOver::Resend(_))), "{resent:?}");
    assert!(after_resend.calls.is_empty(), "the resend was not counted: {after_resend:?}");
    assert!(matches!(after_resend.held_back, Some(HeldBack::Pacing(_))));
    assert_eq!(status(&t, second).await, CallStatus::Scheduled);
    // And a dial that would be resent waits while the window is full.
    let _ = t.store.renew_lease(first, &terms("b", BRIEF), 2).await.expect("renew");
    until_orphaned(&t, first).await;
    assert!(take_over(&t, first, "c", by_others(Duration::from_secs(45)), limits).await.is_none());
}

async fn calls_overdue_beyond_the_grace_period_are_marked_missed(t: TestStore) {
    let now = t.now().await;
    let (long_ago, lately) = (t.add_call(now - secs(1800)).await, t.add_call(now - secs(60)).await);

    let missed = t.store.mark_missed(Duration::from_secs(600)).await.expect("mark");

    assert_eq!(missed, [long_ago]);
    assert_eq!((status(&t, long_ago).await, status(&t, lately).await), (CallStatus::Missed, CallStatus::Scheduled));
}

fn event(id: &str, key: &str) -> InboxEvent {
    InboxEvent {
        event_id: id.into(),
        call_key: key.into(),
        event_type: "call.initiated".into(),
        body: id.as_bytes().to_vec(),
        received_at: Utc::now(),
    }
}

async fn an_event_is_recorded_once_and_pending_events_come_in_arrival_order(t: TestStore) {
    let store = &t.store;
    assert!(store.inbox_insert(&event("e1", "k")).await.expect("insert"));
    assert!(store.inbox_insert(&event("e2", "k")).await.expect("insert"));
    assert!(!store.inbox_insert(&event("e1", "k")).await.expect("insert"), "a duplicate was recorded");

    let pending = store.inbox_pending("k").await.expect("pending");
    assert_eq!(pending.iter().map(|e| e.body.as_slice()).collect::<Vec<_>>(), [b"e1", b"e2"]);
    store.inbox_finish(pending[0].seq, None, false).await.expect("finish");
    store.inbox_finish(pending[1].seq, Some("boom"), false).await.expect("finish");

    let left = store.inbox_pending("k").await.expect("pending");
    assert_eq!((left.len(), left[0].attempts), (1, 1));
    assert_eq!(store.inbox_pending_keys().await.expect("keys"), ["k"]);
    store.inbox_finish(left[0].seq, None, false).await.expect("finish");
    assert!(store.inbox_pending_keys().await.expect("keys").is_empty());
}

async fn a_calls_events_lock_is_held_by_one_holder_at_a_time(t: TestStore) {
    let store = &t.store;
    let held = store.lock_events("call-1").await.expect("lock").expect("free at first");

    assert!(store.lock_events("call-1").await.expect("lock").is_none(), "held twice");
    let other = store.lock_events("call-2").await.expect("lock");
    assert!(other.is_some(), "another call's lock was not free");
    held.release().await;
    assert!(store.lock_events("call-1").await.expect("lock").is_some(), "not free after release");
}

async fn listings_filter_by_status_and_count_the_calls_that_ended(t: TestStore) {
    let due = t.now().await + secs(600);
    let (first, second, third) = (t.add_call(due).await, t.add_call(due).await, t.add_call(due).await);
    assert!(move_call(t.store.as_ref(), second, CallStatus::Scheduled, CallStatus::Cancelled).await);

    let query = ListQuery { status: Some(CallStatus::Scheduled), limit: 10, offset: 0 };
    let scheduled: Vec<CallId> = t.store.list_calls(&query).await.expect("list").iter().map(|c| c.id).collect();
    let counts = t.store.outcome_counts(t.now().await - secs(3600), 900).await.expect("counts");

    assert_eq!(scheduled, [third, first]);
    assert_eq!(counts.iter().map(|c| (c.status, c.count)).collect::<Vec<_>>(), [(CallStatus::Cancelled, 1)]);
}

/// Stores a call to `to` due at `due`, as the calls service would.
async fn try_add(store: &dyn Store, to: &str, due: DateTime<Utc>) -> Result<Inserted, StoreError> {
    let schedule = Schedule {
        to: PhoneNumber::parse(to).expect("valid"),
        due_at: DueAt::from_stored(due),
        timezone: Timezone::parse("UTC").expect("zone"),
        note: None,
    };
    store.insert_call(&NewCall { id: CallId::new(), schedule, idempotency: None }).await
}

fn refused_by(result: Result<Inserted, StoreError>) -> (Scope, Window, u64) {
    match result {
        Err(StoreError::LimitReached(hit)) => (hit.bound.scope, hit.bound.window, hit.bound.limit),
        other => panic!("expected a limit to refuse the call, got {other:?}"),
    }
}

const ONE: &str = "+353 1 234 5678";
const OTHER: &str = "+353 1 555 0100";

async fn calls_ringing_within_an_hour_of_one_another_keep_to_the_limits_per_number_and_in_all(t: TestStore) {
    let t = t.with_limits(Limits { per_number_hour: 2, global_hour: 3, ..Limits::NONE }).await;
    let at = t.now().await + secs(3600);
    for _ in 0..2 {
        assert!(matches!(try_add(t.store.as_ref(), ONE, at).await, Ok(Inserted::Created(_))));
    }

    let half_an_hour_later = refused_by(try_add(t.store.as_ref(), ONE, at + secs(1800)).await);
    let just_over_an_hour_later = try_add(t.store.as_ref(), ONE, at + secs(3601)).await;
    let another_number = try_add(t.store.as_ref(), OTHER, at).await;
    let in_all = refused_by(try_add(t.store.as_ref(), OTHER, at + secs(600)).await);

    assert_eq!(half_an_hour_later, (Scope::Number, Window::Hour, 2));
    assert!(matches!(just_over_an_hour_later, Ok(Inserted::Created(_))), "{just_over_an_hour_later:?}");
    assert!(matches!(another_number, Ok(Inserted::Created(_))), "{another_number:?}");
    assert_eq!(in_all, (Scope::All, Window::Hour, 3));
    let listed = t.store.list_calls(&ListQuery { status: None, limit: 100, offset: 0 }).await.expect("list");
    assert_eq!(listed.len(), 4, "refused calls are not stored");
}

async fn calls_that_never_ring_do_not_count_against_the_limits(t: TestStore) {
    let t = t.with_limits(Limits { per_number_day: 1, ..Limits::NONE }).await;
    let at = t.now().await + secs(3600);
    let Ok(Inserted::Created(first)) = try_add(t.store.as_ref(), ONE, at).await else { panic!("first call stored") };
    refused_by(try_add(t.store.as_ref(), ONE, at + secs(7200)).await);

    assert!(move_call(t.store.as_ref(), first.id, CallStatus::Scheduled, CallStatus::Cancelled).await);

    assert!(matches!(try_add(t.store.as_ref(), ONE, at + secs(7200)).await, Ok(Inserted::Created(_))));
}

async fn writers_racing_on_two_instances_never_overshoot_a_limit(t: TestStore) {
    let t = t.with_limits(Limits { per_number_hour: 5, global_day: 8, ..Limits::NONE }).await;
    let other = t.another_instance().await;
    let at = t.now().await + secs(3600);

    let attempts = (0..24).map(|i| {
        let store = if i % 2 == 0 { Arc::clone(&t.store) } else { Arc::clone(&other) };
        let to = if i % 3 == 0 { OTHER } else { ONE };
        tokio::spawn(async move { try_add(store.as_ref(), to, at).await })
    });
    let results = futures_util::future::join_all(attempts).await;

    let stored = results.iter().filter(|r| matches!(r.as_ref().expect("joined"), Ok(Inserted::Created(_)))).count();
    let refused =
        results.iter().filter(|r| matches!(r.as_ref().expect("joined"), Err(StoreError::LimitReached(_)))).count();
    assert_eq!((stored, refused), (8, 16), "{results:?}");
    let listed = t.store.list_calls(&ListQuery { status: None, limit: 100, offset: 0 }).await.expect("list");
    let to_one = listed.iter().filter(|call| call.to.as_str() == "+35312345678").count();
    assert!((3..=5).contains(&to_one), "at most 5 to one number, the rest of the 8 to the other: {to_one}");
}

async fn the_first_server_secret_kept_is_the_one_every_caller_gets(t: TestStore) {
    let first = t.store.server_secret(b"first secret").await.expect("secret");

    let second = t.store.server_secret(b"second secret").await.expect("secret");

    assert_eq!((first.as_slice(), second.as_slice()), (&b"first secret"[..], &b"first secret"[..]));
}

async fn a_session_is_active_until_it_is_ended_or_runs_out(t: TestStore) {
    let store = &t.store;
    store.start_session("kept", LONG).await.expect("start");
    store.start_session("brief", Duration::from_secs(1)).await.expect("start");
    assert!(store.session_active("kept").await.expect("look"));
    assert!(!store.session_active("never-started").await.expect("look"));

    store.end_session("kept").await.expect("end");

    assert!(!store.session_active("kept").await.expect("look"), "an ended session still works");
    eventually("the brief session ran out", || async {
        (!store.session_active("brief").await.expect("look")).then_some(())
    })
    .await;
}

/// What instances sharing one PostgreSQL database see of each other.
mod shared_database {
    use super::*;

    async fn open() -> Option<TestStore> {
        let opened = TestStore::open(Backend::Postgres).await;
        if opened.is_none() {
            eprintln!("SKIPPED: DIALAJOKE_TEST_POSTGRES_URL is not set");
        }
        opened
    }

    async fn next_notice(notices: &mut tokio::sync::broadcast::Receiver<QueueNotice>) -> QueueNotice {
        loop {
            let notice = tokio::time::timeout(Duration::from_secs(10), notices.recv()).await;
            match notice.expect("a notice within 10 s").expect("notices flow") {
                QueueNotice::Resync => continue,
                notice => return notice,
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_scheduled_or_cancelled_on_one_instance_is_heard_by_the_others() {
        let Some(a) = open().await else { return };
        let b = a.another_instance().await;
        let (mut queue, mut changes) = (b.queue_notices(), b.changes());
        let due: DateTime<Utc> = a.now().await + secs(600);

        let id = a.add_call(due).await;
        let scheduled = next_notice(&mut queue).await;
        assert!(move_call(a.store.as_ref(), id, CallStatus::Scheduled, CallStatus::Cancelled).await);
        let cancelled = next_notice(&mut queue).await;

        let QueueNotice::Scheduled(heard, heard_due) = scheduled else { panic!("{scheduled:?}") };
        assert_eq!((heard, heard_due.instant().timestamp_millis()), (id, due.timestamp_millis()));
        assert_eq!(cancelled, QueueNotice::Cancelled(id));
        assert_eq!(changes.recv().await.expect("a change"), id);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_calls_events_lock_holds_across_instances_and_is_freed_when_its_holder_dies() {
        let Some(survivor) = open().await else { return };
        let dying = survivor.another_instance().await;
        let held = dying.lock_events("call-1").await.expect("lock").expect("free at first");

        let while_held = survivor.store.lock_events("call-1").await.expect("lock");
        // The holder dies without letting go: its transaction goes with its connections.
        drop(held);
        drop(dying);

        assert!(while_held.is_none(), "two instances held one call's events lock");
        eventually("the dead holder's lock is free", || async {
            survivor.store.lock_events("call-1").await.expect("lock")
        })
        .await;
    }
}
