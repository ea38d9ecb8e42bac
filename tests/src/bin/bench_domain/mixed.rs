//! Phase 2: the mixed workload, open loop at each rate in turn: 70 % direct
//! reads, 20 % task writes and transitions (create in its default wait mode,
//! start and finish with `Prefer: wait=5`, so each is timed to its effect),
//! 10 % nearest (`Prefer: wait=5`). Latency counts from the scheduled send
//! time, so a slow answer delays no later request (no coordinated omission).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::{Args, Recorder, all_latencies, answers_line, ms, random_point, url};

/// Tasks the benchmark created, by the transition they are ready for.
#[derive(Default)]
struct Pools {
    programadas: Mutex<Vec<i64>>,
    en_curso: Mutex<Vec<i64>>,
}

const POOL_CAP: usize = 10_000;

fn push(pool: &Mutex<Vec<i64>>, id: i64) {
    if let Ok(mut p) = pool.lock()
        && p.len() < POOL_CAP
    {
        p.push(id);
    }
}

fn pop(pool: &Mutex<Vec<i64>>) -> Option<i64> {
    pool.lock().ok()?.pop()
}

struct Shared {
    http: reqwest::Client,
    token: String,
    base: String,
    me: i64,
    tareas: Vec<i64>,
    efectivos: Vec<i64>,
    pools: Pools,
    codes: AtomicU64,
    run: u16,
}

#[derive(Clone, Copy)]
enum Op {
    GetTask,
    ListTasks,
    GetEfectivo,
    Create,
    Start,
    Finish,
    Nearest,
}

fn pick(rng: &mut impl Rng) -> Op {
    match rng.random_range(0..100) {
        0..30 => Op::GetTask,
        30..50 => Op::ListTasks,
        50..70 => Op::GetEfectivo,
        70..78 => Op::Create,
        78..84 => Op::Start,
        84..90 => Op::Finish,
        _ => Op::Nearest,
    }
}

