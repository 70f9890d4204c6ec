//! Several instances on one PostgreSQL database: real `dialajoke serve` processes behind HAProxy
//! (round-robin, health checks on `/ready`), the Telnyx simulator in this process. Each call is dialed exactly once
//! (never under a second command id, never placed twice), on time by the database's clock, within
//! the dial limits of the whole cluster, and an instance killed with SIGKILL loses nothing: its
//! leased dials are taken over once their leases run out.
//!
//! They need `DIALAJOKE_TEST_POSTGRES_URL` (`make test` says loudly when it is missing; CI sets
//! it) and HAProxy (`make balancer-deps`; they fail saying so when it is missing). They run one at
//! a time, as each loads the whole machine, and print their figures.

use dialajoke_test_support as common;

mod balancer;
mod cluster;
mod figures;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use cluster::{Cluster, DueCall, simulator_config};
use common::audit::{AcceptedCall, Stored, Verdict, placed_by_call, settle};
use common::postgres::server_url;
use figures::Figures;
use telnyx_sim::{ApiFault, ApiFaultKind, Behaviour, DialLimit, FaultTarget, Faults, RequestKind};

/// The cluster tests load the whole machine: one at a time.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a run may take to settle after its last call fell due.
const SETTLE_BOUND: Duration = Duration::from_secs(150);

fn server_or_skip(test: &str) -> Option<String> {
    let server = server_url();
    if server.is_none() {
        eprintln!("SKIPPED {test}: DIALAJOKE_TEST_POSTGRES_URL is not set");
    }
    server
}

fn setting(name: &'static str, value: impl ToString) -> (&'static str, String) {
    (name, value.to_string())
}

fn accepted(calls: &[DueCall]) -> Vec<AcceptedCall> {
    calls.iter().map(|c| c.call.clone()).collect()
}

/// Waits for the run to settle, judges it, and measures it.
async fn settle_and_judge(cluster: &Cluster, calls: &[DueCall], window: Duration) -> (Verdict, Figures) {
    let stored = settle(&cluster.sim, SETTLE_BOUND, || Stored::read_postgres(&cluster.db)).await;
    let verdict = Verdict::judge(&stored, &cluster.sim, &accepted(calls));
    let mut figures = Figures::measure(&cluster.sim, &cluster.db, calls, window).await;
    figures.instances = cluster.instances.len();
    figures.relayed = cluster.balancer.answered().await;
    (verdict, figures)
}

/// What the verdict counted, for the printed figures.
fn losses(verdict: &Verdict) -> String {
    format!(
        "final={} lost={} duplicates={} stuck={} wrong={}",
        verdict.final_calls,
        verdict.lost.len(),
        verdict.duplicates.len(),
        verdict.stuck.len(),
        verdict.wrong.len()
    )
}

fn nothing_early_nothing_redialed(figures: &Figures, cluster: &Cluster) {
    assert!(figures.redialed.is_empty(), "dialed under a second command id: {:?}", &figures.redialed[..]);
    assert!(
        figures.earliest >= chrono::Duration::zero(),
        "a call was dialed {} ms before it was due (logs in {})",
        -figures.earliest.num_milliseconds(),
        cluster.dir().display()
    );
}

