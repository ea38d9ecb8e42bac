//! Concurrent transitions on one tarea serialise on its row lock (§3): of
//! ten simultaneous `start`s exactly one wins, and the history says so.

use gad_e2e::spawn_app;
use reqwest::StatusCode;

use super::support::{act, body, create, get, id_of, path_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_concurrent_starts_give_one_success_and_nine_conflicts() -> anyhow::Result<()> {
    let app = spawn_app().await?;
    let sup = app.supervisor.clone();
    let id = id_of(&create(&app, &sup.token, &body(sup.id)).await?);

    let answers = futures::future::join_all((0..10).map(|_| act(&app, &sup.token, id, "start", None))).await;
    let mut ok = 0;
    for r in answers {
        let r = r?;
        match r.status {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => {
                assert_eq!(r.body["error"], "invalid_transition", "{}", r.text);
                assert_eq!(r.body["details"]["estado_actual"], "en_curso", "{}", r.text);
                assert_eq!(r.body["details"]["accion"], "start", "{}", r.text);
            }
            other => panic!("unexpected {other}: {}", r.text),
        }
    }
    assert_eq!(ok, 1, "exactly one start must win");
    let path = path_of(&app, &sup.token, id).await?;
    assert_eq!(path.len(), 2, "one creation row and one start row: {path:?}");
    let t = get(&app, &format!("/api/v1/tasks/{id}"), &sup.token).await?.body;
    assert_eq!(t["estado"], "en_curso");

    // Pause and finish racing: both serialise, and whichever runs first
    // decides what the other finds.
    let (pause, finish) = tokio::join!(
        act(&app, &sup.token, id, "pause", None),
        act(&app, &sup.token, id, "finish", None)
    );
    let statuses = [pause?.status, finish?.status];
    // pause then finish (pausada) or finish then pause (finalizada): one loses.
    assert_eq!(
        statuses.iter().filter(|s| **s == StatusCode::OK).count(),
        1,
        "{statuses:?}"
    );
    assert!(statuses.contains(&StatusCode::CONFLICT), "{statuses:?}");
    let t = get(&app, &format!("/api/v1/tasks/{id}"), &sup.token).await?.body;
    let path = path_of(&app, &sup.token, id).await?;
    assert_eq!(path.last().map(|s| s.1.as_str()), t["estado"].as_str(), "{path:?}");
    app.stop().await
}
