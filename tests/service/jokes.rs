//! The external joke source, exercised against small HTTP servers on 127.0.0.1: a usable answer
//! is told, and every kind of unusable answer falls back to the embedded collection.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use dialajoke::jokes::{Joke, JokeSource, Jokes};
use tokio::sync::{mpsc, oneshot};

/// Starts a server on a free local port that answers every request with `respond`,
/// and returns the URL to configure as the external source.
fn spawn_source<F, Fut>(respond: F) -> String
where
    F: Fn(HttpRequest) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = HttpResponse> + 'static,
{
    let server = HttpServer::new(move || App::new().default_service(web::to(respond.clone())))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("a free local port");
    let address = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{address}/joke")
}

/// Serves a fixed status and body, as JSON.
fn spawn_fixed_source(status: u16, body: &'static str) -> String {
    spawn_source(move |_request: HttpRequest| async move {
        let status = actix_web::http::StatusCode::from_u16(status).expect("a valid status");
        HttpResponse::build(status).content_type("application/json").body(body)
    })
}

async fn pick_with_source(url: String, previous: Option<&str>) -> Joke {
    Jokes::new(Some(url), reqwest::Client::new()).pick(previous).await
}

#[tokio::test]
async fn a_usable_external_joke_is_told_and_was_asked_for_as_json() {
    let (accept_tx, mut accept_rx) = mpsc::unbounded_channel();
    let url = spawn_source(move |request: HttpRequest| {
        let accept = request.headers().get("accept").and_then(|value| value.to_str().ok()).map(str::to_owned);
        accept_tx.send(accept).expect("the test is listening");
        async {
            HttpResponse::Ok().json(serde_json::json!({
                "id": "abc123",
                "joke": "The external source told this one.",
                "status": 200
            }))
        }
    });

    let joke = pick_with_source(url, Some("Something else entirely.")).await;

    assert_eq!(joke.source, JokeSource::External);
    assert_eq!(joke.text, "The external source told this one.");
    let accept = accept_rx.try_recv().expect("the source was asked");
    assert_eq!(accept.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn a_server_error_from_the_external_source_falls_back_to_the_collection() {
    let url = spawn_fixed_source(500, r#"{"joke": "Never told."}"#);

    let joke = pick_with_source(url, None).await;

    assert_eq!(joke.source, JokeSource::Collection);
    assert_ne!(joke.text, "Never told.");
}

#[tokio::test]
async fn invalid_json_from_the_external_source_falls_back_to_the_collection() {
    let url = spawn_fixed_source(200, r#"{"joke": "unterminated"#);

    let joke = pick_with_source(url, None).await;

    assert_eq!(joke.source, JokeSource::Collection);
}

#[tokio::test]
async fn an_empty_external_joke_falls_back_to_the_collection() {
    let url = spawn_fixed_source(200, r#"{"joke": ""}"#);

    let joke = pick_with_source(url, None).await;

    assert_eq!(joke.source, JokeSource::Collection);
    assert!(!joke.text.is_empty());
}

#[tokio::test]
async fn an_external_joke_equal_to_the_previous_one_falls_back_to_the_collection() {
    let url = spawn_fixed_source(200, r#"{"joke": "Heard it last time."}"#);

    let joke = pick_with_source(url, Some("Heard it last time.")).await;

    assert_eq!(joke.source, JokeSource::Collection);
    assert_ne!(joke.text, "Heard it last time.");
}

#[tokio::test]
async fn an_external_source_that_never_answers_is_given_up_after_two_seconds() {
    // The senders are kept alive and never used, so every response waits forever.
    let held: Arc<Mutex<Vec<oneshot::Sender<()>>>> = Arc::default();
    let url = spawn_source(move |_request: HttpRequest| {
        let (never_sent, answer_gate) = oneshot::channel();
        held.lock().expect("no test panicked").push(never_sent);
        async move {
            let _ = answer_gate.await;
            HttpResponse::Ok().json(serde_json::json!({ "joke": "Too late." }))
        }
    });
    let started = Instant::now();

    let joke = pick_with_source(url, None).await;

    let waited = started.elapsed();
    assert_eq!(joke.source, JokeSource::Collection);
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[tokio::test]
async fn an_unreachable_external_source_falls_back_to_the_collection() {
    // Bind then drop a listener so the port is known to be closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port();

    let joke = pick_with_source(format!("http://127.0.0.1:{port}/joke"), None).await;

    assert_eq!(joke.source, JokeSource::Collection);
}