#[test]
fn the_readme_shows_the_balancer_configuration_the_cluster_runs() {
    let readme = include_str!("../../README.md");

    assert!(readme.contains(balancer::CONFIG), "README.md must show docs/haproxy.cfg as it is");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_dial_2000_calls_exactly_once_within_the_cluster_wide_limits() {
    let Some(server) = server_or_skip("three_instances_dial_2000_calls") else { return };
    let _alone = ONE_AT_A_TIME.lock().await;
    let (calls, dials_per_window, window, at_once) = (2000, 1000, Duration::from_secs(5), 300);
    let mut sim = simulator_config();
    sim.dial_limit = DialLimit { max_dials: dials_per_window, window };
    let shared = [
        setting("DIALAJOKE_DIAL_LIMIT", dials_per_window),
        setting("DIALAJOKE_DIAL_WINDOW_SECS", window.as_secs()),
        setting("DIALAJOKE_MAX_ACTIVE_CALLS", at_once),
    ];
    let names = [("node-1", vec![]), ("node-2", vec![]), ("node-3", vec![])];
    let mut cluster = Cluster::new(&server, sim, &shared, &names).await;
    cluster.start_all().await;

    let first_due = chrono::Utc::now() + chrono::Duration::seconds(15);
    let scheduled = cluster.schedule(calls, Behaviour::Answer, first_due, Duration::from_secs(3)).await;
    let (verdict, figures) = settle_and_judge(&cluster, &scheduled, window).await;

    println!("cluster: {} {figures}", losses(&verdict));
    verdict.assert_all_good(cluster.dir());
    nothing_early_nothing_redialed(&figures, &cluster);
    assert_eq!(verdict.final_calls, calls);
    assert!(figures.peak_per_window <= dials_per_window, "{} dials in one {window:?}", figures.peak_per_window);
    assert!(figures.peak_at_once <= at_once, "{} calls at once", figures.peak_at_once);
    assert_eq!(figures.relayed.len(), figures.instances, "HAProxy's stats list every instance");
    assert!(figures.relayed.iter().all(|(_, count)| *count > 0), "an instance got no requests: {:?}", figures.relayed);
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_run_has_its_leased_dials_taken_over_with_none_dialed_twice() {
    let Some(server) = server_or_skip("an_instance_killed_mid_run") else { return };
    let _alone = ONE_AT_A_TIME.lock().await;
    let (calls, window) = (600, Duration::from_secs(5));
    let mut sim = simulator_config();
    sim.dial_limit = DialLimit { max_dials: 1000, window };
    // Dials are answered a quarter of a second after Telnyx acted on them, so the kill finds
    // dials in flight whose answer never comes back.
    let mut latency = ApiFault::next(ApiFaultKind::Slow, u32::MAX).on(FaultTarget::Dial);
    latency.hold_ms = 250;
    sim.faults = Faults { api: vec![latency], ..Faults::default() };
    // A short lease keeps the run short: the takeover comes 10 to 25 s after the kill.
    let shared = [setting("DIALAJOKE_DIAL_LIMIT", 1000), setting("DIALAJOKE_LEASE_SECS", 10)];
    let names = [("node-1", vec![]), ("node-2", vec![]), ("node-3", vec![])];
    let mut cluster = Cluster::new(&server, sim, &shared, &names).await;
    cluster.start_all().await;

    let first_due = chrono::Utc::now() + chrono::Duration::seconds(8);
    let scheduled = cluster.schedule(calls, Behaviour::Answer, first_due, Duration::from_secs(4)).await;
    let sim = &cluster.sim;
    common::wait_until("a fifth of the calls were dialed", || sim.count_requests(RequestKind::Dial) >= calls / 5).await;
    let (victim, undialed) = kill_an_instance_holding_leases_it_has_not_dialed(&mut cluster).await;
    let (verdict, mut figures) = settle_and_judge(&cluster, &scheduled, window).await;
    figures.kills = 1;

    println!("cluster-kill: {} {figures} killed={victim} leased_undialed_at_kill={undialed}", losses(&verdict));
    verdict.assert_all_good(cluster.dir());
    nothing_early_nothing_redialed(&figures, &cluster);
    assert_eq!(verdict.final_calls, calls);
    assert!(figures.taken_over > 0, "no dial was taken over: {figures}");
    cluster.finish().await;
}

/// Watches the calls being claimed and, as soon as one instance holds leases on at least three
/// calls whose dial the simulator has not seen yet, kills it: those calls can only complete if
/// another instance takes them over. Returns its name and how many such leases it held.
async fn kill_an_instance_holding_leases_it_has_not_dialed(cluster: &mut Cluster) -> (String, usize) {
    let deadline = tokio::time::Instant::now() + SETTLE_BOUND;
    loop {
        let leased: Vec<(String, String)> = sqlx::query_as(
            "SELECT id::text, lease_owner FROM calls WHERE status = 'dialing' AND call_control_id IS NULL \
             AND lease_owner IS NOT NULL",
        )
        .fetch_all(&cluster.db)
        .await
        .expect("leases");
        let dialed: HashSet<String> = placed_by_call(&cluster.sim).into_keys().collect();
        let mut undialed: HashMap<String, usize> = HashMap::new();
        for (_, owner) in leased.iter().filter(|(id, _)| !dialed.contains(id)) {
            *undialed.entry(owner.clone()).or_default() += 1;
        }
        if let Some((owner, count)) =
            undialed.into_iter().filter(|(_, count)| *count >= 3).max_by_key(|(_, count)| *count)
        {
            cluster.instances.iter_mut().find(|i| i.name() == owner).expect("a known instance").kill();
            return (owner, count);
        }
        assert!(tokio::time::Instant::now() < deadline, "no instance ever held undialed leases");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_whose_clock_is_minutes_off_fires_nothing_early_or_late() {
    let Some(server) = server_or_skip("an_instance_whose_clock_is_minutes_off") else { return };
    let _alone = ONE_AT_A_TIME.lock().await;
    let skews = [("ahead-4min", 240), ("behind-4min", -240)];
    let names: Vec<(&str, Vec<_>)> =
        skews.iter().map(|(name, offset)| (*name, vec![setting("DIALAJOKE_CLOCK_OFFSET_SECS", offset)])).collect();
    let mut cluster = Cluster::new(&server, simulator_config(), &[], &names).await;
    let mut all = Vec::new();

    // One instance at a time, so each is the one that fires its calls.
    for index in 0..skews.len() {
        cluster.instances[index].start().await;
        let first_due = chrono::Utc::now() + chrono::Duration::seconds(4);
        all.extend(cluster.schedule(10, Behaviour::Answer, first_due, Duration::from_secs(4)).await);
        settle(&cluster.sim, SETTLE_BOUND, || Stored::read_postgres(&cluster.db)).await;
        cluster.instances[index].kill();
    }
    let (verdict, figures) = settle_and_judge(&cluster, &all, Duration::from_secs(5)).await;

    println!("cluster-skew: {} {figures} offsets_secs=[240 -240]", losses(&verdict));
    verdict.assert_all_good(cluster.dir());
    nothing_early_nothing_redialed(&figures, &cluster);
    let claimed_by: Vec<&str> = figures.claims.iter().map(|(owner, _)| owner.as_str()).collect();
    assert_eq!(claimed_by, ["ahead-4min", "behind-4min"], "each skewed instance fired its own calls");
    // Minutes off would be minutes late; a few seconds is the machine being busy.
    assert!(figures.worst_lateness < chrono::Duration::seconds(30), "a call was {} late", figures.worst_lateness);
    cluster.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_scheduled_on_an_instance_that_dies_at_once_are_fired_on_time_by_another() {
    let Some(server) = server_or_skip("calls_scheduled_on_an_instance_that_dies_at_once") else { return };
    let _alone = ONE_AT_A_TIME.lock().await;
    let names = [("scheduler", vec![]), ("survivor", vec![])];
    let mut cluster = Cluster::new(&server, simulator_config(), &[], &names).await;
    cluster.start_all().await;
    // The survivor has nothing scheduled, so only a notice can wake it for these calls.
    let first_due = chrono::Utc::now() + chrono::Duration::seconds(3);

    let scheduled = cluster.schedule_on(0, 5, Behaviour::Answer, first_due, Duration::from_secs(1)).await;
    cluster.instances[0].kill();
    let (verdict, figures) = settle_and_judge(&cluster, &scheduled, Duration::from_secs(5)).await;

    println!("cluster-notify: {} {figures}", losses(&verdict));
    verdict.assert_all_good(cluster.dir());
    nothing_early_nothing_redialed(&figures, &cluster);
    let claimed_by: Vec<&str> = figures.claims.iter().map(|(owner, _)| owner.as_str()).collect();
    assert_eq!(claimed_by, ["survivor"]);
    // Without the notice the survivor would sleep until its next refill, an hour away.
    assert!(figures.worst_lateness < chrono::Duration::seconds(30), "a call was {} late", figures.worst_lateness);
    cluster.finish().await;
}
