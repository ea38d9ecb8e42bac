//! Assignments and holds on units (§3 release rule, §6.3 assign/unassign/
//! respond/delete, §9.3 notifications, §4 accept and decline): who becomes `en_tarea` and when a
//! unit is `disponible` again; manual states are never overwritten.

use gad_e2e::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{act_ok, body, create, disponibilidad, free_units, get, id_of, send};
use crate::error_shape::assert_error;

async fn assign(app: &TestApp, token: &str, id: i64, op: &str, ids: &[i64]) -> anyhow::Result<gad_e2e::ApiResponse> {
    send(
        app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/{op}"),
        token,
        Some(&json!({ "efectivo_ids": ids })),
    )
    .await
}

async fn set_state(app: &TestApp, efectivo_id: i64, state: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE efectivos SET disponibilidad = $2::estado_disponibilidad WHERE id = $1")
        .bind(efectivo_id)
        .bind(state)
        .execute(&app.db)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_are_held_while_their_tarea_runs() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.clone();
    let units = free_units(&app, 5).await?;
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| units[i].efectivo_id);
    let mut first = body(sup.id);
    first["efectivos_asignados"] = json!([a]);
    let t1 = id_of(&create(&app, &sup.token, &first).await?);

    // Assigning to a programada tarea changes no unit; repeating it is a no-op.
    let r = assign(&app, &sup.token, t1, "assign", &[b]).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({ "tarea_id": t1, "efectivos_asignados": [a.min(b), a.max(b)] })
    );
    let again = assign(&app, &sup.token, t1, "assign", &[a, b]).await?;
    assert_eq!(again.body, r.body);
    assert_eq!(disponibilidad(&app, b).await?, "disponible");

    // Start: every assigned disponible unit goes to work.
    act_ok(&app, &sup.token, t1, "start", None).await?;
    assert_eq!(
        (disponibilidad(&app, a).await?, disponibilidad(&app, b).await?),
        ("en_tarea".into(), "en_tarea".into())
    );
    // A unit joining a running tarea goes to work at once.
    assign(&app, &sup.token, t1, "assign", &[c]).await?;
    assert_eq!(disponibilidad(&app, c).await?, "en_tarea");
    // Unassigned, with no other hold: free again.
    let r = assign(&app, &sup.token, t1, "unassign", &[c, e]).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        !r.body["efectivos_asignados"]
            .as_array()
            .is_some_and(|l| l.contains(&json!(c))),
        "{}",
        r.text
    );
    assert_eq!(disponibilidad(&app, c).await?, "disponible");

    // A unit held by two tareas stays at work until both end.
    let mut second = body(sup.id);
    second["efectivos_asignados"] = json!([b]);
    let t2 = id_of(&create(&app, &sup.token, &second).await?);
    act_ok(&app, &sup.token, t2, "start", None).await?;
    act_ok(&app, &sup.token, t2, "pause", None).await?;
    // A supervisor took `a` out of service meanwhile: finishing never overrides that.
    set_state(&app, a, "fuera_servicio").await?;
    act_ok(&app, &sup.token, t1, "finish", None).await?;
    assert_eq!(disponibilidad(&app, a).await?, "fuera_servicio");
    assert_eq!(
        disponibilidad(&app, b).await?,
        "en_tarea",
        "still held by the paused tarea"
    );
    act_ok(&app, &sup.token, t2, "cancel", Some("cambio de planes")).await?;
    assert_eq!(disponibilidad(&app, b).await?, "disponible");

    // Units out of service or unavailable cannot be assigned; deleted ones do not exist.
    let t3 = id_of(&create(&app, &sup.token, &body(sup.id)).await?);
    set_state(&app, d, "no_disponible").await?;
    let r = assign(&app, &sup.token, t3, "assign", &[a, d, e]).await?;
    assert_error(&r, StatusCode::CONFLICT, "efectivo_unavailable");
    let mut refused: Vec<i64> = r.body["details"]["efectivo_ids"]
        .as_array()
        .map(|l| l.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    refused.sort_unstable();
    assert_eq!(refused, [a.min(d), a.max(d)], "{}", r.text);
    sqlx::query("UPDATE efectivos SET deleted_at = now() WHERE id = $1")
        .bind(e)
        .execute(&app.db)
        .await?;
    let r = assign(&app, &sup.token, t3, "assign", &[e]).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let r = assign(&app, &sup.token, 999_999_999, "assign", &[c]).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    let t3_now = get(&app, &format!("/api/v1/tasks/{t3}"), &sup.token).await?.body;
    assert_eq!(
        t3_now["efectivos_asignados"],
        json!([]),
        "a refused assign changed nothing"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_notices_and_deletes() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.clone();
    let units = free_units(&app, 2).await?;
    let (u1, u2) = (units[0].clone(), units[1].clone());
    // u2's usuario linked a Telegram chat: its notices go there too.
    sqlx::query("UPDATE usuarios SET telegram_id = 777000111 WHERE id = $1")
        .bind(u2.user.id)
        .execute(&app.db)
        .await?;
    let mut b = body(sup.id);
    b["efectivos_asignados"] = json!([u1.efectivo_id, u2.efectivo_id]);
    b["prioridad"] = json!(4);
    let t = id_of(&create(&app, &sup.token, &b).await?);
    let channels = |usuario: i64| {
        let db = app.db.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT channel FROM notifications WHERE tarea_id = $1 AND recipient_usuario_id = $2 AND kind = 'task_assigned'
                 ORDER BY channel",
            )
            .bind(t)
            .bind(usuario)
            .fetch_all(&db)
            .await
        }
    };
    assert_eq!(channels(u1.user.id).await?, ["websocket"]);
    assert_eq!(channels(u2.user.id).await?, ["telegram", "websocket"]);
    let urgent: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE tarea_id = $1 AND kind = 'urgent_task'")
            .bind(t)
            .fetch_one(&app.db)
            .await?;
    let supervisors: i64 =
        sqlx::query_scalar("SELECT count(*) FROM usuarios WHERE nivel >= 2 AND deleted_at IS NULL AND verificado")
            .fetch_one(&app.db)
            .await?;
    assert_eq!(urgent, supervisors, "one websocket urgent_task row per supervisor");

    act_ok(&app, &sup.token, t, "start", None).await?;
    // u1 accepts; u2 declines, which ends its hold and alerts supervisors.
    let respond = |token: String, respuesta: &'static str| {
        let app = &app;
        async move {
            send(
                app,
                Method::POST,
                &format!("/api/v1/tasks/{t}/respond"),
                &token,
                Some(&json!({ "respuesta": respuesta })),
            )
            .await
        }
    };
    let r = respond(u1.user.token.clone(), "aceptada").await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = respond(u2.user.token.clone(), "rechazada").await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(disponibilidad(&app, u2.efectivo_id).await?, "disponible");
    assert_eq!(disponibilidad(&app, u1.efectivo_id).await?, "en_tarea");
    let acked: Option<bool> = sqlx::query_scalar(
        "SELECT bool_and(acked_at IS NOT NULL) FROM notifications WHERE tarea_id = $1 AND recipient_usuario_id = $2 AND kind = 'task_assigned'",
    )
    .bind(t)
    .bind(u1.user.id)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(acked, Some(true), "answering acknowledges the notice");
    let declined: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE event_type = 'alert' AND payload->>'kind' = 'assignment_declined'
           AND (payload->>'tarea_id')::bigint = $1",
    )
    .bind(t)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(declined, 1);

    // A running tarea cannot be deleted; cancelled, it can, and then it is gone.
    let r = send(&app, Method::DELETE, &format!("/api/v1/tasks/{t}"), &sup.token, None).await?;
    assert_error(&r, StatusCode::CONFLICT, "invalid_transition");
    assert_eq!(r.body["details"]["accion"], "delete", "{}", r.text);
    act_ok(&app, &sup.token, t, "cancel", Some("se resolvió solo")).await?;
    let cancelled: i64 = sqlx::query_scalar("SELECT count(DISTINCT recipient_usuario_id) FROM notifications WHERE tarea_id = $1 AND kind = 'task_cancelled'")
        .bind(t)
        .fetch_one(&app.db)
        .await?;
    assert_eq!(
        cancelled,
        supervisors + 2,
        "supervisors and both assignees hear of the cancel"
    );
    assert_eq!(disponibilidad(&app, u1.efectivo_id).await?, "disponible");
    let r = send(&app, Method::DELETE, &format!("/api/v1/tasks/{t}"), &sup.token, None).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["id"], t);
    assert_eq!(
        get(&app, &format!("/api/v1/tasks/{t}"), &sup.token).await?.status,
        StatusCode::NOT_FOUND
    );
    let listed = get(
        &app,
        &format!("/api/v1/tasks?codigo={}", b["codigo"].as_str().unwrap_or_default()),
        &sup.token,
    )
    .await?;
    assert_eq!(listed.body, json!([]));
    let r = send(&app, Method::DELETE, &format!("/api/v1/tasks/{t}"), &sup.token, None).await?;
    assert_error(&r, StatusCode::NOT_FOUND, "not_found");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_emergency_starts_and_a_declined_one_frees_the_unit() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let units = free_units(&app, 2).await?;
    for (unit, respuesta) in [(&units[0], "aceptada"), (&units[1], "rechazada")] {
        // What emergency dispatch leaves (§4): a programada emergencia
        // delegated to the reserved unit, which is `en_tarea`.
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tareas (codigo, titulo, tipo, prioridad, origen, inicio_programado, delegado_usuario_id, creado_por_usuario_id,
                                 ubicacion)
             VALUES ($1, 'Emergencia: prueba', 'emergencia', 5, 'emergencia', now(), $2, $3,
                     ST_SetSRID(ST_MakePoint(-58.3816, -34.6037), 4326)::geography) RETURNING id",
        )
        .bind(super::support::codigo("EMG"))
        .bind(unit.user.id)
        .bind(app.admin.id)
        .fetch_one(&app.db)
        .await?;
        sqlx::query("INSERT INTO tarea_efectivos (tarea_id, efectivo_id) VALUES ($1, $2)")
            .bind(id)
            .bind(unit.efectivo_id)
            .execute(&app.db)
            .await?;
        sqlx::query("INSERT INTO historial_estados (tarea_id, estado_nuevo, motivo) VALUES ($1, 'programada', 'despacho de emergencia')")
            .bind(id)
            .execute(&app.db)
            .await?;
        sqlx::query("UPDATE efectivos SET disponibilidad = 'en_tarea' WHERE id = $1")
            .bind(unit.efectivo_id)
            .execute(&app.db)
            .await?;

        let r = send(
            &app,
            Method::POST,
            &format!("/api/v1/tasks/{id}/respond"),
            &unit.user.token,
            Some(&json!({ "respuesta": respuesta })),
        )
        .await?;
        assert_eq!(r.status, StatusCode::OK, "{respuesta}: {}", r.text);
        let t = get(&app, &format!("/api/v1/tasks/{id}"), &app.supervisor.token)
            .await?
            .body;
        if respuesta == "aceptada" {
            assert_eq!(t["estado"], "en_curso", "{t}");
            let last: (String, Option<i64>) = sqlx::query_as(
                "SELECT estado_nuevo::text, usuario_id FROM historial_estados WHERE tarea_id = $1 ORDER BY id DESC LIMIT 1",
            )
            .bind(id)
            .fetch_one(&app.db)
            .await?;
            assert_eq!(
                last,
                ("en_curso".to_string(), Some(unit.user.id)),
                "the unit's usuario started it"
            );
            assert_eq!(disponibilidad(&app, unit.efectivo_id).await?, "en_tarea");
        } else {
            // Emergency dispatch moved the tarea to another unit; the declining one is free.
            assert_eq!(disponibilidad(&app, unit.efectivo_id).await?, "disponible");
            assert_eq!(t["estado"], "programada", "{t}");
            assert_ne!(t["efectivos_asignados"], json!([unit.efectivo_id]), "{t}");
            assert_ne!(t["delegado_usuario_id"], unit.user.id, "{t}");
        }
    }
    app.stop().await
}
