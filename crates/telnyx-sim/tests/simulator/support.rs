//! Helpers for the simulator tests: a webhook receiver that records what it gets (and can be
//! told to refuse deliveries), a small client for the simulated API, and checks against the
//! official schemas and the simulator's signing key.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::{Value, json};
use telnyx_sim::{JournalEntry, SimConfig, SimHandle, start};
use tokio::sync::mpsc;

/// The Bearer key every test simulator accepts.
pub const KEY: &str = "test-key";
/// The longest any test waits for something to happen.
pub const WAIT: Duration = Duration::from_secs(5);
/// A joke to speak.
pub const JOKE: &str = "Why did the scarecrow win an award? Because he was outstanding in his field.";
/// A client_state the tests dial with ("joke-42" in base64).
pub const STATE: &str = "am9rZS00Mg==";

fn fixtures() -> std::path::PathBuf {
    // The contract is the repository's, shared with the service's tests.
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/telnyx")
}

/// An example body from the fixtures, e.g. `error.401.authentication-failed.json`.
pub fn example(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join("examples").join(name)).expect("example exists");
    serde_json::from_str(&text).expect("example is JSON")
}

/// Starts a fast simulator whose default webhook URL is `receiver`, after `adjust`.
pub async fn simulator(receiver: &Receiver, adjust: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut config = SimConfig::local(KEY);
    config.default_webhook_url = Some(receiver.url.clone());
    adjust(&mut config);
    start(config).await.expect("simulator starts")
}

/// Lets an unanswered call ring far longer than any test takes, for tests that act on a
/// call while it rings.
pub fn ring_for_a_long_time(config: &mut SimConfig) {
    config.timing.no_answer_cap = Duration::from_secs(60);
}

/// One webhook as the receiver got it.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub json: Value,
    /// The status the receiver answered.
    pub answered: u16,
}

impl Delivery {
    pub fn event_type(&self) -> &str {
        self.json["data"]["event_type"].as_str().expect("event_type")
    }

    pub fn event_id(&self) -> &str {
        self.json["data"]["id"].as_str().expect("id")
    }

    pub fn attempt(&self) -> u64 {
        self.json["meta"]["attempt"].as_u64().expect("meta.attempt")
    }

    pub fn payload(&self) -> &Value {
        &self.json["data"]["payload"]
    }
}

/// A webhook receiver on 127.0.0.1 that records every delivery.
pub struct Receiver {
    pub url: String,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    refusals_left: Arc<AtomicUsize>,
    server: ServerHandle,
}

#[derive(Clone)]
struct ReceiverState {
    sink: mpsc::UnboundedSender<Delivery>,
    refusals_left: Arc<AtomicUsize>,
}

async fn receive(state: web::Data<ReceiverState>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| {
        let value = request.headers().get(name).and_then(|v| v.to_str().ok());
        value.unwrap_or_default().to_owned()
    };
    let refuse =
        state.refusals_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok();
    let body = String::from_utf8(body.to_vec()).expect("webhook body is UTF-8");
    let delivery = Delivery {
        timestamp: header("telnyx-timestamp"),
        signature: header("telnyx-signature-ed25519"),
        json: serde_json::from_str(&body).expect("webhook body is JSON"),
        body,
        answered: if refuse { 500 } else { 200 },
    };
    state.sink.send(delivery).expect("test still listening");
    if refuse { HttpResponse::InternalServerError().finish() } else { HttpResponse::Ok().finish() }
}

impl Receiver {
    pub async fn start() -> Self {
        let (sink, deliveries) = mpsc::unbounded_channel();
        let refusals_left = Arc::new(AtomicUsize::new(0));
        let state = web::Data::new(ReceiverState { sink, refusals_left: Arc::clone(&refusals_left) });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        let url = format!("http://{}/webhook", listener.local_addr().expect("receiver address"));
        let server =
            HttpServer::new(move || App::new().app_data(state.clone()).route("/webhook", web::post().to(receive)))
                .listen(listener)
                .expect("receiver listens")
                .workers(1)
                .disable_signals()
                .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { url, deliveries, refusals_left, server: handle }
    }

