//! `telnyx-sim`: the simulator as a process of its own, for running the service against it by
//! hand or from a script (`make cluster`). Keep it on loopback: its `/sim/` endpoints need no key.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A simulator of the Telnyx Call Control API v2: no account needed, nothing leaves this machine.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(flatten)]
    sim: telnyx_sim::SimArgs,
}

#[actix_web::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match telnyx_sim::serve(Cli::parse().sim).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("telnyx-sim: {}", with_causes(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and each of its causes, as one line.
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        line.push_str(&format!(": {next}"));
        cause = next.source();
    }
    line
}
