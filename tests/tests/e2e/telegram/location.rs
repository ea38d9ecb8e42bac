//! Location and live-location messages become `efectivo.location` jobs for
//! the unit of the linked usuario (§5, §9.2), through teloxide and the fake
//! Bot API: the position is stored with the message's date, a live
//! location's edits move it, and an edit older than the stored position
//! (updates arrive out of order) is ignored by the job.

use std::time::Duration;

use gad_e2e::TestApp;
use gad_e2e::fake_telegram::unix_now;
use gad_e2e::spawn_app_with_telegram;

use super::support::{STEP, fake_of, fresh_chat, link, reply, to_chat};

/// `(lat, lng, ubicacion_actualizada_en as Unix seconds)` of the unit.
async fn position(app: &TestApp, efectivo: i64) -> anyhow::Result<(f64, f64, i64)> {
    let row: (Option<f64>, Option<f64>, Option<i64>) = sqlx::query_as(
        "SELECT ST_Y(ubicacion::geometry), ST_X(ubicacion::geometry),
                extract(epoch FROM ubicacion_actualizada_en)::bigint
           FROM efectivos WHERE id = $1",
    )
    .bind(efectivo)
    .fetch_one(&app.db)
    .await?;
    match row {
        (Some(lat), Some(lng), Some(at)) => Ok((lat, lng, at)),
        other => anyhow::bail!("the unit has no position: {other:?}"),
    }
}

fn near(a: (f64, f64), b: (f64, f64)) -> bool {
    (a.0 - b.0).abs() < 1e-6 && (a.1 - b.1).abs() < 1e-6
}

/// Waits until the unit stands at `at` (lat, lng).
async fn moved_to(app: &TestApp, efectivo: i64, at: (f64, f64)) -> anyhow::Result<(f64, f64, i64)> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let p = position(app, efectivo).await;
        if let Ok(p) = p
            && near((p.0, p.1), at)
        {
            return Ok(p);
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("the unit did not move to {at:?}: {p:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until `n` `efectivo.location` jobs have succeeded.
async fn location_jobs_done(app: &TestApp, n: i64) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + STEP;
    loop {
        let done: i64 =
            sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'efectivo.location' AND status = 'succeeded'")
                .fetch_one(&app.db)
                .await?;
        if done >= n {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("{done} of {n} location jobs succeeded");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locations_and_live_location_edits_move_the_linked_unit() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = fake_of(&app).await?;
    let chat = fresh_chat();
    let user = app.efectivo.clone();
    link(&app, user.id, chat).await?;
    let efectivo: i64 = sqlx::query_scalar("SELECT id FROM efectivos WHERE usuario_id = $1 AND deleted_at IS NULL")
        .bind(user.id)
        .fetch_one(&app.db)
        .await?;
    // Dates a little in the past, so each step's date is distinct and none
    // is ahead of the job's clock.
    let t0 = unix_now() as i64 - 30;

    // A plain location: stored with the message's date, and acknowledged.
    let n = to_chat(fake, chat);
    let before = unix_now() as i64;
    fake.push_location(chat, -34.6037, -58.3816);
    reply(fake, chat, n, "Ubicación registrada").await?;
    let (_, _, at) = moved_to(&app, efectivo, (-34.6037, -58.3816)).await?;
    assert!(
        (before..=unix_now() as i64).contains(&at),
        "recorded_at is the message's date ({at})"
    );

    // A live location that started earlier than that message: its first
    // position is older than the stored one, so it is ignored...
    let n = to_chat(fake, chat);
    let live = fake.push_live_location(chat, -34.7, -58.7, t0);
    reply(fake, chat, n, "Ubicación en vivo").await?;
    location_jobs_done(&app, 2).await?;
    let p = position(&app, efectivo).await?;
    assert!(
        near((p.0, p.1), (-34.6037, -58.3816)),
        "an older position is ignored: {p:?}"
    );

    // ...its edits carry their edit dates: a newer one moves the unit.
    let newer = unix_now() as i64 + 2;
    fake.push_location_edit(chat, live, -34.61, -58.39, t0, newer);
    let (_, _, at) = moved_to(&app, efectivo, (-34.61, -58.39)).await?;
    assert_eq!(at, newer, "recorded_at is the edit's date");
    // An edit that reaches us after a newer one is ignored.
    fake.push_location_edit(chat, live, -34.99, -58.99, t0, newer - 1);
    location_jobs_done(&app, 4).await?;
    let p = position(&app, efectivo).await?;
    assert!(
        near((p.0, p.1), (-34.61, -58.39)) && p.2 == newer,
        "the out-of-order edit changed nothing: {p:?}"
    );
    // The next edit moves it again.
    fake.push_location_edit(chat, live, -34.62, -58.40, t0, newer + 1);
    moved_to(&app, efectivo, (-34.62, -58.40)).await?;
    location_jobs_done(&app, 5).await?;

    // Edits get no reply: a live location is edited every few seconds.
    let texts: Vec<String> = fake
        .sent_to("sendMessage", chat)
        .iter()
        .filter_map(|c| c.text().map(str::to_string))
        .collect();
    assert_eq!(texts.len(), 2, "one reply per message, none per edit: {texts:?}");
    app.stop().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_without_a_unit_or_from_an_unknown_chat_changes_nothing() -> anyhow::Result<()> {
    let app = spawn_app_with_telegram().await?;
    let fake = fake_of(&app).await?;
    // A linked usuario with no efectivo.
    let usuario: i64 = sqlx::query_scalar(
        "SELECT u.id FROM usuarios u WHERE u.deleted_at IS NULL AND u.verificado
            AND NOT EXISTS (SELECT 1 FROM efectivos e WHERE e.usuario_id = u.id)
          ORDER BY u.id LIMIT 1",
    )
    .fetch_one(&app.db)
    .await?;
    let chat = fresh_chat();
    link(&app, usuario, chat).await?;
    let n = to_chat(fake, chat);
    fake.push_location(chat, -34.6, -58.4);
    reply(fake, chat, n, "no tiene una unidad").await?;

    // An unknown chat: the linking text for the message, nothing for its edits.
    let stranger = fresh_chat();
    let live = fake.push_live_location(stranger, -34.6, -58.4, unix_now() as i64);
    fake.push_location_edit(stranger, live, -34.7, -58.5, unix_now() as i64, unix_now() as i64);
    // A bad code after the edit: once its distinct answer is out, the edit
    // (handled in order before it) has been handled too.
    fake.push_text(stranger, "/start no-es-un-codigo");
    reply(fake, stranger, 0, "código no es válido").await?;
    let to_stranger = fake.sent_to("sendMessage", stranger);
    assert_eq!(to_stranger.len(), 2, "the message and the code, not the edit");
    assert!(to_stranger[0].text().is_some_and(|t| t.contains("/start")));

    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM jobs WHERE kind = 'efectivo.location'")
        .fetch_one(&app.db)
        .await?;
    assert_eq!(jobs, 0, "no location job without a unit");
    app.stop().await
}
