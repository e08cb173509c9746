//! Turn-taking as a pure state machine: who has the floor, when the user's turn has ended,
//! and what an interruption means. It sees the conversation only through its inputs (the
//! endpointer's events, the recognizer's, the reply's playback, the clock) and answers with
//! actions the loop carries out; it starts no thread and reads no clock, so every rule here
//! is tested with scripted events and no models.
//!
//! The two sides have their own states: the user is [`User::Silent`] or talking, each
//! utterance with a [`Role`] (a request to hark, or an interruption of a reply that is
//! judged a barge-in or a backchannel); hark is [`Hark::Quiet`], preparing a reply, or
//! playing one (possibly paused by the user). The event log's [`TurnState`] is derived
//! from the two.

use std::collections::VecDeque;

use super::backchannel::is_backchannel;
use crate::stt::recognizer::RecognizerEvent;
use crate::telemetry::events::{Event, StopReason, TurnState};
use crate::vad::endpointer::{EndpointEvent, SpeechProgress};
use crate::vad::turn_end::{ends_open, Evidence, PhraseEnds, TurnEndConfig};

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TurnConfig {
    /// Silence that ends the turn when the recognizer judged the utterance complete
    /// (otherwise the endpointer's full hangover applies).
    pub quick_hangover_ms: u64,
    /// Voiced time over a reply after which the interruption is a barge-in even before
    /// its words are known.
    pub barge_in_confirm_ms: u64,
    /// Words heard over a reply stop it only after this much voice: a shorter sound may
    /// still turn out to be noise (a blip of the reply's own echo, say).
    pub barge_in_min_voice_ms: u64,
    /// Silence after the last sound (user or hark) before hark may ask again (0: never).
    pub no_input_ms: u64,
    /// With no reply audio this long after the user stopped, hark acknowledges that the
    /// answer is coming (0: never).
    pub late_reply_ms: u64,
    /// Speak the brain's greeting when the conversation starts.
    pub greet: bool,
    /// Voice again this soon after a turn ended early (on the recognizer's word) is the
    /// same turn going on, even over the start of its reply: the endpointer's hangover.
    pub continuation_ms: u64,
    /// When a pause ends the turn, with the end-of-turn model's hearing of it.
    pub end_of_turn: TurnEndConfig,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            quick_hangover_ms: 200,
            barge_in_confirm_ms: 700,
            barge_in_min_voice_ms: 200,
            no_input_ms: 7000,
            late_reply_ms: 1500,
            greet: false,
            continuation_ms: 600,
            end_of_turn: TurnEndConfig::default(),
        }
    }
}

/// What a reply answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyInput {
    User(String),
    /// The conversation starts: the brain's greeting.
    Greeting,
    /// The user said nothing for a while after a question.
    Silence,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The conversation begins.
    Start,
    /// A 20 ms frame ending at `now_ms` went through the endpointer.
    Frame {
        now_ms: u64,
        speech: SpeechProgress,
    },
    Endpoint(EndpointEvent),
    Recognizer(RecognizerEvent),
    /// The end-of-turn model's hearing of the audio up to pause `pause` of the utterance
    /// under way: the probability the user has finished (None: no model, or it failed).
    TurnHeard {
        pause: u32,
        complete: Option<f32>,
    },
    /// The reply to `text` was worked out ahead of the end of the turn; `answers`: whether
    /// the words answer what hark asked.
    Prepared {
        text: String,
        answers: Option<bool>,
    },
    /// A sentence of reply `turn` is ready to play.
    ReplyText {
        turn: u64,
        text: String,
    },
    /// Playback of reply `turn` reached this sentence.
    SentenceStarted {
        turn: u64,
        text: String,
    },
    /// Reply `turn` could not be (completely) produced.
    ReplyFailed {
        turn: u64,
        message: String,
    },
    /// Reply `turn`'s first sample played at `at_ms`.
    PlaybackStarted {
        turn: u64,
        at_ms: u64,
    },
    /// Reply `turn` is over: played to its end at `at_ms`, or it had no audio at all.
    PlaybackFinished {
        turn: u64,
        at_ms: u64,
        played: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Emit {
        t_ms: u64,
        event: Event,
    },
    /// Stop playing now (the speaker's queue is dropped); the reply waits where it is.
    PausePlayback,
    ResumePlayback,
    /// Drop reply `turn`: its audio and synthesis stop. On a barge-in the conversation keeps
    /// only what the user heard.
    StopReply {
        turn: u64,
        reason: StopReason,
    },
    StartReply {
        turn: u64,
        input: ReplyInput,
    },
    /// The recognizer heard a complete sentence: end the utterance without waiting out the
    /// endpointer's hangover.
    EndUtterance,
    /// Say that the answer is coming (it is late).
    Acknowledge,
    /// Ask the end-of-turn model whether the user has finished, on the utterance's audio up
    /// to this pause; its answer comes back as [`Input::TurnHeard`].
    HearTurn {
        pause: u32,
    },
    /// Keep the utterance open until this much silence (the endpointer's hangover for it):
    /// the user is likely mid-sentence.
    HoldOpen {
        silence_ms: u64,
    },
    /// Work out the reply to `text` now, in a pause, so that it can play the moment the
    /// turn ends on these words; nothing of it may be heard, kept or logged before then.
    Prepare {
        text: String,
    },
    /// The user went on: the reply prepared in the pause is dropped without a trace.
    DropPrepared,
}

/// What an utterance is to the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Said to hark: its final transcript is a turn.
    Request,
    /// Said over reply `turn`, which is paused until the words decide.
    Interruption { turn: u64 },
    /// An acknowledgement; the reply went on and the rest of the utterance is ignored.
    Backchannel,
}

#[derive(Debug, Clone, PartialEq)]
struct Utterance {
    role: Role,
    /// The recognizer's latest final text of it, whether it judged the turn over, and how
    /// long it took.
    heard: Option<(String, bool, Option<f64>)>,
    /// The user went on after `heard`: how its words end says nothing of the pause now.
    went_on: bool,
    /// The latest words heard in it, interim or final.
    words: Option<String>,
    /// Text of an earlier utterance whose reply was dropped because the user went on: the
    /// two are answered together.
    carried: String,
    /// Where its voice ended, once it has.
    ended_ms: Option<u64>,
    /// The end-of-turn model's questions about it so far, the silence the latest was asked
    /// at, and what the model made of it.
    asks: u32,
    asked_at_silence_ms: u64,
    model: Hearing,
    /// The model's hearings of this pause so far, in log-odds: each new one is weighed with
    /// those before it, so the silence growing does not on its own turn a hesitation into
    /// an end.
    hearings: Vec<f32>,
    /// The hangover the endpointer was asked to hold it open for.
    held_ms: Option<u64>,
    /// The words a reply is being prepared for, and whether they answer what was asked
    /// (known once it is prepared).
    preparing: Option<String>,
    answers: Answering,
}

/// Whether the words of the pause answer what hark asked, as the prepared reply tells.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Answering {
    NotAsked,
    Asked,
    Known(Option<bool>),
}

/// The end-of-turn model and the utterance's latest pause.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hearing {
    /// Not asked (no pause yet, or the user went on after it).
    NotAsked,
    Asked,
    Heard(Option<f32>),
    /// Asked again as the silence grew; the last hearing stands until the answer comes,
    /// so a turn it already calls over is not held up by the question.
    Again(Option<f32>),
}

impl Utterance {
    fn new(role: Role) -> Self {
        Self {
            role,
            heard: None,
            went_on: false,
            words: None,
            carried: String::new(),
            ended_ms: None,
            asks: 0,
            asked_at_silence_ms: 0,
            model: Hearing::NotAsked,
            hearings: Vec::new(),
            held_ms: None,
            preparing: None,
            answers: Answering::NotAsked,
        }
    }

