//! The scheduling page: anti-forgery cookie and token, security headers, no third-party content,
//! scheduling and cancelling through forms, recurring calls set up, paused, resumed and deleted
//! through forms, and errors shown next to the fields they are about.

use crate::common;

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::America::Los_Angeles;
use common::{TestApp, spawn_app};
use serde_json::{Value, json};

const COOKIE: &str = "dialajoke_csrf";
const IRISH: &str = "+353 1 234 5678";
const HOSTILE: &str = "<script>alert(1)</script>";

/// The anti-forgery pair a browser holds after loading the page.
struct Session {
    cookie: String,
    token: String,
}

impl Session {
    fn cookie_header(&self) -> String {
        format!("{COOKIE}={}", self.cookie)
    }
}

async fn get_page(app: &TestApp, path: &str) -> reqwest::Response {
    app.http.get(format!("{}{path}", app.base)).send().await.expect("request sent")
}

/// The value of the anti-forgery cookie in a `Set-Cookie` header.
fn cookie_value(set_cookie: &str) -> Option<String> {
    set_cookie.split(';').next()?.trim().strip_prefix(&format!("{COOKIE}=")).map(str::to_owned)
}

/// Undoes the HTML escaping the templates apply to text and attribute values.
fn unescape(text: &str) -> String {
    [("&lt;", "<"), ("&gt;", ">"), ("&quot;", "\""), ("&#x27;", "'"), ("&#x2F;", "/"), ("&amp;", "&")]
        .iter()
        .fold(text.to_owned(), |text, (entity, plain)| text.replace(entity, plain))
}

/// The (unescaped) `value` of the first input named `name`.
fn input_value(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\""))?;
    let tag = &html[html[..at].rfind('<')?..at + html[at..].find('>')?];
    let value = tag.split(" value=\"").nth(1)?;
    Some(unescape(&value[..value.find('"')?]))
}

/// The markup of the field `name`, from its input to the end of its block.
fn field_block<'a>(html: &'a str, name: &str) -> &'a str {
    let start =
        html.find(&format!("<input id=\"{name}\"")).unwrap_or_else(|| panic!("no input named {name} on the page"));
    let end = start + html[start..].find("</div>").expect("field block ends");
    &html[start..end]
}

/// The (unescaped) text of the element whose opening tag ends with `opening_end`.
fn text_after(html: &str, opening_end: &str) -> Option<String> {
    let text = &html[html.find(opening_end)? + opening_end.len()..];
    Some(unescape(&text[..text.find('<')?]))
}

/// Loads the page and keeps the cookie it sets and the token it embeds.
async fn open_session(app: &TestApp) -> Session {
    let response = get_page(app, "/").await;
    let set_cookie = response.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    let html = response.text().await.expect("page");
    Session {
        cookie: cookie_value(&set_cookie).expect("anti-forgery cookie"),
        token: input_value(&html, "csrf_token").expect("token field"),
    }
}

/// Posts a form to `path` with the session's cookie; the fields are sent as given.
async fn submit(app: &TestApp, session: &Session, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(format!("{}{path}", app.base))
        .header("cookie", session.cookie_header())
        .form(fields)
        .send()
        .await
        .expect("request sent")
}

/// The schedule form's fields, with the session's token.
fn schedule_fields<'a>(session: &'a Session, to: &'a str, date: &'a str, timezone: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("csrf_token", &session.token), ("to", to), ("date", date), ("time", "12:00"), ("timezone", timezone)]
}

/// Tomorrow's date in Los Angeles: noon then is between 12 and 36 hours away and never in a clock change.
fn tomorrow_in_los_angeles() -> chrono::NaiveDate {
    (Utc::now().with_timezone(&Los_Angeles) + chrono::Duration::days(1)).date_naive()
}

fn content_type(response: &reqwest::Response) -> String {
    response.headers()["content-type"].to_str().expect("ascii").to_owned()
}

async fn assert_html(response: reqwest::Response, status: u16) -> String {
    assert_eq!(response.status(), status);
    assert!(content_type(&response).starts_with("text/html"), "{}", content_type(&response));
    let html = response.text().await.expect("page");
    assert!(serde_json::from_str::<Value>(&html).is_err(), "a page, not JSON: {html}");
    html
}

/// Absolute links to anywhere but `own`, and protocol-relative ones.
fn external_references(text: &str, own: &str) -> Vec<String> {
    let text = text.replace(own, "");
    let absolute = ["http://", "https://"].into_iter().flat_map(|scheme| text.match_indices(scheme));
    let relative = ["\"//", "'//", "(//"].into_iter().flat_map(|opening| text.match_indices(opening));
    absolute.chain(relative).map(|(at, _)| text[at..].chars().take(60).collect()).collect()
}