pub async fn run(args: &Args, http: &reqwest::Client, db: &sqlx::PgPool) -> anyhow::Result<String> {
    let me: Value = http
        .get(url(args, "/api/v1/users/me"))
        .bearer_auth(&args.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let me = me["id"].as_i64().context("users/me without an id")?;
    let tareas: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM tareas WHERE deleted_at IS NULL ORDER BY random() LIMIT 20000")
            .fetch_all(db)
            .await?;
    let efectivos: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM efectivos WHERE deleted_at IS NULL ORDER BY random() LIMIT 20000")
            .fetch_all(db)
            .await?;
    anyhow::ensure!(
        !tareas.is_empty() && !efectivos.is_empty(),
        "the bench database is not seeded"
    );
    let shared = Arc::new(Shared {
        http: http.clone(),
        token: args.token.clone(),
        base: args.ingress_url.trim_end_matches('/').to_string(),
        me,
        tareas,
        efectivos,
        pools: Pools::default(),
        codes: AtomicU64::new(0),
        run: rand::rng().random(),
    });
    println!(
        "\n[2] mixed workload, open loop, {}s per rate: 70% reads (GET /tasks/{{id}}, GET /tasks, GET /efectivos/{{id}}), \
         20% writes (POST /tasks, start, finish), 10% GET /geo/nearest",
        args.duration_s
    );
    let mut best: Option<(u64, f64)> = None;
    for &rate in &args.mixed_rates {
        let (p99, errors) = at_rate(args, &shared, rate).await?;
        let ok = p99 <= args.mixed_p99_ms && errors <= 0.01;
        println!(
            "    → {rate}/s: p99 {p99:.1} ms, errors {:.2}%  {}",
            errors * 100.0,
            if ok { "within target" } else { "over" }
        );
        if !ok {
            break;
        }
        best = Some((rate, p99));
    }
    Ok(match best {
        Some((rate, p99)) => format!(
            "mixed workload: highest rate with p99 ≤ {} ms and ≤ 1% errors: {rate}/s (p99 {p99:.1} ms); per-endpoint p99 above",
            args.mixed_p99_ms
        ),
        None => format!(
            "mixed workload: no rate tried kept p99 ≤ {} ms  MISS",
            args.mixed_p99_ms
        ),
    })
}

/// One rate: overall p99 (ms) and the share of failed requests.
async fn at_rate(args: &Args, shared: &Arc<Shared>, rate: u64) -> anyhow::Result<(f64, f64)> {
    let recorder = Arc::new(Recorder::new()?);
    let outstanding = Arc::new(Semaphore::new(args.mixed_max_outstanding));
    let mut rng = ChaCha8Rng::seed_from_u64(rate);
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let total = rate * args.duration_s;
    for i in 0..total {
        let scheduled = start + interval * i as u32;
        tokio::time::sleep_until(scheduled).await;
        let op = pick(&mut rng);
        let Ok(permit) = outstanding.clone().try_acquire_owned() else {
            recorder.record("(not sent: too many outstanding)", 1, "refused".into());
            continue;
        };
        let (shared, recorder) = (shared.clone(), recorder.clone());
        let seed = rng.random();
        tokio::spawn(async move {
            let (label, answer) = request(&shared, op, seed).await;
            recorder.record(label, scheduled.elapsed().as_micros() as u64, answer);
            drop(permit);
        });
    }
    let _all = tokio::time::timeout(
        Duration::from_secs(30),
        outstanding.acquire_many(args.mixed_max_outstanding as u32),
    )
    .await;
    let took = start.elapsed().as_secs_f64();
    let map = recorder.take();
    let all = all_latencies(&recorder, &map)?;
    let (mut sent, mut failed) = (0u64, 0u64);
    println!("\n    rate {rate}/s ({:.0}/s achieved):", all.len() as f64 / took);
    for (label, e) in &map {
        let n: u64 = e.answers.values().sum();
        let bad: u64 = e
            .answers
            .iter()
            .filter(|(k, _)| !k.starts_with('2'))
            .map(|(_, v)| v)
            .sum();
        sent += n;
        failed += bad;
        println!(
            "      {label:<28} n {n:>7}  p50 {:>7.1}  p99 {:>7.1}  max {:>8.1} ms  {}",
            ms(e.latency_us.value_at_quantile(0.5)),
            ms(e.latency_us.value_at_quantile(0.99)),
            ms(e.latency_us.max()),
            answers_line(&e.answers)
        );
    }
    let p99 = ms(all.value_at_quantile(0.99));
    println!(
        "      {:<28} n {:>7}  p50 {:>7.1}  p99 {:>7.1}  max {:>8.1} ms",
        "all",
        all.len(),
        ms(all.value_at_quantile(0.5)),
        p99,
        ms(all.max())
    );
    Ok((p99, failed as f64 / sent.max(1) as f64))
}

async fn request(s: &Shared, op: Op, seed: u64) -> (&'static str, String) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let op = match op {
        Op::Finish if s.pools.en_curso.lock().map(|p| p.is_empty()).unwrap_or(true) => Op::Start,
        op => op,
    };
    let op = match op {
        Op::Start if s.pools.programadas.lock().map(|p| p.is_empty()).unwrap_or(true) => Op::Create,
        op => op,
    };
    let get = |path: String| s.http.get(format!("{}{path}", s.base)).bearer_auth(&s.token);
    let post = |path: String| s.http.post(format!("{}{path}", s.base)).bearer_auth(&s.token);
    match op {
        Op::GetTask => {
            let id = s.tareas[rng.random_range(0..s.tareas.len())];
            (
                "GET /tasks/{id}",
                status(get(format!("/api/v1/tasks/{id}")).send().await).await,
            )
        }
        Op::ListTasks => {
            let skip = rng.random_range(0..200);
            let r = get(format!("/api/v1/tasks?limit=20&skip={skip}")).send().await;
            ("GET /tasks", status(r).await)
        }
        Op::GetEfectivo => {
            let id = s.efectivos[rng.random_range(0..s.efectivos.len())];
            (
                "GET /efectivos/{id}",
                status(get(format!("/api/v1/efectivos/{id}")).send().await).await,
            )
        }
        Op::Nearest => {
            let (lat, lng) = random_point(&mut rng);
            let r = get(format!("/api/v1/geo/nearest?lat={lat}&lng={lng}&k=5"))
                .header("Prefer", "wait=5")
                .send()
                .await;
            ("GET /geo/nearest", status(r).await)
        }
        Op::Create => {
            let n = s.codes.fetch_add(1, Ordering::Relaxed);
            let body = json!({
                "codigo": format!("B{:04X}-{n}", s.run),
                "titulo": "Patrulla del banco de pruebas",
                "tipo": "patrullaje",
                "inicio_programado": chrono::Utc::now(),
                "delegado_usuario_id": s.me,
            });
            let (status, body) = answer_json(post("/api/v1/tasks".into()).json(&body).send().await).await;
            if let Some(id) = body.and_then(|b| b["id"].as_i64()) {
                push(&s.pools.programadas, id);
            }
            ("POST /tasks", status)
        }
        Op::Start => match pop(&s.pools.programadas) {
            Some(id) => {
                let r = post(format!("/api/v1/tasks/{id}/start"))
                    .header("Prefer", "wait=5")
                    .json(&json!({}))
                    .send()
                    .await;
                let status = status(r).await;
                if status == "200" {
                    push(&s.pools.en_curso, id);
                }
                ("POST /tasks/{id}/start", status)
            }
            None => ("POST /tasks/{id}/start", "refused".into()),
        },
        Op::Finish => match pop(&s.pools.en_curso) {
            Some(id) => {
                let r = post(format!("/api/v1/tasks/{id}/finish"))
                    .header("Prefer", "wait=5")
                    .json(&json!({}))
                    .send()
                    .await;
                ("POST /tasks/{id}/finish", status(r).await)
            }
            None => ("POST /tasks/{id}/finish", "refused".into()),
        },
    }
}

/// The answer's status; the body is read so the connection is reused.
async fn status(r: reqwest::Result<reqwest::Response>) -> String {
    match r {
        Ok(r) => {
            let status = r.status().as_u16().to_string();
            match r.bytes().await {
                Ok(_) => status,
                Err(_) => "body lost".into(),
            }
        }
        Err(e) if e.is_timeout() => "timeout".into(),
        Err(_) => "refused".into(),
    }
}

async fn answer_json(r: reqwest::Result<reqwest::Response>) -> (String, Option<Value>) {
    match r {
        Ok(r) => {
            let status = r.status().as_u16().to_string();
            (status, r.json().await.ok())
        }
        Err(e) if e.is_timeout() => ("timeout".into(), None),
        Err(_) => ("refused".into(), None),
    }
}
