//! The alert rules of `deploy/prometheus/alerts.yml` (issue 7): valid for
//! `promtool check rules`, and every metric family a rule's `expr` uses is
//! exported, found in a live scrape of ingress, workers and broadcaster (all
//! three in this test's process, so one exporter shows all their families).
//! A rule on a name nothing exports would never fire; this keeps the rules
//! and `gad_shared::metric_names` in step. The Grafana dashboards under
//! `deploy/grafana/` are held to the declared names too, and the worker and
//! broadcaster binaries are checked to zero their own series at start.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use gad_e2e::board::Board;
use gad_e2e::scrape::{Recorder, sample};
use gad_e2e::service_process::{BroadcasterProcess, Config, WorkerProcess};
use gad_e2e::{services::workspace_root, spawn_app};
use gad_shared::metric_names::{self, Service};
use reqwest::StatusCode;

const NEAREST: &str = "/api/v1/geo/nearest?lat=-34.6037&lng=-58.3816&k=3";

fn rules_file() -> PathBuf {
    workspace_root().join("deploy/prometheus/alerts.yml")
}

/// Runs `promtool check rules` on the file; its output on failure. Returns
/// how many rules promtool found.
fn promtool_check() -> anyhow::Result<usize> {
    let file = rules_file();
    let out = Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(&file)
        .output()
        .map_err(|e| {
            anyhow::anyhow!(
                "promtool not runnable ({e}): it comes with deploy/services.sh up (Debian package prometheus)"
            )
        })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    anyhow::ensure!(out.status.success(), "promtool check rules {}:\n{text}", file.display());
    // "  SUCCESS: 19 rules found"
    let found = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("SUCCESS: ")?
            .strip_suffix(" rules found")?
            .parse()
            .ok()
    });
    found.ok_or_else(|| anyhow::anyhow!("no rule count in promtool's output:\n{text}"))
}

/// The rule file's shape, as far as these tests read it.
#[derive(serde::Deserialize)]
struct RuleFile {
    groups: Vec<RuleGroup>,
}

#[derive(serde::Deserialize)]
struct RuleGroup {
    rules: Vec<Rule>,
}

#[derive(serde::Deserialize)]
struct Rule {
    alert: Option<String>,
    record: Option<String>,
    expr: String,
}

/// `(rule name, expr)` of every rule.
fn rule_exprs(yaml: &str) -> anyhow::Result<Vec<(String, String)>> {
    let file: RuleFile = serde_yaml_ng::from_str(yaml)?;
    Ok(file
        .groups
        .into_iter()
        .flat_map(|g| g.rules)
        .map(|r| (r.alert.or(r.record).unwrap_or_else(|| "?".into()), r.expr))
        .collect())
}

/// Keywords that are followed by a parenthesised list of label names.
const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
/// Binary operators and literals spelled as words.
const WORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "inf", "nan", "atan2"];

/// The metric names an expression selects: identifiers outside strings,
/// label matchers (`{…}`) and ranges (`[…]`), that are not a function or
/// aggregation (followed by `(`), a keyword, or a grouping's label list.
fn metric_names_in(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    // Index after the closing delimiter matching chars[open], skipping strings.
    let skip_group = |open: usize, close: char| {
        let start = chars[open];
        let mut depth = 0usize;
        let mut j = open;
        while j < chars.len() {
            match chars[j] {
                '"' | '\'' | '`' => j = skip_string(&chars, j),
                c if c == start => {
                    depth += 1;
                    j += 1;
                }
                c if c == close => {
                    depth -= 1;
                    j += 1;
                    if depth == 0 {
                        return j;
                    }
                }
                _ => j += 1,
            }
        }
        j
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(i, '}');
        } else if c == '[' {
            i = skip_group(i, ']');
        } else if c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
            // Numbers and durations: 0.95, 1e3, 5m.
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.' || chars[i] == '_') {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':') {
                i += 1;
            }
            let ident: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let before_paren = chars.get(next) == Some(&'(');
            // An aggregation with its grouping first: `sum by (x) (…)`.
            let rest: String = chars[next..].iter().take(8).collect();
            let before_grouping = ["by", "without"].iter().any(|g| {
                rest.strip_prefix(g)
                    .is_some_and(|r| r.starts_with(|c: char| c.is_whitespace() || c == '('))
            });
            if GROUPING.contains(&ident.as_str()) {
                if before_paren {
                    i = skip_group(next, ')');
                }
            } else if !before_paren && !before_grouping && !WORDS.contains(&ident.to_ascii_lowercase().as_str()) {
                names.insert(ident);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Index after the string literal that starts at `open`.
fn skip_string(chars: &[char], open: usize) -> usize {
    let quote = chars[open];
    let mut j = open + 1;
    while j < chars.len() {
        if chars[j] == '\\' && quote != '`' {
            j += 2;
        } else if chars[j] == quote {
            return j + 1;
        } else {
            j += 1;
        }
    }
    j
}

/// The series names of a Prometheus text scrape (histograms as their
/// `_bucket`, `_count` and `_sum` series).
fn scraped_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_string)
        .collect()
}