#[tokio::test]
async fn the_page_sets_a_strict_http_only_cookie_whose_value_is_the_forms_hidden_token() {
    let app = spawn_app().await;

    let response = get_page(&app, "/").await;

    assert_eq!(response.status(), 200);
    assert!(content_type(&response).starts_with("text/html"));
    let set_cookie = response.headers()["set-cookie"].to_str().expect("ascii").to_owned();
    let attributes: Vec<String> = set_cookie.split(';').map(|a| a.trim().to_ascii_lowercase()).collect();
    assert!(attributes.contains(&"httponly".to_owned()), "{set_cookie}");
    assert!(attributes.contains(&"samesite=strict".to_owned()), "{set_cookie}");
    let cookie = cookie_value(&set_cookie).expect("anti-forgery cookie");
    assert_eq!(cookie.len(), 64);
    let html = response.text().await.expect("page");
    assert!(html.contains("type=\"hidden\" name=\"csrf_token\""));
    assert_eq!(input_value(&html, "csrf_token"), Some(cookie));
}

#[tokio::test]
async fn the_page_forbids_sniffing_framing_and_foreign_content() {
    let app = spawn_app().await;

    let response = get_page(&app, "/").await;

    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let policy = headers.get("content-security-policy").expect("a content security policy");
    assert!(!policy.is_empty());
}

#[tokio::test]
async fn the_page_and_its_assets_reference_nothing_outside_the_service() {
    let app = spawn_app().await;

    for path in ["/", "/static/app.css", "/static/app.js"] {
        let response = get_page(&app, path).await;
        assert_eq!(response.status(), 200, "{path}");
        let text = response.text().await.expect("body");

        assert_eq!(external_references(&text, &app.base), Vec::<String>::new(), "{path}");
    }
}

#[tokio::test]
async fn a_valid_form_redirects_to_a_success_message_and_stores_the_local_time_in_utc() {
    let app = spawn_app().await;
    let session = open_session(&app).await;
    let date = tomorrow_in_los_angeles();
    let noon = NaiveTime::from_hms_opt(12, 0, 0).expect("valid time");
    let expected = Los_Angeles.from_local_datetime(&date.and_time(noon)).single().expect("unambiguous noon");
    let day = date.format("%Y-%m-%d").to_string();

    let response = submit(&app, &session, "/", &schedule_fields(&session, IRISH, &day, "America/Los_Angeles")).await;

    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().expect("ascii").to_owned();
    let id = location.strip_prefix("/?scheduled=").expect("redirect names the call").to_owned();
    let html = assert_html(get_page(&app, &location).await, 200).await;
    let flash = text_after(&html, "class=\"flash\" role=\"status\">").expect("a success message");
    assert!(flash.contains("scheduled") && flash.contains("12:00"), "{flash}");
    let call = app.call(&id).await;
    let stored = DateTime::parse_from_rfc3339(call["due_at"].as_str().expect("due_at")).expect("RFC 3339");
    assert_eq!(stored.with_timezone(&Utc), expected.with_timezone(&Utc));
    assert_eq!(call["timezone"], "America/Los_Angeles");
}

