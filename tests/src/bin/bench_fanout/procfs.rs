//! Memory and CPU of the broadcaster, of this process and of the machine,
//! read from /proc.

use std::time::Instant;

/// Clock ticks per second of /proc's CPU times (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

/// Resident memory of `pid`, KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of a process, ticks.
fn ticks(stat_path: &str) -> Option<u64> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    // Fields after the command name, which may hold spaces and parentheses.
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// (busy, all) ticks of the whole machine.
fn machine() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let all: u64 = v.iter().sum();
    let idle = v.get(3)? + v.get(4)?;
    Some((all - idle, all))
}

pub struct CpuSnap {
    at: Instant,
    broadcaster: Option<u64>,
    me: Option<u64>,
    machine: Option<(u64, u64)>,
}

pub fn snapshot(broadcaster: Option<u32>) -> CpuSnap {
    CpuSnap {
        at: Instant::now(),
        broadcaster: broadcaster.and_then(|p| ticks(&format!("/proc/{p}/stat"))),
        me: ticks("/proc/self/stat"),
        machine: machine(),
    }
}

/// One line on CPU between two snapshots, per million `deliveries`.
pub fn cpu_line(a: &CpuSnap, b: &CpuSnap, deliveries: u64) -> String {
    let wall = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let secs = |x: Option<u64>, y: Option<u64>| Some(y?.saturating_sub(x?) as f64 / TICKS_PER_S);
    let mut parts = Vec::new();
    match secs(a.broadcaster, b.broadcaster) {
        Some(s) => parts.push(format!(
            "broadcaster {:.2} CPU-s per million deliveries ({:.0}% of one core)",
            s / (deliveries.max(1) as f64 / 1e6),
            100.0 * s / wall
        )),
        None => parts.push("broadcaster CPU unknown (no BENCH_BROADCASTER_PID)".into()),
    }
    if let Some(s) = secs(a.me, b.me) {
        parts.push(format!("clients+publisher {:.0}% of one core", 100.0 * s / wall));
    }
    if let (Some((b0, a0)), Some((b1, a1))) = (a.machine, b.machine) {
        let all = a1.saturating_sub(a0).max(1) as f64;
        parts.push(format!(
            "machine {:.0}% busy",
            100.0 * b1.saturating_sub(b0) as f64 / all
        ));
    }
    parts.join("; ")
}

/// CPU of the broadcaster and this process between two snapshots, as shares of one core.
pub fn idle_cpu_line(a: &CpuSnap, b: &CpuSnap) -> String {
    let wall = b.at.duration_since(a.at).as_secs_f64().max(1e-9);
    let share = |x: Option<u64>, y: Option<u64>| match (x, y) {
        (Some(x), Some(y)) => format!("{:.1}%", 100.0 * y.saturating_sub(x) as f64 / TICKS_PER_S / wall),
        _ => "?".into(),
    };
    format!(
        "broadcaster {} of one core, clients {} of one core",
        share(a.broadcaster, b.broadcaster),
        share(a.me, b.me)
    )
}
