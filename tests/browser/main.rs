//! The pages in a real browser: headless Chromium living in America/Los_Angeles, against the
//! service and its Telnyx simulator on 127.0.0.1. Each state is saved as a screenshot under
//! `target/screenshots/` for people to look at. Without Chromium and chromedriver installed the
//! tests say loudly that they were skipped (CI sets DIALAJOKE_REQUIRE_BROWSER=1 to fail instead).

use dialajoke_test_support as common;
mod driver;

use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::America::Los_Angeles;
use common::{Options, TestApp, spawn_app_with};
use driver::{Browser, launch_or_skip};
use fantoccini::Locator;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use serde_json::{Value, json};
use telnyx_sim::Timing;

const IRISH: &str = "+353 1 234 5678";
/// The simulator's numbers (see the README).
const ANSWERS: &str = "+1 201 555 0100";
const BUSY: &str = "+1 201 555 0101";
const NO_ANSWER: &str = "+1 201 555 0102";
const REJECTS: &str = "+1 201 555 0103";

/// A simulator slow enough that a person (and a screenshot) can see a call ring and the joke go.
fn watchable() -> Options {
    let mut options = Options::default();
    options.sim.timing =
        Timing { ring: Duration::from_millis(2500), speak_base: Duration::from_millis(1500), ..Timing::fast() };
    options
}

/// The browser and a fresh service with its simulator; None when the browser is not installed
/// (the test is then skipped, loudly).
async fn start(options: Options) -> Option<(Browser, TestApp)> {
    let browser = launch_or_skip().await?;
    Some((browser, spawn_app_with(options).await))
}

/// Tomorrow in Los Angeles: noon then is between 12 and 36 hours away and never in a clock change.
fn tomorrow_in_los_angeles() -> chrono::NaiveDate {
    (Utc::now().with_timezone(&Los_Angeles) + chrono::Duration::days(1)).date_naive()
}

async fn schedule_soon(app: &TestApp, to: &str) -> String {
    app.schedule_in(to, Duration::from_millis(500)).await["id"].as_str().expect("id").to_owned()
}

/// Sets a form field's value as a date or time picker would (typing into them depends on the locale).
async fn set_value(browser: &Browser, css: &str, value: &str) {
    let script = "const field = document.querySelector(arguments[0]); field.value = arguments[1]; \
                  field.dispatchEvent(new Event('input', { bubbles: true })); return field.value;";
    assert_eq!(browser.js(script, vec![json!(css), json!(value)]).await, json!(value), "{css}");
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let field = browser.client.find(Locator::Css(css)).await.expect("field");
    field.clear().await.expect("cleared");
    field.send_keys(text).await.expect("typed");
}

async fn value_of(browser: &Browser, css: &str) -> Value {
    browser.js("return document.querySelector(arguments[0]).value;", vec![json!(css)]).await
}

async fn click(browser: &Browser, css: &str) {
    browser.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}")).click().await.expect("click");
}

/// Waits until the call's row is in `list` with `status`.
async fn wait_for_row(browser: &Browser, list: &str, id: &str, status: &str) {
    let script = "const row = document.querySelector('#' + arguments[0] + ' #call-' + arguments[1]); \
                  return !!row && row.querySelector('.badge').dataset.status === arguments[2];";
    let what = format!("call {id} shows as {status} in {list}");
    browser.wait_until(&what, script, vec![json!(list), json!(id), json!(status)]).await;
}

/// Waits until the page a form redirected to, whose address carries `key`, has loaded.
async fn arrived(browser: &Browser, key: &str) {
    let script = "return location.search.includes(arguments[0]) && document.readyState === 'complete';";
    browser.wait_until(&format!("the page after {key} has loaded"), script, vec![json!(key)]).await;
}

async fn press_tab(browser: &Browser) {
    let tab = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: Key::Tab.into() })
        .then(KeyAction::Up { value: Key::Tab.into() });
    browser.client.perform_actions(tab).await.expect("tab pressed");
}

