//! One import run: rows read in file order, checked, published with at most
//! `in_flight` acknowledgements outstanding, rejects written as they come,
//! and the checkpoint saved every `checkpoint_every` rows, when a signal
//! stops the run, and at the end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;

use super::checkpoint::Checkpoint;
use super::error::ImportError;
use super::kind::ImportKind;
use super::planner::{Planned, Planner};
use super::progress;
use super::publisher::{Published, Publisher};
use super::rejects::Rejects;
use super::source::{Format, Source};
use super::summary::Summary;
use super::target::Target;
use super::watermark::Watermark;

#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub kind: ImportKind,
    pub file: PathBuf,
    /// `None`: from the file's extension.
    pub format: Option<Format>,
    /// `None`: `<file>.rejects.ndjson`.
    pub rejects: Option<PathBuf>,
    /// `None`: no checkpoint (a re-run reads the whole file; its rows are duplicates).
    pub checkpoint: Option<PathBuf>,
    /// Rows published and not yet acknowledged, at most.
    pub in_flight: usize,
    /// Rows between two checkpoint writes.
    pub checkpoint_every: u64,
    /// Draw the progress bar (it stays hidden anyway when stderr is not a terminal).
    pub progress: bool,
    /// Also create each job's `queued` status, as ingress does. Off by
    /// default: it doubles the JetStream writes per row, and nobody polls a
    /// bulk row before a worker records it `running`.
    pub queued_status: bool,
}

/// The rejects file used when none is given: beside the input.
pub fn default_rejects(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".rejects.ndjson");
    PathBuf::from(name)
}

/// Imports `options.file` into `target` until the end of the file or `stop`.
pub async fn run(options: &ImportOptions, target: &Target, stop: &CancellationToken) -> Result<Summary, ImportError> {
    let started = Instant::now();
    let mut run = Run::start(options, target)?;
    let failure = run.rows(options, stop).await.err();
    // Rows in flight are acknowledged (or fail) within the publish timeout.
    while let Some(done) = run.publisher.next().await {
        run.settle(done);
    }
    let failure = failure.or_else(|| run.failure.take());
    run.summary.interrupted = stop.is_cancelled() && failure.is_none() && !run.at_end;
    let complete = run.at_end && failure.is_none();
    let saved = run.save_checkpoint(complete);
    if let Some(bar) = &run.bar {
        bar.finish_and_clear();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    saved?;
    run.summary.checkpoint_line = run.watermark.line();
    run.summary.elapsed_s = started.elapsed().as_secs_f64();
    Ok(run.summary)
}

struct Run {
    planner: Planner,
    rejects: Rejects,
    publisher: Publisher,
    watermark: Watermark,
    checkpoint: Option<(PathBuf, Checkpoint)>,
    bar: Option<ProgressBar>,
    summary: Summary,
    failure: Option<ImportError>,
    at_end: bool,
}

impl Run {
    fn start(options: &ImportOptions, target: &Target) -> Result<Run, ImportError> {
        let kind = options.kind;
        let format = options
            .format
            .or_else(|| Format::from_extension(&options.file))
            .ok_or_else(|| ImportError::UnknownFormat {
                path: options.file.clone(),
            })?;
        let file = std::fs::canonicalize(&options.file).map_err(ImportError::io(&options.file))?;
        let file_len = std::fs::metadata(&file).map_err(ImportError::io(&file))?.len();
        let fresh = Checkpoint::new(kind, file.clone(), file_len);
        let mut resume = None;
        if let Some(path) = &options.checkpoint
            && let Some(earlier) = Checkpoint::load(path)?
        {
            earlier.ensure_same_import(path, &fresh)?;
            resume = Some(earlier.line);
        }
        // Opened first: a bad header fails before any file is written.
        let source = Source::open(&file, format, kind)?;
        let rejects_file = options
            .rejects
            .clone()
            .unwrap_or_else(|| default_rejects(&options.file));
        let rejects = Rejects::open(&rejects_file, resume)?;
        let skip_through = resume.unwrap_or(0);
        let publisher = Publisher::new(
            target.queue.clone(),
            options.queued_status.then(|| target.status.clone()),
            target.publish_timeout,
            options.in_flight,
        );
        Ok(Run {
            planner: Planner::start(
                source,
                kind,
                target.topology.clone(),
                skip_through,
                options.in_flight,
                options.queued_status,
            )?,
            rejects,
            publisher,
            watermark: Watermark::new(skip_through),
            checkpoint: options.checkpoint.clone().map(|p| (p, fresh)),
            bar: options.progress.then(|| progress::bar(&file, skip_through)),
            summary: Summary {
                kind,
                file,
                rows: 0,
                published: 0,
                duplicates: 0,
                rejected: 0,
                skipped: 0,
                checkpoint_line: skip_through,
                interrupted: false,
                rejects_file,
                elapsed_s: 0.0,
            },
            failure: None,
            at_end: false,
        })
    }

    /// Reads and publishes rows until the end, `stop`, or a failure.
    async fn rows(&mut self, options: &ImportOptions, stop: &CancellationToken) -> Result<(), ImportError> {
        let mut since_checkpoint = 0u64;
        loop {
            while let Some(done) = self.publisher.ready() {
                self.settle(done);
            }
            if stop.is_cancelled() || self.failure.is_some() {
                return Ok(());
            }
            if self.publisher.is_full() {
                if let Some(done) = self.publisher.next().await {
                    self.settle(done);
                }
                continue;
            }
            let Some(row) = self.planner.next().await else {
                self.at_end = true;
                return Ok(());
            };
            self.row(row?)?;
            since_checkpoint += 1;
            if since_checkpoint >= options.checkpoint_every.max(1) {
                since_checkpoint = 0;
                self.save_checkpoint(false)?;
            }
        }
    }

    fn row(&mut self, row: Planned) -> Result<(), ImportError> {
        self.summary.rows += 1;
        let line = match &row {
            Planned::Skipped { line } | Planned::Job { line, .. } => *line,
            Planned::Rejected(reject) => reject.line,
        };
        if let Some(bar) = &self.bar {
            bar.set_position(line);
        }
        match row {
            Planned::Skipped { .. } => self.summary.skipped += 1,
            Planned::Job { line, job } => {
                let seq = self.watermark.add(line, false);
                self.publisher.push(seq, line, *job);
            }
            Planned::Rejected(reject) => {
                self.rejects.write(&reject)?;
                self.summary.rejected += 1;
                self.watermark.add(line, true);
            }
        }
        Ok(())
    }

    fn settle(&mut self, done: Published) {
        match done.result {
            Ok(duplicate) => {
                if duplicate {
                    self.summary.duplicates += 1;
                } else {
                    self.summary.published += 1;
                }
                self.watermark.settle(done.seq);
            }
            // The row stays unsettled: the checkpoint stops before it.
            Err(e) => {
                self.failure.get_or_insert(ImportError::Publish {
                    line: done.line,
                    reason: e.to_string(),
                });
            }
        }
    }

    /// Rejects first, then the checkpoint that counts on them.
    fn save_checkpoint(&mut self, complete: bool) -> Result<(), ImportError> {
        self.rejects.flush()?;
        let Some((path, checkpoint)) = &mut self.checkpoint else {
            return Ok(());
        };
        checkpoint.line = self.watermark.line();
        checkpoint.complete = complete;
        checkpoint.save(path)
    }
}
