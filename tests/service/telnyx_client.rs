//! The Telnyx client against a scripted stand-in for Telnyx running in this test binary: what it
//! sends (checked against the official schemas), and how it retries, waits and gives up.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use dialajoke::telnyx::client::{
    ClientConfig, DialRequest, HangupRequest, RetriesPolicy, SpeakRequest, TelnyxClient, TelnyxError,
};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const API_KEY: &str = "KEY0123456789abcdef_secret";

/// One scripted answer of the stand-in.
enum Reply {
    Json {
        status: u16,
        body: Value,
        retry_after: Option<&'static str>,
    },
    Text(u16, &'static str),
    /// Never answer: the request stays open until the client gives up on it.
    Hold,
}

fn reply(status: u16, body: Value) -> Reply {
    Reply::Json { status, body, retry_after: None }
}

/// One request as the stand-in received it.
#[derive(Clone, Debug)]
struct Seen {
    path: String,
    authorization: Option<String>,
    body: Value,
    at: Instant,
}

#[derive(Default)]
struct PeerState {
    script: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

struct Peer {
    base: String,
    state: web::Data<PeerState>,
}

impl Peer {
    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("log lock").clone()
    }
}

async fn answer(req: HttpRequest, body: web::Bytes, state: web::Data<PeerState>) -> HttpResponse {
    state.seen.lock().expect("log lock").push(Seen {
        path: req.path().to_owned(),
        authorization: req.headers().get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
    });
    let next = state.script.lock().expect("script lock").pop_front();
    match next {
        Some(Reply::Json { status, body, retry_after }) => {
            let mut response = HttpResponse::build(status_code(status));
            if let Some(value) = retry_after {
                response.insert_header(("Retry-After", value));
            }
            response.json(body)
        }
        Some(Reply::Text(status, text)) => HttpResponse::build(status_code(status)).body(text),
        Some(Reply::Hold) => std::future::pending().await,
        None if req.path().ends_with("/calls") => HttpResponse::Ok().json(fixture("dial.response.json")),
        None => HttpResponse::Ok().json(fixture("command.response.json")),
    }
}

fn status_code(status: u16) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(status).expect("valid status")
}

/// Starts the stand-in on a free local port; it answers from `script`, then with success.
fn start_peer(script: Vec<Reply>) -> Peer {
    let state = web::Data::new(PeerState { script: Mutex::new(script.into()), ..PeerState::default() });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a local port");
    let port = listener.local_addr().expect("bound address").port();
    let shared = state.clone();
    let server = HttpServer::new(move || App::new().app_data(shared.clone()).default_service(web::to(answer)))
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
    tokio::spawn(server);
    Peer { base: format!("http://127.0.0.1:{port}/v2"), state }
}

fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/telnyx/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("JSON")
}

/// Quick retries so that tests stay fast.
fn fast_config(base: &str) -> ClientConfig {
    ClientConfig {
        request_timeout: Duration::from_secs(2),
        max_attempts: 3,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..ClientConfig::new(base, API_KEY)
    }
}

fn client(base: &str) -> TelnyxClient {
    TelnyxClient::new(fast_config(base)).expect("client builds")
}

fn dial_request() -> DialRequest {
    DialRequest {
        connection_id: "7267xxxxxxxxxxxxxx".into(),
        to: "+18005550100".into(),
        from: "+18005550101".into(),
        webhook_url: Some("https://jokes.example.com/webhook".into()),
        webhook_url_method: Some("POST".into()),
        client_state: Some("Y2FsbC0x".into()),
        command_id: Some("call-1/dial".into()),
        timeout_secs: Some(30),
        answering_machine_detection: Some("detect".into()),
        time_limit_secs: Some(300),
        webhook_retries_policies: [("call.hangup".to_owned(), RetriesPolicy { retries_ms: vec![1_000, 2_000, 5_000] })]
            .into(),
    }
}

fn speak_request() -> SpeakRequest {
    SpeakRequest {
        payload: "Why did the scarecrow win an award?".into(),
        voice: "Telnyx.KokoroTTS.af".into(),
        language: Some("en-US".into()),
        payload_type: Some("text".into()),
        client_state: Some("Y2FsbC0x".into()),
        command_id: Some("call-1/speak".into()),
    }
}

