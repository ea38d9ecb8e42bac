//! Headless Chromium for the board's tests: Debian's `chromium` driven by
//! its `chromedriver` over WebDriver (deploy/services.sh installs both; no
//! browser is downloaded). Each [`Browser`] has its own driver process,
//! port and profile directory, so tests run side by side and leave nothing.
//!
//! Screenshots go to `<target>/screenshots/<test>/`, where CI keeps them
//! beside the build.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::app::unused_port;

const DRIVER_READY_WITHIN: Duration = Duration::from_secs(20);
const SESSION_WITHIN: Duration = Duration::from_secs(60);

/// Flags that keep a headless Chromium off the (closed) network and quiet:
/// without the background-networking ones it keeps dialling Google's hosts.
const CHROMIUM_ARGS: [&str; 11] = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--window-size=1440,900",
];

pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: PathBuf,
    shots: PathBuf,
    taken: usize,
}

impl Browser {
    /// A new browser session; `test` names its screenshot folder.
    pub async fn start(test: &str) -> anyhow::Result<Self> {
        let chromium = std::env::var("GAD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let chromedriver = std::env::var("GAD_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into());
        for binary in [&chromium, &chromedriver] {
            if !Path::new(binary).exists() {
                bail!("{binary} is missing: ./deploy/services.sh up installs chromium and chromium-driver");
            }
        }
        let port = unused_port()?;
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {chromedriver}"))?;
        let profile = std::env::temp_dir().join(format!("gad-chromium-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&profile)?;
        let shots = screenshot_root().join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).with_context(|| format!("creating {}", shots.display()))?;

        let url = format!("http://127.0.0.1:{port}");
        wait_for_port(port).await?;
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let Value::Object(caps) = caps else {
            bail!("capabilities are not an object");
        };
        let client = tokio::time::timeout(
            SESSION_WITHIN,
            ClientBuilder::new(HttpConnector::new())
                .capabilities(caps)
                .connect(&url),
        )
        .await
        .context("chromedriver did not open a session in time")?
        .context("opening a Chromium session")?;
        Ok(Self {
            client,
            driver,
            profile,
            shots,
            taken: 0,
        })
    }

    /// The first element matching `css` within `within`.
    pub async fn wait_for(&self, css: &str, within: Duration) -> anyhow::Result<Element> {
        self.client
            .wait()
            .at_most(within)
            .every(Duration::from_millis(100))
            .for_element(Locator::Css(css))
            .await
            .with_context(|| format!("no {css} within {within:?}"))
    }

    /// Waits until `css` matches nothing (an element went away).
    pub async fn wait_gone(&self, css: &str, within: Duration) -> anyhow::Result<()> {
        let script = "return document.querySelector(arguments[0]) === null;";
        self.poll(&format!("{css} gone"), within, script, vec![json!(css)])
            .await
    }

    /// Waits until `script` (a function body) returns `true`; `what` names
    /// the condition in the error.
    pub async fn wait_until(&self, what: &str, within: Duration, script: &str) -> anyhow::Result<()> {
        self.poll(what, within, script, vec![]).await
    }

    async fn poll(&self, what: &str, within: Duration, script: &str, args: Vec<Value>) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        while self.eval(script, args.clone()).await? != json!(true) {
            if tokio::time::Instant::now() >= deadline {
                bail!("not within {within:?}: {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(())
    }

    /// A real mouse click at a point of the viewport (CSS pixels): what a
    /// user does on a map, where the point matters, not the element.
    pub async fn click_at(&self, x: f64, y: f64) -> anyhow::Result<()> {
        let mouse = MouseActions::new("mouse".into())
            .then(PointerAction::MoveTo { duration: None, x, y })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client.perform_actions(mouse).await.context("clicking")?;
        Ok(())
    }

    pub async fn count(&self, css: &str) -> anyhow::Result<usize> {
        Ok(self.client.find_all(Locator::Css(css)).await?.len())
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page.
    pub async fn eval(&self, script: &str, args: Vec<Value>) -> anyhow::Result<Value> {
        self.client
            .execute(script, args)
            .await
            .context("running a script in the page")
    }

    /// Saves a PNG of the window as `<nn>-<name>.png` and returns its path.
    pub async fn screenshot(&mut self, name: &str) -> anyhow::Result<PathBuf> {
        let png = self.client.screenshot().await.context("taking a screenshot")?;
        self.taken += 1;
        let path = self.shots.join(format!("{:02}-{name}.png", self.taken));
        std::fs::write(&path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }

    /// Ends the session, then the driver; the profile directory goes too.
    pub async fn close(mut self) -> anyhow::Result<()> {
        let closed = self.client.clone().close().await;
        let _ = self.driver.kill().await;
        let _ = std::fs::remove_dir_all(&self.profile);
        closed.context("closing the browser session")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // A failed test never reaches close(): the driver is killed on drop
        // (and takes its Chromium with it); the profile is removed here.
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// `$GAD_SCREENSHOTS`, else `target/screenshots` of this workspace (or of
/// `$CARGO_TARGET_DIR`).
pub fn screenshot_root() -> PathBuf {
    if let Ok(dir) = std::env::var("GAD_SCREENSHOTS") {
        return PathBuf::from(dir);
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("screenshots")
}

async fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + DRIVER_READY_WITHIN;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("chromedriver did not listen on {port} within {DRIVER_READY_WITHIN:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
