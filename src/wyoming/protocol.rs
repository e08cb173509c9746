//! The Wyoming wire format (Home Assistant's protocol for local speech services): each event
//! is a JSON header line, then `data_length` bytes of JSON data (merged over the header's own
//! `data`), then `payload_length` bytes of payload (PCM for audio). [`FrameDecoder`] reads
//! events from bytes as they arrive, bounded at every step; [`Request`] is what a client
//! asks, [`encode`] writes hark's answers.

use serde_json::{json, Map, Value};

/// The protocol version hark writes (the `wyoming` package it is tested with).
pub const VERSION: &str = "1.10.2";
/// Largest header line, data block and payload a client may send.
pub const MAX_HEADER: usize = 64 * 1024;
pub const MAX_DATA: usize = 1024 * 1024;
pub const MAX_PAYLOAD: usize = 1024 * 1024;

/// One event on the wire.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: String,
    pub data: Map<String, Value>,
    pub payload: Vec<u8>,
}

impl Event {
    pub fn new(kind: &str, data: Value) -> Self {
        let data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        Self {
            kind: kind.to_string(),
            data,
            payload: Vec::new(),
        }
    }

    pub fn with_payload(mut self, payload: Vec<u8>) -> Self {
        self.payload = payload;
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event header over {MAX_HEADER} bytes")]
    HeaderTooLong,
    #[error("event header is not a JSON object with a type: {0}")]
    BadHeader(String),
    #[error("event data of {0} bytes (at most {MAX_DATA})")]
    DataTooLong(u64),
    #[error("event payload of {0} bytes (at most {MAX_PAYLOAD})")]
    PayloadTooLong(u64),
    #[error("event data is not a JSON object: {0}")]
    BadData(String),
}

/// What is being read next.
#[derive(Debug, Clone, PartialEq)]
enum Reading {
    Header,
    Data {
        event: Event,
        data: usize,
        payload: usize,
    },
    Payload {
        event: Event,
        payload: usize,
    },
}

/// Events from a byte stream, however it is split. After an error the stream cannot be
/// trusted to be in step again: the connection ends.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    reading: Reading,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FrameDecoder {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            reading: Reading::Header,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole event, if the bytes so far hold one.
    pub fn next_event(&mut self) -> Result<Option<Event>, FrameError> {
        loop {
            match std::mem::replace(&mut self.reading, Reading::Header) {
                Reading::Header => {
                    let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
                        if self.buf.len() > MAX_HEADER {
                            return Err(FrameError::HeaderTooLong);
                        }
                        return Ok(None);
                    };
                    if end > MAX_HEADER {
                        return Err(FrameError::HeaderTooLong);
                    }
                    let line: Vec<u8> = self.buf.drain(..=end).collect();
                    if line.iter().all(|b| b.is_ascii_whitespace()) {
                        continue;
                    }
                    self.reading = header(&line[..end])?;
                }
                Reading::Data {
                    mut event,
                    data,
                    payload,
                } => {
                    if self.buf.len() < data {
                        self.reading = Reading::Data {
                            event,
                            data,
                            payload,
                        };
                        return Ok(None);
                    }
                    if data > 0 {
                        let block: Vec<u8> = self.buf.drain(..data).collect();
                        match serde_json::from_slice::<Value>(&block) {
                            Ok(Value::Object(map)) => event.data.extend(map),
                            Ok(other) => {
                                return Err(FrameError::BadData(short(&other.to_string())))
                            }
                            Err(e) => return Err(FrameError::BadData(e.to_string())),
                        }
                    }
                    self.reading = Reading::Payload { event, payload };
                }
                Reading::Payload { mut event, payload } => {
                    if self.buf.len() < payload {
                        self.reading = Reading::Payload { event, payload };
                        return Ok(None);
                    }
                    event.payload = self.buf.drain(..payload).collect();
                    return Ok(Some(event));
                }
            }
        }
    }
}