/// Problems of `body` against `components.schemas.<component>` of the official spec, plus any
/// field the component does not declare (the spec allows extra fields, so a misspelt one would
/// otherwise pass unnoticed).
pub(crate) fn schema_problems(component: &str, body: &Value) -> Vec<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/telnyx/call-control.schemas.json");
    let mut spec: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("spec")).expect("JSON");
    // Validating the whole document through a root $ref lets the component's internal
    // "#/components/..." references resolve; the OpenAPI keywords around it are ignored.
    spec["$ref"] = json!(format!("#/components/schemas/{component}"));
    let validator = jsonschema::draft202012::new(&spec).expect("spec compiles as a schema");
    let mut problems: Vec<String> = validator.iter_errors(body).map(|e| e.to_string()).collect();
    let declared =
        spec["components"]["schemas"][component]["properties"].as_object().expect("component has properties");
    let fields = body.as_object().expect("body is an object");
    problems
        .extend(fields.keys().filter(|key| !declared.contains_key(*key)).map(|key| format!("undeclared field {key}")));
    problems
}

#[tokio::test]
async fn dial_sends_a_schema_valid_body_with_the_bearer_key_and_returns_the_call_ids() {
    let peer = start_peer(vec![]);

    let accepted = client(&peer.base).dial(&dial_request()).await.expect("dial");

    let seen = peer.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v2/calls");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer KEY0123456789abcdef_secret"));
    assert_eq!(schema_problems("CallRequest", &seen[0].body), Vec::<String>::new());
    assert_eq!(seen[0].body["command_id"], "call-1/dial");
    assert_eq!(accepted.call_control_id, "v3:MdI91X4lWFEs7IgbBEOT9M4AigoY08M0WWZFISt1Yw2axZ_IiE4pqg");
    assert_eq!(accepted.call_leg_id, "2dc6fc34-f9e0-11ea-b68e-02420a0f7768");
    assert_eq!(accepted.call_session_id, "2dc1b3c8-f9e0-11ea-bc5a-02420a0f7768");
}

#[tokio::test]
async fn speak_and_hangup_send_schema_valid_bodies_to_percent_encoded_action_paths() {
    let peer = start_peer(vec![]);
    let telnyx = client(&peer.base);

    telnyx.speak("v3:ab/c d", &speak_request()).await.expect("speak");
    telnyx.hangup("v3:ab/c d", &HangupRequest::default()).await.expect("hangup");

    let seen = peer.seen();
    assert_eq!(seen[0].path, "/v2/calls/v3:ab%2Fc%20d/actions/speak");
    assert_eq!(schema_problems("SpeakRequest", &seen[0].body), Vec::<String>::new());
    assert_eq!(seen[1].path, "/v2/calls/v3:ab%2Fc%20d/actions/hangup");
    assert_eq!(schema_problems("HangupRequest", &seen[1].body), Vec::<String>::new());
}

#[test]
fn the_schema_check_catches_a_dial_body_without_a_destination_or_with_a_misspelt_field() {
    let mut body = serde_json::to_value(dial_request()).expect("serializes");
    body.as_object_mut().expect("object").remove("to");
    body["timeout_sec"] = json!(30);

    let problems = schema_problems("CallRequest", &body);

    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[test]
fn the_schema_check_catches_a_time_limit_past_four_hours_and_a_retry_policy_of_six_pauses() {
    let mut body = serde_json::to_value(dial_request()).expect("serializes");
    body["time_limit_secs"] = json!(14_401);
    body["webhook_retries_policies"]["call.answered"] = json!({"retries_ms": [1, 2, 3, 4, 5, 6]});

    let problems = schema_problems("CallRequest", &body);

    assert_eq!(problems.len(), 2, "{problems:?}");
}

#[tokio::test]
async fn a_500_then_a_200_succeeds_on_the_second_request_with_the_same_command_id() {
    let peer = start_peer(vec![reply(500, fixture("error.500.internal.json"))]);

    client(&peer.base).dial(&dial_request()).await.expect("dial");

    let seen = peer.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body["command_id"], "call-1/dial");
    assert_eq!(seen[1].body["command_id"], "call-1/dial");
}

#[tokio::test]
async fn a_command_without_a_command_id_gets_one_that_every_attempt_shares() {
    let peer = start_peer(vec![Reply::Text(503, "busy"), Reply::Text(502, "bad gateway")]);
    let request = SpeakRequest { command_id: None, ..speak_request() };

    client(&peer.base).speak("v3:x", &request).await.expect("speak");

    let ids: Vec<Value> = peer.seen().iter().map(|s| s.body["command_id"].clone()).collect();
    assert_eq!(ids.len(), 3);
    assert!(ids[0].as_str().is_some_and(|id| !id.is_empty()));
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
}

