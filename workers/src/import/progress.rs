//! The progress bar on stderr: rows, rate and ETA. indicatif hides it when
//! stderr is not a terminal, so logs and pipes get no control characters.

use std::io::Read;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};

const TEMPLATE: &str = "{spinner} {elapsed_precise} [{wide_bar}] {pos}/{len} lines ({per_sec}, ETA {eta}) {msg}";

/// A bar over the lines of `file` (counted first: a fast pass over the bytes),
/// starting at `done` lines.
pub fn bar(file: &Path, done: u64) -> ProgressBar {
    let lines = count_lines(file).unwrap_or(0);
    let bar = ProgressBar::new(lines);
    if let Ok(style) = ProgressStyle::with_template(TEMPLATE) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_position(done.min(lines));
    bar.reset_eta();
    bar
}

fn count_lines(file: &Path) -> std::io::Result<u64> {
    let mut f = std::fs::File::open(file)?;
    let mut buf = vec![0u8; 1 << 16];
    let (mut lines, mut last) = (0u64, b'\n');
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count() as u64;
        last = buf[n - 1];
    }
    Ok(lines + u64::from(last != b'\n'))
}
