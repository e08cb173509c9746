//! Prometheus metrics of the process (`GET /metrics` on the serve listener), in the
//! OpenMetrics text format: latency histograms of every stage, counters of conversations,
//! turns, flows, escalations, misunderstandings, errors and refusals, gauges of what is open.
//! Latencies come from each conversation's event stream ([`EventTimer`]); dialogue outcomes
//! from each turn; refusals and connections from the server.

use std::sync::OnceLock;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::events::{Event, StopReason, TimedEvent};

type Labels = Vec<(&'static str, String)>;

/// hark's metrics; one set per process ([`global`]).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    voice_to_voice: Histogram,
    time_to_final: Histogram,
    time_to_first_audio: Histogram,
    recognizer: Histogram,
    synthesizer: Histogram,
    language_model: Histogram,
    barge_in: Histogram,
    conversations: Counter,
    turns: Counter,
    flows_started: Family<Labels, Counter>,
    flows_completed: Family<Labels, Counter>,
    escalations: Family<Labels, Counter>,
    misunderstandings: Counter,
    errors: Family<Labels, Counter>,
    rejections: Family<Labels, Counter>,
    security: Family<Labels, Counter>,
    active_conversations: Gauge,
    connections: Gauge,
}

/// Seconds from 10 ms to about 20 s.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 1.6, 17))
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hark");
        let m = Self {
            voice_to_voice: latency(),
            time_to_final: latency(),
            time_to_first_audio: latency(),
            recognizer: latency(),
            synthesizer: latency(),
            language_model: latency(),
            barge_in: latency(),
            conversations: Counter::default(),
            turns: Counter::default(),
            flows_started: Family::default(),
            flows_completed: Family::default(),
            escalations: Family::default(),
            misunderstandings: Counter::default(),
            errors: Family::default(),
            rejections: Family::default(),
            security: Family::default(),
            active_conversations: Gauge::default(),
            connections: Gauge::default(),
            registry: Registry::default(),
        };
        m.register_latencies(&mut registry);
        m.register_counts(&mut registry);
        Self { registry, ..m }
    }

    /// Registers the latency histograms.
    fn register_latencies(&self, r: &mut Registry) {
        r.register(
            "voice_to_voice_seconds",
            "From the end of the user's speech to the first sound of the reply",
            self.voice_to_voice.clone(),
        );
        r.register(
            "time_to_final_seconds",
            "From the end of the user's speech to the final transcript",
            self.time_to_final.clone(),
        );
        r.register(
            "time_to_first_audio_seconds",
            "From the final transcript to the first sound of the reply",
            self.time_to_first_audio.clone(),
        );
        r.register(
            "recognizer_seconds",
            "The speech recognizer's time for a final transcript",
            self.recognizer.clone(),
        );
        r.register(
            "synthesizer_seconds",
            "From a reply's text to its first audio",
            self.synthesizer.clone(),
        );
        r.register(
            "llm_seconds",
            "From a request to the language model to its first token",
            self.language_model.clone(),
        );
        r.register(
            "barge_in_seconds",
            "From the user talking over a reply to the reply pausing",
            self.barge_in.clone(),
        );
    }

    /// Registers the counters and the gauges.
    fn register_counts(&self, r: &mut Registry) {
        r.register(
            "conversations",
            "Conversations started",
            self.conversations.clone(),
        );
        r.register("turns", "User turns answered", self.turns.clone());
        r.register(
            "flows_started",
            "Flows (tasks) started, by flow",
            self.flows_started.clone(),
        );
        r.register(
            "flows_completed",
            "Flows (tasks) completed, by flow",
            self.flows_completed.clone(),
        );
        r.register(
            "escalations",
            "Conversations handed to a person, by reason",
            self.escalations.clone(),
        );
        r.register(
            "misunderstandings",
            "Turns not understood (fallback, clarification, re-prompt)",
            self.misunderstandings.clone(),
        );
        r.register("errors", "Errors, by kind", self.errors.clone());
        r.register(
            "limit_rejections",
            "Clients refused or cut off by a limit, by limit",
            self.rejections.clone(),
        );
        r.register(
            "security_events",
            "Failed authentications, refused origins, refused addresses and calls, by event",
            self.security.clone(),
        );
        r.register(
            "active_conversations",
            "Conversations under way",
            self.active_conversations.clone(),
        );
        r.register(
            "connections",
            "Open client connections",
            self.connections.clone(),
        );
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        let _ = encode(&mut text, &self.registry);
        text
    }

    pub fn conversation_started(&self) {
        self.conversations.inc();
        self.active_conversations.inc();
    }

    pub fn conversation_ended(&self) {
        self.active_conversations.dec();
    }

    pub fn connection_opened(&self) {
        self.connections.inc();
    }

    pub fn connection_closed(&self) {
        self.connections.dec();
    }

    /// One answered turn of the dialogue.
    pub fn turn(
        &self,
        started: Option<&str>,
        completed: Option<&str>,
        escalation: Option<&str>,
        misunderstood: bool,
    ) {
        self.turns.inc();
        let label = |name: &str| vec![("flow", name.to_string())];
        if let Some(flow) = started {
            self.flows_started.get_or_create(&label(flow)).inc();
        }
        if let Some(flow) = completed {
            self.flows_completed.get_or_create(&label(flow)).inc();
        }
        if let Some(reason) = escalation {
            let reason = vec![("reason", escalation_label(reason).to_string())];
            self.escalations.get_or_create(&reason).inc();
        }
        if misunderstood {
            self.misunderstandings.inc();
        }
    }

    pub fn error(&self, kind: &str) {
        self.errors
            .get_or_create(&vec![("kind", kind.to_string())])
            .inc();
    }

    /// A client refused or cut off by `limit`.
    pub fn rejected(&self, limit: &str) {
        self.rejections
            .get_or_create(&vec![("limit", limit.to_string())])
            .inc();
    }

    pub fn security(&self, event: &str) {
        self.security
            .get_or_create(&vec![("event", event.to_string())])
            .inc();
    }

    pub fn language_model_latency(&self, seconds: f64) {
        self.language_model.observe(seconds);
    }

    pub fn synthesizer_latency(&self, seconds: f64) {
        self.synthesizer.observe(seconds);
    }

    fn observe(&self, measure: Measure, seconds: f64) {
        let histogram = match measure {
            Measure::VoiceToVoice => &self.voice_to_voice,
            Measure::TimeToFinal => &self.time_to_final,
            Measure::TimeToFirstAudio => &self.time_to_first_audio,
            Measure::Recognizer => &self.recognizer,
            Measure::BargeIn => &self.barge_in,
        };
        histogram.observe(seconds);
    }

    /// Latencies of one conversation's event, into the histograms.
    pub fn conversation_event(&self, timer: &mut EventTimer, event: &TimedEvent) {
        for (measure, ms) in timer.observe(event) {
            self.observe(measure, ms / 1000.0);
        }
        if let Event::Error { .. } = event.event {
            self.error("conversation");
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// A handoff's reason as one of a few fixed labels: the reason itself may carry a backend's
/// error text, and every distinct label value is a series of its own.
pub fn escalation_label(reason: &str) -> &'static str {
    if reason.contains("misunderstanding") {
        "misunderstood"
    } else if reason.contains("asked for a person") {
        "asked_for_person"
    } else if reason.contains("frustrated") {
        "frustrated"
    } else if reason.contains("backend failed") {
        "backend_failed"
    } else if reason.contains("goes to a person") {
        "flow_handoff"
    } else {
        "other"
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// A latency one conversation's events measure.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The end of the user's speech to the first sound of the reply.
    VoiceToVoice,
    /// The end of the user's speech to the final transcript.
    TimeToFinal,
    /// The final transcript to the first sound of the reply (thinking and synthesis).
    TimeToFirstAudio,
    /// The recognizer's own decoding time of the utterance.
    Recognizer,
    /// Talking over a reply to its pause.
    BargeIn,
}

impl Measure {
    pub const ALL: [Measure; 5] = [
        Measure::VoiceToVoice,
        Measure::TimeToFinal,
        Measure::TimeToFirstAudio,
        Measure::Recognizer,
        Measure::BargeIn,
    ];

    /// What an operator reads it as.
    pub fn label(self) -> &'static str {
        match self {
            Measure::VoiceToVoice => "voice to voice",
            Measure::TimeToFinal => "end of speech to transcript",
            Measure::TimeToFirstAudio => "transcript to first audio",
            Measure::Recognizer => "recognizer decode",
            Measure::BargeIn => "barge-in reaction",
        }
    }
}

/// Turns one conversation's events into latencies: the end of the user's speech (on the
/// audio timeline of 20 ms frames, which the event times count too) to its final and to the
/// reply's first sound; talking over a reply to its pause. (A reply's text to its first
/// audio is timed in the synthesis stream, where both are seen.)
#[derive(Debug, Default)]
pub struct EventTimer {
    speech_end: Option<u64>,
    final_at: Option<u64>,
    playing: bool,
    talked_over: Option<u64>,
}

impl EventTimer {
    pub fn observe(&mut self, event: &TimedEvent) -> Vec<(Measure, f64)> {
        let t = event.t_ms;
        let since = |from: u64| t.saturating_sub(from) as f64;
        let mut out = Vec::new();
        match &event.event {
            Event::SpeechEnd { at_ms } => {
                self.speech_end = Some(*at_ms);
                self.final_at = None;
            }
            // Nothing heard: nothing will answer it.
            Event::Final { text, .. } if text.trim().is_empty() => {
                self.speech_end = None;
                self.final_at = None;
            }
            Event::Final { stt_ms, .. } => {
                // Engines that do not say how long they took report 0.
                if *stt_ms > 0.0 {
                    out.push((Measure::Recognizer, *stt_ms));
                }
                if let Some(end) = self.speech_end {
                    out.push((Measure::TimeToFinal, since(end)));
                }
                self.final_at = Some(t);
            }
            // Only a backchannel: the reply goes on, nothing new answers it.
            Event::PlaybackResumed { .. } => {
                self.speech_end = None;
                self.final_at = None;
            }
            Event::AudioOutStart { .. } => {
                if let Some(end) = self.speech_end.take() {
                    out.push((Measure::VoiceToVoice, since(end)));
                }
                if let Some(heard) = self.final_at.take() {
                    out.push((Measure::TimeToFirstAudio, since(heard)));
                }
                self.playing = true;
            }
            Event::SpeechStart { at_ms } if self.playing => self.talked_over = Some(*at_ms),
            Event::PlaybackPaused { .. } | Event::BargeIn { .. } => {
                if let Some(from) = self.talked_over.take() {
                    out.push((Measure::BargeIn, since(from)));
                }
            }
            Event::AudioOutStop { reason, .. } => {
                if *reason == StopReason::BargeIn {
                    if let Some(from) = self.talked_over.take() {
                        out.push((Measure::BargeIn, since(from)));
                    }
                }
                self.playing = false;
                self.talked_over = None;
            }
            _ => {}
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t_ms: u64, event: Event) -> TimedEvent {
        TimedEvent { t_ms, event }
    }

    #[test]
    fn a_turn_measures_each_stage_from_the_end_of_speech() {
        let mut timer = EventTimer::default();
        let mut got = Vec::new();
        for event in [
            at(900, Event::SpeechStart { at_ms: 900 }),
            at(2400, Event::SpeechEnd { at_ms: 2000 }),
            at(
                2450,
                Event::Final {
                    text: "hi".into(),
                    stt_ms: 120.0,
                },
            ),
            at(
                2460,
                Event::Reply {
                    turn: 1,
                    text: "Hello.".into(),
                },
            ),
            at(2650, Event::AudioOutStart { turn: 1 }),
        ] {
            got.extend(timer.observe(&event));
        }
        assert_eq!(
            got,
            vec![
                (Measure::Recognizer, 120.0),
                (Measure::TimeToFinal, 450.0),
                (Measure::VoiceToVoice, 650.0),
                (Measure::TimeToFirstAudio, 200.0),
            ]
        );
    }

    #[test]
    fn the_greeting_has_no_voice_to_voice_and_talking_over_it_times_the_pause_from_the_onset() {
        let mut timer = EventTimer::default();
        let mut got = Vec::new();
        for event in [
            at(
                0,
                Event::Reply {
                    turn: 0,
                    text: "Hi.".into(),
                },
            ),
            at(150, Event::AudioOutStart { turn: 0 }),
            // The onset is known once the voice has lasted: both come in the same frame.
            at(1180, Event::SpeechStart { at_ms: 1000 }),
            at(1180, Event::PlaybackPaused { turn: 0 }),
            at(
                1900,
                Event::AudioOutStop {
                    turn: 0,
                    reason: StopReason::BargeIn,
                },
            ),
        ] {
            got.extend(timer.observe(&event));
        }
        assert_eq!(got, vec![(Measure::BargeIn, 180.0)]);
    }

    #[test]
    fn an_utterance_nothing_answers_leaves_no_stale_start() {
        let mut timer = EventTimer::default();
        let mut got = Vec::new();
        for event in [
            at(2400, Event::SpeechEnd { at_ms: 2000 }),
            at(
                2450,
                Event::Final {
                    text: " ".into(),
                    stt_ms: 90.0,
                },
            ),
            // The re-prompt after silence, seconds later.
            at(9500, Event::AudioOutStart { turn: 2 }),
        ] {
            got.extend(timer.observe(&event));
        }
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn reasons_become_a_few_labels() {
        assert_eq!(
            escalation_label("the user asked for a person"),
            "asked_for_person"
        );
        assert_eq!(
            escalation_label("the order backend failed: \"x\" answered 500"),
            "backend_failed"
        );
    }

    #[test]
    fn the_text_format_has_the_prefixed_histograms_and_counters() {
        let metrics = Metrics::new();
        metrics.conversation_started();
        metrics.turn(
            Some("book"),
            None,
            Some("the user asked for a person"),
            false,
        );
        metrics.rejected("busy");
        let mut timer = EventTimer::default();
        metrics.conversation_event(&mut timer, &at(10, Event::SpeechEnd { at_ms: 10 }));
        metrics.conversation_event(&mut timer, &at(600, Event::AudioOutStart { turn: 1 }));
        let text = metrics.encode();
        assert!(
            text.contains("hark_voice_to_voice_seconds_count 1"),
            "{text}"
        );
        assert!(text.contains("hark_conversations_total 1"));
        assert!(text.contains("hark_flows_started_total{flow=\"book\"} 1"));
        assert!(text.contains("hark_escalations_total{reason=\"asked_for_person\"} 1"));
        assert!(text.contains("hark_limit_rejections_total{limit=\"busy\"} 1"));
        assert!(text.contains("hark_active_conversations 1"));
        assert!(text.ends_with("# EOF\n"));
    }
}
