//! The rejects file: one JSON object per rejected row,
//! `{"line", "reasons": [{"field", "code", "message"}], "raw"}`.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::checkpoint::replace_file;
use super::error::ImportError;
use super::rows::Reject;

pub struct Rejects {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Rejects {
    /// A new, empty rejects file; or, when resuming after `line`, the earlier
    /// run's file without its entries past `line` (those rows are read again).
    pub fn open(path: &Path, resume_after: Option<u64>) -> Result<Rejects, ImportError> {
        let io = ImportError::io(path);
        let file = match resume_after {
            Some(line) => {
                keep_through(path, line).map_err(ImportError::io(path))?;
                OpenOptions::new().create(true).append(true).open(path).map_err(io)?
            }
            None => File::create(path).map_err(io)?,
        };
        Ok(Rejects {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    pub fn write(&mut self, reject: &Reject) -> Result<(), ImportError> {
        let line = serde_json::to_string(reject).map_err(|e| std::io::Error::other(e.to_string()));
        line.and_then(|l| writeln!(self.out, "{l}"))
            .map_err(ImportError::io(&self.path))
    }

    /// Makes what was written durable (before a checkpoint that counts on it).
    pub fn flush(&mut self) -> Result<(), ImportError> {
        self.out.flush().map_err(ImportError::io(&self.path))?;
        self.out.get_ref().sync_data().map_err(ImportError::io(&self.path))
    }
}

/// Drops the entries of rows past `line` from the rejects file at `path`.
fn keep_through(path: &Path, line: u64) -> std::io::Result<()> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut kept = Vec::new();
    for entry in BufReader::new(file).lines() {
        let entry = entry?;
        let keep = serde_json::from_str::<Reject>(&entry).is_ok_and(|r| r.line <= line);
        if keep {
            kept.extend_from_slice(entry.as_bytes());
            kept.push(b'\n');
        }
    }
    replace_file(path, &kept)
}