/// The family a referenced series belongs to: `x_bucket`, `x_count` and
/// `x_sum` belong to histogram `x` when the scrape has `x_bucket`.
fn family<'a>(name: &'a str, scraped: &BTreeSet<String>) -> &'a str {
    for suffix in ["_bucket", "_count", "_sum"] {
        if let Some(base) = name.strip_suffix(suffix)
            && scraped.contains(&format!("{base}_bucket"))
        {
            return base;
        }
    }
    name
}

/// Each referenced name, with the rules that use it.
fn referenced() -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let yaml = std::fs::read_to_string(rules_file())?;
    let mut used: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (rule, expr) in rule_exprs(&yaml)? {
        let names = metric_names_in(&expr);
        anyhow::ensure!(!names.is_empty(), "rule {rule} uses no metric: {expr}");
        for name in names {
            used.entry(name).or_default().push(rule.clone());
        }
    }
    // Prometheus' own: one series per scrape target.
    used.remove("up");
    Ok(used)
}

#[test]
fn promql_names_skip_functions_labels_strings_and_groupings() -> anyhow::Result<()> {
    let expr = r#"histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket{route!~"/x{id}"}[5m])))
        > 0.15 and on (route) sum without (instance) (rate(http_requests_total[5m] offset 1h)) > bool 1e3
        or absent(up{job="a"}) unless max(gad_breaker_state) * on () group_left (kind) foo:bar_ratio
        + max by(lane) (job_queue_depth)"#;
    let names: Vec<_> = metric_names_in(expr).into_iter().collect();
    assert_eq!(
        names,
        [
            "foo:bar_ratio",
            "gad_breaker_state",
            "http_request_duration_seconds_bucket",
            "http_requests_total",
            "job_queue_depth",
            "up"
        ]
    );
    let yaml = "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: 'x_total > 0'\n        for: 1m\n      - alert: B\n        expr: |\n          y\n            and z\n        for: 1m\n      - record: c:rate\n        expr: rate(w[5m]) # note\n";
    let exprs = rule_exprs(yaml)?;
    assert_eq!(
        exprs,
        [
            ("A".to_string(), "x_total > 0".to_string()),
            ("B".to_string(), "y\n  and z\n".to_string()),
            ("c:rate".to_string(), "rate(w[5m])".to_string()),
        ]
    );
    Ok(())
}

#[test]
fn alert_rules_pass_promtool_and_every_rule_is_read() -> anyhow::Result<()> {
    let found = promtool_check()?;
    let yaml = std::fs::read_to_string(rules_file())?;
    let exprs = rule_exprs(&yaml)?;
    assert_eq!(exprs.len(), found, "rules read here vs. promtool: {exprs:#?}");
    // Every name a rule uses is one the services declare (or process_*).
    let undeclared: Vec<_> = referenced()?.into_iter().filter(|(name, _)| !declared(name)).collect();
    assert!(
        undeclared.is_empty(),
        "rules use names gad_shared::metric_names does not declare: {undeclared:?}"
    );
    Ok(())
}

/// Whether `name` (a series name as a query writes it) is one the services
/// export: declared in `metric_names` (a histogram by its family or its
/// `_bucket`/`_count`/`_sum` series), a `process_*` family, or `up`.
fn declared(name: &str) -> bool {
    let families: BTreeSet<&str> = metric_names::all().collect();
    let base = ["_bucket", "_count", "_sum"]
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name);
    name == "up" || name.starts_with("process_") || families.contains(name) || families.contains(base)
}