    /// Answers 500 to the next `count` deliveries.
    pub fn refuse_next(&self, count: usize) {
        self.refusals_left.store(count, Ordering::SeqCst);
    }

    /// The next delivery, whatever was answered.
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(WAIT, self.deliveries.recv())
            .await
            .expect("a webhook arrives in time")
            .expect("receiver still running")
    }

    /// Accepted deliveries up to and including the first accepted one of `event_type`.
    pub async fn until(&mut self, event_type: &str) -> Vec<Delivery> {
        let mut accepted = Vec::new();
        loop {
            let delivery = self.next().await;
            if delivery.answered != 200 {
                continue;
            }
            let done = delivery.event_type() == event_type;
            accepted.push(delivery);
            if done {
                return accepted;
            }
        }
    }

    /// Whatever has arrived and not been taken yet.
    pub fn rest(&mut self) -> Vec<Delivery> {
        std::iter::from_fn(|| self.deliveries.try_recv().ok()).collect()
    }
}

impl Drop for Receiver {
    /// Stops the receiver's server with the test (the stop command is sent at once).
    fn drop(&mut self) {
        drop(self.server.stop(false));
    }
}

/// The event types of `deliveries`, in order.
pub fn types(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(Delivery::event_type).collect()
}

/// An answer of the simulated API.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl Answer {
    /// The one error's code and pointer.
    pub fn error(&self) -> (&str, Option<&str>) {
        let error = &self.json["errors"][0];
        (error["code"].as_str().expect("error code"), error["source"]["pointer"].as_str())
    }
}

/// A client of the simulated API.
pub struct Api {
    base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub fn new(sim: &SimHandle) -> Self {
        let http = reqwest::Client::builder().no_proxy().build().expect("client builds");
        Self { base: sim.api_base(), http }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn dial(&self, body: Value) -> Answer {
        self.send(self.http.post(self.url("/calls")).json(&body)).await
    }

    pub async fn act(&self, id: &str, action: &str, body: Value) -> Answer {
        let url = self.url(&format!("/calls/{id}/actions/{action}"));
        self.send(self.http.post(url).json(&body)).await
    }

    pub async fn speak(&self, id: &str, text: &str) -> Answer {
        self.act(id, "speak", json!({ "payload": text, "voice": "Telnyx.KokoroTTS.af" })).await
    }

    pub async fn status(&self, id: &str) -> Answer {
        self.send(self.http.get(self.url(&format!("/calls/{id}")))).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.bearer_auth(KEY).send().await.expect("simulator answers");
        Self::read(response).await
    }

    pub async fn read(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let json = response.json().await.expect("answer is JSON");
        Answer { status, headers, json }
    }
}

/// A Dial body for `to`, with a connection id, caller id and client_state.
pub fn dial_body(to: &str) -> Value {
    json!({ "connection_id": "7267xxxxxxxxxxxxxx", "to": to, "from": "+12015550199", "client_state": STATE })
}

/// The call_control_id of a Dial answer.
pub fn call_id(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "dial accepted: {}", answer.json);
    answer.json["data"]["call_control_id"].as_str().expect("call_control_id").to_owned()
}

/// Asserts `instance` matches the schema at `pointer` of the official schemas file (with the
/// greeting-ended schema added).
pub fn assert_matches_schema(pointer: &str, instance: &Value) {
    let errors = schema_errors(pointer, instance);
    assert!(errors.is_empty(), "{instance} does not match {pointer}: {errors:#?}");
}