/// What follows a header line.
fn header(line: &[u8]) -> Result<Reading, FrameError> {
    let value: Value =
        serde_json::from_slice(line).map_err(|e| FrameError::BadHeader(e.to_string()))?;
    let Value::Object(mut map) = value else {
        return Err(FrameError::BadHeader(short(&String::from_utf8_lossy(line))));
    };
    let Some(Value::String(kind)) = map.remove("type") else {
        return Err(FrameError::BadHeader("no \"type\"".into()));
    };
    let length = |map: &Map<String, Value>, key: &str| -> Result<u64, FrameError> {
        match map.get(key) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| FrameError::BadHeader(format!("{key} is {v}"))),
        }
    };
    let data = length(&map, "data_length")?;
    let payload = length(&map, "payload_length")?;
    if data > MAX_DATA as u64 {
        return Err(FrameError::DataTooLong(data));
    }
    if payload > MAX_PAYLOAD as u64 {
        return Err(FrameError::PayloadTooLong(payload));
    }
    let inline = match map.remove("data") {
        Some(Value::Object(data)) => data,
        None | Some(Value::Null) => Map::new(),
        Some(other) => return Err(FrameError::BadData(short(&other.to_string()))),
    };
    Ok(Reading::Data {
        event: Event {
            kind,
            data: inline,
            payload: Vec::new(),
        },
        data: data as usize,
        payload: payload as usize,
    })
}

fn short(text: &str) -> String {
    text.chars().take(80).collect()
}

/// An event as the `wyoming` package writes it: the data in its own block.
pub fn encode(event: &Event) -> Vec<u8> {
    let mut head = Map::new();
    head.insert("type".into(), Value::String(event.kind.clone()));
    head.insert("version".into(), Value::String(VERSION.into()));
    let data = if event.data.is_empty() {
        Vec::new()
    } else {
        serde_json::to_vec(&event.data).unwrap_or_default()
    };
    if !data.is_empty() {
        head.insert("data_length".into(), json!(data.len()));
    }
    if !event.payload.is_empty() {
        head.insert("payload_length".into(), json!(event.payload.len()));
    }
    let mut bytes = serde_json::to_vec(&Value::Object(head)).unwrap_or_default();
    bytes.push(b'\n');
    bytes.extend_from_slice(&data);
    bytes.extend_from_slice(&event.payload);
    bytes
}

/// How PCM audio is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    pub rate: u32,
    /// Bytes per sample: 1 (unsigned 8-bit), 2, 3 or 4 (signed little-endian).
    pub width: u16,
    pub channels: u16,
}

impl AudioFormat {
    fn from_data(data: &Map<String, Value>) -> Result<Self, String> {
        let field = |key: &str| -> Result<u64, String> {
            data.get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("audio needs a whole-number \"{key}\""))
        };
        let (rate, width, channels) = (field("rate")?, field("width")?, field("channels")?);
        let (min, max) = (crate::audio::wav::MIN_RATE, crate::audio::wav::MAX_RATE);
        if !(min as u64..=max as u64).contains(&rate) {
            return Err(format!("rate {rate} Hz: hark takes {min}–{max} Hz"));
        }
        if !(1..=4).contains(&width) {
            return Err(format!("width {width}: hark takes 1–4 bytes per sample"));
        }
        if !(1..=8).contains(&channels) {
            return Err(format!("{channels} channels: hark takes 1–8"));
        }
        Ok(Self {
            rate: rate as u32,
            width: width as u16,
            channels: channels as u16,
        })
    }

    fn to_data(self) -> Value {
        json!({"rate": self.rate, "width": self.width, "channels": self.channels})
    }

    /// Bytes in one frame (a sample of every channel).
    pub fn frame_bytes(self) -> usize {
        self.width as usize * self.channels as usize
    }

    /// `bytes` as mono samples in [-1, 1] (channels averaged); a trailing partial frame is
    /// an error.
    pub fn decode(self, bytes: &[u8], out: &mut Vec<f32>) -> Result<(), String> {
        let frame = self.frame_bytes();
        if bytes.len() % frame != 0 {
            return Err(format!(
                "{} bytes of audio is not whole frames of {frame} bytes",
                bytes.len()
            ));
        }
        let width = self.width as usize;
        for frame in bytes.chunks_exact(frame) {
            let sum: f32 = frame.chunks_exact(width).map(sample).sum();
            out.push(sum / self.channels as f32);
        }
        Ok(())
    }
}

/// One little-endian sample of 1–4 bytes in [-1, 1] (8-bit is unsigned, as in WAV).
fn sample(bytes: &[u8]) -> f32 {
    match *bytes {
        [b] => (b as f32 - 128.0) / 128.0,
        [a, b] => i16::from_le_bytes([a, b]) as f32 / 32768.0,
        [a, b, c] => (i32::from_le_bytes([0, a, b, c]) >> 8) as f32 / 8_388_608.0,
        [a, b, c, d] => i32::from_le_bytes([a, b, c, d]) as f32 / 2_147_483_648.0,
        _ => 0.0,
    }
}

