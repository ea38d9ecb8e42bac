//! The operations board (`/board`) in headless Chromium, as dispatchers,
//! operators and field units use it: every test logs in through the page,
//! acts with real clicks and sees the outcome arrive live, against the real
//! services; screenshots land in `target/screenshots/board_page_*`.

mod dispatcher;
mod operators;
mod own_tasks;
mod resume;

use std::time::Duration;

use gad_e2e::browser::Browser;
use gad_e2e::{TestApp, spawn_app_with_board};

/// Generous: Chromium shares two CPUs with the services and other tests.
pub const WITHIN: Duration = Duration::from_secs(30);

/// A test's app and browser.
pub async fn open(test: &str) -> anyhow::Result<(TestApp, Browser)> {
    let app = spawn_app_with_board().await?;
    match Browser::start(test).await {
        Ok(browser) => Ok((app, browser)),
        Err(e) => {
            app.stop().await?;
            Err(e)
        }
    }
}

/// Ends a test: a screenshot of the page as it failed, then the browser and
/// the services stop whatever the outcome.
pub async fn finish(app: TestApp, mut browser: Browser, outcome: anyhow::Result<()>) -> anyhow::Result<()> {
    if outcome.is_err() {
        if let Ok(path) = browser.screenshot("failure").await {
            eprintln!("failure screenshot: {}", path.display());
        }
        // A blank page is most often a module that did not load: say which.
        let modules = browser.eval(MODULE_PROBE, vec![]).await;
        eprintln!("board modules: {modules:?}");
    }
    let closed = browser.close().await;
    let stopped = app.stop().await;
    outcome.and(closed).and(stopped)
}

const MODULE_PROBE: &str = "return Promise.all([...document.querySelectorAll('script[type=module]')]
    .map((s) => import(s.src).then(() => `${s.src} ok`, (e) => `${s.src}: ${e}`)));";

/// The login form, filled and sent as a person would.
pub async fn log_in(browser: &Browser, app: &TestApp, email: &str, password: &str) -> anyhow::Result<()> {
    browser.client.goto(&format!("{}/board", app.http)).await?;
    let email_field = browser.wait_for("#login-email", WITHIN).await?;
    email_field.clear().await?;
    email_field.send_keys(email).await?;
    let password_field = browser.wait_for("#login-password", WITHIN).await?;
    password_field.clear().await?;
    password_field.send_keys(password).await?;
    browser.wait_for("#login-submit", WITHIN).await?.click().await?;
    Ok(())
}

/// Logged in, data loaded and the live feed connected.
pub async fn wait_live(browser: &Browser) -> anyhow::Result<()> {
    browser
        .wait_for("#board[data-ready='true'] #live-status[data-state='live']", WITHIN)
        .await?;
    Ok(())
}

/// The id the page drew at load: unchanged means no reload happened.
pub async fn load_id(browser: &Browser) -> anyhow::Result<String> {
    let id = browser
        .eval("return document.documentElement.dataset.loadId;", vec![])
        .await?;
    Ok(id.as_str().unwrap_or_default().to_string())
}

/// The `data-id`s of the elements matching `css`, in document order.
pub async fn ids_of(browser: &Browser, css: &str) -> anyhow::Result<Vec<i64>> {
    let ids = browser
        .eval(
            "return [...document.querySelectorAll(arguments[0])].map((n) => Number(n.dataset.id));",
            vec![serde_json::json!(css)],
        )
        .await?;
    Ok(ids
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_i64).collect())
        .unwrap_or_default())
}
