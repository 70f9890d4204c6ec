//! HTTP client for the Telnyx Call Control v2 commands the service needs: dial, speak, hang up.
//!
//! Retries happen only where a repeat cannot do harm: when the request never left (connect
//! errors), when Telnyx said "not now" (429, 408, 5xx), or, for speak and hangup, when a reply was
//! lost (Telnyx drops a repeated `command_id`). A dial whose reply is lost is never repeated: it
//! ends as [`TelnyxError::Ambiguous`] and the webhooks decide what happened.

use super::retry::{Attempt, RetryPolicy, error_kind};
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use std::time::Duration;

use super::commands::DataEnvelope;
pub use super::commands::{DialAccepted, DialRequest, HangupRequest, RetriesPolicy, SpeakRequest};
pub use super::error::TelnyxError;

/// Where and how to reach Telnyx.
#[derive(Clone)]
pub struct ClientConfig {
    /// API root, e.g. `https://api.telnyx.com/v2` (a trailing slash is fine).
    pub api_base: String,
    /// The secret API key, sent as a Bearer token. Never printed.
    pub api_key: String,
    /// Limit for one request, from connecting to the last byte of the reply.
    pub request_timeout: Duration,
    /// Total tries of one command, the first included (0 is treated as 1).
    pub max_attempts: u32,
    /// Back-off ceiling after the first failure; doubles with each further failure.
    pub initial_backoff: Duration,
    /// Upper bound of any wait between attempts, `Retry-After` included.
    pub max_backoff: Duration,
}

