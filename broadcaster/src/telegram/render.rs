//! A notification row's payload as a Telegram message: HTML with every
//! interpolated value escaped, and its buttons as an inline keyboard whose
//! callback data is `n:<notification_id>:<action>` (§9, ≤ 64 bytes).

use serde_json::Value;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};
use uuid::Uuid;

use super::split::truncate_html;

/// Telegram's longest message text; longer plain texts are cut at a
/// character boundary, longer HTML at the end of its first valid part.
pub const MAX_TEXT_CHARS: usize = super::split::MAX_MESSAGE_CHARS;

/// Escapes the three characters Telegram's HTML parse mode requires escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

pub struct Rendered {
    /// HTML text.
    pub html: String,
    /// The same text without markup, for a resend after a parse error.
    pub plain: String,
    pub keyboard: Option<InlineKeyboardMarkup>,
}

/// Renders `{title, text, buttons: [{label, action}]}`; missing fields are empty.
pub fn render(notification_id: Uuid, payload: &Value) -> Rendered {
    let title = payload.get("title").and_then(Value::as_str).unwrap_or_default();
    let text = payload.get("text").and_then(Value::as_str).unwrap_or_default();
    let html = match (title.is_empty(), text.is_empty()) {
        (false, false) => format!("<b>{}</b>\n{}", escape_html(title), escape_html(text)),
        (false, true) => format!("<b>{}</b>", escape_html(title)),
        _ => escape_html(text),
    };
    let plain = [title, text]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n");
    let buttons: Vec<InlineKeyboardButton> = payload
        .get("buttons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|b| {
            let label = b.get("label")?.as_str()?;
            let action = b.get("action")?.as_str()?;
            Some(InlineKeyboardButton::callback(
                label,
                format!("n:{notification_id}:{action}"),
            ))
        })
        .collect();
    Rendered {
        // One notification is one message (its id and buttons are one
        // Telegram message's): a longer text loses its end, never an entity.
        html: truncate_html(&html, MAX_TEXT_CHARS),
        plain: truncate(plain),
        keyboard: (!buttons.is_empty()).then(|| InlineKeyboardMarkup::new([buttons])),
    }
}

fn truncate(text: String) -> String {
    match text.char_indices().nth(MAX_TEXT_CHARS) {
        Some((cut, _)) => text[..cut].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escapes_every_interpolated_value() {
        let id = Uuid::nil();
        let r = render(id, &json!({ "title": "a<b>&c", "text": "x > y <script>" }));
        assert_eq!(r.html, "<b>a&lt;b&gt;&amp;c</b>\nx &gt; y &lt;script&gt;");
        assert_eq!(r.plain, "a<b>&c\nx > y <script>");
    }

    #[test]
    fn buttons_carry_the_notification_and_fit_callback_data() {
        let id = Uuid::now_v7();
        let r = render(
            id,
            &json!({ "text": "t", "buttons": [{ "label": "Aceptar", "action": "a" }] }),
        );
        let kb = r.keyboard.map(|k| k.inline_keyboard).unwrap_or_default();
        let data = match &kb[0][0].kind {
            teloxide::types::InlineKeyboardButtonKind::CallbackData(d) => d.clone(),
            other => panic!("unexpected button {other:?}"),
        };
        assert_eq!(data, format!("n:{id}:a"));
        assert!(data.len() <= 64);
    }

    #[test]
    fn long_texts_are_cut_at_a_character_boundary() {
        let r = render(Uuid::nil(), &json!({ "text": "ñ".repeat(5000) }));
        assert_eq!(r.plain.chars().count(), MAX_TEXT_CHARS);
    }

    #[test]
    fn long_html_is_cut_between_entities_not_inside_one() {
        let r = render(Uuid::nil(), &json!({ "title": "T", "text": "<&>".repeat(2000) }));
        assert!(r.html.starts_with("<b>T</b>\n&lt;&amp;&gt;"));
        assert!(r.html.ends_with("&lt;") || r.html.ends_with("&amp;") || r.html.ends_with("&gt;"));
        assert!(r.html.len() > MAX_TEXT_CHARS, "markup does not count against the limit");
    }
}
