//! The pages' live stream (`GET /events`, server-sent events): a new or changed call arrives as
//! its freshly rendered row, and a call that ends brings the redrawn outcome chart.

use crate::common;

use std::time::Duration;

use common::{FLOW_BOUND, TestApp, spawn_app};
use serde_json::Value;

/// Reads server-sent events off a streaming response.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(app: &TestApp) -> Self {
        let response = app.http.get(format!("{}/events", app.base)).send().await.expect("request sent");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Self { response, buffer: String::new() }
    }

    /// The next event's name and data (comments and reconnect hints are skipped).
    async fn next(&mut self) -> (String, String) {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let field = |name: &str| block.lines().find_map(|line| line.strip_prefix(name)).map(str::to_owned);
                if let (Some(event), Some(data)) = (field("event: "), field("data: ")) {
                    return (event, data);
                }
                continue;
            }
            let chunk = tokio::time::timeout(FLOW_BOUND, self.response.chunk()).await;
            let chunk = chunk.expect("an event in time").expect("stream readable").expect("stream still open");
            self.buffer.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// Skips events until one named `name` whose data satisfies `wanted`; returns its data.
    async fn until(&mut self, name: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        loop {
            let (event, data) = self.next().await;
            let data: Value = serde_json::from_str(&data).expect("event data is JSON");
            if event == name && wanted(&data) {
                return data;
            }
        }
    }
}

#[tokio::test]
async fn a_viewer_gets_the_chart_first_then_the_row_of_a_call_as_soon_as_it_is_scheduled() {
    let app = spawn_app().await;
    let mut events = Events::open(&app).await;
    let (first, _) = events.next().await;
    assert_eq!(first, "chart");

    let id = app.schedule_in("+353 1 234 5678", Duration::from_secs(3600)).await["id"].as_str().expect("id").to_owned();

    let message = events.until("call", |data| data["id"] == id.as_str()).await;
    assert_eq!(message["terminal"], false);
    let row = message["row"].as_str().expect("row HTML");
    assert!(row.starts_with(&format!("<li class=\"call\" id=\"call-{id}\"")), "{row}");
    assert!(row.contains("data-status=\"scheduled\""), "{row}");
}

#[tokio::test]
async fn a_call_that_ends_arrives_as_a_finished_row_followed_by_the_redrawn_chart() {
    let app = spawn_app().await;
    let mut events = Events::open(&app).await;

    let id =
        app.schedule_in("+1 201 555 0101", Duration::from_millis(300)).await["id"].as_str().expect("id").to_owned();

    let message = events.until("call", |data| data["id"] == id.as_str() && data["terminal"] == true).await;
    assert!(message["row"].as_str().expect("row").contains("data-status=\"busy\""));
    let (next, chart) = events.next().await;
    assert_eq!(next, "chart");
    let chart: Value = serde_json::from_str(&chart).expect("JSON");
    assert!(chart["html"].as_str().expect("html").contains("Line busy <span class=\"muted\">(1)</span>"));
}

#[tokio::test]
async fn a_cancelled_call_is_streamed_as_a_finished_row_without_its_cancel_button() {
    let app = spawn_app().await;
    let id = app.schedule_in("+353 1 234 5678", Duration::from_secs(3600)).await["id"].as_str().expect("id").to_owned();
    let mut events = Events::open(&app).await;

    let cancelled = app.http.delete(format!("{}/api/calls/{id}", app.base)).send().await.expect("request sent");
    assert_eq!(cancelled.status(), 200);

    let message = events.until("call", |data| data["id"] == id.as_str()).await;
    assert_eq!(message["terminal"], true);
    let row = message["row"].as_str().expect("row");
    assert!(row.contains("data-status=\"cancelled\"") && !row.contains("cancel-form"), "{row}");
}
