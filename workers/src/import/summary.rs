//! What an import did, printed at the end (text, or one JSON object).

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::kind::ImportKind;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub kind: ImportKind,
    pub file: PathBuf,
    /// Rows read in this run (skipped ones included).
    pub rows: u64,
    /// Acknowledged by JetStream as new jobs.
    pub published: u64,
    /// Acknowledged as duplicates: JetStream had these job ids already, from an
    /// earlier run (a row this run re-sent after an unanswered attempt counts as published).
    pub duplicates: u64,
    /// Written to the rejects file.
    pub rejected: u64,
    /// Not read again: at or before the checkpoint's line.
    pub skipped: u64,
    /// Every row starting on this line or before is settled.
    pub checkpoint_line: u64,
    /// Stopped by a signal before the end of the file.
    pub interrupted: bool,
    pub rejects_file: PathBuf,
    pub elapsed_s: f64,
}

impl Summary {
    /// Rows acknowledged (new or duplicate) per second of this run.
    pub fn acked_per_second(&self) -> f64 {
        (self.published + self.duplicates) as f64 / self.elapsed_s.max(1e-9)
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.interrupted { "interrupted" } else { "done" };
        writeln!(f, "import {} of {}: {state}", self.kind.as_str(), self.file.display())?;
        writeln!(f, "  published   {}", self.published)?;
        writeln!(f, "  duplicates  {}", self.duplicates)?;
        writeln!(
            f,
            "  rejected    {} (see {})",
            self.rejected,
            self.rejects_file.display()
        )?;
        writeln!(f, "  skipped     {} (checkpoint)", self.skipped)?;
        write!(
            f,
            "  {:.1} s, {:.0} rows/s acknowledged; settled through line {}",
            self.elapsed_s,
            self.acked_per_second(),
            self.checkpoint_line
        )
    }
}
