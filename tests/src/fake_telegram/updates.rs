//! Updates a test scripts, shaped as the Bot API sends them: private text
//! messages, button presses, locations, live locations and their edits.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::{BOT_ID, FakeTelegram};

impl FakeTelegram {
    /// A private text message from `user_id` (its chat has the same id).
    pub fn push_text(&self, user_id: i64, text: &str) -> i64 {
        self.push_update(json!({ "message": message_from(user_id, text) }))
    }

    /// A press of an inline button carrying `data`, on message `message_id`.
    pub fn push_callback(&self, user_id: i64, message_id: i64, data: &str) -> i64 {
        let mut message = message_from(BOT_ID, "");
        message["message_id"] = json!(message_id);
        message["chat"] = private_chat(user_id);
        self.push_update(json!({
            "callback_query": {
                "id": format!("cb{}-{message_id}", unix_now()),
                "from": user(user_id),
                "message": message,
                "chat_instance": format!("ci{user_id}"),
                "data": data,
            }
        }))
    }

    /// A shared location from `user_id`.
    pub fn push_location(&self, user_id: i64, lat: f64, lng: f64) -> i64 {
        self.push_update(json!({ "message": location_message(user_id, lat, lng) }))
    }

    /// The first message of a live location from `user_id`, sent at
    /// `date` (Unix seconds); returns its `message_id`, which its edits carry.
    pub fn push_live_location(&self, user_id: i64, lat: f64, lng: f64, date: i64) -> i64 {
        let mut message = location_message(user_id, lat, lng);
        message["date"] = json!(date);
        message["location"]["live_period"] = json!(3600);
        let message_id = message["message_id"].as_i64().unwrap_or_default();
        self.push_update(json!({ "message": message }));
        message_id
    }

    /// A live location's update: message `message_id` (sent at `date`)
    /// edited at `edit_date` (Unix seconds) to a new position.
    pub fn push_location_edit(
        &self,
        user_id: i64,
        message_id: i64,
        lat: f64,
        lng: f64,
        date: i64,
        edit_date: i64,
    ) -> i64 {
        let mut message = location_message(user_id, lat, lng);
        message["message_id"] = json!(message_id);
        message["date"] = json!(date);
        message["edit_date"] = json!(edit_date);
        message["location"]["live_period"] = json!(3600);
        self.push_update(json!({ "edited_message": message }))
    }
}

fn location_message(user_id: i64, lat: f64, lng: f64) -> Value {
    let mut message = message_from(user_id, "");
    if let Some(m) = message.as_object_mut() {
        m.remove("text");
    }
    message["location"] = json!({ "latitude": lat, "longitude": lng });
    message
}

pub(super) fn user(id: i64) -> Value {
    json!({ "id": id, "is_bot": id == BOT_ID, "first_name": format!("user{id}"), "language_code": "es" })
}

pub(super) fn private_chat(id: i64) -> Value {
    json!({ "id": id, "type": "private", "first_name": format!("user{id}") })
}

pub(super) fn message_from(user_id: i64, text: &str) -> Value {
    json!({
        "message_id": (unix_now() % 1_000_000) as i64,
        "date": unix_now(),
        "chat": private_chat(user_id),
        "from": user(user_id),
        "text": text,
    })
}

/// Now in Unix seconds, the unit of the Bot API's dates.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