/// The dashboards under `deploy/grafana/` are Grafana JSON models whose
/// queries use only exported names, through the `datasource` variable.
#[test]
fn dashboards_query_only_exported_metrics() -> anyhow::Result<()> {
    fn targets(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?");
            for t in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push((title.to_string(), expr.to_string()));
                }
            }
            targets(&panel["panels"], out);
        }
    }
    let mut problems = Vec::new();
    for name in ["operations", "workers", "broadcaster"] {
        let path = workspace_root().join(format!("deploy/grafana/{name}.json"));
        let model: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        anyhow::ensure!(model["schemaVersion"].as_u64().is_some(), "{name}: no schemaVersion");
        let variables = model["templating"]["list"].as_array().cloned().unwrap_or_default();
        anyhow::ensure!(
            variables
                .iter()
                .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
            "{name}: no Prometheus datasource variable"
        );
        let mut queries = Vec::new();
        targets(&model["panels"], &mut queries);
        anyhow::ensure!(!queries.is_empty(), "{name}: no queries");
        for (panel, expr) in queries {
            let names = metric_names_in(&expr);
            if names.is_empty() {
                problems.push(format!("{name} / {panel}: no metric in {expr}"));
            }
            for metric in names.into_iter().filter(|m| !declared(m)) {
                problems.push(format!("{name} / {panel}: {metric} is not exported"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_an_alert_rule_uses_is_in_a_live_scrape() -> anyhow::Result<()> {
    let used = referenced()?;
    // This test binary's process gets its own recorder (nextest runs each
    // test alone); each service's binary zeroes its own series at start.
    let recorder = Recorder::install()?;
    for service in [Service::Ingress, Service::Workers, Service::Broadcaster] {
        metric_names::zero_series(service);
    }
    let app = spawn_app().await?;

    // Ordinary use: a job submitted and waited for, a WebSocket client.
    let sup = app.supervisor.token.clone();
    let r = app.get_with(NEAREST, Some(&sup), &[("Prefer", "wait=10")]).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut ws = app.ws_connect(&sup).await?;
    let ack = ws.next_frame(Duration::from_secs(5)).await?;
    assert_eq!(ack["event_type"], "connection_ack", "{ack}");

    // The lag gauges come with the workers' first consumer reading.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let missing = loop {
        let text = recorder.scrape().await?;
        let scraped = scraped_names(&text);
        let missing: Vec<String> = used
            .iter()
            .filter(|(name, _)| !scraped.contains(name.as_str()) && !scraped.contains(&format!("{name}_bucket")))
            .map(|(name, rules)| format!("{} (used by {})", family(name, &scraped), rules.join(", ")))
            .collect();
        if missing.is_empty() || tokio::time::Instant::now() >= deadline {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    // And the ordinary use moved the families it should have.
    let text = recorder.scrape().await?;
    for (series, labels) in [
        ("gad_ws_frames_sent_total", &[][..]),
        ("gad_job_queue_wait_seconds_count", &[r#"kind="geo.nearest""#][..]),
        ("jobs_finished_total", &[r#"status="succeeded""#][..]),
    ] {
        assert!(
            sample(&text, series, labels).is_some_and(|v| v >= 1.0),
            "{series} {labels:?} did not move:\n{text}"
        );
    }
    drop(ws);
    app.stop().await?;
    assert!(
        missing.is_empty(),
        "alert rules use metrics no service exported:\n  {}",
        missing.join("\n  ")
    );
    Ok(())
}

/// Zeroing at start is the binaries' job (the test above zeroes by hand, as
/// its services run in-process): the workers' and the broadcaster's first
/// scrape has their own zero series and none of the other's. (Ingress is not
/// run as a process by the harness.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binaries_export_their_zero_series_from_the_start() -> anyhow::Result<()> {
    let b = Board::start().await?;
    let within = Duration::from_secs(120);
    let workers = WorkerProcess::start(Config::workers(&b.isolation), within).await?;
    let broadcaster = BroadcasterProcess::start(Config::broadcaster(&b.isolation), within).await?;
    let w = workers.scrape().await?;
    let c = broadcaster.scrape().await?;
    for series in [
        r#"gad_jobs_dead_total{kind="geo.nearest"} 0"#,
        r#"gad_jobs_dead_total{kind="unknown"} 0"#,
        r#"gad_breaker_opened_total{dependency="postgres"} 0"#,
        r#"emergency_dispatch_total{outcome="error"} 0"#,
    ] {
        assert!(w.lines().any(|l| l == series), "workers lack {series}:\n{w}");
    }
    for series in [
        "ws_slow_consumer_closes_total 0",
        r#"telegram_api_errors_total{code="429"} 0"#,
        r#"gad_ws_connections_refused_total{reason="capacity"} 0"#,
    ] {
        assert!(c.lines().any(|l| l == series), "broadcaster lacks {series}:\n{c}");
    }
    let (w, c) = (scraped_names(&w), scraped_names(&c));
    for other in [
        "telegram_api_errors_total",
        "ws_slow_consumer_closes_total",
        "gad_http_shed_total",
    ] {
        assert!(!w.contains(other), "workers export {other}");
    }
    for other in ["gad_jobs_dead_total", "gad_breaker_opened_total", "gad_http_shed_total"] {
        assert!(!c.contains(other), "broadcaster exports {other}");
    }
    drop(workers);
    drop(broadcaster);
    b.stop().await
}
