//! Rows encoded in PostgreSQL's COPY text format, and the call that streams
//! them. COPY loads the bench profile in seconds where row-by-row INSERTs
//! would take minutes.

use std::fmt::{self, Write as _};

use chrono::DateTime;
use sqlx::PgConnection;

/// Bytes per CopyData message: big enough to amortise the round trips, small
/// enough that the server never buffers a huge message.
const CHUNK: usize = 1 << 20;

/// A buffer of COPY text rows (tab-separated, `\N` for NULL).
#[derive(Default)]
pub(crate) struct CopyRows {
    buf: Vec<u8>,
    scratch: String,
    at_row_start: bool,
}

impl CopyRows {
    pub fn new() -> Self {
        Self {
            at_row_start: true,
            ..Self::default()
        }
    }

    fn separator(&mut self) {
        if !self.at_row_start {
            self.buf.push(b'\t');
        }
        self.at_row_start = false;
    }

    /// A text value, escaped so that tabs, newlines and backslashes in the
    /// data cannot end a field or a row early.
    pub fn text(&mut self, s: &str) -> &mut Self {
        self.separator();
        for b in s.bytes() {
            match b {
                b'\\' => self.buf.extend_from_slice(b"\\\\"),
                b'\t' => self.buf.extend_from_slice(b"\\t"),
                b'\n' => self.buf.extend_from_slice(b"\\n"),
                b'\r' => self.buf.extend_from_slice(b"\\r"),
                _ => self.buf.push(b),
            }
        }
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.separator();
        self.buf.extend_from_slice(b"\\N");
        self
    }

    pub fn opt_text(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => self.null(),
        }
    }

    /// Any displayable value (numbers, uuids), escaped like text.
    pub fn value(&mut self, v: impl fmt::Display) -> &mut Self {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        // Writing to a String cannot fail.
        let _ = write!(scratch, "{v}");
        self.text(&scratch);
        self.scratch = scratch;
        self
    }

    pub fn opt_value(&mut self, v: Option<impl fmt::Display>) -> &mut Self {
        match v {
            Some(v) => self.value(v),
            None => self.null(),
        }
    }

    /// A timestamptz from Unix seconds.
    pub fn time(&mut self, secs: i64) -> &mut Self {
        match DateTime::from_timestamp(secs, 0) {
            Some(t) => self.value(t.format("%Y-%m-%d %H:%M:%S+00")),
            None => self.null(),
        }
    }

    pub fn opt_time(&mut self, secs: Option<i64>) -> &mut Self {
        match secs {
            Some(s) => self.time(s),
            None => self.null(),
        }
    }

    pub fn end_row(&mut self) {
        self.buf.push(b'\n');
        self.at_row_start = true;
    }
}

/// Runs `COPY <target> FROM STDIN` with `rows` and returns the rows copied.
pub(crate) async fn copy_in(conn: &mut PgConnection, target: &str, rows: &CopyRows) -> Result<u64, sqlx::Error> {
    let mut copy = conn
        .copy_in_raw(&format!("COPY {target} FROM STDIN (FORMAT text)"))
        .await?;
    for chunk in rows.buf.chunks(CHUNK) {
        if let Err(e) = copy.send(chunk).await {
            // Leave the connection usable: the server discards the partial COPY.
            let _ = copy.abort(e.to_string()).await;
            return Err(e);
        }
    }
    copy.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_separators_and_marks_nulls() {
        let mut rows = CopyRows::new();
        rows.text("a\tb\\c\nd").null().value(42).opt_text(None).time(0);
        rows.end_row();
        assert_eq!(
            String::from_utf8_lossy(&rows.buf),
            "a\\tb\\\\c\\nd\t\\N\t42\t\\N\t1970-01-01 00:00:00+00\n"
        );
    }
}
