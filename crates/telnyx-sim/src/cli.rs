//! The `telnyx-sim` binary's options: the simulator as a standalone process. It keeps its
//! signing seed between runs, writes its public key where the service's start-up can read it,
//! prints a banner, and serves until Ctrl-C.

use std::fs;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use rand::rngs::OsRng;

use crate::behaviour::NumberBehaviour;
use crate::config::{DialLimit, SimConfig, Timing};
use crate::faults::{ApiFault, ApiFaultKind, FaultTarget, Faults, WebhookFaults};
use crate::{SimError, SimHandle, start};

/// Options of `telnyx-sim` (no `Debug`: the API key may be a real one).
#[derive(Clone, clap::Args)]
pub struct SimArgs {
    /// Address to listen on (keep it on loopback: the /sim/ endpoints need no key).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub bind: SocketAddr,
    /// The Bearer key the API accepts.
    #[arg(long, env = "TELNYX_API_KEY", default_value = "sim-key", hide_env_values = true)]
    pub api_key: String,
    /// Where the webhook signing seed is kept between runs (created when missing).
    #[arg(long, default_value = ".sim/seed")]
    pub seed_file: PathBuf,
    /// Where the public key is written at start (base64), for the service to verify with.
    #[arg(long, default_value = ".sim/public_key")]
    pub public_key_file: PathBuf,
    /// Where webhooks go when a Dial names no webhook_url.
    #[arg(long, default_value = "http://127.0.0.1:8080/webhook")]
    pub webhook_url: String,
    /// How fast simulated calls go.
    #[arg(long, value_enum, default_value = "realistic")]
    pub timing: TimingProfile,
    /// Callee behaviour for a number, e.g. +12015550100=busy (repeatable).
    #[arg(long = "behaviour", value_name = "NUMBER=BEHAVIOUR")]
    pub behaviours: Vec<NumberBehaviour>,
    /// Dials accepted in any 5 s window before 429 / 90103.
    #[arg(long, default_value_t = 150)]
    pub dial_limit: usize,
    /// Faults to inject from the start.
    #[command(flatten)]
    pub faults: FaultArgs,
}

/// Timing presets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum TimingProfile {
    /// Seconds of ringing, speech at a speaking pace.
    Realistic,
    /// Everything within a few hundred milliseconds.
    Fast,
}

/// Fault injection flags (the same faults `POST /sim/faults` takes as JSON).
#[derive(Clone, Debug, clap::Args)]
pub struct FaultArgs {
    /// Answer API requests badly: internal-error, rate-limited, slow or reset.
    #[arg(long, value_enum)]
    pub api_fault: Option<ApiFaultKind>,
    /// Only the next N matching requests get the API fault.
    #[arg(long)]
    pub api_fault_count: Option<u32>,
    /// Each matching request gets the API fault with this probability.
    #[arg(long)]
    pub api_fault_probability: Option<f64>,
    /// Which requests the API fault hits.
    #[arg(long, value_enum, default_value = "all")]
    pub api_fault_target: FaultTarget,
    /// Retry-After seconds of a rate-limited answer.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
    /// How long a slow answer is held after acting.
    #[arg(long, default_value_t = 3_000)]
    pub slow_ms: u64,
    /// Deliver every webhook twice.
    #[arg(long)]
    pub duplicate_webhooks: bool,
    /// Deliver each call's webhooks in a shuffled order.
    #[arg(long)]
    pub reorder_webhooks: bool,
    /// Delay every webhook by this many milliseconds.
    #[arg(long, default_value_t = 0)]
    pub webhook_delay_ms: u64,
    /// Give up a webhook after this many failed attempts.
    #[arg(long)]
    pub webhook_give_up_after: Option<u32>,
    /// Never deliver events of this type, e.g. call.hangup (repeatable).
    #[arg(long = "drop-webhook", value_name = "EVENT_TYPE")]
    pub drop_webhooks: Vec<String>,
    /// Seed of the random choices behind probabilities and shuffles.
    #[arg(long, default_value_t = 0)]
    pub fault_seed: u64,
}

impl FaultArgs {
    /// The faults these flags ask for.
    pub fn to_faults(&self) -> Faults {
        let api = self.api_fault.map(|kind| ApiFault {
            kind,
            target: self.api_fault_target,
            count: self.api_fault_count,
            probability: self.api_fault_probability,
            retry_after_secs: self.retry_after_secs,
            hold_ms: self.slow_ms,
        });
        Faults {
            api: api.into_iter().collect(),
            webhooks: WebhookFaults {
                duplicate: self.duplicate_webhooks,
                reorder: self.reorder_webhooks,
                delay_ms: self.webhook_delay_ms,
                give_up_after: self.webhook_give_up_after,
                drop_event_types: self.drop_webhooks.clone(),
                ..WebhookFaults::default()
            },
            seed: self.fault_seed,
        }
    }
}

