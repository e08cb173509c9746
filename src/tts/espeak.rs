//! espeak-ng: the fallback voice, and the phonemizer Piper voices are trained on.
//!
//! libespeak-ng keeps global state and is not thread-safe, so every call goes through one
//! process-wide lock. The few functions used are declared here from `speak_lib.h`, whose
//! ABI has been stable since espeak 1.x; this avoids a bindgen build (and libclang) for them.

use std::ffi::{c_char, c_int, c_short, c_uint, c_void, CStr, CString};
use std::sync::Mutex;

use super::{TtsError, Voice};

mod ffi {
    use super::*;

    pub const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
    pub const POS_CHARACTER: c_int = 1;
    pub const ESPEAK_CHARS_UTF8: c_int = 1;
    /// Adds the sentence-final pause, so concatenated sentences do not run together.
    pub const ESPEAK_ENDPAUSE: c_int = 0x1000;
    pub const ESPEAK_PHONEMES_IPA: c_int = 0x02;
    pub const ESPEAK_INITIALIZE_DONT_EXIT: c_int = 0x8000;
    pub const ESPEAK_RATE: c_int = 1;
    pub const EE_OK: c_int = 0;

    /// Only the fields read here; the union at the end is never touched, and libespeak
    /// allocates these, so a partial layout is fine as long as the prefix matches.
    #[repr(C)]
    pub struct EspeakEvent {
        pub kind: c_int,
        pub unique_identifier: c_uint,
        pub text_position: c_int,
        pub length: c_int,
        pub audio_position: c_int,
        pub sample: c_int,
        pub user_data: *mut c_void,
    }

    pub type SynthCallback = unsafe extern "C" fn(*mut c_short, c_int, *mut EspeakEvent) -> c_int;

    #[link(name = "espeak-ng")]
    extern "C" {
        pub fn espeak_Initialize(
            output: c_int,
            buflength: c_int,
            path: *const c_char,
            options: c_int,
        ) -> c_int;
        pub fn espeak_SetVoiceByName(name: *const c_char) -> c_int;
        pub fn espeak_SetParameter(parameter: c_int, value: c_int, relative: c_int) -> c_int;
        pub fn espeak_SetSynthCallback(callback: SynthCallback);
        pub fn espeak_Synth(
            text: *const c_void,
            size: usize,
            position: c_uint,
            position_type: c_int,
            end_position: c_uint,
            flags: c_uint,
            unique_identifier: *mut c_uint,
            user_data: *mut c_void,
        ) -> c_int;
        pub fn espeak_TextToPhonemes(
            textptr: *mut *const c_void,
            textmode: c_int,
            phonememode: c_int,
        ) -> *const c_char;
    }
}

/// The lock around libespeak-ng; holds its sample rate once initialised.
static ESPEAK: Mutex<Option<u32>> = Mutex::new(None);

/// Runs `f` with libespeak-ng initialised and locked. Returns espeak's output sample rate too.
fn with_espeak<T>(f: impl FnOnce(u32) -> Result<T, TtsError>) -> Result<T, TtsError> {
    let mut guard = ESPEAK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let rate = match *guard {
        Some(rate) => rate,
        None => {
            // SAFETY: called under the lock; a null path means espeak's compiled-in data dir.
            let rate = unsafe {
                ffi::espeak_Initialize(
                    ffi::AUDIO_OUTPUT_SYNCHRONOUS,
                    0,
                    std::ptr::null(),
                    ffi::ESPEAK_INITIALIZE_DONT_EXIT,
                )
            };
            if rate <= 0 {
                return Err(TtsError::Espeak(
                    "espeak_Initialize could not load its data".into(),
                ));
            }
            // SAFETY: the callback only touches the buffer we pass as user data.
            unsafe { ffi::espeak_SetSynthCallback(collect_samples) };
            *guard = Some(rate as u32);
            rate as u32
        }
    };
    f(rate)
}

unsafe extern "C" fn collect_samples(
    wav: *mut c_short,
    count: c_int,
    events: *mut ffi::EspeakEvent,
) -> c_int {
    if wav.is_null() || count <= 0 || events.is_null() {
        return 0;
    }
    // SAFETY: espeak passes back the user_data given to espeak_Synth, a live &mut Vec<i16>,
    // and `wav` holds `count` samples for the duration of this call.
    let sink = (*events).user_data as *mut Vec<i16>;
    if !sink.is_null() {
        (*sink).extend_from_slice(std::slice::from_raw_parts(wav, count as usize));
    }
    0
}

fn set_voice(voice: &CStr) -> Result<(), TtsError> {
    // SAFETY: called under the espeak lock with a valid C string.
    let rc = unsafe { ffi::espeak_SetVoiceByName(voice.as_ptr()) };
    if rc != ffi::EE_OK {
        return Err(TtsError::Espeak(format!("no espeak voice named {voice:?}")));
    }
    Ok(())
}

