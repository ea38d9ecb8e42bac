//! The checkpoint file: how far an import got, so a re-run after a crash or
//! Ctrl-C skips what is done. It is replaced atomically (written beside,
//! then renamed), so a crash while writing leaves the previous one whole; rows
//! after it that were published already are dropped by JetStream as duplicates.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::ImportError;
use super::kind::ImportKind;

const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    pub kind: ImportKind,
    /// The input (canonical path) and its size: a checkpoint of another file,
    /// or of this one since changed in size, is refused.
    pub file: PathBuf,
    pub file_len: u64,
    /// Every row starting on this line or before was acknowledged or rejected.
    pub line: u64,
    /// The whole file was settled.
    pub complete: bool,
}

fn error(path: &Path, reason: impl Into<String>) -> ImportError {
    ImportError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl Checkpoint {
    pub fn new(kind: ImportKind, file: PathBuf, file_len: u64) -> Self {
        Self {
            version: VERSION,
            kind,
            file,
            file_len,
            line: 0,
            complete: false,
        }
    }

    /// The checkpoint at `path`; `None` when there is none yet.
    pub fn load(path: &Path) -> Result<Option<Checkpoint>, ImportError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(error(path, e.to_string())),
        };
        let checkpoint: Checkpoint =
            serde_json::from_str(&text).map_err(|e| error(path, format!("not a checkpoint: {e}")))?;
        if checkpoint.version != VERSION {
            return Err(error(path, format!("version {} is not {VERSION}", checkpoint.version)));
        }
        Ok(Some(checkpoint))
    }

    /// Refuses to resume an import of another kind or file with this checkpoint.
    pub fn ensure_same_import(&self, path: &Path, fresh: &Checkpoint) -> Result<(), ImportError> {
        if (self.kind, &self.file, self.file_len) != (fresh.kind, &fresh.file, fresh.file_len) {
            return Err(error(
                path,
                format!(
                    "it belongs to the {} import of {} ({} bytes), not to this one; remove it to start over",
                    self.kind.as_str(),
                    self.file.display(),
                    self.file_len
                ),
            ));
        }
        Ok(())
    }

    /// Replaces the file at `path` with this checkpoint, atomically.
    pub fn save(&self, path: &Path) -> Result<(), ImportError> {
        let text = serde_json::to_string(self).map_err(|e| error(path, e.to_string()))?;
        replace_file(path, text.as_bytes()).map_err(|e| error(path, e.to_string()))
    }
}

/// Writes `bytes` to a temporary file beside `path`, flushes it to disk and
/// renames it over `path`: readers see the old content or the new, never a part.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_checkpoint_loads_and_refuses_another_import() -> Result<(), ImportError> {
        let dir = std::env::temp_dir().join(format!("gad-checkpoint-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).map_err(ImportError::io(&dir))?;
        let path = dir.join("cp.json");
        assert_eq!(Checkpoint::load(&path)?, None);
        let mut cp = Checkpoint::new(ImportKind::Locations, dir.join("a.csv"), 10);
        cp.line = 42;
        cp.save(&path)?;
        let back = Checkpoint::load(&path)?;
        assert_eq!(back.as_ref(), Some(&cp));
        let other = Checkpoint::new(ImportKind::Tareas, dir.join("a.csv"), 10);
        assert!(cp.ensure_same_import(&path, &other).is_err());
        assert!(
            cp.ensure_same_import(&path, &Checkpoint::new(ImportKind::Locations, dir.join("a.csv"), 10))
                .is_ok()
        );
        std::fs::write(&path, "{").map_err(ImportError::io(&path))?;
        assert!(matches!(Checkpoint::load(&path), Err(ImportError::Checkpoint { .. })));
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