    /// The model's latest hearing weighed with the earlier ones of this pause: the mean of
    /// their log-odds.
    fn weigh(&mut self, p: f32) -> f32 {
        let p = p.clamp(1e-4, 1.0 - 1e-4);
        self.hearings.push((p / (1.0 - p)).ln());
        let mean = self.hearings.iter().sum::<f32>() / self.hearings.len() as f32;
        1.0 / (1.0 + (-mean).exp())
    }

    /// What is known at its latest pause about whether it is finished; `phrases`: the
    /// domain's phrases, which words may stop inside.
    fn evidence(&self, phrases: &PhraseEnds) -> Evidence {
        Evidence {
            model: match self.model {
                Hearing::Heard(p) | Hearing::Again(p) => p,
                _ => None,
            },
            text_complete: self.heard.as_ref().map(|(_, end, _)| *end),
            open_ending: !self.went_on
                && self
                    .heard
                    .as_ref()
                    .is_some_and(|(text, _, _)| ends_open(text) || phrases.stops_inside(text)),
            answers: match self.answers {
                Answering::Known(answers) => answers,
                _ => None,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum User {
    Silent,
    Talking(Box<Utterance>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Answers {
    /// What the user said, and when their voice ended. `may_continue`: voice right after
    /// the end is the user going on (not after a "going on" that proved to be noise: without
    /// echo cancellation that was hark's own echo, and would be again).
    User {
        text: String,
        ended_ms: u64,
        may_continue: bool,
    },
    Unprompted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Hark {
    Quiet,
    /// Asked for, no audio yet.
    Preparing {
        turn: u64,
        answers: Answers,
    },
    Playing {
        turn: u64,
        answers: Answers,
        paused: bool,
        /// The user has started hearing a question in it.
        question_heard: bool,
    },
}

/// Counters for the run's summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TurnCounts {
    pub user_turns: u64,
    pub replies: u64,
    pub barge_ins: u64,
    pub false_interruptions: u64,
}

pub struct TurnMachine {
    config: TurnConfig,
    user: User,
    /// Utterances the endpointer ended whose final transcript the recognizer still owes,
    /// oldest first (it answers in order).
    finishing: VecDeque<Utterance>,
    hark: Hark,
    turn: u64,
    now_ms: u64,
    speech: SpeechProgress,
    /// When the conversation last had sound or work in it, for the no-input timer.
    active_ms: u64,
    /// The request the late-reply acknowledgement has been said for.
    acknowledged: Option<u64>,
    state: TurnState,
    counts: TurnCounts,
    actions: Vec<Action>,
    /// The domain's phrases of several words, which a turn does not end inside.
    phrases: PhraseEnds,
}

impl TurnMachine {
    pub fn new(config: TurnConfig) -> Self {
        Self {
            config,
            user: User::Silent,
            finishing: VecDeque::new(),
            hark: Hark::Quiet,
            turn: 0,
            now_ms: 0,
            speech: SpeechProgress::default(),
            active_ms: 0,
            acknowledged: None,
            state: TurnState::Listening,
            counts: TurnCounts::default(),
            actions: Vec::new(),
            phrases: PhraseEnds::default(),
        }
    }

    /// The phrases the domain's users say (its list values and their synonyms): words that
    /// stop inside one are not a finished turn.
    pub fn know_phrases<S: AsRef<str>>(&mut self, phrases: impl IntoIterator<Item = S>) {
        self.phrases = PhraseEnds::new(phrases);
    }

    pub fn counts(&self) -> &TurnCounts {
        &self.counts
    }

    pub fn state(&self) -> TurnState {
        self.state
    }

    /// The reply is paused (the user started talking over it). The machine is the one
    /// owner of this: playback only reads it.
    pub fn paused(&self) -> bool {
        matches!(self.hark, Hark::Playing { paused: true, .. })
    }

    /// The user is talking over a paused reply.
    pub fn interrupted(&self) -> bool {
        matches!(&self.user, User::Talking(u) if matches!(u.role, Role::Interruption { .. }))
    }

    /// Nothing is going on: nobody talks, no transcript is owed, no reply is under way.
    pub fn idle(&self) -> bool {
        self.user == User::Silent && self.finishing.is_empty() && self.hark == Hark::Quiet
    }

    /// Takes one input; returns what to do, in order.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        match input {
            Input::Start => {
                if self.config.greet {
                    self.start_reply(ReplyInput::Greeting);
                }
            }
            Input::Frame { now_ms, speech } => self.on_frame(now_ms, speech),
            Input::Endpoint(event) => self.on_endpoint(event),
            Input::Recognizer(event) => self.on_recognizer(event),
            Input::TurnHeard { pause, complete } => {
                if let User::Talking(u) = &mut self.user {
                    if u.asks == pause && matches!(u.model, Hearing::Asked | Hearing::Again(_)) {
                        u.model = Hearing::Heard(complete.map(|p| u.weigh(p)));
                    }
                }
                self.end_turn_if_over();
            }
            Input::Prepared { text, answers } => {
                if let User::Talking(u) = &mut self.user {
                    if u.preparing.as_deref() == Some(text.as_str()) {
                        u.answers = Answering::Known(answers);
                    }
                }
                self.end_turn_if_over();
            }
            Input::ReplyText { turn, text } => {
                if self.reply_turn() == Some(turn) {
                    self.emit(Event::Reply { turn, text });
                }
            }
            Input::SentenceStarted { turn, text } => {
                if let Hark::Playing {
                    turn: playing,
                    question_heard,
                    ..
                } = &mut self.hark
                {
                    if *playing == turn && text.trim_end().ends_with('?') {
                        *question_heard = true;
                    }
                }
            }
            Input::ReplyFailed { turn, message } => {
                if self.reply_turn() == Some(turn) {
                    self.emit(Event::Error { message });
                }
            }
            Input::PlaybackStarted { turn, at_ms } => {
                if let Hark::Preparing { turn: t, answers } = &self.hark {
                    if *t != turn {
                        return self.finish_step();
                    }
                    self.hark = Hark::Playing {
                        turn,
                        answers: answers.clone(),
                        paused: false,
                        question_heard: false,
                    };
                    self.counts.replies += 1;
                    self.emit_at(at_ms, Event::AudioOutStart { turn });
                }
            }
            Input::PlaybackFinished {
                turn,
                at_ms,
                played,
            } => {
                if self.reply_turn() == Some(turn) {
                    if played {
                        self.emit_at(
                            at_ms,
                            Event::AudioOutStop {
                                turn,
                                reason: StopReason::Finished,
                            },
                        );
                    }
                    self.hark = Hark::Quiet;
                }
            }
        }
        self.finish_step()
    }

    fn finish_step(&mut self) -> Vec<Action> {
        self.update_state();
        std::mem::take(&mut self.actions)
    }

    fn reply_turn(&self) -> Option<u64> {
        match self.hark {
            Hark::Quiet => None,
            Hark::Preparing { turn, .. } | Hark::Playing { turn, .. } => Some(turn),
        }
    }

    fn emit(&mut self, event: Event) {
        self.emit_at(self.now_ms, event);
    }

    fn emit_at(&mut self, t_ms: u64, event: Event) {
        self.actions.push(Action::Emit { t_ms, event });
    }

    fn on_frame(&mut self, now_ms: u64, speech: SpeechProgress) {
        self.now_ms = now_ms;
        self.speech = speech;
        self.ask_again_as_the_silence_grows();
        if let User::Talking(u) = &self.user {
            match u.role {
                Role::Request if self.turn_over(u) => self.end_turn_early(),
                Role::Interruption { .. }
                    if speech.voiced_ms >= self.config.barge_in_confirm_ms =>
                {
                    self.barge_in()
                }
                // Words that are no backchannel were heard before there was enough voice
                // to believe them; now there is.
                Role::Interruption { .. }
                    if self.enough_voice_to_interrupt()
                        && u.words
                            .as_deref()
                            .is_some_and(|w| !is_backchannel(w, self.question_heard())) =>
                {
                    self.barge_in()
                }
                // The words so far are an acknowledgement and the voice has stopped: the
                // reply goes on now, not after the pause's decode (which, if it hears more,
                // still makes it a barge-in).
                Role::Interruption { .. }
                    if speech.silence_ms > 0
                        && u.words
                            .as_deref()
                            .is_some_and(|w| is_backchannel(w, self.question_heard())) =>
                {
                    self.resume();
                    if let User::Talking(u) = &mut self.user {
                        u.role = Role::Backchannel;
                    }
                }
                _ => {}
            }
        }
        self.acknowledge_if_late();
        if !self.idle() || speech.in_speech {
            self.active_ms = now_ms;
        } else if self.config.no_input_ms > 0 && now_ms >= self.active_ms + self.config.no_input_ms
        {
            self.active_ms = now_ms;
            self.start_reply(ReplyInput::Silence);
        }
    }

    /// Asks the end-of-turn model about the request under way, on its audio so far.
    fn ask_the_model(&mut self) {
        let silence_ms = self.speech.silence_ms;
        if let User::Talking(u) = &mut self.user {
            if u.role == Role::Request && self.config.end_of_turn.model {
                u.asks += 1;
                u.asked_at_silence_ms = silence_ms;
                u.model = match u.model {
                    Hearing::Heard(p) => Hearing::Again(p),
                    _ => Hearing::Asked,
                };
                let pause = u.asks;
                self.actions.push(Action::HearTurn { pause });
            }
        }
    }

    /// The model hears a pause better once it has lasted a while (it learned turns that end
    /// in a fifth of a second of silence): while the turn is undecided, it is asked again as
    /// the silence passes each of these marks.
    fn ask_again_as_the_silence_grows(&mut self) {
        const MARKS_MS: [u64; 2] = [200, 500];
        let silence_ms = self.speech.silence_ms;
        let (end, quick) = (self.config.end_of_turn, self.config.quick_hangover_ms);
        let due = match &self.user {
            User::Talking(u) => {
                // Undecided: the silence the evidence calls for is still to come.
                let undecided = u
                    .evidence(&self.phrases)
                    .silence_ms(&end, quick)
                    .is_none_or(|needed| needed > silence_ms);
                matches!(u.model, Hearing::Heard(_))
                    && undecided
                    && MARKS_MS
                        .iter()
                        .any(|&m| u.asked_at_silence_ms < m && silence_ms >= m)
            }
            User::Silent => false,
        };
        if due && self.speech.in_speech {
            self.ask_the_model();
        }
    }

    /// Once the model has heard the pause, the utterance stays open as long as the evidence
    /// calls for (a frame longer than the machine's own end of it, which comes with the
    /// transcript): past the endpointer's hangover when the user seems mid-sentence.
    fn hold_open(&mut self) {
        let (end, quick) = (self.config.end_of_turn, self.config.quick_hangover_ms);
        let User::Talking(u) = &mut self.user else {
            return;
        };
        let evidence = u.evidence(&self.phrases);
        let needed = match u.model {
            Hearing::Heard(Some(_)) => evidence.silence_ms(&end, quick),
            // The model's hearing is on its way (a decode may hold the cores), but the words
            // already say the user is going on: the endpointer's hangover must not end it
            // first.
            Hearing::Asked => evidence.open_wait(&end),
            _ => None,
        };
        let Some(needed) = needed else {
            return;
        };
        let silence_ms = needed + 20;
        if u.held_ms != Some(silence_ms) {
            u.held_ms = Some(silence_ms);
            self.actions.push(Action::HoldOpen { silence_ms });
            self.emit(Event::EndOfTurn {
                complete: evidence.model,
                text_complete: evidence.text_complete,
                answers: evidence.answers,
                wait_ms: needed,
            });
        }
    }

    /// The user has been silent long enough, given what is known at the pause, to believe
    /// they have finished: the transcript of it is in (of this pause, not one the user went
    /// on after), the end-of-turn model (when asked)
    /// has answered, and the silence is as long as the evidence calls for. Otherwise the
    /// endpointer's hangover ends the utterance.
    fn turn_over(&self, u: &Utterance) -> bool {
        if !self.speech.in_speech
            || u.heard.is_none()
            || u.went_on
            || u.model == Hearing::Asked
            || u.answers == Answering::Asked
        {
            return false;
        }
        u.evidence(&self.phrases)
            .silence_ms(&self.config.end_of_turn, self.config.quick_hangover_ms)
            .is_some_and(|needed| self.speech.silence_ms >= needed)
    }

    fn acknowledge_if_late(&mut self) {
        if self.config.late_reply_ms == 0 {
            return;
        }
        let waiting_since = match (&self.hark, self.finishing.front()) {
            (
                Hark::Preparing {
                    answers: Answers::User { ended_ms, .. },
                    ..
                },
                _,
            ) => Some(*ended_ms),
            (Hark::Quiet, Some(u)) if u.role == Role::Request => u.ended_ms,
            _ => None,
        };
        if let Some(since) = waiting_since {
            if self.now_ms >= since + self.config.late_reply_ms && self.acknowledged != Some(since)
            {
                self.acknowledged = Some(since);
                self.actions.push(Action::Acknowledge);
            }
        }
    }

    fn on_endpoint(&mut self, event: EndpointEvent) {
        match event {
            EndpointEvent::SpeechStart { at_ms, .. } => {
                self.emit(Event::SpeechStart { at_ms });
                self.user = User::Talking(Box::new(Utterance::new(Role::Request)));
                let role = self.hold_the_floor(at_ms);
                if let User::Talking(u) = &mut self.user {
                    u.role = role;
                }
            }
            EndpointEvent::Paused { .. } => self.ask_the_model(),
            EndpointEvent::Resumed { .. } => {
                let mut pause_again = false;
                if let User::Talking(u) = &mut self.user {
                    // Whatever the recognizer judged complete, the user is going on.
                    if let Some((_, end, _)) = u.heard.as_mut() {
                        *end = false;
                        u.went_on = true;
                    }
                    u.model = Hearing::NotAsked;
                    u.hearings.clear();
                    u.answers = Answering::NotAsked;
                    if u.preparing.take().is_some() {
                        self.actions.push(Action::DropPrepared);
                    }
                    pause_again = u.role == Role::Backchannel;
                }
                if pause_again {
                    // Talking again over the reply that went on after an "uh-huh".
                    let role = self.hold_the_floor(self.now_ms);
                    if let User::Talking(u) = &mut self.user {
                        u.role = role;
                    }
                }
            }
            EndpointEvent::SpeechEnd { at_ms, .. } => {
                self.emit(Event::SpeechEnd { at_ms });
                if let User::Talking(mut u) = std::mem::replace(&mut self.user, User::Silent) {
                    u.ended_ms = Some(at_ms);
                    self.finishing.push_back(*u);
                }
            }
            EndpointEvent::Discarded { voiced_ms, .. } => {
                self.emit(Event::Noise { voiced_ms });
                if let User::Talking(u) = std::mem::replace(&mut self.user, User::Silent) {
                    if u.preparing.is_some() {
                        self.actions.push(Action::DropPrepared);
                    }
                    match u.role {
                        Role::Interruption { .. } => self.resume(),
                        Role::Request if !u.carried.is_empty() => {
                            self.start_user_reply(u.carried, self.now_ms, false)
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// The user started talking at `at_ms`: what that does to hark's reply, and what their
    /// words are.
    fn hold_the_floor(&mut self, at_ms: u64) -> Role {
        match std::mem::replace(&mut self.hark, Hark::Quiet) {
            Hark::Playing {
                turn,
                answers:
                    Answers::User {
                        text,
                        ended_ms,
                        may_continue: true,
                    },
                ..
            } if at_ms <= ended_ms + self.config.continuation_ms => {
                // The turn was ended early, and the user was only pausing: its reply has
                // barely begun. Answer the whole thing once they finish.
                self.actions.push(Action::StopReply {
                    turn,
                    reason: StopReason::Superseded,
                });
                self.counts.user_turns -= 1;
                self.carry(text);
                Role::Request
            }
            Hark::Playing {
                turn,
                answers,
                paused,
                question_heard,
            } => {
                // Stop the sound now; the words decide later whether this is a barge-in.
                if !paused {
                    self.actions.push(Action::PausePlayback);
                    self.emit(Event::PlaybackPaused { turn });
                }
                self.hark = Hark::Playing {
                    turn,
                    answers,
                    paused: true,
                    question_heard,
                };
                Role::Interruption { turn }
            }
            Hark::Preparing { turn, answers } => {
                // Nothing has been heard yet. The user went on after a pause the
                // endpointer took for the end: drop that reply and answer the whole thing
                // once they finish. An unprompted reply (greeting, re-prompt) is moot.
                self.actions.push(Action::StopReply {
                    turn,
                    reason: StopReason::Superseded,
                });
                if let Answers::User { text, .. } = answers {
                    self.counts.user_turns -= 1;
                    self.carry(text);
                }
                Role::Request
            }
            Hark::Quiet => Role::Request,
        }
    }

    /// Text to answer together with the utterance under way.
    fn carry(&mut self, text: String) {
        if let User::Talking(u) = &mut self.user {
            u.carried = join(&u.carried, &text);
        }
    }

    fn on_recognizer(&mut self, event: RecognizerEvent) {
        match event {
            RecognizerEvent::SpeechStarted => {}
            RecognizerEvent::Interim { text } => {
                if let User::Talking(u) = &mut self.user {
                    u.words = Some(text.clone());
                }
                let barge_in = match &self.user {
                    User::Talking(u) => {
                        matches!(u.role, Role::Interruption { .. })
                            && self.enough_voice_to_interrupt()
                            && !is_backchannel(&text, self.question_heard())
                    }
                    User::Silent => false,
                };
                self.emit(Event::Partial { text });
                if barge_in {
                    self.barge_in();
                }
            }
            RecognizerEvent::Final {
                text,
                end_of_turn,
                latency_ms,
            } => {
                if end_of_turn && !self.finishing.is_empty() {
                    let u = self.finishing.pop_front().expect("not empty");
                    self.resolve(u, text, latency_ms);
                } else if let User::Talking(u) = &mut self.user {
                    u.heard = Some((text.clone(), end_of_turn, latency_ms));
                    u.went_on = false;
                    u.words = Some(text.clone());
                    let role = u.role;
                    self.heard_while_talking(role, &text);
                }
            }
            RecognizerEvent::Error { message } | RecognizerEvent::Failed { message } => {
                self.emit(Event::Error { message })
            }
        }
    }

    fn enough_voice_to_interrupt(&self) -> bool {
        self.speech.voiced_ms >= self.config.barge_in_min_voice_ms
    }

    fn question_heard(&self) -> bool {
        matches!(
            self.hark,
            Hark::Playing {
                question_heard: true,
                ..
            }
        )
    }

    /// A reply to the words heard in the pause, worked out while the user may still go on
    /// (the words of an earlier utterance still to answer come first).
    fn prepare(&mut self) {
        let User::Talking(u) = &mut self.user else {
            return;
        };
        let Some((text, _, _)) = &u.heard else {
            return;
        };
        let full = join(&u.carried, text);
        if u.role != Role::Request || full.is_empty() || u.preparing.as_ref() == Some(&full) {
            return;
        }
        u.preparing = Some(full.clone());
        u.answers = Answering::Asked;
        self.actions.push(Action::Prepare { text: full });
    }

    /// A final transcript of the utterance so far, while the user may still go on.
    fn heard_while_talking(&mut self, mut role: Role, text: &str) {
        if role == Role::Backchannel && !is_backchannel(text, self.question_heard()) {
            // The reply went on early, on words heard before these: there was more than an
            // acknowledgement. It is paused again, and the words decide.
            role = self.hold_the_floor(self.now_ms);
            if let User::Talking(u) = &mut self.user {
                u.role = role;
            }
        }
        if let Role::Interruption { .. } = role {
            if !is_backchannel(text, self.question_heard()) {
                if self.enough_voice_to_interrupt() {
                    self.barge_in();
                }
            } else if self.speech.silence_ms > 0 {
                // Only an acknowledgement, and the user has paused: the reply goes on.
                self.resume();
                if let User::Talking(u) = &mut self.user {
                    u.role = Role::Backchannel;
                }
                return;
            }
        }
        self.prepare();
        self.end_turn_if_over();
    }

    fn end_turn_if_over(&mut self) {
        self.hold_open();
        if let User::Talking(u) = &self.user {
            if u.role == Role::Request && self.turn_over(u) {
                self.end_turn_early();
            }
        }
    }

    /// The recognizer's answer for an utterance the endpointer ended.
    fn resolve(&mut self, u: Utterance, text: String, latency_ms: Option<f64>) {
        match u.role {
            Role::Request => self.commit(u, text, latency_ms),
            Role::Interruption { .. } if is_backchannel(&text, self.question_heard()) => {
                self.emit_final(&text, latency_ms);
                // Unless the user has started talking over the paused reply again.
                if self.user == User::Silent {
                    self.resume();
                }
            }
            Role::Interruption { .. } => {
                self.barge_in();
                self.commit(u, text, latency_ms);
            }
            Role::Backchannel => self.emit_final(&text, latency_ms),
        }
    }

    /// Ends the utterance under way on the recognizer's word, before the hangover.
    fn end_turn_early(&mut self) {
        let User::Talking(u) = std::mem::replace(&mut self.user, User::Silent) else {
            return;
        };
        let ended_ms = self.now_ms.saturating_sub(self.speech.silence_ms);
        self.emit(Event::SpeechEnd { at_ms: ended_ms });
        self.actions.push(Action::EndUtterance);
        let (text, _, latency_ms) = u.heard.clone().unwrap_or_default();
        self.commit(
            Utterance {
                ended_ms: Some(ended_ms),
                ..*u
            },
            text,
            latency_ms,
        );
    }

    fn emit_final(&mut self, text: &str, latency_ms: Option<f64>) {
        self.emit(Event::Final {
            text: text.to_string(),
            stt_ms: latency_ms.map_or(0.0, |ms| (ms * 10.0).round() / 10.0),
        });
    }

    /// The user's request is known: answer it, unless they have started talking again.
    fn commit(&mut self, u: Utterance, text: String, latency_ms: Option<f64>) {
        self.emit_final(&text, latency_ms);
        let full = join(&u.carried, &text);
        if full.is_empty() {
            return;
        }
        if matches!(self.user, User::Talking(_)) {
            // Already talking again: this text is answered with what they say now.
            self.carry(full);
            return;
        }
        let ended_ms = u.ended_ms.unwrap_or(self.now_ms);
        self.start_user_reply(full, ended_ms, true);
    }

    fn start_user_reply(&mut self, text: String, ended_ms: u64, may_continue: bool) {
        self.counts.user_turns += 1;
        self.start(
            ReplyInput::User(text.clone()),
            Answers::User {
                text,
                ended_ms,
                may_continue,
            },
        );
    }

    fn start_reply(&mut self, input: ReplyInput) {
        self.start(input, Answers::Unprompted);
    }

    fn start(&mut self, input: ReplyInput, answers: Answers) {
        if let Some(turn) = self.reply_turn() {
            self.actions.push(Action::StopReply {
                turn,
                reason: StopReason::Superseded,
            });
        }
        self.turn += 1;
        let turn = self.turn;
        self.actions.push(Action::StartReply { turn, input });
        self.hark = Hark::Preparing { turn, answers };
    }

    fn barge_in(&mut self) {
        if let Some(turn) = self.reply_turn() {
            self.actions.push(Action::StopReply {
                turn,
                reason: StopReason::BargeIn,
            });
            self.counts.barge_ins += 1;
            self.hark = Hark::Quiet;
        }
        if let User::Talking(u) = &mut self.user {
            u.role = Role::Request;
        }
    }

    /// The interruption was no reason to stop: the reply goes on where it paused.
    fn resume(&mut self) {
        if let Hark::Playing {
            turn,
            paused: paused @ true,
            ..
        } = &mut self.hark
        {
            *paused = false;
            let turn = *turn;
            self.counts.false_interruptions += 1;
            self.actions.push(Action::ResumePlayback);
            self.emit(Event::PlaybackResumed { turn });
        }
    }

    fn update_state(&mut self) {
        let state = match (&self.user, &self.hark) {
            (User::Talking(u), _) if u.role == Role::Request => TurnState::UserSpeaking,
            (_, Hark::Playing { .. }) => TurnState::Speaking,
            (_, Hark::Preparing { .. }) => TurnState::Thinking,
            (User::Silent, Hark::Quiet) if !self.finishing.is_empty() => TurnState::Thinking,
            _ => TurnState::Listening,
        };
        if state != self.state {
            let from = self.state;
            self.state = state;
            self.emit(Event::State { from, to: state });
        }
    }
}

fn join(a: &str, b: &str) -> String {
    format!("{} {}", a.trim(), b.trim()).trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the machine on a scripted timeline, one 20 ms frame at a time.
    struct Script {
        machine: TurnMachine,
        now: u64,
        speech: SpeechProgress,
        actions: Vec<Action>,
        /// What the end-of-turn model answers whenever it is asked (None: it does not).
        model: Option<Option<f32>>,
        /// What a prepared reply says of the words (None: no answer comes back).
        prepared: Option<Option<bool>>,
    }

    fn user(text: &str) -> ReplyInput {
        ReplyInput::User(text.into())
    }

    fn final_(text: &str, end_of_turn: bool) -> Input {
        Input::Recognizer(RecognizerEvent::Final {
            text: text.into(),
            end_of_turn,
            latency_ms: Some(50.0),
        })
    }

    fn interim(text: &str) -> Input {
        Input::Recognizer(RecognizerEvent::Interim { text: text.into() })
    }

    impl Script {
        fn new(config: TurnConfig) -> Self {
            Self {
                machine: TurnMachine::new(config),
                now: 0,
                speech: SpeechProgress::default(),
                actions: Vec::new(),
                model: None,
                prepared: Some(None),
            }
        }

        fn step(&mut self, input: Input) -> Vec<Action> {
            let mut actions = self.machine.step(input);
            if actions.contains(&Action::EndUtterance) {
                // As the loop does: the endpointer ends the utterance.
                self.speech = SpeechProgress::default();
            }
            self.actions.extend(actions.clone());
            for action in actions.clone() {
                match (action, self.model, self.prepared) {
                    (Action::HearTurn { pause }, Some(complete), _) => {
                        actions.extend(self.step(Input::TurnHeard { pause, complete }));
                    }
                    (Action::Prepare { text }, _, Some(answers)) => {
                        actions.extend(self.step(Input::Prepared { text, answers }));
                    }
                    _ => {}
                }
            }
            actions
        }

        fn frame(&mut self) -> Vec<Action> {
            self.now += 20;
            if self.speech.in_speech {
                self.speech.voiced_ms += if self.speech.silence_ms == 0 { 20 } else { 0 };
            }
            self.step(Input::Frame {
                now_ms: self.now,
                speech: self.speech,
            })
        }

        /// `ms` of the user talking.
        fn talk(&mut self, ms: u64) {
            if !self.speech.in_speech {
                self.speech = SpeechProgress {
                    in_speech: true,
                    voiced_ms: 0,
                    silence_ms: 0,
                };
                let at_ms = self.now;
                self.step(Input::Endpoint(EndpointEvent::SpeechStart {
                    at_ms,
                    audio_from_ms: at_ms.saturating_sub(300),
                }));
            } else if self.speech.silence_ms > 0 {
                self.speech.silence_ms = 0;
                let at_ms = self.now;
                self.step(Input::Endpoint(EndpointEvent::Resumed { at_ms }));
            }
            for _ in 0..ms / 20 {
                self.frame();
            }
        }

        /// `ms` of silence after talking (the endpointer still in the utterance).
        fn pause(&mut self, ms: u64) {
            for _ in 0..ms / 20 {
                if self.speech.in_speech {
                    self.speech.silence_ms += 20;
                }
                self.frame();
            }
        }

        /// The endpointer's hangover runs out.
        fn stop(&mut self) {
            let at_ms = self.now - self.speech.silence_ms;
            let voiced_ms = self.speech.voiced_ms;
            self.speech = SpeechProgress::default();
            self.step(Input::Endpoint(EndpointEvent::SpeechEnd {
                at_ms,
                audio_to_ms: at_ms + 120,
                voiced_ms,
            }));
        }

        /// Nothing happening for `ms`.
        fn wait(&mut self, ms: u64) {
            for _ in 0..ms / 20 {
                self.frame();
            }
        }

        /// Reply `turn` starts playing now.
        fn plays(&mut self, turn: u64, sentence: &str) {
            self.step(Input::ReplyText {
                turn,
                text: sentence.into(),
            });
            let at_ms = self.now;
            self.step(Input::PlaybackStarted { turn, at_ms });
            self.step(Input::SentenceStarted {
                turn,
                text: sentence.into(),
            });
        }

        fn replies(&self) -> Vec<(u64, ReplyInput)> {
            self.actions
                .iter()
                .filter_map(|a| match a {
                    Action::StartReply { turn, input } => Some((*turn, input.clone())),
                    _ => None,
                })
                .collect()
        }

        fn stops(&self) -> Vec<(u64, StopReason)> {
            self.actions
                .iter()
                .filter_map(|a| match a {
                    Action::StopReply { turn, reason } => Some((*turn, *reason)),
                    _ => None,
                })
                .collect()
        }

        fn did(&self, wanted: &Action) -> bool {
            self.actions.contains(wanted)
        }

        fn emitted(&self, pred: impl Fn(&Event) -> bool) -> Vec<(u64, Event)> {
            self.actions
                .iter()
                .filter_map(|a| match a {
                    Action::Emit { t_ms, event } if pred(event) => Some((*t_ms, event.clone())),
                    _ => None,
                })
                .collect()
        }
    }

    /// A conversation in which reply 1 is playing `sentence`.
    fn playing(sentence: &str) -> Script {
        let mut s = Script::new(TurnConfig::default());
        s.wait(200);
        s.talk(800);
        s.pause(200);
        s.step(final_("Book a table.", true));
        assert_eq!(s.replies(), vec![(1, user("Book a table."))]);
        s.wait(100);
        s.plays(1, sentence);
        s.wait(500);
        assert_eq!(s.machine.state(), TurnState::Speaking);
        s
    }

    #[test]
    fn a_complete_sentence_ends_the_turn_after_the_short_hangover() {
        let mut s = Script::new(TurnConfig::default());
        s.wait(1000);
        s.talk(1000);
        s.pause(60);
        s.step(final_("Book a table.", true));
        assert!(s.replies().is_empty(), "60 ms of silence is not enough");
        s.pause(120);
        assert!(s.replies().is_empty());
        s.pause(20);
        assert_eq!(s.replies(), vec![(1, user("Book a table."))]);
        assert!(s.did(&Action::EndUtterance));
        let ends = s.emitted(|e| matches!(e, Event::SpeechEnd { .. }));
        assert_eq!(ends, vec![(2200, Event::SpeechEnd { at_ms: 2000 })]);
        assert_eq!(s.machine.state(), TurnState::Thinking);
        assert_eq!(s.machine.counts().user_turns, 1);
    }

    impl Script {
        /// The endpointer reports a pause (60 ms into the silence); the machine asks the
        /// end-of-turn model, which answers `heard` now and whenever it is asked again
        /// (None: it does not answer).
        fn paused(&mut self, heard: Option<Option<f32>>) -> Option<u32> {
            self.model = heard;
            let voice_end_ms = self.now - self.speech.silence_ms;
            let actions = self.step(Input::Endpoint(EndpointEvent::Paused {
                voice_end_ms,
                audio_to_ms: voice_end_ms + 60,
            }));
            actions.iter().find_map(|a| match a {
                Action::HearTurn { pause } => Some(*pause),
                _ => None,
            })
        }

        /// When the machine ended the utterance on its own, ms after the voice stopped.
        fn ended_after(&self) -> Option<u64> {
            let end = self
                .emitted(|e| matches!(e, Event::SpeechEnd { .. }))
                .first()
                .cloned()?;
            match end.1 {
                Event::SpeechEnd { at_ms } => Some(end.0 - at_ms),
                _ => None,
            }
        }
    }

    #[test]
    fn a_finished_sentence_the_model_hears_as_finished_ends_sooner_than_the_old_rule() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(1000);
        s.pause(60);
        s.paused(Some(Some(0.97)));
        s.step(final_("Where is my order?", true));
        s.pause(200);
        assert_eq!(s.replies(), vec![(1, user("Where is my order?"))]);
        let after = s.ended_after().unwrap();
        assert!(after < 200, "ended {after} ms into the silence");
    }

    #[test]
    fn words_that_stop_open_hold_the_utterance_while_the_model_is_late() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(1000);
        s.pause(60);
        // The model is asked and does not answer yet (a decode holds the cores).
        assert!(s.paused(None).is_some());
        s.step(final_("Get me a triple shot,", false));
        assert!(
            s.did(&Action::HoldOpen { silence_ms: 1520 }),
            "the endpointer's 600 ms hangover would end it: {:?}",
            s.actions
        );
    }

    #[test]
    fn a_hesitation_mid_sentence_is_waited_out_and_the_whole_sentence_answered() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(1200);
        s.pause(60);
        s.paused(Some(Some(0.02)));
        s.step(final_("Can I get a coffee with a bit of", false));
        s.pause(1200);
        assert!(s.replies().is_empty(), "cut off mid-sentence");
        assert!(!s.did(&Action::EndUtterance));
        s.talk(600); // "… brown sugar"
        s.pause(60);
        s.paused(Some(Some(0.95)));
        s.step(final_(
            "Can I get a coffee with a bit of brown sugar?",
            true,
        ));
        s.pause(300);
        assert_eq!(
            s.replies(),
            vec![(1, user("Can I get a coffee with a bit of brown sugar?"))]
        );
    }

    #[test]
    fn words_that_stop_inside_a_phrase_of_the_domain_are_waited_out_not_the_words_before() {
        let mut s = Script::new(TurnConfig::default());
        s.machine.know_phrases(["light roast", "coffee"]);
        s.talk(1000);
        s.pause(60);
        // The model and the recognizer both call "I'd like a light." finished.
        s.paused(Some(Some(0.97)));
        s.step(final_("I'd like a light.", true));
        s.pause(1100);
        assert!(s.replies().is_empty(), "cut off inside \"light roast\"");
        s.talk(500); // "… roast coffee"
        s.pause(60);
        // Until the words of this pause are in, the turn is not over: ended on those of
        // the last one, it would answer "I'd like a light."
        s.paused(Some(Some(0.97)));
        s.pause(300);
        assert!(s.replies().is_empty(), "no words of this pause yet");
        s.step(final_("I'd like a light roast coffee.", true));
        s.pause(20);
        assert_eq!(
            s.replies(),
            vec![(1, user("I'd like a light roast coffee."))]
        );
    }

    #[test]
    fn words_that_read_open_hold_back_a_model_that_hears_a_finished_phrase() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(1000);
        s.pause(60);
        s.paused(Some(Some(0.9)));
        s.step(final_("I'd like a latte with", false));
        s.pause(400);
        assert!(s.replies().is_empty(), "the words say the user is going on");
    }

    #[test]
    fn the_turn_waits_for_the_model_it_asked() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(1000);
        s.pause(60);
        let pause = s.paused(None).expect("the model is asked");
        s.step(final_("Where is my order?", true));
        s.pause(400);
        assert!(s.replies().is_empty(), "no answer from the model yet");
        s.step(Input::TurnHeard {
            pause,
            complete: Some(0.97),
        });
        assert_eq!(s.replies().len(), 1, "ended as soon as it answered");
    }

    #[test]
    fn without_the_model_s_hearing_the_transcript_decides_as_before() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(1000);
        s.pause(60);
        s.paused(Some(None));
        s.step(final_("Book a table.", true));
        s.pause(120);
        assert!(s.replies().is_empty());
        s.pause(40);
        assert_eq!(s.replies(), vec![(1, user("Book a table."))]);
    }

    #[test]
    fn with_the_model_off_it_is_never_asked() {
        let config = TurnConfig {
            end_of_turn: TurnEndConfig {
                model: false,
                ..Default::default()
            },
            ..Default::default()
        };
        let mut s = Script::new(config);
        s.talk(1000);
        s.pause(60);
        assert_eq!(s.paused(Some(Some(0.99))), None);
        assert!(!s
            .actions
            .iter()
            .any(|a| matches!(a, Action::HearTurn { .. })));
    }

    #[test]
    fn an_undecided_pause_is_heard_again_as_the_silence_grows() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(1000);
        s.pause(60);
        s.paused(Some(Some(0.3)));
        s.step(final_("Can I get a drip", true));
        s.pause(120);
        let asks = |s: &Script| {
            s.actions
                .iter()
                .filter(|a| matches!(a, Action::HearTurn { .. }))
                .count()
        };
        assert_eq!(asks(&s), 1);
        s.model = Some(Some(0.97)); // with 200 ms of silence, it hears a finished turn
        s.pause(20);
        assert_eq!(asks(&s), 2);
        s.pause(100);
        assert_eq!(s.replies().len(), 1, "ended on the second hearing");
    }

    #[test]
    fn a_hearing_asked_again_does_not_hold_up_a_turn_the_last_one_calls_over() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(1000);
        s.pause(60);
        s.paused(Some(Some(0.3))); // with the words: about 350 ms of silence
        s.step(final_("Can I get a drip", true));
        s.model = None; // asked again at 200 ms, it has not answered yet
        s.pause(160);
        let asks = s
            .actions
            .iter()
            .filter(|a| matches!(a, Action::HearTurn { .. }))
            .count();
        assert_eq!(asks, 2);
        assert!(s.replies().is_empty());
        s.pause(160);
        assert_eq!(s.replies().len(), 1, "ended on the hearing it had");
    }

    #[test]
    fn the_reply_to_the_words_of_a_pause_is_prepared_and_dropped_if_the_user_goes_on() {
        let mut s = Script::new(TurnConfig::default());
        s.prepared = None;
        s.talk(800);
        s.pause(60);
        s.paused(Some(Some(0.9)));
        s.step(final_("A large latte", true));
        assert!(s.did(&Action::Prepare {
            text: "A large latte".into()
        }));
        s.pause(300);
        assert!(
            s.replies().is_empty(),
            "the prepared reply's verdict is awaited"
        );
        s.talk(400); // "… with oat milk"
        assert!(s.did(&Action::DropPrepared));
    }

    #[test]
    fn words_that_answer_the_question_end_the_turn_sooner() {
        let wait_for = |answers: Option<bool>| {
            let mut s = Script::new(TurnConfig::default());
            s.prepared = Some(answers);
            s.talk(600);
            s.pause(60);
            s.paused(Some(Some(0.5)));
            s.step(final_("Yes, please.", true));
            s.pause(2600);
            s.ended_after()
                .unwrap_or_else(|| panic!("{answers:?}: {:?}", s.actions))
        };
        assert!(wait_for(Some(true)) < wait_for(None));
        assert!(wait_for(None) < wait_for(Some(false)));
    }

    #[test]
    fn an_answer_for_an_earlier_pause_does_not_count() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(800);
        s.pause(60);
        let first = s.paused(None).unwrap();
        s.talk(400); // the user went on before the model answered
        s.pause(60);
        s.paused(None).unwrap();
        s.step(final_("Book a table for two.", true));
        s.step(Input::TurnHeard {
            pause: first,
            complete: Some(0.99),
        });
        s.pause(400);
        assert!(s.replies().is_empty(), "the answer was for the first pause");
    }

    #[test]
    fn an_open_sentence_waits_for_the_endpointer_and_its_final() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(1000);
        s.pause(60);
        s.step(final_("I would like to", false));
        s.pause(540);
        assert!(s.replies().is_empty());
        s.stop();
        assert_eq!(s.machine.state(), TurnState::Thinking, "the final is owed");
        assert!(!s.machine.idle());
        s.wait(100);
        s.step(final_("I would like to", true));
        assert_eq!(s.replies(), vec![(1, user("I would like to"))]);
        assert!(!s.did(&Action::EndUtterance));
    }

