//! Why an import stopped. Bad rows never stop it (they go to the rejects
//! file); these are what make the whole run fail: input that cannot be read
//! as the kind's file, a checkpoint of another import, NATS refusing rows.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: cannot tell the format from the extension; give --format csv or --format ndjson")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: bad CSV header: {reason}")]
    BadHeader { path: PathBuf, reason: String },
    #[error("{path}: reading CSV: {source}")]
    Csv { path: PathBuf, source: csv::Error },
    #[error("checkpoint {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error("NATS: {0}")]
    Nats(String),
    #[error("reading the file stopped unexpectedly (the row reader panicked); a re-run resumes at the checkpoint")]
    Planner,
    /// Rows NATS did not take after every retry; what came before the
    /// checkpoint line is safe, and a re-run resumes after it.
    #[error("NATS did not accept the row of line {line}: {reason}")]
    Publish { line: u64, reason: String },
}

impl ImportError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
        move |source| ImportError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
