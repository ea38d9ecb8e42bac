//! The teloxide `Bot` handle, pointed at the configured Bot API URL (the
//! real Telegram, or the fake server in tests and the local run), and what a
//! failed call means for the notification behind it.

use std::time::Duration;

use teloxide::{ApiError, Bot, RequestError};

use crate::settings::TelegramSection;

#[derive(Debug, thiserror::Error)]
pub enum BotError {
    #[error("telegram.api_url: {0}")]
    ApiUrl(String),
    #[error("building the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The bot, or `None` when no token is configured.
pub fn bot(settings: &TelegramSection) -> Result<Option<Bot>, BotError> {
    let Some(token) = settings.bot_token.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let url = reqwest::Url::parse(&settings.api_url).map_err(|e| BotError::ApiUrl(e.to_string()))?;
    // The client's own timeout must outlast a long poll; each send is
    // bounded separately by `api_timeout`.
    let client = reqwest::Client::builder()
        .connect_timeout(settings.api_timeout)
        .timeout(settings.poll_timeout + settings.api_timeout)
        .tcp_nodelay(true)
        .build()?;
    Ok(Some(Bot::with_client(token, client).set_api_url(url)))
}

/// What a failed send means for the notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendFailure {
    /// 429: wait this long, then try again.
    RetryAfter(Duration),
    /// The chat cannot be reached (403 and kin): `undeliverable`.
    Unreachable(String),
    /// Telegram could not parse our HTML: resend as plain text.
    Parse(String),
    /// 5xx, network, timeout: retry with backoff.
    Transient(String),
    /// Any other refusal: retrying would not help.
    Permanent(String),
}

impl SendFailure {
    /// The `code` label of `telegram_api_errors_total`: the status where the
    /// answer tells it, else the class (teloxide drops most status codes).
    pub fn code(&self) -> &'static str {
        match self {
            SendFailure::RetryAfter(_) => "429",
            SendFailure::Unreachable(_) => "403",
            SendFailure::Parse(_) => "400",
            SendFailure::Transient(_) => "transient",
            SendFailure::Permanent(_) => "permanent",
        }
    }
}

pub fn classify(e: RequestError) -> SendFailure {
    match e {
        RequestError::RetryAfter(s) => SendFailure::RetryAfter(s.duration()),
        RequestError::Api(api) => classify_api(api),
        RequestError::Network(e) => SendFailure::Transient(format!("network: {e}")),
        // A proxy's error page in place of Telegram's JSON.
        RequestError::InvalidJson { source, raw } => {
            let head: String = raw.chars().take(200).collect();
            SendFailure::Transient(format!("invalid response body ({source}): {head}"))
        }
        other => SendFailure::Permanent(other.to_string()),
    }
}

fn classify_api(api: ApiError) -> SendFailure {
    match api {
        ApiError::BotBlocked
        | ApiError::BotKicked
        | ApiError::BotKickedFromSupergroup
        | ApiError::BotKickedFromChannel
        | ApiError::UserDeactivated
        | ApiError::CantInitiateConversation
        | ApiError::CantTalkWithBots
        | ApiError::ChatNotFound => SendFailure::Unreachable(api.to_string()),
        ApiError::CantParseEntities(text) => SendFailure::Parse(text),
        ApiError::Unknown(text) => {
            // teloxide drops the status code; Telegram's descriptions start with its name.
            if text.starts_with("Forbidden") {
                SendFailure::Unreachable(text)
            } else if text.starts_with("Bad Request")
                || text.starts_with("Unauthorized")
                || text.starts_with("Not Found")
            {
                SendFailure::Permanent(text)
            } else {
                SendFailure::Transient(text)
            }
        }
        other => SendFailure::Permanent(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_the_delivery_treats_differently() {
        assert_eq!(
            classify(RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(3))),
            SendFailure::RetryAfter(Duration::from_secs(3))
        );
        assert!(matches!(
            classify(RequestError::Api(ApiError::BotBlocked)),
            SendFailure::Unreachable(_)
        ));
        assert!(matches!(
            classify(RequestError::Api(ApiError::Unknown("Internal Server Error".into()))),
            SendFailure::Transient(_)
        ));
        assert!(matches!(
            classify(RequestError::Api(ApiError::Unknown("Forbidden: something new".into()))),
            SendFailure::Unreachable(_)
        ));
    }
}
