//! `make bench`: the service's speed and memory, measured against ceilings taken in the same run.
//! Writes target/bench/report.md, report.json and PNG plots. Nothing here asserts a timing; the
//! report states each target and how far the run is from it.

mod ceiling;
mod driver;
mod intake;
mod queue;
mod report;
mod service;
mod web;

use std::path::{Path, PathBuf};
use std::time::Duration;

use report::{Latency, Report, Series, Target, ms};

/// How long each load runs.
const RUN: Duration = Duration::from_secs(10);
/// Connection counts for webhook intake.
const INTAKE_LEVELS: [usize; 3] = [1, 16, 64];
/// Calls listed on the page under load.
const LISTED: usize = 100;

fn main() {
    ceiling::serve_if_asked();
    // `cargo bench` passes --bench; `cargo test --all-targets` runs this binary without it, and a
    // test run must not turn into a ten-minute benchmark.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("the benchmark runs with `make bench`; skipped here");
        return;
    }
    // The service's own log lines (from the in-process queue) when RUST_LOG asks for them.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(run());
}

fn out_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from);
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).expect("target/bench");
    dir
}

async fn run() {
    let out = out_dir();
    let work = tempfile::tempdir().expect("scratch directory");
    report::load_font().expect("plot font");
    let scale = queue::Scale { pending: 1_000_000, due: 100_000, spread: Duration::from_secs(10), paced: 400 };
    if let Ok(only) = std::env::var("DIALAJOKE_BENCH_ONLY") {
        let figures = match only.as_str() {
            "intake" => intake::measure(work.path(), &INTAKE_LEVELS, RUN).await.section(),
            "queue" => queue::measure(work.path(), &scale).await.section(&scale),
            "web" => web::measure(work.path(), 16, RUN, LISTED).await.sections(LISTED).0,
            other => panic!("DIALAJOKE_BENCH_ONLY is intake, queue or web, not {other:?}"),
        };
        println!("{}", serde_json::to_string_pretty(&figures.to_json()).expect("json"));
        return;
    }
    eprintln!("webhook intake ({} s per run)", RUN.as_secs());
    let intake = intake::measure(work.path(), &INTAKE_LEVELS, RUN).await;
    eprintln!("timed queue ({} pending, {} due in {} s)", scale.pending, scale.due, scale.spread.as_secs());
    let queue = queue::measure(work.path(), &scale).await;
    eprintln!("page and API ({LISTED} calls listed)");
    let web = web::measure(work.path(), 16, RUN, LISTED).await;

    let mut plots = Vec::new();
    plot_intake(&out, &intake, &mut plots);
    plot_lateness(&out, &queue, &mut plots);
    let (page, idle) = web.sections(LISTED);
    let report = Report {
        context: context(),
        sections: vec![intake.section(), queue.section(&scale), page, idle],
        targets: targets(&intake, &queue, &web),
        plots,
    };
    report.write(&out).expect("report written");
    eprintln!("report: {}", out.join("report.md").display());
}

fn context() -> Vec<(&'static str, String)> {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    vec![
        ("date", chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ("machine", format!("{cores} cores, {}", std::env::consts::ARCH)),
        ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ("command", "make bench".to_owned()),
        (
            "load",
            format!(
                "closed-loop HTTP/1.1 keep-alive connections, {} s per run, driver on the same machine",
                RUN.as_secs()
            ),
        ),
    ]
}

fn plot_intake(out: &Path, intake: &intake::Intake, plots: &mut Vec<(String, String)>) {
    let series: Vec<Series<'_>> = intake
        .levels
        .iter()
        .flat_map(|level| {
            [
                Series { label: format!("service, {} conn", level.connections), samples: &level.service.samples },
                Series { label: format!("verify-only, {} conn", level.connections), samples: &level.ceiling.samples },
            ]
        })
        .collect();
    let file = "intake_latency.png";
    match report::percentile_plot(&out.join(file), "Webhook intake latency", "latency (ms, log)", &series) {
        Ok(()) => plots.push((file.into(), "Webhook intake latency by percentile".into())),
        Err(error) => eprintln!("plot {file}: {error}"),
    }
}

