//! Reading and checking rows on a thread of their own, a bounded number of
//! rows ahead of the publisher: parsing, checking and encoding a row costs
//! about as much as publishing it, so the two run on different cores. Rows
//! arrive in file order, so rejects, the watermark and the checkpoint see
//! exactly what a single loop would.

use std::thread::JoinHandle;

use gad_shared::submit::Prepared;
use gad_shared::topology::Topology;
use tokio::sync::mpsc;

use super::error::ImportError;
use super::kind::ImportKind;
use super::rows::{Reject, plan};
use super::source::Source;

/// A row, ready for the run loop.
pub enum Planned {
    /// Settled by an earlier run (at or before the checkpoint line).
    Skipped {
        line: u64,
    },
    Job {
        line: u64,
        job: Box<Prepared>,
    },
    Rejected(Reject),
}

pub struct Planner {
    rows: mpsc::Receiver<Result<Planned, ImportError>>,
    thread: Option<JoinHandle<()>>,
}

impl Planner {
    /// Starts reading `source`; at most `ahead` rows wait for the run loop;
    /// `with_status`: see [`plan`].
    pub fn start(
        mut source: Source,
        kind: ImportKind,
        topology: Topology,
        skip_through: u64,
        ahead: usize,
        with_status: bool,
    ) -> Result<Self, ImportError> {
        let (tx, rows) = mpsc::channel(ahead.max(1));
        let thread = std::thread::Builder::new()
            .name("gad-import-plan".into())
            .spawn(move || {
                loop {
                    let item = match source.next_row() {
                        Ok(Some(row)) if row.line <= skip_through => Ok(Planned::Skipped { line: row.line }),
                        Ok(Some(row)) => {
                            let line = row.line;
                            Ok(match plan(kind, &topology, row, with_status) {
                                Ok(job) => Planned::Job {
                                    line,
                                    job: Box::new(job),
                                },
                                Err(reject) => Planned::Rejected(reject),
                            })
                        }
                        Ok(None) => return,
                        Err(e) => Err(e),
                    };
                    let failed = item.is_err();
                    // The run loop went away (stopped, or failed): so do we.
                    if tx.blocking_send(item).is_err() || failed {
                        return;
                    }
                }
            })
            .map_err(|e| ImportError::Io {
                path: "gad-import-plan thread".into(),
                source: e,
            })?;
        Ok(Self {
            rows,
            thread: Some(thread),
        })
    }

    /// The next row in file order; `None` at the end of the file.
    pub async fn next(&mut self) -> Option<Result<Planned, ImportError>> {
        if let Some(row) = self.rows.recv().await {
            return Some(row);
        }
        // The channel closes at the end of the file, and also when the
        // thread died: a panic must not read as "every row done".
        let thread = self.thread.take()?;
        match tokio::task::spawn_blocking(move || thread.join()).await {
            Ok(Ok(())) => None,
            _ => Some(Err(ImportError::Planner)),
        }
    }
}

impl Drop for Planner {
    fn drop(&mut self) {
        // Closing the channel first ends the thread at its next row.
        self.rows.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
