//! `dialajoke-demo` (what `make run` starts without a Telnyx account): the service wired to an
//! in-process Telnyx simulator, so a call scheduled on the page rings through the whole flow
//! and nothing leaves this machine. It is a binary of its own so that the service's binary
//! carries no simulator.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use dialajoke::Application;
use dialajoke::config::Config;
use dialajoke::errors::CauseChain;
use telnyx_sim::{self as sim, SimConfig};

/// The key the service and the simulator share in the demo (it opens nothing real).
const DEMO_KEY: &str = "demo-key";
/// The caller id the demo dials from (a fictional number).
const DEMO_FROM: &str = "+1 202 555 0100";

/// Dial-A-Joke against a simulated Telnyx: no account needed, nothing leaves this machine.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: ./config.dev.json when it exists). Environment variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[actix_web::main]
async fn main() -> ExitCode {
    dialajoke::init_logging();
    let file = dialajoke::config_file(Cli::parse().config);
    match run(file.as_deref()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dialajoke-demo: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the demo until SIGINT/SIGTERM.
async fn run(file: Option<&Path>) -> Result<(), String> {
    let mut sim_config = SimConfig::local(DEMO_KEY);
    sim_config.timing = sim::Timing::realistic();
    let simulator = sim::start(sim_config).await.map_err(|e| format!("simulator: {}", CauseChain(&e)))?;
    let (api_base, public_key) = (simulator.api_base(), simulator.public_key_base64());
    let lookup = |name: &str| {
        account(name, &api_base, &public_key).or_else(|| std::env::var(name).ok()).or_else(|| demo_default(name))
    };
    let mut config = Config::from_sources(file, lookup).map_err(|e| CauseChain(&e).to_string())?;
    if config.server.public_url.is_none() {
        config.server.public_url = Some(format!("http://{}", config.server.bind));
    }
    let app = Application::build(config).await.map_err(|e| CauseChain(&e).to_string())?;
    banner(&app, &api_base);
    let outcome = app.run_until_stopped().await.map_err(|e| CauseChain(&e).to_string());
    simulator.stop().await;
    outcome
}

/// The simulator's account settings; they win over the environment, so a real key set in the
/// shell is never sent to the simulator.
fn account(name: &str, api_base: &str, public_key: &str) -> Option<String> {
    let value = match name {
        "TELNYX_API_BASE" => api_base,
        "TELNYX_API_KEY" => DEMO_KEY,
        "TELNYX_PUBLIC_KEY" => public_key,
        "TELNYX_CONNECTION_ID" => "demo-connection",
        "TELNYX_FROM_NUMBER" => DEMO_FROM,
        _ => return None,
    };
    Some(value.to_owned())
}

/// Defaults that suit the demo and that the environment may still change: the simulator's test
/// numbers are in the US and Ireland.
fn demo_default(name: &str) -> Option<String> {
    (name == "DIALAJOKE_ALLOWED_COUNTRIES").then(|| "US,IE".to_owned())
}

fn banner(app: &Application, api_base: &str) {
    let page = format!("http://{}/", app.addr());
    println!();
    println!("  Dial-A-Joke is running against a SIMULATED Telnyx ({api_base}): no real phone will ring.");
    println!("  Open {page} and schedule a call; see the README for the simulator's test numbers.");
    println!("  To go live, set TELNYX_API_KEY, TELNYX_PUBLIC_KEY, TELNYX_CONNECTION_ID and TELNYX_FROM_NUMBER,");
    println!("  then run `make run` again (or `dialajoke serve`).");
    println!();
}
