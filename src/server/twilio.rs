//! Twilio Media Streams (a phone call's audio over a WebSocket at `/twilio`): Twilio sends
//! `connected`, `start` (the stream and call ids, the media format, the TwiML `<Parameter>`s),
//! `media` (base64 μ-law at 8 kHz, 20 ms each), `mark` (audio hark sent before that mark has
//! played), `dtmf` and `stop`; hark answers with `media` in the same format, a `mark` after
//! each reply, and `clear` when the caller talks over it.

use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::collections::BTreeMap;

/// The only format Twilio streams.
pub const ENCODING: &str = "audio/x-mulaw";
pub const SAMPLE_RATE: u32 = 8000;

/// What Twilio sends.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Inbound {
    Connected {
        #[serde(default)]
        protocol: String,
    },
    Start {
        start: Start,
    },
    Media {
        media: Media,
    },
    Mark {
        mark: Mark,
    },
    Dtmf {
        dtmf: Dtmf,
    },
    Stop,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    pub stream_sid: String,
    #[serde(default)]
    pub call_sid: String,
    pub media_format: MediaFormat,
    /// The TwiML `<Parameter name=… value=…/>`s of the `<Stream>`.
    #[serde(default)]
    pub custom_parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MediaFormat {
    pub encoding: String,
    pub sample_rate: u32,
    pub channels: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Media {
    /// base64 μ-law.
    pub payload: String,
    #[serde(default)]
    pub track: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Mark {
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Dtmf {
    pub digit: String,
}

/// A message from Twilio, or why it is not one.
pub fn parse(text: &str) -> Result<Inbound, String> {
    serde_json::from_str(text).map_err(|e| format!("not a Twilio Media Streams message: {e}"))
}

/// Why a stream's format cannot be heard.
pub fn check_format(format: &MediaFormat) -> Result<(), String> {
    if format.encoding != ENCODING || format.sample_rate != SAMPLE_RATE || format.channels != 1 {
        return Err(format!(
            "media format {} at {} Hz, {} channel(s): Twilio streams {ENCODING} at {SAMPLE_RATE} Hz mono",
            format.encoding, format.sample_rate, format.channels
        ));
    }
    Ok(())
}

/// A `media` payload as samples in [-1, 1].
pub fn decode_media(payload: &str, out: &mut Vec<f32>) -> Result<(), String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload.trim())
        .map_err(|e| format!("media payload is not base64: {e}"))?;
    crate::audio::mulaw::decode_to_f32(&bytes, out);
    Ok(())
}

/// hark's audio (s16le at 8 kHz) as a `media` message.
pub fn media(stream_sid: &str, pcm16: &[u8]) -> String {
    let mut mulaw = Vec::with_capacity(pcm16.len() / 2);
    mulaw.extend(
        pcm16
            .chunks_exact(2)
            .map(|b| crate::audio::mulaw::encode(i16::from_le_bytes([b[0], b[1]]))),
    );
    let payload = base64::engine::general_purpose::STANDARD.encode(mulaw);
    json!({"event": "media", "streamSid": stream_sid, "media": {"payload": payload}}).to_string()
}

/// A mark after the audio sent so far; Twilio sends it back once that audio has played.
pub fn mark(stream_sid: &str, name: &str) -> String {
    json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}).to_string()
}

/// Drops the audio Twilio holds that has not played yet.
pub fn clear(stream_sid: &str) -> String {
    json!({"event": "clear", "streamSid": stream_sid}).to_string()
}

/// The mark after reply `turn`.
pub fn reply_mark(turn: u64) -> String {
    format!("reply-{turn}")
}

/// Who a call is: the token's user, or, when the token names the user `caller`, the caller's
/// number as a TwiML parameter gives it (`<Parameter name="caller" value="{{From}}"/>`).
pub fn caller_user(granted: &str, parameters: &BTreeMap<String, String>) -> Option<String> {
    if granted != "caller" {
        return Some(granted.to_string());
    }
    let number = parameters
        .get("caller")
        .or_else(|| parameters.get("from"))?;
    let number: String = number
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .take(20)
        .collect();
    (number.len() >= 3).then(|| format!("tel:{number}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilios_messages_are_read_as_its_documentation_shows_them() {
        let start = r#"{"event":"start","sequenceNumber":"1","start":{"accountSid":"AC1","streamSid":"MZ1","callSid":"CA1","tracks":["inbound"],"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1},"customParameters":{"token":"t"}},"streamSid":"MZ1"}"#;
        let Inbound::Start { start } = parse(start).unwrap() else {
            panic!("a start")
        };
        assert_eq!(start.stream_sid, "MZ1");
        assert_eq!(start.custom_parameters["token"], "t");
        assert!(check_format(&start.media_format).is_ok());
        let media = r#"{"event":"media","sequenceNumber":"3","media":{"track":"inbound","chunk":"1","timestamp":"5","payload":"/////w=="},"streamSid":"MZ1"}"#;
        let Inbound::Media { media } = parse(media).unwrap() else {
            panic!("media")
        };
        let mut samples = Vec::new();
        decode_media(&media.payload, &mut samples).unwrap();
        assert_eq!(samples, vec![0.0; 4]);
        assert!(matches!(
            parse(r#"{"event":"stop","streamSid":"MZ1","stop":{"callSid":"CA1"}}"#),
            Ok(Inbound::Stop)
        ));
        assert!(matches!(
            parse(r#"{"event":"mark","streamSid":"MZ1","mark":{"name":"reply-1"}}"#),
            Ok(Inbound::Mark { .. })
        ));
        assert!(parse(r#"{"event":"media","media":{}}"#).is_err());
        assert!(decode_media("not base64!", &mut samples).is_err());
    }

    #[test]
    fn a_wideband_or_linear_stream_is_refused() {
        let format = MediaFormat {
            encoding: "audio/l16".into(),
            sample_rate: 16000,
            channels: 1,
        };
        assert!(check_format(&format).unwrap_err().contains("audio/x-mulaw"));
    }

    #[test]
    fn a_caller_token_makes_the_callers_number_the_user() {
        let mut parameters = BTreeMap::new();
        assert_eq!(caller_user("ana", &parameters).as_deref(), Some("ana"));
        assert_eq!(caller_user("caller", &parameters), None);
        parameters.insert("caller".into(), "+1 (555) 010-0199".into());
        assert_eq!(
            caller_user("caller", &parameters).as_deref(),
            Some("tel:+15550100199")
        );
    }

    #[test]
    fn hark_media_is_mulaw_in_base64() {
        let message: serde_json::Value =
            serde_json::from_str(&media("MZ1", &[0, 0, 0xff, 0x7f])).unwrap();
        assert_eq!(message["event"], "media");
        assert_eq!(message["streamSid"], "MZ1");
        assert_eq!(message["media"]["payload"], "/4A=");
    }
}
