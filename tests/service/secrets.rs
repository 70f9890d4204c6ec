//! Secrets never reach a log, an error or a page: the real binary runs a whole call flow at debug
//! log level, is poked with wrong tokens and bad webhooks, and its output is searched for them.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use telnyx_sim::{self as sim, Behaviour, SimConfig, test_number};

const API_KEY: &str = "KEY-sekrit-0123456789-telnyx";
const TOKEN: &str = "TOKEN-sekrit-0123456789-page";
const FORMS_SECRET: &str = "FORMS-sekrit-0123456789-0123456789-hmac";

async fn until_ready(http: &reqwest::Client, base: &str) {
    crate::common::poll::poll_until("the service was ready", crate::common::FLOW_BOUND, || async {
        let answer = http.get(format!("{base}/ready")).send().await;
        if answer.as_ref().is_ok_and(|r| r.status() == 200) { Ok(()) } else { Err(answer.map(|r| r.status())) }
    })
    .await
}

#[tokio::test]
async fn neither_the_api_key_the_access_token_nor_the_forms_secret_ever_appears_in_output_or_responses() {
    let simulator = sim::start(SimConfig::local(API_KEY)).await.expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let base = format!("http://127.0.0.1:{port}");
    let (log_path, err_path) = (dir.path().join("out.log"), dir.path().join("err.log"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dialajoke"))
        .arg("serve")
        .current_dir(dir.path())
        .env("RUST_LOG", "debug")
        .env("DIALAJOKE_BIND", format!("127.0.0.1:{port}"))
        .env("DIALAJOKE_PUBLIC_URL", &base)
        .env("DIALAJOKE_API_TOKEN", TOKEN)
        .env("DIALAJOKE_SECRET", FORMS_SECRET)
        .env("TELNYX_API_KEY", API_KEY)
        .env("TELNYX_PUBLIC_KEY", simulator.public_key_base64())
        .env("TELNYX_CONNECTION_ID", "secrets-test")
        .env("TELNYX_FROM_NUMBER", "+1 202 555 0100")
        .env("TELNYX_API_BASE", simulator.api_base())
        // The test runs at any hour of the day.
        .env("DIALAJOKE_CALLING_HOURS", "off")
        // Files, not pipes: a full pipe would stall the service at debug level.
        .stdout(Stdio::from(std::fs::File::create(&log_path).expect("log file")))
        .stderr(Stdio::from(std::fs::File::create(&err_path).expect("log file")))
        .spawn()
        .expect("binary starts");
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("client");
    until_ready(&http, &base).await;

    let mut bodies = Vec::new();
    let wrong = http.get(format!("{base}/api/calls")).bearer_auth("TOKEN-sekrit-guess").send().await.expect("sent");
    bodies.push(wrong.text().await.expect("body"));
    let bad_hook = http
        .post(format!("{base}/webhook"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("sent");
    bodies.push(bad_hook.text().await.expect("body"));
    let at = (chrono::Utc::now() + chrono::Duration::milliseconds(500)).to_rfc3339();
    let created: Value = http
        .post(format!("{base}/api/calls"))
        .bearer_auth(TOKEN)
        .json(&json!({"to": test_number(Behaviour::Answer), "at": at}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let id = created["id"].as_str().expect("id");
    // Every answer read while waiting is searched too; past the bound the last status is kept
    // and the child stopped before the assertion below.
    let answers = std::sync::Mutex::new(Vec::new());
    let status = crate::common::poll::poll_within(crate::common::FLOW_BOUND, || async {
        let call: Value = http
            .get(format!("{base}/api/calls/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("JSON");
        answers.lock().expect("not poisoned").push(call.to_string());
        let status = call["status"].clone();
        if status == "completed" { Ok(status) } else { Err(status) }
    })
    .await;
    bodies.extend(answers.into_inner().expect("not poisoned"));
    let (Ok(status) | Err(status)) = status;
    bodies.push(http.get(format!("{base}/info")).send().await.expect("sent").text().await.expect("body"));
    bodies.push(http.get(format!("{base}/login")).send().await.expect("sent").text().await.expect("body"));

    child.kill().expect("stopped");
    child.wait().expect("exited");
    let read = |path: &std::path::Path| std::fs::read_to_string(path).expect("log readable");
    let logs = format!("{}{}", read(&log_path), read(&err_path));
    assert_eq!(status, "completed", "the flow must have run for the search to mean something");
    assert!(logs.contains("dial"), "debug logs were captured");
    for secret in [API_KEY, TOKEN, FORMS_SECRET] {
        assert!(!logs.contains(secret), "a secret reached the log");
        assert!(bodies.iter().all(|body| !body.contains(secret)), "a secret reached a response");
    }
}