/// Why `instance` does not match the schema at `pointer` (internal `$ref`s resolved).
pub fn schema_errors(pointer: &str, instance: &Value) -> Vec<String> {
    static VALIDATORS: OnceLock<Mutex<HashMap<String, jsonschema::Validator>>> = OnceLock::new();
    let mut validators = VALIDATORS.get_or_init(Default::default).lock().expect("validators");
    let validator = validators.entry(pointer.to_owned()).or_insert_with(|| {
        let read = |name: &str| -> Value {
            let text = std::fs::read_to_string(fixtures().join(name)).expect("schemas");
            serde_json::from_str(&text).expect("schemas are JSON")
        };
        let mut root = read("call-control.schemas.json");
        // The official subset lacks call.machine.greeting.ended; its schema is kept beside it.
        let extra = read("machine-greeting-ended.schemas.json");
        let schemas = root["components"]["schemas"].as_object_mut().expect("schemas object");
        for (name, schema) in extra["components"]["schemas"].as_object().expect("extra schemas") {
            schemas.insert(name.clone(), schema.clone());
        }
        root["$ref"] = json!(pointer);
        jsonschema::draft202012::options().should_validate_formats(true).build(&root).expect("schema compiles")
    });
    validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path)).collect()
}

/// The schema of a webhook of `event_type`.
pub fn event_schema(event_type: &str) -> &'static str {
    match event_type {
        "call.initiated" => "#/components/schemas/CallInitiatedEvent",
        "call.answered" => "#/components/schemas/CallAnsweredEvent",
        "call.hangup" => "#/components/schemas/CallHangupEvent",
        "call.speak.started" => "#/components/schemas/CallSpeakStartedEvent",
        "call.speak.ended" => "#/components/schemas/CallSpeakEndedEvent",
        "call.machine.detection.ended" => "#/components/schemas/CallMachineDetectionEndedEvent",
        "call.machine.greeting.ended" => "#/components/schemas/CallMachineGreetingEndedEvent",
        other => panic!("no schema for {other}"),
    }
}

/// Asserts the delivery's signature verifies with `public_key` over `<timestamp>|<body>`.
pub fn assert_signed(delivery: &Delivery, public_key: &str) {
    let key: [u8; 32] = STANDARD.decode(public_key).expect("key is base64").try_into().expect("32-byte key");
    let key = VerifyingKey::from_bytes(&key).expect("valid public key");
    let signature: [u8; 64] =
        STANDARD.decode(&delivery.signature).expect("signature is base64").try_into().expect("64-byte signature");
    let message = format!("{}|{}", delivery.timestamp, delivery.body);
    key.verify_strict(message.as_bytes(), &Signature::from_bytes(&signature))
        .expect("signature verifies with the simulator's public key");
    let sent_at: i64 = delivery.timestamp.parse().expect("timestamp is unix seconds");
    assert!((chrono::Utc::now().timestamp() - sent_at).abs() <= 5, "timestamp is current");
}

/// Dials `body` and collects the accepted webhooks up to the first `last`.
pub async fn dial_until(api: &Api, receiver: &mut Receiver, body: Value, last: &str) -> (String, Vec<Delivery>) {
    let id = call_id(&api.dial(body).await);
    (id, receiver.until(last).await)
}

/// `hangup_cause`, `hangup_source` and `sip_hangup_cause` of a `call.hangup` delivery.
pub fn hangup_reason(delivery: &Delivery) -> (&str, &str, &str) {
    assert_eq!(delivery.event_type(), "call.hangup");
    let field = |name: &str| delivery.payload()[name].as_str().expect("hangup field");
    (field("hangup_cause"), field("hangup_source"), field("sip_hangup_cause"))
}

/// The delivery attempts in the simulator's journal.
pub fn deliveries(sim: &telnyx_sim::SimHandle) -> impl Iterator<Item = telnyx_sim::DeliveryRecord> {
    sim.journal().into_iter().filter_map(|entry| match entry {
        JournalEntry::Delivery(delivery) => Some(delivery),
        JournalEntry::Request(_) => None,
    })
}