#[tokio::test]
async fn a_call_scheduled_in_los_angeles_is_stored_as_that_local_noon_in_utc() {
    let Some((browser, app)) = start(Options::default()).await else { return };
    let day = tomorrow_in_los_angeles();
    let noon = NaiveTime::from_hms_opt(12, 0, 0).expect("valid time");
    let expected = Los_Angeles.from_local_datetime(&day.and_time(noon)).single().expect("unambiguous noon");
    browser.open(&app.base, "/").await;
    assert_eq!(value_of(&browser, "#timezone").await, json!(driver::ZONE), "the zone defaults to the browser's");

    type_into(&browser, "#to", IRISH).await;
    set_value(&browser, "#date", &day.format("%Y-%m-%d").to_string()).await;
    set_value(&browser, "#time", "12:00").await;
    browser.screenshot("form-filled").await;
    click(&browser, "#schedule-form button[type=submit]").await;

    let flash = browser.text(".flash").await;
    assert!(flash.contains("scheduled") && flash.contains("12:00"), "{flash}");
    let url = browser.client.current_url().await.expect("url");
    let id = url.query_pairs().find(|(k, _)| k == "scheduled").map(|(_, v)| v.into_owned()).expect("call id");
    let call = app.call(&id).await;
    let stored = DateTime::parse_from_rfc3339(call["due_at"].as_str().expect("due_at")).expect("RFC 3339");
    assert_eq!(stored.with_timezone(&Utc), expected.with_timezone(&Utc));
    assert_eq!(call["timezone"], driver::ZONE);
    wait_for_row(&browser, "upcoming-list", &id, "scheduled").await;
    browser.screenshot("scheduled").await;
    browser.assert_only_local_requests().await;
    browser.close().await;
}

#[tokio::test]
async fn a_call_goes_live_from_scheduled_to_completed_on_the_open_page_without_a_reload() {
    let Some((browser, app)) = start(watchable()).await else { return };
    browser.open(&app.base, "/").await;
    browser.wait_until_live().await;
    // Survives only as long as the document does: a reload would wipe it.
    browser.js("window.sameDocument = true; return true;", vec![]).await;

    let id = schedule_soon(&app, ANSWERS).await;

    wait_for_row(&browser, "upcoming-list", &id, "ringing").await;
    browser.screenshot("live-ringing").await;
    wait_for_row(&browser, "recent-list", &id, "completed").await;
    browser.screenshot("live-completed").await;
    assert_eq!(browser.js("return window.sameDocument === true;", vec![]).await, json!(true), "the page reloaded");
    let joke = app.call(&id).await["joke"].as_str().expect("a joke was told").to_owned();
    assert_eq!(browser.text(&format!("#call-{id} blockquote")).await, joke);
    let legend = browser.text("#outcomes-chart .chart-legend").await;
    assert!(legend.contains("Joke told (1)"), "the chart counts the call: {legend}");
    browser.assert_only_local_requests().await;
    browser.close().await;
}

#[tokio::test]
async fn a_calls_timeline_shows_each_step_with_its_time_and_the_joke_that_was_spoken() {
    let Some((browser, app)) = start(Options::default()).await else { return };
    let id = schedule_soon(&app, ANSWERS).await;
    let call = app.wait_until_final(&id).await;
    browser.open(&app.base, "/").await;

    click(&browser, &format!("#call-{id} .call-link")).await;

    let steps =
        browser.js("return [...document.querySelectorAll('.step-label')].map(s => s.textContent);", vec![]).await;
    let steps: Vec<String> = serde_json::from_value(steps).expect("labels");
    let expected = ["Scheduled", "Dialling started", "Ringing", "Answered", "Joke spoken", "Hung up"];
    let mut remaining = steps.iter();
    for label in expected {
        assert!(remaining.any(|step| step.starts_with(label)), "{label} missing or out of order in {steps:?}");
    }
    assert_eq!(browser.text(".step-joke").await, call["joke"].as_str().expect("joke"));
    let times = browser.js("return [...document.querySelectorAll('.step time')].every(t => /\\d\\d:\\d\\d:\\d\\d/.test(t.textContent));", vec![]).await;
    assert_eq!(times, json!(true), "every step has its time");
    browser.screenshot("timeline").await;
    browser.assert_only_local_requests().await;
    browser.close().await;
}

