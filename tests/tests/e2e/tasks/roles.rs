//! Who may do what with tareas (§1, §3, §6.3): nivel 1, 2 and 3 on their own
//! tasks and on others'. nivel 1 never learns that another's task exists
//! (404); a role failure on something visible is 403.

use gad_e2e::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{act, body, create, efectivo_of, free_units, get, id_of, send};

fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .map(|a| a.iter().filter_map(|t| t["id"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_and_creating_by_nivel() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (n1, n2, n3) = (app.efectivo.clone(), app.supervisor.clone(), app.admin.clone());
    let mine = efectivo_of(&app, n1.id).await?;
    let other_unit = free_units(&app, 1).await?.remove(0);

    // nivel 1 creates for itself, with its own efectivo or none…
    let own_deleg = id_of(&create(&app, &n1.token, &body(n1.id)).await?);
    let mut with_mine = body(n1.id);
    with_mine["efectivos_asignados"] = json!([mine]);
    let t = create(&app, &n1.token, &with_mine).await?;
    assert_eq!(t["efectivos_asignados"], json!([mine]));
    assert_eq!(t["creado_por_usuario_id"], n1.id);
    // …but not for someone else, nor with another unit.
    let r = send(&app, Method::POST, "/api/v1/tasks", &n1.token, Some(&body(n2.id))).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let mut with_other = body(n1.id);
    with_other["efectivos_asignados"] = json!([other_unit.efectivo_id]);
    let r = send(&app, Method::POST, "/api/v1/tasks", &n1.token, Some(&with_other)).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);

    // The creator comes from the token, never from the body.
    let mut forged = body(n2.id);
    forged["creado_por_usuario_id"] = json!(n3.id);
    let by_n2 = create(&app, &n2.token, &forged).await?;
    assert_eq!(by_n2["creado_por_usuario_id"], n2.id);
    let other = id_of(&by_n2);
    let mut assigned_body = body(n2.id);
    assigned_body["efectivos_asignados"] = json!([mine]);
    let own_assigned = id_of(&create(&app, &n3.token, &assigned_body).await?);

    for (who, token) in [("n1", &n1.token), ("n2", &n2.token), ("n3", &n3.token)] {
        for id in [own_deleg, own_assigned] {
            assert_eq!(
                get(&app, &format!("/api/v1/tasks/{id}"), token).await?.status,
                StatusCode::OK,
                "{who} {id}"
            );
            assert_eq!(
                get(&app, &format!("/api/v1/tasks/{id}/history"), token).await?.status,
                StatusCode::OK,
                "{who}"
            );
        }
        let expected = if who == "n1" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        assert_eq!(
            get(&app, &format!("/api/v1/tasks/{other}"), token).await?.status,
            expected,
            "{who} other"
        );
        assert_eq!(
            get(&app, &format!("/api/v1/tasks/{other}/history"), token)
                .await?
                .status,
            expected,
            "{who} other history"
        );
    }

    // nivel 1 lists only its own tasks.
    let r = get(&app, "/api/v1/tasks?limit=500", &n1.token).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let listed = ids(&r.body);
    assert!(
        listed.contains(&own_deleg) && listed.contains(&own_assigned) && !listed.contains(&other),
        "{listed:?}"
    );
    let own_total: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM tareas t WHERE t.deleted_at IS NULL AND (t.delegado_usuario_id = $1
            OR EXISTS (SELECT 1 FROM tarea_efectivos te WHERE te.tarea_id = t.id AND te.efectivo_id = $2))",
    )
    .bind(n1.id)
    .bind(mine)
    .fetch_one(&app.db)
    .await?;
    assert_eq!(r.header("x-total-count"), Some(own_total.to_string().as_str()));
    for t in r.body.as_array().cloned().unwrap_or_default() {
        let own = t["delegado_usuario_id"] == n1.id
            || t["efectivos_asignados"]
                .as_array()
                .is_some_and(|a| a.contains(&json!(mine)));
        assert!(own, "nivel 1 listed a task that is not its own: {t}");
    }
    let all = get(&app, "/api/v1/tasks?limit=1", &n2.token).await?;
    assert!(
        all.header("x-total-count")
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| c > own_total),
        "{:?}",
        all.headers
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_and_acting_by_nivel() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (n1, n2, n3) = (app.efectivo.clone(), app.supervisor.clone(), app.admin.clone());
    let mine = efectivo_of(&app, n1.id).await?;
    let own = id_of(&create(&app, &n1.token, &body(n1.id)).await?);
    let mut assigned_body = body(n2.id);
    assigned_body["efectivos_asignados"] = json!([mine]);
    let assigned = id_of(&create(&app, &n2.token, &assigned_body).await?);
    let other = id_of(&create(&app, &n2.token, &body(n2.id)).await?);
    let mut declined_body = body(n2.id);
    declined_body["efectivos_asignados"] = json!([mine]);
    let declined = id_of(&create(&app, &n2.token, &declined_body).await?);

    // Edits, deletes and assignment changes are nivel ≥ 2 only: 403 before any job.
    let patch = json!({ "titulo": "Titulo cambiado" });
    for (method, path, body) in [
        (Method::PATCH, format!("/api/v1/tasks/{own}"), Some(&patch)),
        (Method::PUT, format!("/api/v1/tasks/{own}"), Some(&patch)),
        (Method::DELETE, format!("/api/v1/tasks/{own}"), None),
        (
            Method::POST,
            format!("/api/v1/tasks/{own}/assign"),
            Some(&json!({ "efectivo_ids": [mine] })),
        ),
        (
            Method::POST,
            format!("/api/v1/tasks/{assigned}/unassign"),
            Some(&json!({ "efectivo_ids": [mine] })),
        ),
        (
            Method::POST,
            format!("/api/v1/tasks/{own}/cancel"),
            Some(&json!({ "motivo": "ya no hace falta" })),
        ),
    ] {
        let r = send(&app, method.clone(), &path, &n1.token, body).await?;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{method} {path}: {}", r.text);
        assert!(r.header("x-job-id").is_none(), "a refused request queued a job");
    }
    let r = send(
        &app,
        Method::PATCH,
        &format!("/api/v1/tasks/{other}"),
        &n2.token,
        Some(&patch),
    )
    .await?;
    assert_eq!(
        (r.status, r.body["titulo"].clone()),
        (StatusCode::OK, json!("Titulo cambiado")),
        "{}",
        r.text
    );

    // nivel 1 works on its own tasks (as delegado or assignee), not on others'.
    assert_eq!(act(&app, &n1.token, own, "start", None).await?.status, StatusCode::OK);
    assert_eq!(
        act(&app, &n1.token, assigned, "start", None).await?.status,
        StatusCode::OK
    );
    assert_eq!(
        act(&app, &n1.token, assigned, "pause", None).await?.status,
        StatusCode::OK
    );
    let r = act(&app, &n1.token, other, "start", None).await?;
    assert_eq!(
        (r.status, r.body["error"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found")),
        "{}",
        r.text
    );
    // nivel 2 and 3 on anyone's.
    assert_eq!(act(&app, &n2.token, other, "start", None).await?.status, StatusCode::OK);
    assert_eq!(act(&app, &n3.token, other, "pause", None).await?.status, StatusCode::OK);
    assert_eq!(act(&app, &n3.token, own, "finish", None).await?.status, StatusCode::OK);

    // Answering is the assignee's alone.
    let answer = |r: &str| json!({ "respuesta": r, "motivo": "sin movilidad" });
    let path = format!("/api/v1/tasks/{declined}/respond");
    let r = send(&app, Method::POST, &path, &n2.token, Some(&answer("aceptada"))).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{other}/respond"),
        &n1.token,
        Some(&answer("aceptada")),
    )
    .await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    let r = send(&app, Method::POST, &path, &n1.token, Some(&answer("rechazada"))).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.body,
        json!({ "tarea_id": declined, "efectivo_id": mine, "respuesta": "rechazada" })
    );
    // A unit that declined still sees the task but may not work on it.
    assert_eq!(
        get(&app, &format!("/api/v1/tasks/{declined}"), &n1.token).await?.status,
        StatusCode::OK
    );
    let r = act(&app, &n1.token, declined, "start", None).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = send(&app, Method::POST, &path, &n1.token, Some(&answer("aceptada"))).await?;
    assert_eq!(r.status, StatusCode::CONFLICT, "an answer is given once: {}", r.text);
    app.stop().await
}
