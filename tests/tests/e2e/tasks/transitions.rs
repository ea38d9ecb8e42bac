//! Every transition of §3, allowed and forbidden: the allowed ones answer
//! the new Tarea and leave one historial row each; the forbidden ones are
//! 409 `invalid_transition` with the current estado, the action and what
//! would have been allowed.

use gad_e2e::{TestApp, spawn_app};
use reqwest::StatusCode;
use serde_json::json;

use super::support::{act, act_ok, body, create, id_of, path_of};
use crate::error_shape::assert_error;

const ALL: [&str; 5] = ["start", "pause", "resume", "finish", "cancel"];

/// Every action not allowed from `estado` is refused, and nothing changes.
async fn refuses_all_but(app: &TestApp, token: &str, id: i64, estado: &str, permitidas: &[&str]) -> anyhow::Result<()> {
    for accion in ALL.iter().filter(|a| !permitidas.contains(a)) {
        let r = act(app, token, id, accion, Some("motivo de prueba")).await?;
        assert_error(&r, StatusCode::CONFLICT, "invalid_transition");
        assert_eq!(
            r.body["details"],
            json!({ "estado_actual": estado, "accion": accion, "permitidas": permitidas }),
            "{accion} from {estado}"
        );
    }
    let r = super::support::get(app, &format!("/api/v1/tasks/{id}"), token).await?;
    assert_eq!(
        r.body["estado"], estado,
        "a refused transition changed the tarea: {}",
        r.text
    );
    Ok(())
}

fn step(from: Option<&str>, to: &str) -> (Option<String>, String) {
    (from.map(str::to_string), to.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_working_path_and_every_refusal_on_it() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.clone();
    let t = create(&app, &sup.token, &body(sup.id)).await?;
    let id = id_of(&t);
    assert_eq!(t["estado"], "programada");
    assert!(
        t["inicio_real"].is_null() && t["fin_real"].is_null() && t["pausado_en"].is_null(),
        "{t}"
    );
    refuses_all_but(&app, &sup.token, id, "programada", &["start", "cancel"]).await?;

    let t = act_ok(&app, &sup.token, id, "start", None).await?;
    assert_eq!(t["estado"], "en_curso");
    assert!(t["inicio_real"].is_string(), "{t}");
    refuses_all_but(&app, &sup.token, id, "en_curso", &["pause", "finish", "cancel"]).await?;

    let t = act_ok(&app, &sup.token, id, "pause", Some("espera de apoyo")).await?;
    assert_eq!(t["estado"], "pausada");
    assert!(t["pausado_en"].is_string(), "{t}");
    refuses_all_but(&app, &sup.token, id, "pausada", &["resume", "cancel"]).await?;

    let t = act_ok(&app, &sup.token, id, "resume", None).await?;
    assert_eq!(t["estado"], "en_curso");
    assert!(t["pausado_en"].is_null(), "{t}");

    let t = act_ok(&app, &sup.token, id, "finish", None).await?;
    assert_eq!(t["estado"], "finalizada");
    assert!(t["fin_real"].is_string() && t["duracion_real_horas"].is_number(), "{t}");
    assert_eq!(
        (t["esta_activa"].clone(), t["esta_completada"].clone()),
        (json!(false), json!(true))
    );
    refuses_all_but(&app, &sup.token, id, "finalizada", &[]).await?;

    assert_eq!(
        path_of(&app, &sup.token, id).await?,
        [
            step(None, "programada"),
            step(Some("programada"), "en_curso"),
            step(Some("en_curso"), "pausada"),
            step(Some("pausada"), "en_curso"),
            step(Some("en_curso"), "finalizada"),
        ]
    );
    let history = super::support::get(&app, &format!("/api/v1/tasks/{id}/history"), &sup.token)
        .await?
        .body;
    let rows = history.as_array().cloned().unwrap_or_default();
    assert_eq!(rows[0]["motivo"], "creada");
    assert_eq!(rows[2]["motivo"], "espera de apoyo");
    assert!(
        rows.iter()
            .all(|h| h["usuario_id"] == sup.id && h["job_id"].is_string()),
        "{history}"
    );
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_from_each_active_estado_and_nothing_after() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.clone();
    for (before, steps) in [
        ("programada", &[][..]),
        ("en_curso", &["start"][..]),
        ("pausada", &["start", "pause"][..]),
    ] {
        let id = id_of(&create(&app, &sup.token, &body(sup.id)).await?);
        for s in steps {
            act_ok(&app, &sup.token, id, s, None).await?;
        }
        // cancel needs a motivo of 3 to 500 characters.
        for motivo in [None, Some("no")] {
            let r = act(&app, &sup.token, id, "cancel", motivo).await?;
            assert_error(&r, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
            assert_eq!(r.body["details"]["fields"][0]["field"], "motivo", "{}", r.text);
        }
        let t = act_ok(&app, &sup.token, id, "cancel", Some("objetivo reasignado")).await?;
        assert_eq!(t["estado"], "cancelada", "from {before}");
        assert!(
            t["fin_real"].is_null() && t["pausado_en"].is_null(),
            "from {before}: {t}"
        );
        assert!(t["duracion_real_horas"].is_null(), "{t}");
        refuses_all_but(&app, &sup.token, id, "cancelada", &[]).await?;
        let path = path_of(&app, &sup.token, id).await?;
        assert_eq!(path.last(), Some(&step(Some(before), "cancelada")), "{path:?}");
        assert_eq!(path.len(), steps.len() + 2, "{path:?}");
    }
    app.stop().await
}