fn plot_lateness(out: &Path, queue: &queue::QueueFigures, plots: &mut Vec<(String, String)>) {
    let series = [Series { label: "100k calls due in 10 s".into(), samples: &queue.lateness }];
    let file = "queue_lateness.png";
    match report::percentile_plot(
        &out.join(file),
        "Timed queue lateness (dispatch minus due)",
        "lateness (ms, log)",
        &series,
    ) {
        Ok(()) => plots.push((file.into(), "Timed queue lateness by percentile".into())),
        Err(error) => eprintln!("plot {file}: {error}"),
    }
}

fn at_most(what: &str, goal: f64, measured: f64, unit: &str) -> Target {
    let met = measured <= goal;
    let distance = if met {
        format!("{:.1} {unit} under", goal - measured)
    } else {
        format!("{:.1} {unit} over", measured - goal)
    };
    Target {
        what: what.into(),
        goal: format!("≤ {goal} {unit}"),
        measured: format!("{measured:.1} {unit}"),
        met,
        distance,
    }
}

fn at_least(what: &str, goal: f64, measured: f64, unit: &str) -> Target {
    let met = measured >= goal;
    let distance = format!("{:.0}% of the goal", 100.0 * measured / goal);
    Target {
        what: what.into(),
        goal: format!("≥ {goal} {unit}"),
        measured: format!("{measured:.0} {unit}"),
        met,
        distance,
    }
}

fn targets(intake: &intake::Intake, queue: &queue::QueueFigures, web: &web::WebFigures) -> Vec<Target> {
    let mut targets = Vec::new();
    if let Some(top) = intake.levels.iter().max_by_key(|level| level.connections) {
        let ratio = 100.0 * top.service.rate / top.ceiling.rate;
        let what = format!("intake at {} connections, share of the verify-only ceiling", top.connections);
        targets.push(at_least(&what, 75.0, ratio, "%"));
        let what = format!("intake p99 at {} connections", top.connections);
        targets.push(at_most(&what, 5.0, ms(top.service.latency.p99_us), "ms"));
    }
    targets.push(at_most(
        "accepted webhooks missing from the store",
        0.0,
        intake.acknowledged.saturating_sub(intake.stored) as f64,
        "events",
    ));
    targets.push(at_most("RSS with 1M pending calls", 100.0, queue.peak_kib as f64 / 1024.0, "MiB"));
    targets.push(at_most("ready with 1M pending calls", 2000.0, queue.ready.as_secs_f64() * 1000.0, "ms"));
    let lateness = Latency::of(&queue.lateness);
    targets.push(at_most("100k due in 10 s: p99 lateness", 10.0, ms(lateness.p99_us), "ms"));
    targets.push(at_most("100k due in 10 s: lost", 0.0, queue.lost as f64, "calls"));
    targets.push(at_most("100k due in 10 s: dispatched twice", 0.0, queue.twice as f64, "calls"));
    targets.push(at_most(
        "default pacing: most dials in any 5 s",
        f64::from(queue.paced_limit),
        queue.paced_peak as f64,
        "dials",
    ));
    targets.push(at_least("GET / (100 calls) at 16 connections", 20_000.0, web.page.rate, "req/s"));
    targets.push(at_least("POST /api/calls at 16 connections", 20_000.0, web.api.rate, "req/s"));
    targets.push(at_most("idle RSS", 20.0, web.idle.peak_kib as f64 / 1024.0, "MiB"));
    let mut ready = web.ready_ms.clone();
    ready.sort_by(f64::total_cmp);
    targets.push(at_most("ready with an empty store (median of 5)", 100.0, ready[ready.len() / 2], "ms"));
    targets
}
