//! §7 rules for task inputs: each invalid field is a 422 naming the field
//! and why, before anything is queued; state-dependent refusals come from
//! the worker with their own codes.

use gad_e2e::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::{act, act_ok, at, body, create, field_codes, get, id_of, send};
use crate::error_shape::assert_error;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invalid_create_field_is_named_with_its_code() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.clone();
    let inicio = at(60);
    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("codigo", json!("AB"), "codigo", "invalid_format"),
        ("codigo", json!("ABC!1"), "codigo", "invalid_format"),
        ("codigo", json!("A".repeat(21)), "codigo", "invalid_format"),
        ("codigo", Value::Null, "codigo", "required"),
        ("titulo", json!("  abcd  "), "titulo", "invalid_length"),
        ("titulo", json!("x".repeat(201)), "titulo", "invalid_length"),
        ("descripcion", json!("x".repeat(1001)), "descripcion", "invalid_length"),
        ("prioridad", json!(0), "prioridad", "out_of_range"),
        ("prioridad", json!(6), "prioridad", "out_of_range"),
        ("prioridad", json!("alta"), "prioridad", "invalid_integer"),
        ("tipo", json!("emergencia"), "tipo", "invalid_choice"),
        ("tipo", json!("rescate"), "tipo", "invalid_choice"),
        (
            "inicio_programado",
            json!("2026-11-28T10:00:00"),
            "inicio_programado",
            "naive_timestamp",
        ),
        (
            "inicio_programado",
            json!("mañana"),
            "inicio_programado",
            "invalid_timestamp",
        ),
        ("fin_programado", json!(inicio), "fin_programado", "invalid_range"),
        ("fin_programado", json!(at(30)), "fin_programado", "invalid_range"),
        ("ubicacion_lat", json!(-91.0), "ubicacion_lat", "out_of_range"),
        (
            "ubicacion_descripcion",
            json!("x".repeat(201)),
            "ubicacion_descripcion",
            "invalid_length",
        ),
        (
            "efectivos_asignados",
            json!([1, 1]),
            "efectivos_asignados",
            "invalid_ids",
        ),
    ];
    for (key, value, field, code) in cases {
        let mut b = body(sup.id);
        b["inicio_programado"] = json!(inicio);
        if key == "ubicacion_lat" {
            b["ubicacion_lon"] = json!(-58.4);
        }
        b[key] = value;
        let r = send(&app, Method::POST, "/api/v1/tasks", &sup.token, Some(&b)).await?;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            field_codes(&r),
            [(field.to_string(), code.to_string())],
            "{key}: {}",
            r.text
        );
        assert!(
            r.header("x-job-id").is_none(),
            "{key}: refused input must not queue a job"
        );
    }
    // Every invalid field at once.
    let b = json!({ "codigo": "x", "titulo": "abc", "tipo": "emergencia", "inicio_programado": "2026-11-28T10:00:00",
                    "prioridad": 9 });
    let r = send(&app, Method::POST, "/api/v1/tasks", &sup.token, Some(&b)).await?;
    let fields: Vec<String> = field_codes(&r).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        fields,
        [
            "codigo",
            "titulo",
            "tipo",
            "inicio_programado",
            "delegado_usuario_id",
            "prioridad"
        ],
        "{}",
        r.text
    );

    // codigo is trimmed and upper-cased first; a taken codigo is a 409 on that field.
    let mut b = body(sup.id);
    let lower = format!("  {}  ", b["codigo"].as_str().unwrap_or_default().to_lowercase());
    b["codigo"] = json!(lower);
    let r = send(&app, Method::POST, "/api/v1/tasks", &sup.token, Some(&b)).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["codigo"], lower.trim().to_uppercase());
    assert_eq!(
        r.header("location"),
        Some(format!("/api/v1/tasks/{}", id_of(&r.body)).as_str())
    );
    let r = send(&app, Method::POST, "/api/v1/tasks", &sup.token, Some(&b)).await?;
    assert_error(&r, StatusCode::CONFLICT, "duplicate");
    assert_eq!(r.body["details"]["field"], "codigo", "{}", r.text);
    // An unknown delegado is a 422 on that field.
    let mut b = body(9_999_999);
    b["tipo"] = json!("vigilancia");
    let r = send(&app, Method::POST, "/api/v1/tasks", &sup.token, Some(&b)).await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        [("delegado_usuario_id".to_string(), "not_found".to_string())]
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_transitions_and_lists_refuse_what_they_must() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.clone();
    let id = id_of(&create(&app, &sup.token, &body(sup.id)).await?);
    let path = format!("/api/v1/tasks/{id}");

    let r = send(
        &app,
        Method::PUT,
        &path,
        &sup.token,
        Some(&json!({ "estado": "finalizada" })),
    )
    .await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "estado_read_only");
    let r = send(
        &app,
        Method::PATCH,
        &path,
        &sup.token,
        Some(&json!({ "efectivos_asignados": [1] })),
    )
    .await?;
    assert_eq!(
        field_codes(&r),
        [("efectivos_asignados".to_string(), "read_only".to_string())],
        "{}",
        r.text
    );
    let r = send(
        &app,
        Method::PATCH,
        &path,
        &sup.token,
        Some(&json!({ "titulo": "abc", "prioridad": 0 })),
    )
    .await?;
    assert_eq!(field_codes(&r).len(), 2, "{}", r.text);
    let r = send(&app, Method::PATCH, &path, &sup.token, Some(&json!({ "titulo": null }))).await?;
    assert_eq!(
        field_codes(&r),
        [("titulo".to_string(), "required".to_string())],
        "{}",
        r.text
    );
    // fin before the stored inicio: only the worker can tell.
    let r = send(
        &app,
        Method::PATCH,
        &path,
        &sup.token,
        Some(&json!({ "fin_programado": at(1) })),
    )
    .await?;
    assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    assert_eq!(
        field_codes(&r),
        [("fin_programado".to_string(), "invalid_range".to_string())],
        "{}",
        r.text
    );
    // A valid edit, including clearing a nullable field.
    let edit = json!({ "titulo": "Vigilancia nocturna", "prioridad": 3, "descripcion": "Portón norte",
                       "ubicacion_lat": -34.6, "ubicacion_lon": -58.4, "fin_programado": at(180) });
    let r = send(&app, Method::PUT, &path, &sup.token, Some(&edit)).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["titulo"].clone(), r.body["prioridad"].clone()),
        (json!("Vigilancia nocturna"), json!(3))
    );
    let r = send(
        &app,
        Method::PATCH,
        &path,
        &sup.token,
        Some(&json!({ "descripcion": null, "ubicacion_lat": null, "ubicacion_lon": null })),
    )
    .await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.body["descripcion"].is_null() && r.body["ubicacion_lat"].is_null(),
        "{}",
        r.text
    );
    assert_eq!(r.body["titulo"], "Vigilancia nocturna");

    // motivo ≤ 500 on every transition.
    let r = act(&app, &sup.token, id, "start", Some(&"x".repeat(501))).await?;
    assert_eq!(
        field_codes(&r),
        [("motivo".to_string(), "invalid_length".to_string())],
        "{}",
        r.text
    );
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/teleport"),
        &sup.token,
        None,
    )
    .await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
    for ids in [
        json!([]),
        json!([5, 5]),
        json!((1..=51).collect::<Vec<i64>>()),
        json!("1"),
    ] {
        let r = send(
            &app,
            Method::POST,
            &format!("/api/v1/tasks/{id}/assign"),
            &sup.token,
            Some(&json!({ "efectivo_ids": ids })),
        )
        .await?;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(field_codes(&r)[0].0, "efectivo_ids", "{}", r.text);
    }
    let r = send(
        &app,
        Method::POST,
        &format!("/api/v1/tasks/{id}/respond"),
        &sup.token,
        Some(&json!({ "respuesta": "quizas" })),
    )
    .await?;
    assert_eq!(
        field_codes(&r),
        [("respuesta".to_string(), "invalid_choice".to_string())],
        "{}",
        r.text
    );

    // A closed tarea takes no edits and no assignment changes; deletes work on it.
    act_ok(&app, &sup.token, id, "cancel", Some("duplicada")).await?;
    let r = send(
        &app,
        Method::PATCH,
        &path,
        &sup.token,
        Some(&json!({ "titulo": "Otra vez cambiado" })),
    )
    .await?;
    assert_error(&r, StatusCode::CONFLICT, "task_closed");
    for op in ["assign", "unassign"] {
        let r = send(
            &app,
            Method::POST,
            &format!("{path}/{op}"),
            &sup.token,
            Some(&json!({ "efectivo_ids": [1] })),
        )
        .await?;
        assert_error(&r, StatusCode::CONFLICT, "task_closed");
    }

    // List parameters.
    for (query, field, code) in [
        ("estado=bogus", "estado", "invalid_choice"),
        ("tipo=rescate", "tipo", "invalid_choice"),
        ("prioridad_min=6", "prioridad_min", "out_of_range"),
        ("desde=2026-11-28T10:00:00", "desde", "naive_timestamp"),
        ("limit=0", "limit", "out_of_range"),
        ("limit=501", "limit", "out_of_range"),
        ("skip=-1", "skip", "out_of_range"),
    ] {
        let r = get(&app, &format!("/api/v1/tasks?{query}"), &sup.token).await?;
        assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(
            field_codes(&r),
            [(field.to_string(), code.to_string())],
            "{query}: {}",
            r.text
        );
    }
    for bad in ["abc", "0", "-3"] {
        assert_eq!(
            get(&app, &format!("/api/v1/tasks/{bad}"), &sup.token).await?.status,
            StatusCode::NOT_FOUND
        );
    }
    app.stop().await
}
