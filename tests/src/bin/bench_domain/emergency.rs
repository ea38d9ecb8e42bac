//! Phase 1: emergency dispatches/s at N closed-loop submitters, each waiting
//! for its dispatch (the endpoint's default wait mode), then the double
//! booking check in SQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::json;

use crate::{Args, Recorder, answers_line, ms, random_point, url};

pub async fn run(args: &Args, http: &reqwest::Client, db: &sqlx::PgPool) -> anyhow::Result<String> {
    let clients = args.emergency_clients;
    println!(
        "\n[1] emergency dispatch: {clients} closed-loop submitters, POST /api/v1/tasks/emergency (wait mode), {}s",
        args.duration_s
    );
    let since: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT now()").fetch_one(db).await?;
    let recorder = Arc::new(Recorder::new()?);
    let end = Instant::now() + Duration::from_secs(args.duration_s);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let (http, recorder, target) = (http.clone(), recorder.clone(), url(args, "/api/v1/tasks/emergency"));
        let token = args.token.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = ChaCha8Rng::seed_from_u64(c as u64);
            while Instant::now() < end {
                let (lat, lng) = random_point(&mut rng);
                let body = json!({
                    "lat": lat, "lng": lng,
                    "reporter": {"nombre": "Banco de pruebas", "telefono": "+54 11 4444-5555"},
                    "descripcion": "bench_domain",
                });
                let sent = Instant::now();
                let answer = match http.post(&target).bearer_auth(&token).json(&body).send().await {
                    Ok(r) => r.status().as_u16().to_string(),
                    Err(e) if e.is_timeout() => "timeout".into(),
                    Err(_) => "refused".into(),
                };
                recorder.record("POST /tasks/emergency", sent.elapsed().as_micros() as u64, answer);
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let took = started.elapsed().as_secs_f64();
    let map = recorder.take();
    let Some(e) = map.get("POST /tasks/emergency") else {
        anyhow::bail!("no request finished");
    };
    let dispatched = e.answers.get("201").copied().unwrap_or(0);
    let rate = dispatched as f64 / took;
    let h = &e.latency_us;
    println!(
        "    answers: {}; {dispatched} dispatched = {rate:.0}/s; latency p50 {:.1} p99 {:.1} max {:.1} ms",
        answers_line(&e.answers),
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max())
    );
    let (double, tareas, not_held) = double_bookings(db, since).await?;
    println!(
        "    SQL: {tareas} emergency tareas since the start; units on two of them: {double}; dispatched units not en_tarea: {not_held}"
    );
    let pass = rate >= 1000.0 && double == 0;
    Ok(format!(
        "emergency dispatches/s at {clients} submitters: {rate:.0}/s (target ≥ 1,000), p99 {:.1} ms, double bookings {double}  {}",
        ms(h.value_at_quantile(0.99)),
        if pass { "PASS" } else { "MISS" }
    ))
}

/// Units holding two live emergencies created since `since`, how many such
/// tareas there are, and dispatched units not marked `en_tarea`.
async fn double_bookings(db: &sqlx::PgPool, since: chrono::DateTime<chrono::Utc>) -> anyhow::Result<(i64, i64, i64)> {
    let (double, tareas, not_held): (i64, i64, i64) = sqlx::query_as(
        "WITH e AS (
             SELECT te.efectivo_id
             FROM tareas t JOIN tarea_efectivos te ON te.tarea_id = t.id
             WHERE t.tipo = 'emergencia' AND t.created_at >= $1 AND t.deleted_at IS NULL
               AND te.respuesta <> 'rechazada')
         SELECT (SELECT count(*) FROM (SELECT efectivo_id FROM e GROUP BY efectivo_id HAVING count(*) > 1) d),
                (SELECT count(*) FROM e),
                (SELECT count(*) FROM efectivos f WHERE f.id IN (SELECT efectivo_id FROM e)
                   AND f.disponibilidad <> 'en_tarea')",
    )
    .bind(since)
    .fetch_one(db)
    .await?;
    Ok((double, tareas, not_held))
}
