//! `GET /api/v1/tasks` filters, order and pages (§6.3).

use gad_e2e::spawn_app;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::support::{act_ok, at, body, create, free_units, get, id_of};

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|t| t["id"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_order_and_pages() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let (sup, admin) = (app.supervisor.clone(), app.admin.clone());
    let marker = format!("Marca{:06}", rand::random::<u32>() % 1_000_000);
    let unit = free_units(&app, 1).await?.remove(0).efectivo_id;
    let before = at(0);
    let mut made = Vec::new();
    for (n, (tipo, prioridad, delegado)) in [
        ("patrullaje", 1, sup.id),
        ("vigilancia", 3, sup.id),
        ("patrullaje", 5, admin.id),
    ]
    .into_iter()
    .enumerate()
    {
        let mut b = body(delegado);
        b["titulo"] = json!(format!("{marker} numero {n}"));
        b["tipo"] = json!(tipo);
        b["prioridad"] = json!(prioridad);
        if n == 1 {
            b["efectivos_asignados"] = json!([unit]);
        }
        made.push(create(&app, &sup.token, &b).await?);
    }
    let [t0, t1, t2] = [0, 1, 2].map(|i| id_of(&made[i]));
    act_ok(&app, &sup.token, t1, "start", None).await?;

    let list = |query: String| {
        let (app, marker) = (&app, &marker);
        let token = sup.token.clone();
        async move {
            let r = get(app, &format!("/api/v1/tasks?q={marker}&{query}"), &token).await?;
            anyhow::ensure!(r.status == StatusCode::OK, "{query}: {} {}", r.status, r.text);
            let total: i64 = r.header("x-total-count").and_then(|c| c.parse().ok()).unwrap_or(-1);
            Ok::<_, anyhow::Error>((ids(&r.body), total))
        }
    };
    // Newest first.
    assert_eq!(list(String::new()).await?, (vec![t2, t1, t0], 3));
    assert_eq!(list("estado=en_curso".into()).await?, (vec![t1], 1));
    assert_eq!(
        list("estado=programada&estado=en_curso".into()).await?,
        (vec![t2, t1, t0], 3)
    );
    assert_eq!(list("estado=finalizada".into()).await?, (vec![], 0));
    assert_eq!(list("tipo=patrullaje".into()).await?, (vec![t2, t0], 2));
    assert_eq!(list("prioridad_min=3".into()).await?, (vec![t2, t1], 2));
    assert_eq!(list(format!("delegado_usuario_id={}", admin.id)).await?, (vec![t2], 1));
    assert_eq!(list(format!("efectivo_id={unit}")).await?, (vec![t1], 1));
    let codigo = made[0]["codigo"].as_str().unwrap_or_default().to_lowercase();
    assert_eq!(list(format!("codigo={codigo}")).await?, (vec![t0], 1));
    assert_eq!(list(format!("desde={before}")).await?.1, 3);
    assert_eq!(list(format!("desde={}", at(60))).await?, (vec![], 0));
    assert_eq!(list(format!("hasta={before}")).await?, (vec![], 0));
    // Pages keep the total.
    assert_eq!(list("limit=2".into()).await?, (vec![t2, t1], 3));
    assert_eq!(list("limit=2&skip=2".into()).await?, (vec![t0], 3));
    assert_eq!(list("skip=5".into()).await?, (vec![], 3));
    // q matches codigo too, case-insensitively, and `%` is literal.
    let r = get(&app, &format!("/api/v1/tasks?q={codigo}"), &sup.token).await?;
    assert_eq!(ids(&r.body), [t0]);
    let r = get(&app, "/api/v1/tasks?q=%25%25%25", &sup.token).await?;
    assert_eq!(r.header("x-total-count"), Some("0"), "{}", r.text);
    app.stop().await
}