#[tokio::test]
async fn a_form_without_its_token_or_with_a_foreign_token_is_refused_with_a_403_page() {
    let app = spawn_app().await;
    let session = open_session(&app).await;
    let day = tomorrow_in_los_angeles().format("%Y-%m-%d").to_string();
    let mut forged = schedule_fields(&session, IRISH, &day, "America/Los_Angeles");
    let missing: Vec<_> = forged.iter().copied().filter(|(name, _)| *name != "csrf_token").collect();
    let foreign = "0".repeat(64);
    forged[0].1 = &foreign;

    for fields in [missing, forged] {
        let response = submit(&app, &session, "/", &fields).await;

        assert_html(response, 403).await;
    }
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn an_invalid_form_is_shown_again_with_each_message_beside_its_field_and_the_typed_values_kept() {
    let app = spawn_app().await;
    let session = open_session(&app).await;
    let day = tomorrow_in_los_angeles().format("%Y-%m-%d").to_string();
    let api = app.post_call(&json!({"to": "12345", "date": day, "time": "12:00", "timezone": "Atlantis/Lost"})).await;
    assert_eq!(api.status(), 422);
    let expected: Value = api.json().await.expect("problem JSON");

    let response = submit(&app, &session, "/", &schedule_fields(&session, "12345", &day, "Atlantis/Lost")).await;

    let html = assert_html(response, 422).await;
    for (field, typed) in [("to", "12345"), ("timezone", "Atlantis/Lost")] {
        let block = field_block(&html, field);
        let message = expected["errors"].as_array().expect("errors").iter().find(|e| e["field"] == field);
        let message = message.and_then(|e| e["message"].as_str()).unwrap_or_else(|| panic!("API names {field}"));
        let shown = text_after(block, &format!("id=\"{field}-error\">"));
        assert_eq!(shown.as_deref(), Some(message), "{field}: {block}");
        assert!(block.contains("aria-invalid=\"true\""), "{block}");
        assert_eq!(input_value(&html, field).as_deref(), Some(typed));
    }
    assert_eq!(app.count_rows("calls").await, 0);
}

#[tokio::test]
async fn markup_typed_into_the_form_is_shown_escaped_never_run() {
    let app = spawn_app().await;
    let session = open_session(&app).await;

    let fields = [("csrf_token", session.token.as_str()), ("to", HOSTILE), ("date", HOSTILE), ("time", HOSTILE)];
    let fields = [fields.as_slice(), &[("timezone", HOSTILE)]].concat();

    let response = submit(&app, &session, "/", &fields).await;

    let html = assert_html(response, 422).await;
    assert!(html.contains("&lt;script&gt;"));
    assert!(!html.contains("<script>alert(1)"));
}

#[tokio::test]
async fn a_scheduled_call_can_be_cancelled_from_the_page() {
    let app = spawn_app().await;
    let id = app.schedule_in(IRISH, Duration::from_secs(3600)).await["id"].as_str().expect("id").to_owned();
    let session = open_session(&app).await;

    let response = submit(&app, &session, &format!("/calls/{id}/cancel"), &[("csrf_token", &session.token)]).await;

    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], format!("/?cancelled={id}").as_str());
    assert_eq!(app.call(&id).await["status"], "cancelled");
}

#[tokio::test]
async fn cancelling_from_the_page_without_the_token_is_refused_and_the_call_stays_scheduled() {
    let app = spawn_app().await;
    let id = app.schedule_in(IRISH, Duration::from_secs(3600)).await["id"].as_str().expect("id").to_owned();
    let session = open_session(&app).await;

    let response = submit(&app, &session, &format!("/calls/{id}/cancel"), &[]).await;

    assert_html(response, 403).await;
    assert_eq!(app.call(&id).await["status"], "scheduled");
}

#[tokio::test]
async fn a_calls_page_tells_its_history_in_words_with_the_joke_where_it_was_spoken() {
    let app = spawn_app().await;
    let id =
        app.schedule_in("+1 201 555 0100", Duration::from_millis(300)).await["id"].as_str().expect("id").to_owned();
    let call = app.wait_until_final(&id).await;

    let html = unescape(&assert_html(get_page(&app, &format!("/calls/{id}")).await, 200).await);

    let labels = ["Scheduled", "Dialling started", "Ringing", "Answered", "Joke spoken", "Hung up"];
    let positions: Vec<Option<usize>> =
        labels.iter().map(|label| html.find(&format!("class=\"step-label\">{label}"))).collect();
    assert!(positions.iter().all(Option::is_some), "{labels:?} at {positions:?}");
    assert!(positions.windows(2).all(|pair| pair[0] < pair[1]), "steps out of order: {positions:?}");
    let joke = call["joke"].as_str().expect("joke");
    assert_eq!(text_after(&html, "class=\"step-joke\">").as_deref(), Some(joke));
}

#[tokio::test]
async fn a_page_for_a_call_that_does_not_exist_is_a_friendly_404() {
    let app = spawn_app().await;

    for id in ["not-a-call", "6f1c2a7e-0000-4000-8000-000000000000"] {
        let html = assert_html(get_page(&app, &format!("/calls/{id}")).await, 404).await;

        assert!(html.contains("Back to the schedule"), "{html}");
    }
}

#[tokio::test]
async fn the_chart_counts_todays_outcomes_in_the_zone_the_browser_reported() {
    let app = spawn_app().await;
    for to in ["+1 201 555 0101", "+1 201 555 0101", "+1 201 555 0100"] {
        let id = app.schedule_in(to, Duration::from_millis(300)).await["id"].as_str().expect("id").to_owned();
        app.wait_until_final(&id).await;
    }

    let response =
        app.http.get(format!("{}/", app.base)).header("cookie", "dialajoke_tz=Pacific/Kiritimati").send().await;

    let html = assert_html(response.expect("request sent"), 200).await;
    assert!(html.contains("Line busy <span class=\"muted\">(2)</span>"), "{html}");
    assert!(html.contains("Joke told <span class=\"muted\">(1)</span>"), "{html}");
    assert!(unescape(&html).contains("days in Pacific/Kiritimati"));
    assert!(html.contains("<svg class=\"chart-svg\""));
}