#[tokio::test]
async fn a_call_cancelled_from_the_list_moves_to_the_recent_calls_as_cancelled() {
    let Some((browser, app)) = start(Options::default()).await else { return };
    let kept = app.schedule_in(IRISH, Duration::from_secs(7200)).await["id"].as_str().expect("id").to_owned();
    let doomed = app.schedule_in(IRISH, Duration::from_secs(3600)).await["id"].as_str().expect("id").to_owned();
    browser.open(&app.base, "/").await;

    click(&browser, &format!("#call-{doomed} .cancel-form button")).await;

    assert!(browser.text(".flash").await.contains("cancelled"));
    wait_for_row(&browser, "recent-list", &doomed, "cancelled").await;
    wait_for_row(&browser, "upcoming-list", &kept, "scheduled").await;
    assert_eq!(app.call(&doomed).await["status"], "cancelled");
    assert_eq!(app.call(&kept).await["status"], "scheduled");
    browser.screenshot("cancelled").await;
    browser.close().await;
}

#[tokio::test]
async fn bad_input_is_shown_beside_each_field_and_what_was_typed_is_kept() {
    let Some((browser, app)) = start(Options::default()).await else { return };
    browser.open(&app.base, "/").await;

    type_into(&browser, "#to", "12345").await;
    type_into(&browser, "#timezone", "Atlantis/Lost").await;
    click(&browser, "#schedule-form button[type=submit]").await;

    for (field, typed) in [("to", "12345"), ("timezone", "Atlantis/Lost")] {
        let message = browser.text(&format!("#{field} ~ .field-error")).await;
        assert!(!message.is_empty(), "{field} has its error beside it");
        assert_eq!(value_of(&browser, &format!("#{field}")).await, json!(typed));
        let invalid = browser
            .js("return document.getElementById(arguments[0]).getAttribute('aria-invalid');", vec![json!(field)])
            .await;
        assert_eq!(invalid, json!("true"));
    }
    assert_eq!(app.count_rows("calls").await, 0);
    browser.screenshot("field-errors").await;
    browser.close().await;
}

#[tokio::test]
async fn the_page_shows_every_outcome_on_its_chart_next_to_a_live_call_and_fits_a_phone() {
    let Some((browser, app)) = start(watchable()).await else { return };
    let mut finished = Vec::new();
    for to in [ANSWERS, ANSWERS, BUSY, NO_ANSWER, REJECTS] {
        finished.push(schedule_soon(&app, to).await);
    }
    for id in &finished {
        app.wait_until_final(id).await;
    }
    app.schedule_in(IRISH, Duration::from_secs(3600)).await;
    browser.resize(1280, 1400).await;
    browser.open(&app.base, "/").await;
    browser.wait_until_live().await;

    let ringing = schedule_soon(&app, ANSWERS).await;

    wait_for_row(&browser, "upcoming-list", &ringing, "ringing").await;
    let legend = browser.text("#outcomes-chart .chart-legend").await;
    for shown in ["Joke told (2)", "Line busy (1)", "No answer (1)", "Call rejected (1)", "Failed (0)"] {
        assert!(legend.contains(shown), "{shown} in {legend}");
    }
    let bars = browser.js("return document.querySelectorAll('#outcomes-chart rect.chart-bar').length;", vec![]).await;
    assert_eq!(bars, json!(4), "one bar part per outcome that happened today");
    browser.screenshot("page-desktop").await;
    browser.resize(390, 844).await;
    let sideways = "return document.documentElement.scrollWidth <= document.documentElement.clientWidth;";
    assert_eq!(browser.js(sideways, vec![]).await, json!(true), "the phone never scrolls sideways");
    browser.screenshot("page-phone-form").await;
    for (part, heading) in [("calls", "upcoming-heading"), ("chart", "chart-heading")] {
        browser.js("document.getElementById(arguments[0]).scrollIntoView(); return true;", vec![json!(heading)]).await;
        browser.screenshot(&format!("page-phone-{part}")).await;
    }
    browser.assert_only_local_requests().await;
    browser.close().await;
}

#[tokio::test]
async fn every_field_is_labelled_and_the_form_is_reached_by_keyboard_after_the_skip_link() {
    let Some((browser, app)) = start(Options::default()).await else { return };
    browser.open(&app.base, "/").await;

    let unlabelled = "return [...document.querySelectorAll('input:not([type=hidden]), button, a')] \
                      .filter(e => !(e.labels && e.labels.length ? e.labels[0].textContent : e.textContent).trim()) \
                      .map(e => e.outerHTML);";
    assert_eq!(browser.js(unlabelled, vec![]).await, json!([]));
    let focused = "return document.activeElement.id || document.activeElement.className;";
    press_tab(&browser).await;
    assert_eq!(browser.js(focused, vec![]).await, json!("skip-link"));
    press_tab(&browser).await;
    press_tab(&browser).await;
    assert_eq!(browser.js(focused, vec![]).await, json!("to"));
    browser.close().await;
}