fn c_text(text: &str) -> CString {
    // Interior NULs cannot reach C; they carry nothing speakable anyway.
    CString::new(text.replace('\0', " ")).expect("NULs were removed")
}

/// Clause-ending punctuation Piper voices have phoneme ids for.
fn is_clause_punctuation(c: char) -> bool {
    matches!(c, '.' | ',' | '?' | '!' | ';' | ':')
}

/// Text → IPA phonemes, clause by clause, with each clause's punctuation put back.
///
/// espeak-ng 1.51's `espeak_TextToPhonemes` drops the punctuation that ends a clause, and
/// Piper voices rely on it for pauses and question intonation, so the text is cut at
/// punctuation here and the mark re-appended after each clause's phonemes.
pub fn phonemize(text: &str, voice: &str) -> Result<String, TtsError> {
    let voice = c_text(voice);
    let clauses = split_clauses(text);
    with_espeak(|_| {
        set_voice(&voice)?;
        let mut out = String::new();
        for (clause, punctuation) in clauses {
            let c_clause = c_text(&clause);
            let mut cursor: *const c_void = c_clause.as_ptr() as *const c_void;
            let mut phonemes = String::new();
            while !cursor.is_null() {
                // SAFETY: under the lock; `cursor` points into `c_clause`, which outlives the
                // loop, and espeak advances it (or nulls it) as it consumes the text.
                let result = unsafe {
                    ffi::espeak_TextToPhonemes(
                        &mut cursor,
                        ffi::ESPEAK_CHARS_UTF8,
                        ffi::ESPEAK_PHONEMES_IPA,
                    )
                };
                if result.is_null() {
                    break;
                }
                // SAFETY: espeak returns a NUL-terminated string valid until the next call.
                let part = unsafe { CStr::from_ptr(result) }.to_string_lossy();
                let part = part.trim();
                if !part.is_empty() {
                    if !phonemes.is_empty() {
                        phonemes.push(' ');
                    }
                    phonemes.push_str(part);
                }
            }
            if phonemes.is_empty() && punctuation.is_none() {
                continue;
            }
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(&phonemes);
            if let Some(p) = punctuation {
                out.push(p);
            }
        }
        Ok(out)
    })
}

/// Splits at clause punctuation that is followed by whitespace or the end (so "3.5" and
/// "example.com" stay whole). Returns each clause with its punctuation mark.
fn split_clauses(text: &str) -> Vec<(String, Option<char>)> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let ends = is_clause_punctuation(c) && chars.peek().is_none_or(|n| n.is_whitespace());
        if ends {
            let clause = current.trim().to_string();
            // A bare mark ("?!", "...") adds nothing after the first one.
            if !clause.is_empty() {
                out.push((clause, Some(c)));
            }
            current.clear();
        } else {
            current.push(c);
        }
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push((rest.to_string(), None));
    }
    out
}

/// espeak-ng speaking directly: no model file, robotic but intelligible, and very fast.
pub struct EspeakVoice {
    voice: CString,
    words_per_minute: i32,
    sample_rate: u32,
}

impl EspeakVoice {
    pub fn new(voice: &str, words_per_minute: i32) -> Result<Self, TtsError> {
        let voice = c_text(voice);
        let sample_rate = with_espeak(|rate| {
            set_voice(&voice)?;
            Ok(rate)
        })?;
        Ok(Self {
            voice,
            words_per_minute,
            sample_rate,
        })
    }
}

impl Voice for EspeakVoice {
    fn name(&self) -> &str {
        "espeak"
    }

    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    fn synthesize(&mut self, sentence: &str) -> Result<Vec<f32>, TtsError> {
        let text = c_text(sentence);
        let mut samples: Vec<i16> = Vec::new();
        with_espeak(|_| {
            set_voice(&self.voice)?;
            // SAFETY: under the lock; synchronous mode returns only after every callback ran,
            // so `samples` outlives its use as user data.
            let rc = unsafe {
                ffi::espeak_SetParameter(ffi::ESPEAK_RATE, self.words_per_minute, 0);
                ffi::espeak_Synth(
                    text.as_ptr() as *const c_void,
                    text.as_bytes().len() + 1,
                    0,
                    ffi::POS_CHARACTER,
                    0,
                    (ffi::ESPEAK_CHARS_UTF8 | ffi::ESPEAK_ENDPAUSE) as c_uint,
                    std::ptr::null_mut(),
                    &mut samples as *mut Vec<i16> as *mut c_void,
                )
            };
            if rc != ffi::EE_OK {
                return Err(TtsError::Espeak(format!("espeak_Synth returned {rc}")));
            }
            Ok(())
        })?;
        Ok(samples.iter().map(|&s| s as f32 / 32768.0).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clauses_keep_their_punctuation() {
        assert_eq!(
            split_clauses("Hello, world. Is it 3.5? Yes"),
            vec![
                ("Hello".to_string(), Some(',')),
                ("world".to_string(), Some('.')),
                ("Is it 3.5".to_string(), Some('?')),
                ("Yes".to_string(), None),
            ]
        );
    }
}
