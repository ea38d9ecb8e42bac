//! The line up to which every row is settled (acknowledged by JetStream, or
//! rejected), although acknowledgements arrive out of order. It is what the
//! checkpoint records: a re-run may skip every row that starts on or before it.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct Watermark {
    /// Rows not yet passed by the watermark, in file order: (line, settled).
    rows: VecDeque<(u64, bool)>,
    /// The sequence number of `rows[0]`.
    front: u64,
    settled_through: u64,
}

impl Watermark {
    /// Starts after `line` (a checkpoint's), or at 0.
    pub fn new(line: u64) -> Self {
        Self {
            rows: VecDeque::new(),
            front: 0,
            settled_through: line,
        }
    }

    /// Adds the next row of the file; its sequence number, for [`Watermark::settle`].
    pub fn add(&mut self, line: u64, settled: bool) -> u64 {
        let seq = self.front + self.rows.len() as u64;
        self.rows.push_back((line, settled));
        self.advance();
        seq
    }

    pub fn settle(&mut self, seq: u64) {
        if let Some(row) = seq.checked_sub(self.front).and_then(|i| self.rows.get_mut(i as usize)) {
            row.1 = true;
        }
        self.advance();
    }

    fn advance(&mut self) {
        while let Some(&(line, true)) = self.rows.front() {
            self.rows.pop_front();
            self.front += 1;
            self.settled_through = line;
        }
    }

    /// Every row starting on this line or before is settled.
    pub fn line(&self) -> u64 {
        self.settled_through
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_waits_for_the_oldest_unsettled_row() {
        let mut w = Watermark::new(1);
        let a = w.add(2, false);
        let b = w.add(3, false);
        w.add(4, true); // rejected: settled at once
        let c = w.add(6, false);
        assert_eq!(w.line(), 1);
        w.settle(b);
        assert_eq!(w.line(), 1, "line 2 is still in flight");
        w.settle(a);
        assert_eq!(w.line(), 4);
        w.settle(c);
        assert_eq!(w.line(), 6);
        w.settle(c);
        assert_eq!(w.line(), 6, "settling twice changes nothing");
    }
}