/// The recurring-call form's fields for a weekly rule, with the session's token.
fn weekly_rule_fields<'a>(session: &'a Session, to: &'a str, time: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf_token", &session.token),
        ("to", to),
        ("timezone", "Europe/Dublin"),
        ("repeat", "weekly"),
        ("day", "sun"),
        ("time", time),
        ("cron", ""),
        ("catch_up", "once"),
        ("catch_up_minutes", "60"),
    ]
}

#[tokio::test]
async fn a_recurring_call_set_up_on_the_page_is_listed_with_its_next_call_and_can_be_paused_resumed_and_deleted() {
    let app = spawn_app().await;
    let session = open_session(&app).await;

    let created = submit(&app, &session, "/schedules", &weekly_rule_fields(&session, IRISH, "10:00")).await;

    assert_eq!(created.status(), 303);
    let location = created.headers()["location"].to_str().expect("ascii").to_owned();
    let rule = location.strip_prefix("/?rule_created=").expect("redirect names the rule").to_owned();
    let html = assert_html(get_page(&app, &location).await, 200).await;
    let flash = text_after(&html, "class=\"flash\" role=\"status\">").expect("a success message");
    assert!(flash.contains("every Sunday at 10:00 (Europe/Dublin)") && flash.contains("Next call: Sun"), "{flash}");
    assert!(html.contains(&format!("id=\"rule-{rule}\"")), "the rule is listed");

    let paused = submit(&app, &session, &format!("/schedules/{rule}/pause"), &[("csrf_token", &session.token)]).await;
    assert_eq!(paused.headers()["location"], format!("/?rule_paused={rule}").as_str());
    let html = get_page(&app, "/").await.text().await.expect("page");
    assert!(html.contains("Paused: no calls until it is resumed."), "the page says it is paused");

    let resumed = submit(&app, &session, &format!("/schedules/{rule}/resume"), &[("csrf_token", &session.token)]).await;
    assert_eq!(resumed.headers()["location"], format!("/?rule_resumed={rule}").as_str());
    let shown: Value = app.schedule(&rule).await.json().await.expect("rule");
    assert_eq!(shown["status"], "active");

    let deleted = submit(&app, &session, &format!("/schedules/{rule}/delete"), &[("csrf_token", &session.token)]).await;
    assert_eq!(deleted.headers()["location"], "/?rule_deleted=1");
    assert_eq!(app.schedule(&rule).await.status(), 404);
}

#[tokio::test]
async fn an_invalid_recurring_call_form_is_shown_again_with_each_message_beside_its_field() {
    let app = spawn_app().await;
    let session = open_session(&app).await;

    let response = submit(&app, &session, "/schedules", &weekly_rule_fields(&session, "12", "25:00")).await;

    let html = assert_html(response, 422).await;
    for (field, message) in [("rule-to", "international form"), ("rule-time", "not a time")] {
        let block = field_block(&html, field);
        assert!(block.contains(&format!("id=\"{field}-error\"")) && block.contains(message), "{field}: {block}");
    }
    assert_eq!(input_value(&html[html.find("id=\"rule-form\"").expect("rule form")..], "to").as_deref(), Some("12"));
    let listing: Value =
        app.http.get(format!("{}/api/schedules", app.base)).send().await.expect("sent").json().await.expect("JSON");
    assert_eq!(listing["schedules"], json!([]));
}

#[tokio::test]
async fn the_recurring_call_buttons_refuse_a_form_without_its_token() {
    let app = spawn_app().await;
    let session = open_session(&app).await;
    let created = submit(&app, &session, "/schedules", &weekly_rule_fields(&session, IRISH, "10:00")).await;
    let location = created.headers()["location"].to_str().expect("ascii").to_owned();
    let rule = location.strip_prefix("/?rule_created=").expect("redirect names the rule").to_owned();

    let response = submit(&app, &session, &format!("/schedules/{rule}/pause"), &[]).await;
    let unknown = submit(&app, &session, &format!("/schedules/{rule}/shred"), &[("csrf_token", &session.token)]).await;

    assert_html(response, 403).await;
    assert_html(unknown, 404).await;
    let shown: Value = app.schedule(&rule).await.json().await.expect("rule");
    assert_eq!(shown["status"], "active");
}
