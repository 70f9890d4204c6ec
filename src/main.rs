//! The `dialajoke` command: serve (the default), run the Telnyx simulator, or apply migrations.

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
    /// Serve against an in-process Telnyx simulator: no account needed, nothing leaves this machine.
    Demo,
    /// Run the Telnyx Call Control simulator on its own.
    Simulate(Box<dialajoke::sim::SimArgs>),
    /// Create or upgrade the database, then exit.
    Migrate,
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tokio_cron_scheduler=warn"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}

fn config_path(cli: &Cli) -> Option<PathBuf> {
    cli.config.clone().or_else(|| {
        let default = PathBuf::from("config.dev.json");
        default.exists().then_some(default)
    })
}

#[actix_web::main]
async fn main() -> ExitCode {
    init_logging();
    let cli = Cli::parse();
    let file = config_path(&cli);
    let outcome = match cli.command {
        None | Some(Command::Serve) => serve(Config::load(file.as_deref())).await,
        Some(Command::Demo) => dialajoke::demo::run(file.as_deref()).await,
        Some(Command::Simulate(args)) => dialajoke::sim::serve(*args).await.map_err(|e| e.to_string()),
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
    let config = config.map_err(|e| e.to_string())?;
    if config.clock_offset_secs != 0 {
        tracing::warn!(
            offset_secs = config.clock_offset_secs,
            "DIALAJOKE_CLOCK_OFFSET_SECS is set: this instance's clock is deliberately wrong (for tests of clock skew)"
        );
        dialajoke::clock::skew(config.clock_offset_secs);
    }
    let app = Application::build(config).await.map_err(|e| e.to_string())?;
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

async fn migrate(file: Option<&std::path::Path>) -> Result<(), String> {
    let url = Config::database_url(file, |name| std::env::var(name).ok()).map_err(|e| e.to_string())?;
    dialajoke::store::open(&url, dialajoke::calls::limits::Limits::NONE).await.map_err(|e| e.to_string())?;
    println!("database ready");
    Ok(())
}