/// What a client asks.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    Describe,
    /// Speech to text: the audio events that follow are the utterance.
    Transcribe {
        language: Option<String>,
    },
    AudioStart(AudioFormat),
    AudioChunk(AudioFormat, Vec<u8>),
    AudioStop,
    /// Text to speech in one piece; `voice` by name.
    Synthesize {
        text: String,
    },
    /// Text to speech as the text arrives.
    SynthesizeStart,
    SynthesizeChunk {
        text: String,
    },
    SynthesizeStop,
    /// A user's words for hark's conversation agent; `conversation` continues an earlier one.
    Handle {
        text: String,
        conversation: Option<String>,
    },
    Ping {
        text: Option<String>,
    },
    /// An event hark has no use for (wake words, satellites…): answered with an error.
    Unsupported(String),
}

/// The request an event carries, or why it is not one.
pub fn parse_request(event: &Event) -> Result<Request, String> {
    let text = |key: &str| event.data.get(key).and_then(Value::as_str);
    let required = |key: &str| {
        text(key)
            .map(str::to_string)
            .ok_or_else(|| format!("{} needs a \"{key}\" string", event.kind))
    };
    Ok(match event.kind.as_str() {
        "describe" => Request::Describe,
        "transcribe" => Request::Transcribe {
            language: text("language").map(str::to_string),
        },
        "audio-start" => Request::AudioStart(AudioFormat::from_data(&event.data)?),
        "audio-chunk" => {
            Request::AudioChunk(AudioFormat::from_data(&event.data)?, event.payload.clone())
        }
        "audio-stop" => Request::AudioStop,
        "synthesize" => Request::Synthesize {
            text: required("text")?,
        },
        "synthesize-start" => Request::SynthesizeStart,
        "synthesize-chunk" => Request::SynthesizeChunk {
            text: required("text")?,
        },
        "synthesize-stop" => Request::SynthesizeStop,
        "transcript" => Request::Handle {
            text: required("text")?,
            conversation: event
                .data
                .get("context")
                .and_then(|c| c.get("conversation_id"))
                .and_then(Value::as_str)
                .map(str::to_string),
        },
        "ping" => Request::Ping {
            text: text("text").map(str::to_string),
        },
        other => Request::Unsupported(other.to_string()),
    })
}

/// hark's answers.
pub mod answer {
    use super::*;

    pub fn transcript(text: &str, language: &str) -> Event {
        Event::new("transcript", json!({"text": text, "language": language}))
    }

    pub fn audio_start(format: AudioFormat) -> Event {
        Event::new("audio-start", format.to_data())
    }

    pub fn audio_chunk(format: AudioFormat, pcm: Vec<u8>) -> Event {
        Event::new("audio-chunk", format.to_data()).with_payload(pcm)
    }

    pub fn audio_stop() -> Event {
        Event::new("audio-stop", json!({}))
    }

    pub fn synthesize_stopped() -> Event {
        Event::new("synthesize-stopped", json!({}))
    }

    pub fn handled(text: &str, conversation: &str) -> Event {
        Event::new(
            "handled",
            json!({"text": text, "context": {"conversation_id": conversation}}),
        )
    }

    pub fn not_handled(text: &str) -> Event {
        Event::new("not-handled", json!({"text": text}))
    }

    pub fn pong(text: Option<&str>) -> Event {
        match text {
            Some(text) => Event::new("pong", json!({"text": text})),
            None => Event::new("pong", json!({})),
        }
    }

