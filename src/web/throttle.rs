//! Sign-in throttling: a guess at the access token costs a cell from the guesser's own bucket
//! (by the connection's peer address: `X-Forwarded-For` is whatever a client says, so it is never
//! read) and one from a bucket shared by everyone, so neither one client nor many together can
//! try more than a handful of tokens a minute. The buckets live in this instance's memory.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, NotUntil, Quota, RateLimiter};

use super::problem::ApiError;

/// One client: 5 guesses at once, then one every 12 s (5 a minute).
const PER_CLIENT: (u32, Duration) = (5, Duration::from_secs(12));
/// Everyone together: 30 at once, then one every 2 s (30 a minute).
const OVERALL: (u32, Duration) = (30, Duration::from_secs(2));
/// Clients remembered before those whose buckets are full again are forgotten.
const REMEMBERED: usize = 10_000;

/// The sign-in buckets (see the module docs).
#[derive(Debug)]
pub struct SignInThrottle {
    per_client: DefaultKeyedRateLimiter<IpAddr>,
    overall: DefaultDirectRateLimiter,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self { per_client: RateLimiter::keyed(quota(PER_CLIENT)), overall: RateLimiter::direct(quota(OVERALL)) }
    }
}

fn quota((burst, period): (u32, Duration)) -> Quota {
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Quota::with_period(period).map_or_else(|| Quota::per_second(burst), |quota| quota.allow_burst(burst))
}

/// The bucket a peer guesses from: its address, or its /64 for IPv6 (one host's usual share, so
/// walking through its own addresses buys nothing).
fn client_of(peer: Option<IpAddr>) -> IpAddr {
    match peer {
        Some(IpAddr::V6(v6)) => {
            let segments = v6.segments();
            IpAddr::V6(Ipv6Addr::new(segments[0], segments[1], segments[2], segments[3], 0, 0, 0, 0))
        }
        Some(v4) => v4,
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

impl SignInThrottle {
    /// Takes one guess from `peer`'s bucket and from everyone's, or says when to come back.
    pub fn admit(&self, peer: Option<IpAddr>) -> Result<(), ApiError> {
        if self.per_client.len() > REMEMBERED {
            self.per_client.retain_recent();
        }
        self.per_client.check_key(&client_of(peer)).map_err(|wait| refused(&wait, "from this address"))?;
        self.overall.check().map_err(|wait| refused(&wait, "to this service just now"))
    }
}

fn refused(wait: &NotUntil<<DefaultClock as Clock>::Instant>, whose: &str) -> ApiError {
    let secs = wait.wait_time_from(DefaultClock::default().now()).as_secs_f64().ceil().max(1.0) as u64;
    tracing::warn!(retry_after_secs = secs, "sign-in attempts throttled {whose}");
    ApiError::TooManyRequests {
        detail: format!("too many sign-in attempts {whose}; wait {secs} s and try again"),
        retry_after_secs: secs,
    }
}
