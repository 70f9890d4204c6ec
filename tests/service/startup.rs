//! Start-up: a bad or missing setting stops the binary with one line naming it, and without a
//! public URL the service asks a local ngrok agent for its https tunnel.

use std::process::Command;

use actix_web::{App, HttpResponse, HttpServer, web};
use dialajoke::ngrok;

fn run_binary(env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut command = Command::new(env!("CARGO_BIN_EXE_dialajoke"));
    command.current_dir(dir.path()).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.arg("serve").output().expect("binary runs");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

#[test]
fn a_missing_api_key_stops_start_up_naming_the_variable() {
    let (ok, stderr) = run_binary(&[("TELNYX_PUBLIC_KEY", "cQzLQBy26bKTWRwDFuHlAGPNWrb+pU6soOys9UyvO0k=")]);

    assert!(!ok);
    let line = stderr.lines().last().expect("an error line");
    assert!(line.contains("TELNYX_API_KEY"), "{stderr}");
}

#[test]
fn an_invalid_from_number_stops_start_up_naming_the_variable_and_never_prints_the_key() {
    let (ok, stderr) = run_binary(&[
        ("TELNYX_API_KEY", "KEYsecret123"),
        ("TELNYX_PUBLIC_KEY", "cQzLQBy26bKTWRwDFuHlAGPNWrb+pU6soOys9UyvO0k="),
        ("TELNYX_CONNECTION_ID", "1"),
        ("TELNYX_FROM_NUMBER", "555"),
    ]);

    assert!(!ok);
    assert!(stderr.contains("TELNYX_FROM_NUMBER"), "{stderr}");
    assert!(!stderr.contains("KEYsecret123"));
}

#[test]
fn a_database_that_cannot_be_opened_stops_start_up_with_the_whole_reason() {
    let (ok, stderr) = run_binary(&[
        ("TELNYX_API_KEY", "KEYsecret123"),
        ("TELNYX_PUBLIC_KEY", "cQzLQBy26bKTWRwDFuHlAGPNWrb+pU6soOys9UyvO0k="),
        ("TELNYX_CONNECTION_ID", "1"),
        ("TELNYX_FROM_NUMBER", "+1 202 555 0100"),
        ("DIALAJOKE_PUBLIC_URL", "http://127.0.0.1:8080"),
        ("DIALAJOKE_BIND", "127.0.0.1:0"),
        ("DIALAJOKE_DATABASE_URL", "sqlite:///no/such/folder/x.db"),
    ]);

    assert!(!ok);
    let line = stderr.lines().last().expect("an error line");
    // This layer's words, then each cause down to the operating system's.
    assert!(line.contains("cannot open database sqlite:///no/such/folder/x.db: "), "{stderr}");
    assert!(line.contains("unable to open database file"), "{stderr}");
}

async fn fake_agent(body: &'static str) -> String {
    let server = HttpServer::new(move || {
        App::new().route(
            "/api/tunnels",
            web::get().to(move || async move { HttpResponse::Ok().content_type("application/json").body(body) }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .expect("bind");
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    format!("http://{addr}/api/tunnels")
}

#[tokio::test]
async fn the_https_tunnel_of_a_local_ngrok_agent_becomes_the_public_url() {
    let agent = fake_agent(
        r#"{"tunnels":[{"public_url":"http://abc.ngrok.app","proto":"http"},{"public_url":"https://abc.ngrok.app/","proto":"https"}]}"#,
    )
    .await;

    let url = ngrok::public_url(&agent).await.expect("tunnel found");

    assert_eq!(url, "https://abc.ngrok.app");
}

#[tokio::test]
async fn an_agent_without_an_https_tunnel_is_a_clear_error() {
    let agent = fake_agent(r#"{"tunnels":[{"public_url":"http://abc.ngrok.app"}]}"#).await;

    let error = ngrok::public_url(&agent).await.expect_err("no https tunnel").to_string();

    assert!(error.contains("DIALAJOKE_PUBLIC_URL"), "{error}");
}

#[tokio::test]
async fn no_agent_at_all_is_a_clear_error() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr");

    let error = ngrok::public_url(&format!("http://{free}/api/tunnels")).await.expect_err("nothing listens");

    assert!(error.to_string().contains("ngrok http 8080"), "{error}");
}
