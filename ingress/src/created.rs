//! Where a resource created by a job lives, for the `Location` of a 201
//! (§6.1: "201 with `Location` for creates"). Kept beside the kinds that
//! create, so a new creating kind is one line and no route has to re-read
//! the answer it already sent.

use serde_json::Value;

/// Creating kinds: the collection path, and the field of the answer holding the new id.
const CREATES: &[(&str, &str, &str)] = &[
    ("task.create", "/api/v1/tasks", "id"),
    // A dispatch answers with its own shape; the resource it made is the tarea.
    ("emergency.dispatch", "/api/v1/tasks", "tarea_id"),
    ("user.create", "/api/v1/users", "id"),
    ("efectivo.create", "/api/v1/efectivos", "id"),
];

/// The path of what a succeeded job of `kind` created, read from its answer.
pub fn location(kind: &str, body: &Value) -> Option<String> {
    let (_, collection, field) = CREATES.iter().find(|(k, _, _)| *k == kind)?;
    let id = body.get(*field)?.as_i64()?;
    Some(format!("{collection}/{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn creating_kinds_point_at_their_resource() {
        assert_eq!(
            location("user.create", &json!({"id": 7})).as_deref(),
            Some("/api/v1/users/7")
        );
        assert_eq!(
            location("emergency.dispatch", &json!({"tarea_id": 9, "assigned_efectivo_id": 3})).as_deref(),
            Some("/api/v1/tasks/9")
        );
        assert_eq!(location("task.update", &json!({"id": 7})), None);
        assert_eq!(location("efectivo.create", &json!({"id": "7"})), None);
    }
}