impl ClientConfig {
    /// The usual settings: 10 s per request, 4 attempts, back-off from 200 ms up to 10 s.
    pub fn new(api_base: impl Into<String>, api_key: impl Into<String>) -> Self {
        Self {
            api_base: api_base.into(),
            api_key: api_key.into(),
            request_timeout: Duration::from_secs(10),
            max_attempts: 4,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    // Written by hand so the API key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("api_base", &self.api_base)
            .field("api_key", &"[redacted]")
            .field("request_timeout", &self.request_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .finish()
    }
}

/// A Telnyx Call Control client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct TelnyxClient {
    http: reqwest::Client,
    /// `{api_base}/calls`; command URLs are built from it segment by segment.
    calls_url: Url,
    policy: RetryPolicy,
}

impl std::fmt::Debug for TelnyxClient {
    // Written by hand so the Authorization header inside `http` can never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelnyxClient")
            .field("calls_url", &self.calls_url.as_str())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// What to do when a request went out but no reply came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LostReply {
    /// Safe to resend: Telnyx drops a repeated `command_id` on the same call.
    Resend,
    /// Resending could ring the callee twice: stop with [`TelnyxError::Ambiguous`].
    Stop,
}

impl TelnyxClient {
    /// Builds the client and its connection pool; fails on an unusable configuration.
    pub fn new(config: ClientConfig) -> Result<Self, TelnyxError> {
        let calls_url = calls_url(&config.api_base)?;
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", config.api_key)).map_err(|_| {
            TelnyxError::InvalidConfig("the API key contains characters not allowed in a header".into())
        })?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .default_headers(HeaderMap::from_iter([(AUTHORIZATION, auth)]))
            .timeout(config.request_timeout)
            // Shorter than the whole-request limit so that a slow connect is reported as a connect
            // error (nothing sent, safe to retry) rather than as a lost reply.
            .connect_timeout(config.request_timeout / 2)
            // Idle connections are dropped before a load balancer is likely to close them, so a
            // request rarely goes out on a dead connection and ends with a lost reply.
            .pool_idle_timeout(Duration::from_secs(30))
            // Telnyx does not redirect API calls; following one would resend the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("dialajoke/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TelnyxError::InvalidConfig(format!("HTTP client: {e}")))?;
        let policy = RetryPolicy {
            max_attempts: config.max_attempts.max(1),
            initial_backoff: config.initial_backoff,
            max_backoff: config.max_backoff,
        };
        Ok(Self { http, calls_url, policy })
    }

    /// Asks Telnyx to place a call (`POST /calls`). Success means Telnyx accepted it, not that
    /// anyone answered.
    #[tracing::instrument(skip(self, req), fields(command_id = tracing::field::Empty))]
    pub async fn dial(&self, req: &DialRequest) -> Result<DialAccepted, TelnyxError> {
        let body = encode_command(req);
        let response = self.send(&self.calls_url, &body, LostReply::Stop).await?;
        // Telnyx has accepted the call by now, so an unreadable reply is as good as a lost one.
        let bytes = response.bytes().await.map_err(|e| {
            tracing::warn!(error_kind = error_kind(&e), "dial reply could not be read");
            TelnyxError::Ambiguous
        })?;
        serde_json::from_slice::<DataEnvelope<DialAccepted>>(&bytes).map(|envelope| envelope.data).map_err(|e| {
            tracing::warn!(error = %e, "dial reply lacks the call ids");
            TelnyxError::Ambiguous
        })
    }

    /// Plays text-to-speech on an answered call (`POST /calls/{id}/actions/speak`).
    #[tracing::instrument(skip(self, req), fields(command_id = tracing::field::Empty))]
    pub async fn speak(&self, call_control_id: &str, req: &SpeakRequest) -> Result<(), TelnyxError> {
        self.command(call_control_id, "speak", req).await
    }

    /// Hangs up a call (`POST /calls/{id}/actions/hangup`). A call that already ended gives a
    /// [`TelnyxError::Rejected`] for which [`TelnyxError::is_call_ended`] is true.
    #[tracing::instrument(skip(self, req), fields(command_id = tracing::field::Empty))]
    pub async fn hangup(&self, call_control_id: &str, req: &HangupRequest) -> Result<(), TelnyxError> {
        self.command(call_control_id, "hangup", req).await
    }

    /// Sends a call action; the reply body (`{"data":{"result":"ok"}}`) carries nothing we need.
    async fn command(&self, call_control_id: &str, action: &str, req: &impl Serialize) -> Result<(), TelnyxError> {
        let url = self.action_url(call_control_id, action)?;
        let body = encode_command(req);
        self.send(&url, &body, LostReply::Resend).await.map(drop)
    }

    /// `{calls_url}/{call_control_id}/actions/{action}`, the id percent-encoded as one segment.
    fn action_url(&self, call_control_id: &str, action: &str) -> Result<Url, TelnyxError> {
        // The URL library silently drops "." and ".." segments; refuse them instead.
        if matches!(call_control_id, "" | "." | "..") {
            return Err(TelnyxError::InvalidCallControlId);
        }
        let mut url = self.calls_url.clone();
        url.path_segments_mut().expect("calls_url was checked to be a base URL").extend([
            call_control_id,
            "actions",
            action,
        ]);
        Ok(url)
    }

    /// Posts `body` until it succeeds, fails for good, or the attempts run out.
    async fn send(&self, url: &Url, body: &[u8], lost_reply: LostReply) -> Result<reqwest::Response, TelnyxError> {
        let mut attempt = 1;
        loop {
            let (reason, retry_after) = match self.attempt(url, body).await {
                Attempt::Done(response) => return Ok(response),
                Attempt::Failed(error) => return Err(error),
                Attempt::ReplyLost(reason) if lost_reply == LostReply::Stop => {
                    tracing::warn!(attempt, reason, "reply lost; not resending");
                    return Err(TelnyxError::Ambiguous);
                }
                Attempt::ReplyLost(reason) => (reason.to_owned(), None),
                Attempt::Retryable { reason, retry_after } => (reason, retry_after),
            };
            if attempt >= self.policy.max_attempts {
                return Err(TelnyxError::Exhausted { attempts: attempt, last: reason });
            }
            let delay = self.policy.delay(attempt, retry_after);
            tracing::warn!(attempt, %reason, delay_ms = delay.as_millis(), "Telnyx request failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// One POST, sorted by what it allows next.
    async fn attempt(&self, url: &Url, body: &[u8]) -> Attempt {
        let sent =
            self.http.post(url.clone()).header(CONTENT_TYPE, "application/json").body(body.to_vec()).send().await;
        match sent {
            Ok(response) => Attempt::from_response(response).await,
            Err(error) => Attempt::from_transport_error(&error),
        }
    }
}

/// Serializes a command, giving it a fresh `command_id` when the caller set none, so that every
/// attempt carries the same id and Telnyx can drop repeats. The id is recorded on the span.
fn encode_command(req: &impl Serialize) -> Vec<u8> {
    let mut value = serde_json::to_value(req).expect("command structs always serialize");
    if let Value::Object(fields) = &mut value {
        let id = fields.entry("command_id").or_insert_with(|| Value::String(uuid::Uuid::new_v4().to_string()));
        tracing::Span::current().record("command_id", id.as_str());
    }
    serde_json::to_vec(&value).expect("a JSON value always serializes")
}

/// `{api_base}/calls`, checking that the base is an absolute http(s) URL.
fn calls_url(api_base: &str) -> Result<Url, TelnyxError> {
    let invalid = |why: &str| TelnyxError::InvalidConfig(format!("api_base {why}"));
    let mut url = Url::parse(api_base).map_err(|_| invalid("is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("must be http or https"));
    }
    url.path_segments_mut().map_err(|_| invalid("cannot have a path"))?.pop_if_empty().push("calls");
    Ok(url)
}