#[tokio::test]
async fn a_429_with_retry_after_one_second_delays_the_retry_by_at_least_a_second() {
    let peer = start_peer(vec![Reply::Json {
        status: 429,
        body: fixture("error.429.rate-limited.docs.json"),
        retry_after: Some("1"),
    }]);
    let config = ClientConfig { max_backoff: Duration::from_secs(2), ..fast_config(&peer.base) };

    let telnyx = TelnyxClient::new(config).expect("client");
    telnyx.dial(&dial_request()).await.expect("dial");

    let seen = peer.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].at - seen[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn a_422_invalid_connection_id_is_rejected_after_one_request_with_code_and_pointer() {
    let peer = start_peer(vec![reply(422, fixture("error.422.invalid-connection-id.json"))]);

    let err = client(&peer.base).dial(&dial_request()).await.expect_err("rejected");

    let TelnyxError::Rejected { status, code, title, pointer, .. } = &err else {
        panic!("expected a rejection, got {err:?}");
    };
    assert_eq!(*status, 422);
    assert_eq!(code.as_deref(), Some("10015"));
    assert_eq!(title, "Invalid value for connection_id (Call Control App ID)");
    assert_eq!(pointer.as_deref(), Some("/connection_id"));
    assert!(!err.is_call_ended());
    assert_eq!(peer.seen().len(), 1);
}

#[tokio::test]
async fn a_hangup_of_a_call_that_already_ended_is_recognised_as_call_ended() {
    let peer = start_peer(vec![reply(422, fixture("error.422.call-already-ended.json"))]);

    let err = client(&peer.base).hangup("v3:x", &HangupRequest::default()).await.expect_err("rejected");

    assert!(err.is_call_ended(), "{err:?}");
    assert_eq!(peer.seen().len(), 1);
}

#[tokio::test]
async fn a_4xx_with_a_body_that_is_not_json_is_still_a_rejection() {
    let peer = start_peer(vec![Reply::Text(401, "<html>denied</html>")]);

    let err = client(&peer.base).dial(&dial_request()).await.expect_err("rejected");

    assert!(
        matches!(&err, TelnyxError::Rejected { status: 401, code: None, title, .. } if title == "Unauthorized"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_dial_whose_reply_never_comes_is_ambiguous_after_exactly_one_request() {
    let peer = start_peer(vec![Reply::Hold]);
    let config = ClientConfig { request_timeout: Duration::from_millis(300), ..fast_config(&peer.base) };

    let err = TelnyxClient::new(config).expect("client").dial(&dial_request()).await;

    assert_eq!(err, Err(TelnyxError::Ambiguous));
    assert_eq!(peer.seen().len(), 1);
}

#[tokio::test]
async fn a_speak_whose_reply_never_comes_is_resent_with_the_same_command_id() {
    let peer = start_peer(vec![Reply::Hold]);
    let config = ClientConfig { request_timeout: Duration::from_millis(300), ..fast_config(&peer.base) };

    let telnyx = TelnyxClient::new(config).expect("client");
    telnyx.speak("v3:x", &speak_request()).await.expect("second attempt succeeds");

    let seen = peer.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].body, seen[1].body);
}

#[tokio::test]
async fn persistent_server_errors_end_as_exhausted_after_max_attempts() {
    let peer = start_peer((0..3).map(|_| Reply::Text(503, "down")).collect());

    let err = client(&peer.base).hangup("v3:x", &HangupRequest::default()).await;

    assert_eq!(err, Err(TelnyxError::Exhausted { attempts: 3, last: "HTTP 503 Service Unavailable".into() }));
    assert_eq!(peer.seen().len(), 3);
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_attempts_are_exhausted() {
    let unused_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let base = format!("http://127.0.0.1:{unused_port}/v2");

    let err = client(&base).dial(&dial_request()).await;

    assert_eq!(err, Err(TelnyxError::Exhausted { attempts: 3, last: "connection failed".into() }));
}

#[tokio::test]
async fn a_call_control_id_that_is_a_dot_segment_is_refused_without_a_request() {
    let peer = start_peer(vec![]);

    let err = client(&peer.base).speak("..", &speak_request()).await;

    assert_eq!(err, Err(TelnyxError::InvalidCallControlId));
    assert!(peer.seen().is_empty());
}

#[test]
fn debug_output_of_the_client_and_its_config_never_shows_the_key() {
    let config = fast_config("https://api.telnyx.com/v2");

    let shown = format!("{config:?} {:?}", TelnyxClient::new(config.clone()).expect("client"));

    assert!(!shown.contains(API_KEY), "{shown}");
    assert!(shown.contains("api.telnyx.com"));
}

#[test]
fn an_api_base_that_is_not_an_http_url_is_refused() {
    for base in ["api.telnyx.com", "ftp://api.telnyx.com/v2", "mailto:ops@example.com"] {
        let result = TelnyxClient::new(ClientConfig::new(base, API_KEY));
        assert!(matches!(result, Err(TelnyxError::InvalidConfig(_))), "{base}");
    }
}