    pub fn error(text: &str, code: &str) -> Event {
        Event::new("error", json!({"text": text, "code": code}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Result<Vec<Event>, FrameError> {
        let mut decoder = FrameDecoder::new();
        decoder.push(bytes);
        let mut events = Vec::new();
        while let Some(event) = decoder.next_event()? {
            events.push(event);
        }
        Ok(events)
    }

    #[test]
    fn data_in_a_block_is_merged_over_inline_data_and_the_payload_follows() {
        let data = br#"{"rate":16000,"width":2,"channels":1}"#;
        let mut bytes = format!(
            "{{\"type\":\"audio-chunk\",\"data\":{{\"rate\":8000,\"timestamp\":0}},\"data_length\":{},\"payload_length\":4}}\n",
            data.len()
        )
        .into_bytes();
        bytes.extend_from_slice(data);
        bytes.extend_from_slice(&[1, 0, 2, 0]);
        bytes.extend_from_slice(b"{\"type\":\"audio-stop\"}\n");
        let events = decode_all(&bytes).unwrap();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].data["rate"], 16000);
        assert_eq!(events[0].data["timestamp"], 0);
        assert_eq!(events[0].payload, vec![1, 0, 2, 0]);
        assert_eq!(
            parse_request(&events[1]).unwrap(),
            Request::AudioStop,
            "no data at all"
        );
        let bare = decode_all(b"{\"type\":\"describe\"}\n").unwrap();
        assert_eq!(parse_request(&bare[0]).unwrap(), Request::Describe);
    }

    #[test]
    fn an_event_split_anywhere_reads_the_same() {
        let event =
            Event::new("synthesize", json!({"text": "Hello there."})).with_payload(vec![9; 10]);
        let bytes = encode(&event);
        for cut in 0..bytes.len() {
            let mut decoder = FrameDecoder::new();
            decoder.push(&bytes[..cut]);
            assert_eq!(decoder.next_event().unwrap(), None, "cut at {cut}");
            decoder.push(&bytes[cut..]);
            assert_eq!(decoder.next_event().unwrap(), Some(event.clone()));
        }
    }

    #[test]
    fn oversized_and_malformed_headers_are_refused() {
        assert_eq!(
            decode_all(&vec![b'x'; MAX_HEADER + 2]).unwrap_err(),
            FrameError::HeaderTooLong
        );
        assert!(matches!(
            decode_all(b"not json\n"),
            Err(FrameError::BadHeader(_))
        ));
        assert!(matches!(
            decode_all(b"{\"data\":{}}\n"),
            Err(FrameError::BadHeader(_))
        ));
        assert_eq!(
            decode_all(b"{\"type\":\"x\",\"payload_length\":99999999999}\n").unwrap_err(),
            FrameError::PayloadTooLong(99_999_999_999)
        );
        assert!(matches!(
            decode_all(b"{\"type\":\"x\",\"data_length\":2}\n[]"),
            Err(FrameError::BadData(_))
        ));
    }

    #[test]
    fn audio_of_any_width_and_channels_decodes_to_mono() {
        let stereo16 = AudioFormat {
            rate: 16000,
            width: 2,
            channels: 2,
        };
        let mut out = Vec::new();
        let bytes: Vec<u8> = [16384i16, -16384, 32767, 32767]
            .iter()
            .flat_map(|s| s.to_le_bytes())
            .collect();
        stereo16.decode(&bytes, &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].abs() < 1e-6 && (out[1] - 1.0).abs() < 1e-3);
        assert!(stereo16.decode(&bytes[..3], &mut out).is_err());
        let mut out = Vec::new();
        let u8_mono = AudioFormat {
            rate: 8000,
            width: 1,
            channels: 1,
        };
        u8_mono.decode(&[0, 128, 255], &mut out).unwrap();
        assert_eq!(out[0], -1.0);
        assert_eq!(out[1], 0.0);
        let mut out = Vec::new();
        let s24 = AudioFormat {
            rate: 48000,
            width: 3,
            channels: 1,
        };
        s24.decode(&[0, 0, 0x80, 0xff, 0xff, 0x7f], &mut out)
            .unwrap();
        assert_eq!(out[0], -1.0);
        assert!((out[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn requests_name_what_they_lack() {
        let event = Event::new("audio-start", json!({"rate": 1, "width": 2, "channels": 1}));
        assert!(parse_request(&event).unwrap_err().contains("rate 1 Hz"));
        let event = Event::new("synthesize", json!({}));
        assert!(parse_request(&event).unwrap_err().contains("\"text\""));
        let event = Event::new(
            "transcript",
            json!({"text": "hi", "context": {"conversation_id": "c1"}}),
        );
        assert_eq!(
            parse_request(&event).unwrap(),
            Request::Handle {
                text: "hi".into(),
                conversation: Some("c1".into())
            }
        );
        assert_eq!(
            parse_request(&Event::new("detect", json!({}))).unwrap(),
            Request::Unsupported("detect".into())
        );
    }
}
