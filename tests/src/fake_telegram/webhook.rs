//! The fake's webhook side, as Telegram does it: after `setWebhook`, each
//! scripted update is POSTed to the URL with the `secret_token` in
//! `X-Telegram-Bot-Api-Secret-Token`, one at a time and in order, and sent
//! again until the receiver answers 2xx. `getUpdates` answers 409 meanwhile;
//! `deleteWebhook` goes back to polling.

use std::time::Duration;

use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Inner, Shared};

/// How long the fake waits before posting an update again after a non-2xx.
const RETRY_EVERY: Duration = Duration::from_millis(200);
/// Longest one POST may take.
const POST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub(super) struct Webhook {
    url: String,
    secret: Option<String>,
}

/// One POST of an update to the webhook, and the receiver's answer (0 when
/// it did not answer).
#[derive(Debug, Clone)]
pub struct WebhookDelivery {
    pub update: Value,
    pub status: u16,
}

impl WebhookDelivery {
    pub fn update_id(&self) -> Option<i64> {
        self.update["update_id"].as_i64()
    }
}

impl super::FakeTelegram {
    /// Every POST to the webhook so far, in order.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.lock().webhook_deliveries.clone()
    }

    /// The webhook's URL and secret, once the bot has called `setWebhook`.
    pub fn webhook(&self) -> Option<(String, Option<String>)> {
        self.shared
            .lock()
            .webhook
            .as_ref()
            .map(|w| (w.url.clone(), w.secret.clone()))
    }
}

/// `setWebhook`, `deleteWebhook` and `getWebhookInfo`: the call's `result`.
pub(super) fn method(inner: &mut Inner, method: &str, body: &Value) -> Value {
    match method {
        "setWebhook" => {
            let url = body["url"].as_str().unwrap_or_default().to_string();
            let secret = body["secret_token"].as_str().map(str::to_string);
            inner.webhook = (!url.is_empty()).then_some(Webhook { url, secret });
            json!(true)
        }
        "deleteWebhook" => {
            inner.webhook = None;
            json!(true)
        }
        _ => json!({
            "url": inner.webhook.as_ref().map(|w| w.url.as_str()).unwrap_or(""),
            "has_custom_certificate": false,
            "pending_update_count": inner.updates.len(),
        }),
    }
}

/// Posts queued updates while a webhook is set, until `stop`.
pub(super) async fn deliver(shared: Shared, stop: CancellationToken) {
    let client = match reqwest::Client::builder().timeout(POST_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fake telegram: no HTTP client for webhooks: {e}");
            return;
        }
    };
    loop {
        // Registered before looking, so an update pushed in between still wakes us.
        let notified = shared.new_update.notified();
        let next = {
            let inner = shared.lock();
            inner
                .webhook
                .clone()
                .and_then(|w| inner.updates.front().cloned().map(|u| (w, u)))
        };
        let Some((webhook, update)) = next else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = notified => {}
                // Polling too: a webhook set by a test through `method` has no notification.
                _ = tokio::time::sleep(RETRY_EVERY) => {}
            }
            continue;
        };
        let mut request = client.post(&webhook.url).json(&update);
        if let Some(secret) = &webhook.secret {
            request = request.header("X-Telegram-Bot-Api-Secret-Token", secret);
        }
        let status = tokio::select! {
            _ = stop.cancelled() => return,
            r = request.send() => r.map(|r| r.status().as_u16()).unwrap_or(0),
        };
        let delivered = (200..300).contains(&status);
        {
            let mut inner = shared.lock();
            inner.webhook_deliveries.push(WebhookDelivery {
                update: update.clone(),
                status,
            });
            if delivered
                && inner
                    .updates
                    .front()
                    .is_some_and(|u| u["update_id"] == update["update_id"])
            {
                inner.updates.pop_front();
            }
        }
        if !delivered {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RETRY_EVERY) => {}
            }
        }
    }
}
