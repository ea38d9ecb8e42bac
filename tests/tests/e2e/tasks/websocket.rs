//! Task events reach WebSocket clients after commit, in order (§8):
//! `task_created` before the `task_status_changed` of the same tarea, an
//! `urgent_task` alert on `alerts`, and the assignee's own `user.{id}` topic.

use std::time::Duration;

use gad_e2e::{WsClient, spawn_app};
use serde_json::{Value, json};

use super::support::{act_ok, body, create, efectivo_of, id_of};

const WITHIN: Duration = Duration::from_secs(15);

/// Event types of this tarea's frames, in arrival order, until `last` arrives.
async fn events_until(ws: &mut WsClient, tarea_id: i64, last: &str) -> anyhow::Result<Vec<Value>> {
    let deadline = tokio::time::Instant::now() + WITHIN;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = ws
            .next_frame(left)
            .await
            .map_err(|e| anyhow::anyhow!("{e:#}; seen so far: {seen:?}"))?;
        let data = &frame["data"];
        let about = data["tarea_id"] == tarea_id || data["tarea"]["id"] == tarea_id;
        if !about {
            continue;
        }
        let done = frame["event_type"] == last;
        seen.push(frame);
        if done {
            return Ok(seen);
        }
    }
}

fn position(frames: &[Value], event_type: &str) -> usize {
    frames
        .iter()
        .position(|f| f["event_type"] == event_type)
        .unwrap_or(usize::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_events_arrive_in_order_on_their_topics() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (sup, n1) = (app.supervisor.clone(), app.efectivo.clone());
    let mut board = app.ws_connect(&sup.token).await?;
    assert_eq!(board.next_frame(WITHIN).await?["event_type"], "connection_ack");
    let subscribed = board.subscribe(&["tasks".to_string(), "alerts".to_string()]).await?;
    assert_eq!(subscribed["data"]["denied"], json!([]), "{subscribed}");
    let mut field = app.ws_connect(&n1.token).await?;
    assert_eq!(field.next_frame(WITHIN).await?["event_type"], "connection_ack");

    let unit = efectivo_of(&app, n1.id).await?;
    let mut b = body(sup.id);
    b["prioridad"] = json!(4);
    b["efectivos_asignados"] = json!([unit]);
    let t = create(&app, &sup.token, &b).await?;
    let id = id_of(&t);
    act_ok(&app, &sup.token, id, "start", None).await?;

    let frames = events_until(&mut board, id, "task_updated").await?;
    let types: Vec<&str> = frames.iter().filter_map(|f| f["event_type"].as_str()).collect();
    let (created, changed) = (
        position(&frames, "task_created"),
        position(&frames, "task_status_changed"),
    );
    assert!(created < changed && changed < frames.len(), "order: {types:?}");
    assert!(
        types.contains(&"task_assigned") && types.contains(&"alert"),
        "{types:?}"
    );
    assert_eq!(
        frames[created]["data"]["tarea"], t,
        "task_created carries the Tarea as created"
    );
    let change = &frames[changed]["data"];
    assert_eq!(change["codigo"], t["codigo"]);
    assert_eq!(
        (change["estado_anterior"].clone(), change["estado_nuevo"].clone()),
        (json!("programada"), json!("en_curso"))
    );
    assert_eq!(change["usuario_id"], sup.id);
    assert!(change["at"].is_string(), "{change}");
    let updated = frames.last().map(|f| f["data"].clone()).unwrap_or_default();
    assert_eq!(updated["tarea"]["estado"], "en_curso");
    assert!(
        updated["changed"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("estado")) && c.contains(&json!("inicio_real"))),
        "{updated}"
    );
    let alert = frames
        .iter()
        .find(|f| f["event_type"] == "alert")
        .map(|f| f["data"].clone())
        .unwrap_or_default();
    assert_eq!(
        (alert["kind"].clone(), alert["tarea_id"].clone()),
        (json!("urgent_task"), json!(id)),
        "{alert}"
    );
    for f in &frames {
        assert!(f["message_id"].is_string() && f["seq"].is_number(), "{f}");
    }

    // The assignee hears of its asignación and of the start on its own topic.
    let mine = events_until(&mut field, id, "task_status_changed").await?;
    let assigned = mine
        .iter()
        .find(|f| f["event_type"] == "task_assigned")
        .map(|f| f["data"].clone())
        .unwrap_or_default();
    assert_eq!(
        assigned,
        json!({ "tarea_id": id, "codigo": t["codigo"], "efectivo_id": unit, "usuario_id": n1.id, "accion": "asignado" })
    );
    assert!(mine.iter().all(|f| f["topic"] == format!("user.{}", n1.id)), "{mine:?}");
    board.close().await;
    field.close().await;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nivel_1_may_follow_its_own_task_and_unit_and_nothing_else() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (sup, n1) = (app.supervisor.clone(), app.efectivo.clone());
    let own = id_of(&create(&app, &n1.token, &body(n1.id)).await?);
    let unit = efectivo_of(&app, n1.id).await?;
    let assigned = {
        let mut b = body(sup.id);
        b["efectivos_asignados"] = json!([unit]);
        id_of(&create(&app, &sup.token, &b).await?)
    };
    let other = id_of(&create(&app, &sup.token, &body(sup.id)).await?);
    let other_unit: i64 = sqlx::query_scalar("SELECT id FROM efectivos WHERE id <> $1 AND deleted_at IS NULL LIMIT 1")
        .bind(unit)
        .fetch_one(&app.db)
        .await?;

    let mut ws = app.ws_connect(&n1.token).await?;
    assert_eq!(ws.next_frame(WITHIN).await?["event_type"], "connection_ack");
    let topics = [
        format!("tasks.{own}"),
        format!("tasks.{assigned}"),
        format!("efectivos.{unit}"),
        format!("tasks.{other}"),
        format!("efectivos.{other_unit}"),
        "tasks".to_string(),
    ];
    let r = ws.subscribe(&topics).await?;
    let granted: Vec<&str> = r["data"]["topics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["topic"].as_str())
        .collect();
    let denied: Vec<&str> = r["data"]["denied"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["topic"].as_str())
        .collect();
    assert_eq!(granted, &topics[..3], "{r}");
    assert_eq!(denied, &topics[3..], "{r}");

    ws.close().await;
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_closes_that_tokens_websocket_with_4003_within_5_s() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let token = app.efectivo.token.clone();
    let mut ws = app.ws_connect(&token).await?;
    assert_eq!(ws.next_frame(WITHIN).await?["event_type"], "connection_ack");
    let r = app
        .client
        .post(format!("{}/api/v1/auth/logout", app.http))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .await?;
    assert!(r.status().is_success(), "logout: {}", r.status());
    let started = tokio::time::Instant::now();
    let closed = loop {
        match ws.next_frame(Duration::from_secs(6)).await {
            Ok(_) => continue,
            Err(e) => break e.to_string(),
        }
    };
    assert!(closed.contains("4003"), "{closed}");
    assert!(
        started.elapsed() <= Duration::from_secs(5),
        "closed after {:?}",
        started.elapsed()
    );
    app.stop().await
}