    #[test]
    fn speech_resuming_during_the_hangover_is_one_turn() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(800);
        s.pause(80);
        s.step(final_("Book a table.", true));
        s.talk(600); // "… for two", within the hangover
        s.pause(100);
        assert!(s.replies().is_empty(), "the earlier final no longer counts");
        s.step(final_("Book a table for two.", true));
        s.pause(100);
        assert_eq!(s.replies(), vec![(1, user("Book a table for two."))]);
    }

    #[test]
    fn words_over_a_reply_are_a_barge_in_and_the_new_request_is_answered() {
        let mut s = playing("Sure, I can help you book that.");
        s.talk(200);
        assert!(s.did(&Action::PausePlayback), "paused at the onset");
        assert_eq!(
            s.emitted(|e| matches!(e, Event::PlaybackPaused { .. }))
                .len(),
            1
        );
        assert!(s.stops().is_empty(), "not decided yet");
        s.step(interim("What time"));
        assert_eq!(s.stops(), vec![(1, StopReason::BargeIn)]);
        assert_eq!(s.machine.state(), TurnState::UserSpeaking);
        s.talk(400);
        s.pause(200);
        s.step(final_("What time is it?", true));
        s.pause(20);
        assert_eq!(s.replies().last(), Some(&(2, user("What time is it?"))));
        assert_eq!(s.machine.counts().barge_ins, 1);
    }

    #[test]
    fn words_in_a_blip_too_short_for_speech_do_not_stop_the_reply() {
        let mut s = playing("It is ten past two.");
        s.talk(60);
        s.pause(60);
        s.step(final_("It is", false));
        s.step(interim("It is"));
        assert!(
            s.stops().is_empty(),
            "60 ms of voice may be the reply's echo"
        );
        s.speech = SpeechProgress::default();
        s.step(Input::Endpoint(EndpointEvent::Discarded {
            at_ms: s.now,
            voiced_ms: 60,
        }));
        assert!(s.did(&Action::ResumePlayback));
    }

    #[test]
    fn long_voice_over_a_reply_is_a_barge_in_before_its_words_are_known() {
        let mut s = playing("Sure, I can help you book that.");
        s.talk(680);
        assert!(s.stops().is_empty());
        s.talk(40);
        assert_eq!(s.stops(), vec![(1, StopReason::BargeIn)]);
    }

    #[test]
    fn a_backchannel_pauses_the_reply_only_until_it_is_heard_as_one() {
        let mut s = playing("Sure, I can help you book that.");
        s.talk(400);
        s.pause(60);
        s.step(final_("Okay.", true));
        assert!(s.did(&Action::ResumePlayback));
        assert_eq!(s.machine.state(), TurnState::Speaking);
        // The endpointer ends the "okay" later; nothing more comes of it.
        s.pause(540);
        s.stop();
        s.step(final_("Okay.", true));
        assert!(s.stops().is_empty());
        assert_eq!(s.replies().len(), 1);
        assert_eq!(s.machine.counts().false_interruptions, 1);
        s.step(Input::PlaybackFinished {
            turn: 1,
            at_ms: 3000,
            played: true,
        });
        assert!(s.machine.idle());
    }

    #[test]
    fn an_acknowledgement_already_heard_resumes_the_reply_as_soon_as_the_voice_stops() {
        let mut s = playing("Sure, I can help you book that.");
        s.talk(300);
        s.step(interim("Okay"));
        s.talk(100);
        assert!(!s.did(&Action::ResumePlayback), "still talking");
        s.pause(20);
        assert!(
            s.did(&Action::ResumePlayback),
            "resumed on the first silent frame"
        );
        // The pause's decode hears more than an acknowledgement: a barge-in after all.
        s.pause(60);
        s.step(final_("Okay, stop.", true));
        assert_eq!(s.machine.counts().barge_ins, 1);
    }

    #[test]
    fn talking_again_after_a_backchannel_pauses_the_reply_again() {
        let mut s = playing("Sure, I can help you book that.");
        s.talk(300);
        s.pause(60);
        s.step(final_("Yeah.", false));
        assert!(s.did(&Action::ResumePlayback));
        s.talk(300); // "… actually, no"
        let pauses = s
            .actions
            .iter()
            .filter(|a| **a == Action::PausePlayback)
            .count();
        assert_eq!(pauses, 2);
        s.step(interim("Yeah actually no"));
        assert_eq!(s.stops(), vec![(1, StopReason::BargeIn)]);
    }

    #[test]
    fn yes_said_over_a_question_is_an_answer() {
        let mut s = playing("Shall I book it?");
        s.talk(300);
        s.pause(60);
        s.step(final_("Yes.", true));
        assert_eq!(s.stops(), vec![(1, StopReason::BargeIn)]);
        s.pause(140);
        assert_eq!(s.replies().last(), Some(&(2, user("Yes."))));
    }

    #[test]
    fn yes_said_before_the_question_is_heard_is_a_backchannel() {
        let mut s = playing("So that's a haircut tomorrow at ten.");
        s.talk(300);
        s.pause(60);
        s.step(final_("Yes.", true));
        assert!(s.stops().is_empty());
        assert!(s.did(&Action::ResumePlayback));
    }

    #[test]
    fn noise_over_a_reply_resumes_it() {
        let mut s = playing("Sure, I can help you book that.");
        s.talk(100);
        s.speech = SpeechProgress::default();
        s.step(Input::Endpoint(EndpointEvent::Discarded {
            at_ms: 1000,
            voiced_ms: 100,
        }));
        assert!(s.did(&Action::ResumePlayback));
        assert_eq!(s.emitted(|e| matches!(e, Event::Noise { .. })).len(), 1);
    }

    #[test]
    fn a_reply_that_fails_is_reported_and_the_floor_returns() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(500);
        s.pause(200);
        s.step(final_("Where is my order?", true));
        s.step(Input::ReplyFailed {
            turn: 1,
            message: "the backend is down".into(),
        });
        assert_eq!(
            s.emitted(|e| matches!(e, Event::Error { .. })),
            vec![(
                s.now,
                Event::Error {
                    message: "the backend is down".into()
                }
            )]
        );
        s.step(Input::PlaybackFinished {
            turn: 1,
            at_ms: s.now,
            played: false,
        });
        assert!(s.machine.idle());
        assert_eq!(s.machine.state(), TurnState::Listening);
    }

    #[test]
    fn a_greeting_the_user_talks_over_before_it_plays_is_dropped() {
        let mut s = Script::new(TurnConfig {
            greet: true,
            ..Default::default()
        });
        s.step(Input::Start);
        assert_eq!(s.replies(), vec![(1, ReplyInput::Greeting)]);
        s.talk(600);
        assert_eq!(s.stops(), vec![(1, StopReason::Superseded)]);
        s.pause(200);
        s.step(final_("Book a table.", true));
        s.pause(20);
        assert_eq!(s.replies().last(), Some(&(2, user("Book a table."))));
        assert_eq!(s.machine.counts().user_turns, 1);
    }

    #[test]
    fn a_greeting_interrupted_while_playing_is_a_barge_in() {
        let mut s = Script::new(TurnConfig {
            greet: true,
            ..Default::default()
        });
        s.step(Input::Start);
        s.plays(1, "Hi, I'm Hark.");
        s.talk(200);
        s.step(interim("Book a"));
        assert_eq!(s.stops(), vec![(1, StopReason::BargeIn)]);
    }

    #[test]
    fn engine_errors_are_reported_and_the_turn_still_ends() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(600);
        s.step(Input::Recognizer(RecognizerEvent::Error {
            message: "connection reset".into(),
        }));
        s.pause(600);
        s.stop();
        s.step(final_("", true));
        assert_eq!(s.emitted(|e| matches!(e, Event::Error { .. })).len(), 1);
        assert!(
            s.replies().is_empty(),
            "nothing was heard, nothing is answered"
        );
        assert!(s.machine.idle());
    }

    #[test]
    fn going_on_before_the_reply_plays_gets_one_answer_for_both() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(800);
        s.pause(200);
        s.step(final_("I'd like to book.", true));
        assert_eq!(s.replies(), vec![(1, user("I'd like to book."))]);
        s.talk(600);
        assert_eq!(s.stops(), vec![(1, StopReason::Superseded)]);
        assert_eq!(s.machine.counts().user_turns, 0);
        s.pause(200);
        s.step(final_("A table for two.", true));
        s.pause(20);
        assert_eq!(
            s.replies().last(),
            Some(&(2, user("I'd like to book. A table for two.")))
        );
        assert_eq!(s.machine.counts().user_turns, 1);
    }

    #[test]
    fn going_on_just_after_an_early_end_is_the_same_turn_even_over_its_reply() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(400);
        s.pause(200);
        s.step(final_("Thanks.", true));
        assert_eq!(s.replies(), vec![(1, user("Thanks."))]);
        s.plays(1, "You said: Thanks.");
        s.wait(40);
        s.talk(800); // "… that's all", 240 ms after the voice ended
        assert_eq!(s.stops(), vec![(1, StopReason::Superseded)]);
        assert!(!s.did(&Action::PausePlayback));
        s.pause(200);
        s.step(final_("That's all.", true));
        assert_eq!(s.replies().last(), Some(&(2, user("Thanks. That's all."))));
        assert_eq!(s.machine.counts().user_turns, 1);
        assert_eq!(s.machine.counts().barge_ins, 0);
    }

    #[test]
    fn an_echo_taken_for_going_on_is_not_taken_so_twice() {
        // Without echo cancellation hark's reply comes back to the microphone within the
        // continuation window: the first time it looks like the user going on; once that
        // proved to be noise, voice over the re-answer pauses it like any interruption.
        let mut s = Script::new(TurnConfig::default());
        s.talk(400);
        s.pause(200);
        s.step(final_("Book a table.", true));
        s.plays(1, "Sure.");
        s.wait(40);
        s.talk(100);
        assert_eq!(s.stops(), vec![(1, StopReason::Superseded)]);
        s.speech = SpeechProgress::default();
        s.step(Input::Endpoint(EndpointEvent::Discarded {
            at_ms: s.now,
            voiced_ms: 100,
        }));
        assert_eq!(s.replies().last(), Some(&(2, user("Book a table."))));
        s.plays(2, "Sure.");
        s.wait(40);
        s.talk(100);
        assert_eq!(s.stops(), vec![(1, StopReason::Superseded)], "not again");
        assert!(s.did(&Action::PausePlayback));
    }

    #[test]
    fn an_owed_final_joins_the_utterance_that_started_before_it_came() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(800);
        s.pause(600);
        s.stop();
        s.wait(100);
        s.talk(400); // the user goes on; the first final is still owed
        s.step(final_("I want to", true));
        assert!(s.replies().is_empty());
        s.pause(200);
        s.step(final_("Change my booking.", true));
        s.pause(20);
        assert_eq!(s.replies(), vec![(1, user("I want to Change my booking."))]);
    }

    #[test]
    fn a_late_answer_is_acknowledged_once() {
        let mut s = Script::new(TurnConfig::default());
        s.talk(800);
        s.pause(600);
        s.stop();
        s.wait(800);
        assert!(!s.did(&Action::Acknowledge));
        s.wait(200);
        assert!(s.did(&Action::Acknowledge), "1.5 s after the voice ended");
        s.step(final_("Where is my order?", true));
        s.wait(2000);
        let acks = s
            .actions
            .iter()
            .filter(|a| **a == Action::Acknowledge)
            .count();
        assert_eq!(acks, 1);
    }

    #[test]
    fn silence_after_a_reply_is_asked_about_after_a_while() {
        let mut s = playing("Which day?");
        s.step(Input::PlaybackFinished {
            turn: 1,
            at_ms: s.now,
            played: true,
        });
        s.wait(6980);
        assert_eq!(s.replies().len(), 1);
        s.wait(20);
        assert_eq!(s.replies().last(), Some(&(2, ReplyInput::Silence)));
    }

    #[test]
    fn states_are_logged_as_they_change() {
        let s = playing("Sure.");
        let states: Vec<TurnState> = s
            .emitted(|e| matches!(e, Event::State { .. }))
            .into_iter()
            .map(|(_, e)| match e {
                Event::State { to, .. } => to,
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            states,
            vec![
                TurnState::UserSpeaking,
                TurnState::Thinking,
                TurnState::Speaking
            ]
        );
    }
}
