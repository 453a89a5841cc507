//! The in-memory tail of one service's output, for `minderctl logs`: the last lines,
//! bounded in bytes, allocated only as output arrives.
//!
//! Owns nothing but bytes; no I/O. Held in `ServiceOutput` behind a mutex that the
//! reader tasks (push) and the control path (read) take for microseconds.

use std::collections::VecDeque;

/// Complete lines, each ending in `\n`, oldest first. Invariant: `bytes.len() <=
/// budget`, and `bytes` starts at a line boundary.
#[derive(Debug)]
pub struct Tail {
    /// Starts empty (no allocation); grows by doubling up to about `budget`.
    bytes: VecDeque<u8>,
    budget: usize,
}

impl Tail {
    pub fn new(budget: usize) -> Tail {
        Tail {
            bytes: VecDeque::new(),
            budget,
        }
    }

    /// Appends one line (without its `\n`; one is added), evicting whole lines from
    /// the front to stay within the budget. A line longer than the whole budget keeps
    /// only its end.
    pub fn push(&mut self, line: &[u8]) {
        if self.budget == 0 {
            return;
        }
        let needed = line.len() + 1;
        if needed > self.budget {
            self.bytes.clear();
            let keep = self.budget - 1;
            self.bytes.extend(&line[line.len() - keep..]);
            self.bytes.push_back(b'\n');
            return;
        }
        while self.bytes.len() + needed > self.budget {
            // Drop the oldest line, up to and including its newline, in one drain
            // rather than byte by byte.
            let end = self
                .bytes
                .iter()
                .position(|byte| *byte == b'\n')
                .map_or(self.bytes.len(), |newline| newline + 1);
            self.bytes.drain(..end);
        }
        self.bytes.extend(line);
        self.bytes.push_back(b'\n');
    }

    /// The last `max_lines` lines (all with `None`), each ending in `\n`.
    pub fn last_lines(&self, max_lines: Option<usize>) -> Vec<u8> {
        let start = match max_lines {
            None => 0,
            Some(wanted) => {
                // Walk back over `wanted` newlines; the last byte is always one.
                let mut seen = 0;
                let mut start = 0;
                for (index, byte) in self.bytes.iter().enumerate().rev() {
                    if *byte == b'\n' {
                        if seen == wanted {
                            start = index + 1;
                            break;
                        }
                        seen += 1;
                    }
                }
                start
            }
        };
        self.bytes.range(start..).copied().collect()
    }

    /// Bytes held (not capacity).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Bytes allocated.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_is_bounded_in_bytes_and_keeps_whole_lines() {
        let mut tail = Tail::new(20);
        assert_eq!(tail.capacity(), 0, "nothing allocated before output");
        for line in ["one", "two", "three", "four", "five"] {
            tail.push(line.as_bytes());
            assert!(tail.len() <= 20);
        }
        // 4 + 6 + 5 + 5 = 20 bytes: "one" had to go.
        assert_eq!(tail.last_lines(None), b"two\nthree\nfour\nfive\n");
        assert_eq!(tail.last_lines(Some(2)), b"four\nfive\n");
        assert_eq!(tail.last_lines(Some(0)), b"");
        assert_eq!(tail.last_lines(Some(99)), b"two\nthree\nfour\nfive\n");
        tail.push(b"six");
        assert_eq!(tail.last_lines(None), b"three\nfour\nfive\nsix\n");
        tail.push(&[b'x'; 50]);
        assert_eq!(tail.last_lines(None).len(), 20);
        assert_eq!(
            tail.last_lines(None),
            [[b'x'; 19].as_slice(), b"\n"].concat()
        );
        tail.push(b"after");
        assert_eq!(tail.last_lines(None), b"after\n");
    }

    #[test]
    fn tail_capacity_stays_near_the_budget() {
        let mut tail = Tail::new(64 * 1024);
        for i in 0..100_000 {
            tail.push(format!("line {i}").as_bytes());
        }
        assert!(tail.len() <= 64 * 1024);
        assert!(tail.capacity() <= 128 * 1024, "{}", tail.capacity());
        assert!(tail.last_lines(Some(1)).starts_with(b"line 99999\n"));
    }
}
