//! Splits a byte stream into command lines. No I/O: the caller pushes
//! whatever it read, however it was split, and pulls complete lines.

use std::collections::VecDeque;

/// One item taken from the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line, CRLF (or a bare LF) removed.
    Text(String),
    /// A line longer than the limit; it was discarded up to its end.
    TooLong,
    /// A complete line that is not UTF-8 or holds control characters.
    Invalid,
}

/// Accumulates input and yields lines of at most `max_length` octets.
#[derive(Debug)]
pub struct LineReader {
    /// The unfinished line.
    partial: Vec<u8>,
    /// Complete lines not yet taken.
    ready: VecDeque<Line>,
    max_length: usize,
    /// Inside an overlong line: drop everything up to the next LF.
    discarding: bool,
}

impl LineReader {
    /// A reader for lines of at most `max_length` octets, CRLF excluded.
    pub fn new(max_length: usize) -> LineReader {
        LineReader {
            partial: Vec::new(),
            ready: VecDeque::new(),
            max_length,
            discarding: false,
        }
    }

    /// Appends input. Memory stays bounded by the line limit (plus the
    /// complete lines of this one push): the excess of an overlong line is
    /// dropped as it arrives.
    pub fn push(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            let end = input.iter().position(|&b| b == b'\n');
            if self.discarding {
                match end {
                    Some(end) => {
                        self.ready.push_back(Line::TooLong);
                        self.discarding = false;
                        input = &input[end + 1..];
                    }
                    None => return,
                }
                continue;
            }
            match end {
                Some(end) => {
                    self.partial.extend_from_slice(&input[..end]);
                    input = &input[end + 1..];
                    let line = std::mem::take(&mut self.partial);
                    let line = self.finish(line);
                    self.ready.push_back(line);
                }
                None => {
                    self.partial.extend_from_slice(input);
                    // One octet more than the limit may be the CR of CRLF.
                    if self.partial.len() > self.max_length + 1 {
                        self.partial.clear();
                        self.discarding = true;
                    }
                    return;
                }
            }
        }
    }

    fn finish(&self, mut line: Vec<u8>) -> Line {
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if line.len() > self.max_length {
            return Line::TooLong;
        }
        match String::from_utf8(line) {
            Ok(text) if !text.chars().any(|c| c.is_control() && c != '\t') => Line::Text(text),
            _ => Line::Invalid,
        }
    }

    /// Changes the longest line taken from the next push on (a relay's
    /// event lines are longer than command and reply lines).
    pub fn set_max_length(&mut self, max_length: usize) {
        self.max_length = max_length;
    }

    /// The next complete line, if one has arrived.
    pub fn next_line(&mut self) -> Option<Line> {
        self.ready.pop_front()
    }

    /// Drops everything buffered: after STARTTLS, input sent before the
    /// handshake must not be taken as commands (RFC 3207, section 5).
    pub fn clear(&mut self) {
        self.partial.clear();
        self.ready.clear();
        self.discarding = false;
    }

    /// Whether input is buffered beyond the lines already taken.
    pub fn has_pending_input(&self) -> bool {
        !self.partial.is_empty() || !self.ready.is_empty() || self.discarding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(reader: &mut LineReader) -> Vec<Line> {
        std::iter::from_fn(|| reader.next_line()).collect()
    }

    #[test]
    fn whole_and_split_input_give_the_same_lines() {
        let input = b"AUTHENTICATE PLAIN\r\nAHRlc3QAdGVzdA==\r\nNOOP\n";
        let mut whole = LineReader::new(100);
        whole.push(input);
        let expected = lines(&mut whole);
        assert_eq!(expected.len(), 3);
        for chunk in 1..input.len() {
            let mut reader = LineReader::new(100);
            let mut got = Vec::new();
            for piece in input.chunks(chunk) {
                reader.push(piece);
                got.extend(lines(&mut reader));
            }
            assert_eq!(got, expected, "chunk size {chunk}");
        }
    }

    #[test]
    fn overlong_line_is_reported_once_and_skipped() {
        let mut reader = LineReader::new(8);
        let mut got = Vec::new();
        for byte in b"NOOP\r\n0123456789abcdef\r\nQUIT\r\n12345678\r\n123456789\r\n" {
            reader.push(std::slice::from_ref(byte));
            got.extend(lines(&mut reader));
        }
        assert_eq!(
            got,
            [
                Line::Text("NOOP".into()),
                Line::TooLong,
                Line::Text("QUIT".into()),
                Line::Text("12345678".into()),
                Line::TooLong
            ]
        );
    }

    #[test]
    fn binary_junk_is_invalid() {
        let mut reader = LineReader::new(64);
        reader.push(b"\xff\xfe\x00junk\r\nNO\x01OP\r\nNOOP\r\n");
        assert_eq!(
            lines(&mut reader),
            [Line::Invalid, Line::Invalid, Line::Text("NOOP".into())]
        );
    }
}