/// Runs the simulator until Ctrl-C.
pub async fn serve(args: SimArgs) -> Result<(), SimError> {
    let config = SimConfig {
        bind: args.bind,
        api_key: args.api_key.clone(),
        signing_seed: Some(load_or_create_seed(&args.seed_file)?),
        default_webhook_url: Some(args.webhook_url.clone()),
        timing: match args.timing {
            TimingProfile::Realistic => Timing::realistic(),
            TimingProfile::Fast => Timing::fast(),
        },
        faults: args.faults.to_faults(),
        behaviours: args.behaviours.iter().map(|o| (o.number.clone(), o.behaviour)).collect(),
        dial_limit: DialLimit { max_dials: args.dial_limit, ..DialLimit::default() },
    };
    let sim = start(config).await.map_err(|source| SimError::Start { addr: args.bind, source })?;
    write_file(&args.public_key_file, &format!("{}\n", sim.public_key_base64()))?;
    print_banner(&sim, &args);
    run_until_interrupted(sim).await
}

async fn run_until_interrupted(mut sim: SimHandle) -> Result<(), SimError> {
    tokio::select! {
        interrupted = tokio::signal::ctrl_c() => {
            sim.stop().await;
            interrupted.map_err(SimError::Signal)
        }
        ended = &mut sim.serving => match ended {
            Ok(result) => result.map_err(SimError::Server),
            Err(failure) => Err(SimError::Server(io::Error::other(failure))),
        },
    }
}

fn print_banner(sim: &SimHandle, args: &SimArgs) {
    let admin = format!("http://{}/sim", sim.addr());
    println!("Telnyx Call Control simulator");
    println!("  API base     {}  (Bearer key from --api-key / TELNYX_API_KEY)", sim.api_base());
    println!("  Webhooks to  {}  (unless a Dial sets webhook_url)", args.webhook_url);
    println!("  Public key   {}", sim.public_key_base64());
    println!("               (written to {})", args.public_key_file.display());
    println!("  Inspect      {admin}/journal  {admin}/calls  (faults: POST {admin}/faults)");
    println!("Ctrl-C to stop.");
}

/// The seed kept in `path` (base64), or a new one saved there.
fn load_or_create_seed(path: &Path) -> Result<[u8; 32], SimError> {
    match fs::read_to_string(path) {
        Ok(text) => STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
            .ok_or_else(|| SimError::BadSeed { path: path.to_owned() }),
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            write_file(path, &format!("{}\n", STANDARD.encode(seed)))?;
            keep_private(path)?;
            Ok(seed)
        }
        Err(source) => Err(SimError::File { path: path.to_owned(), source }),
    }
}

fn write_file(path: &Path, contents: &str) -> Result<(), SimError> {
    let failed = |source| SimError::File { path: path.to_owned(), source };
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(failed)?;
    }
    let mut file = fs::File::create(path).map_err(failed)?;
    file.write_all(contents.as_bytes()).map_err(failed)
}

/// The seed is a private key: only its owner may read it.
#[cfg(unix)]
fn keep_private(path: &Path) -> Result<(), SimError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
        .map_err(|source| SimError::File { path: path.to_owned(), source })
}

#[cfg(not(unix))]
fn keep_private(_path: &Path) -> Result<(), SimError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::behaviour::Behaviour;

    #[derive(Parser)]
    struct Command {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn flags_become_behaviours_and_faults() {
        let args = [
            "telnyx-sim",
            "--behaviour",
            "+12015550100=busy",
            "--api-fault",
            "rate-limited",
            "--api-fault-count",
            "2",
            "--api-fault-target",
            "dial",
            "--duplicate-webhooks",
            "--drop-webhook",
            "call.hangup",
        ];

        let sim = Command::try_parse_from(args).expect("flags parse").sim;
        let faults = sim.faults.to_faults();

        assert_eq!(sim.behaviours[0].behaviour, Behaviour::Busy);
        assert_eq!(faults.api[0].kind, ApiFaultKind::RateLimited);
        assert_eq!((faults.api[0].count, faults.api[0].target), (Some(2), FaultTarget::Dial));
        assert!(faults.webhooks.duplicate);
        assert_eq!(faults.webhooks.drop_event_types, ["call.hangup"]);
    }

    #[test]
    fn the_seed_is_created_once_and_kept_between_runs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("nested/seed");

        let first = load_or_create_seed(&path).expect("created");
        let second = load_or_create_seed(&path).expect("read back");

        assert_eq!(first, second);
    }

    #[test]
    fn a_seed_file_that_is_not_32_bytes_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("seed");
        fs::write(&path, "c2hvcnQ=").expect("written");

        assert!(matches!(load_or_create_seed(&path), Err(SimError::BadSeed { .. })));
    }
}
