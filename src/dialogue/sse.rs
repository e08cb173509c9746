//! Server-sent events, as an OpenAI-compatible endpoint streams a completion: the bytes
//! arrive in pieces that may split a line, an event or a UTF-8 character anywhere, lines end
//! with LF, CRLF or CR, and an event's `data:` lines join with newlines. The decoder keeps
//! bytes until an event is whole, so none of that changes what is read.

/// Turns a byte stream into the data of each complete event.
#[derive(Debug, Default)]
pub struct SseDecoder {
    /// The line so far.
    buffer: Vec<u8>,
    data: Option<String>,
    /// The last byte was a CR: an LF right after it ends nothing more.
    after_cr: bool,
}

/// Bytes held for one event at most: a stream that never ends an event is an error, not
/// unbounded memory.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

impl SseDecoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the next bytes; returns the data of each event they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<String>, String> {
        let mut events = Vec::new();
        for &b in bytes {
            if self.after_cr && b == b'\n' {
                self.after_cr = false;
                continue;
            }
            self.after_cr = b == b'\r';
            if b == b'\n' || b == b'\r' {
                let line = String::from_utf8_lossy(&self.buffer).into_owned();
                self.buffer.clear();
                self.line(&line, &mut events);
            } else {
                self.buffer.push(b);
                if self.buffer.len() > MAX_EVENT_BYTES {
                    return Err(format!("an event line longer than {MAX_EVENT_BYTES} bytes"));
                }
            }
        }
        Ok(events)
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            // A blank line ends the event.
            if let Some(data) = self.data.take() {
                events.push(data);
            }
            return;
        }
        if line.starts_with(':') {
            return; // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        if field == "data" {
            match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            }
        }
    }

    /// The stream ended: an event it did not close with a blank line still counts.
    pub fn finish(&mut self) -> Option<String> {
        if !self.buffer.is_empty() {
            let line = String::from_utf8_lossy(&self.buffer).into_owned();
            self.buffer.clear();
            let mut events = Vec::new();
            self.line(&line, &mut events);
        }
        self.data.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_read_the_same() {
        let stream =
            "data: {\"a\":\"é€\"}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\ndata: [DONE]\n\n";
        let bytes = stream.as_bytes();
        let whole = SseDecoder::new().push(bytes).unwrap();
        assert_eq!(whole, vec!["{\"a\":\"é€\"}", "one\ntwo", "[DONE]"]);
        for at in 0..bytes.len() {
            let mut d = SseDecoder::new();
            let mut got = d.push(&bytes[..at]).unwrap();
            got.extend(d.push(&bytes[at..]).unwrap());
            assert_eq!(got, whole, "split at {at}");
        }
    }
}