#[tokio::test]
async fn nothing_any_page_loads_comes_from_beyond_127_0_0_1() {
    let Some((browser, app)) = start(Options::default()).await else { return };
    let id = schedule_soon(&app, BUSY).await;
    app.wait_until_final(&id).await;

    for path in ["/", &format!("/calls/{id}"), "/calls/not-a-call", "/?scheduled=nothing"] {
        browser.open(&app.base, path).await;
        let loaded = "return document.readyState === 'complete';";
        browser.wait_until(&format!("{path} has loaded"), loaded, vec![]).await;

        browser.assert_only_local_requests().await;
    }
    browser.close().await;
}

#[tokio::test]
async fn a_weekly_call_set_up_on_the_page_shows_its_next_sunday_and_can_be_paused_and_deleted() {
    let Some((browser, app)) = start(Options::default()).await else { return };
    browser.open(&app.base, "/").await;
    assert_eq!(value_of(&browser, "#rule-timezone").await, json!(driver::ZONE), "the zone defaults to the browser's");

    type_into(&browser, "#rule-to", IRISH).await;
    set_value(&browser, "#rule-repeat", "weekly").await;
    set_value(&browser, "#rule-day", "sun").await;
    set_value(&browser, "#rule-time", "10:00").await;
    browser.screenshot("rule-form-filled").await;
    click(&browser, "#rule-form button[type=submit]").await;

    arrived(&browser, "rule_created").await;
    let flash = browser.text(".flash").await;
    assert!(flash.contains("every Sunday at 10:00 (America/Los_Angeles)"), "{flash}");
    let url = browser.client.current_url().await.expect("url");
    let rule = url.query_pairs().find(|(k, _)| k == "rule_created").map(|(_, v)| v.into_owned()).expect("rule id");
    let next = browser.text(&format!("#rule-{rule} .rule-next")).await;
    assert!(next.starts_with("Next call: Sun") && next.contains("10:00"), "{next}");
    browser.screenshot("rule-listed").await;

    click(&browser, &format!("#rule-{rule} form[action$='/pause'] button")).await;
    arrived(&browser, "rule_paused").await;
    assert!(browser.text(&format!("#rule-{rule} .rule-next")).await.starts_with("Paused"));
    click(&browser, &format!("#rule-{rule} form[action$='/delete'] button")).await;
    arrived(&browser, "rule_deleted").await;
    assert!(browser.text(".flash").await.contains("deleted"));
    let gone = browser.js("return document.getElementById('rule-' + arguments[0]) === null;", vec![json!(rule)]).await;
    assert_eq!(gone, json!(true));
    browser.assert_only_local_requests().await;
    browser.close().await;
}

/// Waits until the page at `path` has loaded.
async fn on_page(browser: &Browser, path: &str) {
    let script = "return location.pathname === arguments[0] && document.readyState === 'complete';";
    browser.wait_until(&format!("{path} has loaded"), script, vec![json!(path)]).await;
}

#[tokio::test]
async fn with_a_token_a_person_signs_in_schedules_a_call_and_signs_out_and_is_then_asked_again() {
    const TOKEN: &str = "correct-horse-battery-staple";
    let mut options = Options::default();
    options.env.push(("DIALAJOKE_API_TOKEN", TOKEN.to_owned()));
    let Some((browser, app)) = start(options).await else { return };
    browser.open(&app.base, "/").await;
    on_page(&browser, "/login").await;

    type_into(&browser, "#token", TOKEN).await;
    click(&browser, "form[action='/login'] button[type=submit]").await;
    on_page(&browser, "/").await;
    type_into(&browser, "#to", IRISH).await;
    set_value(&browser, "#date", &tomorrow_in_los_angeles().format("%Y-%m-%d").to_string()).await;
    set_value(&browser, "#time", "12:00").await;
    click(&browser, "#schedule-form button[type=submit]").await;
    arrived(&browser, "scheduled").await;
    browser.screenshot("signed-in").await;
    click(&browser, ".sign-out button").await;

    on_page(&browser, "/login").await;
    browser.open(&app.base, "/").await;
    on_page(&browser, "/login").await;
    assert_eq!(app.count_rows("calls").await, 1);
    browser.assert_only_local_requests().await;
    browser.close().await;
}
