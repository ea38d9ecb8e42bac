//! Derived Tarea fields on read (§3 table): estimated and real duration,
//! lateness, paused time including the open pause, the activity flags, the
//! location from the geography column and the assignment list.

use gad_e2e::spawn_app;
use serde_json::{Value, json};

use super::support::{act_ok, at, body, create, free_units, get, id_of};

fn f64_of(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

/// RFC 3339 UTC with milliseconds and `Z`.
fn is_millis_z(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        chrono::DateTime::parse_from_rfc3339(s).is_ok()
            && s.strip_suffix('Z')
                .and_then(|t| t.rsplit_once('.'))
                .is_some_and(|(_, ms)| ms.len() == 3)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_fields_follow_the_rules() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.clone();

    // duracion_estimada_horas: the planned span, else 2.0 + (5 − prioridad) × 0.5.
    let mut b = body(sup.id);
    b["fin_programado"] = json!(at(60 + 180));
    assert_eq!(
        f64_of(&create(&app, &sup.token, &b).await?["duracion_estimada_horas"]),
        3.0
    );
    for (prioridad, horas) in [(1, 4.0), (2, 3.5), (5, 2.0)] {
        let mut b = body(sup.id);
        b["prioridad"] = json!(prioridad);
        assert_eq!(
            f64_of(&create(&app, &sup.token, &b).await?["duracion_estimada_horas"]),
            horas,
            "prioridad {prioridad}"
        );
    }

    // esta_retrasada: not started and past its start; or started after it.
    let mut late = body(sup.id);
    late["inicio_programado"] = json!(at(-10));
    let late = create(&app, &sup.token, &late).await?;
    assert_eq!(late["esta_retrasada"], true);
    let early = create(&app, &sup.token, &body(sup.id)).await?;
    assert_eq!(early["esta_retrasada"], false);
    assert_eq!(
        act_ok(&app, &sup.token, id_of(&late), "start", None).await?["esta_retrasada"],
        true
    );
    assert_eq!(
        act_ok(&app, &sup.token, id_of(&early), "start", None).await?["esta_retrasada"],
        false
    );

    // Location, assignments (ascending), timestamps, flags.
    let units = free_units(&app, 3).await?;
    let mut ids: Vec<i64> = units.iter().map(|u| u.efectivo_id).collect();
    let mut b = body(sup.id);
    b["ubicacion_lat"] = json!(-34.6037);
    b["ubicacion_lon"] = json!(-58.3816);
    b["ubicacion_descripcion"] = json!("Plaza de Mayo");
    b["efectivos_asignados"] = json!(ids);
    let t = create(&app, &sup.token, &b).await?;
    ids.sort_unstable();
    assert_eq!(t["efectivos_asignados"], json!(ids));
    assert!(
        (f64_of(&t["ubicacion_lat"]) + 34.6037).abs() < 1e-9 && (f64_of(&t["ubicacion_lon"]) + 58.3816).abs() < 1e-9,
        "{t}"
    );
    assert_eq!(t["ubicacion_descripcion"], "Plaza de Mayo");
    for field in ["inicio_programado", "created_at", "updated_at"] {
        assert!(is_millis_z(&t[field]), "{field}: {}", t[field]);
    }
    assert!(
        t["uuid"].as_str().is_some_and(|u| uuid::Uuid::parse_str(u).is_ok()),
        "{t}"
    );
    assert_eq!((t["origen"].clone(), t["prioridad"].clone()), (json!("api"), json!(2)));
    assert_eq!(
        (t["esta_activa"].clone(), t["esta_completada"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(
        (t["tiempo_pausado_segundos"].clone(), t["duracion_real_horas"].clone()),
        (json!(0), Value::Null)
    );

    // An open pause counts in tiempo_pausado_segundos; closed pauses add up.
    let id = id_of(&t);
    act_ok(&app, &sup.token, id, "start", None).await?;
    act_ok(&app, &sup.token, id, "pause", None).await?;
    // Move the clock of this tarea back instead of waiting: started two
    // hours ago, paused for the last 90 seconds.
    sqlx::query(
        "UPDATE tareas SET inicio_real = inicio_real - interval '2 hours', pausado_en = pausado_en - interval '90 seconds'
         WHERE id = $1",
    )
    .bind(id)
    .execute(&app.db)
    .await?;
    let t = get(&app, &format!("/api/v1/tasks/{id}"), &sup.token).await?.body;
    let paused = t["tiempo_pausado_segundos"].as_i64().unwrap_or(-1);
    assert!((90..120).contains(&paused), "open pause: {t}");
    assert!(is_millis_z(&t["pausado_en"]), "{t}");
    let t = act_ok(&app, &sup.token, id, "resume", None).await?;
    let closed = t["tiempo_pausado_segundos"].as_i64().unwrap_or(-1);
    assert!(
        (90..120).contains(&closed) && t["pausado_en"].is_null(),
        "closed pause: {t}"
    );
    let t = act_ok(&app, &sup.token, id, "finish", None).await?;
    // About 2 h of work minus 90 s of pause, in hours with 2 decimals.
    let horas = f64_of(&t["duracion_real_horas"]);
    assert!((1.95..=2.0).contains(&horas), "duracion_real_horas {horas}");
    assert_eq!((horas * 100.0).round() / 100.0, horas, "2 decimals: {horas}");
    assert_eq!(
        (t["esta_activa"].clone(), t["esta_completada"].clone()),
        (json!(false), json!(true))
    );
    app.stop().await
}
