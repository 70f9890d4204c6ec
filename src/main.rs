//! The `dialajoke` command: serve (the default) or apply migrations. (`make run` without a Telnyx
//! account starts `dialajoke-demo`, crates/demo, which adds the simulator.)

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dialajoke::Application;
use dialajoke::config::Config;

/// Schedules phone calls that tell a joke, through Telnyx Call Control v2.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Configuration file (default: ./config.dev.json when it exists). Environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the page, the API and the webhook (the default).
    Serve,
    /// Create or upgrade the database, then exit.
    Migrate,
}

#[actix_web::main]
async fn main() -> ExitCode {
    dialajoke::init_logging();
    let cli = Cli::parse();
    let file = dialajoke::config_file(cli.config);
    let outcome = match cli.command {
        None | Some(Command::Serve) => serve(Config::load(file.as_deref())).await,
        Some(Command::Migrate) => migrate(file.as_deref()).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dialajoke: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Result<Config, dialajoke::config::ConfigError>) -> Result<(), String> {
    let config = config.map_err(|e| report(&e))?;
    if config.server.clock_offset_secs != 0 {
        tracing::warn!(
            offset_secs = config.server.clock_offset_secs,
            "DIALAJOKE_CLOCK_OFFSET_SECS is set: this instance's clock is deliberately wrong (for tests of clock skew)"
        );
        dialajoke::domain::clock::skew(config.server.clock_offset_secs);
    }
    let app = Application::build(config).await.map_err(|e| report(&e))?;
    app.run_until_stopped().await.map_err(|e| report(&e))
}

async fn migrate(file: Option<&std::path::Path>) -> Result<(), String> {
    let url = Config::database_url(file, |name| std::env::var(name).ok()).map_err(|e| report(&e))?;
    dialajoke::store::open(url.expose(), dialajoke::domain::limits::Limits::NONE)
        .await
        .map_err(|e| format!("cannot open database {url}: {}", report(&e)))?;
    println!("database ready");
    Ok(())
}

/// An error with all its causes, as the one line the operator reads.
fn report(error: &(dyn std::error::Error + 'static)) -> String {
    dialajoke::errors::CauseChain(error).to_string()
}
