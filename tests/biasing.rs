//! Contextual biasing: Whisper tiny.en transcribing requests spoken by espeak-ng (a voice
//! it finds hard), without a prompt and with the responder's expected vocabulary as the
//! prompt. The vocabulary must not raise the word error rate, and must keep sentence
//! punctuation (the endpointer reads it).

mod common;

use hark::dialogue::builtin::KeywordResponder;
use hark::dialogue::Brain;
use hark::stt::bias::vocabulary_prompt;
use hark::stt::wer::word_errors;
use hark::stt::{TranscribeOptions, Transcriber};
use hark::tts::{self, VoiceKind};

#[test]
fn expected_vocabulary_helps_recognition_and_keeps_punctuation() {
    let models = common::models();
    let mut voice = tts::open_voice(VoiceKind::Espeak, &models, 2).unwrap();
    let mut session = common::whisper().session().unwrap();
    let prompt =
        vocabulary_prompt(&KeywordResponder::new().expected_phrases(), 300).expect("a vocabulary");
    let sentences: Vec<String> =
        std::fs::read_to_string(common::root().join("assets/sentences/service.txt"))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect();
    let (mut plain_errors, mut biased_errors, mut words, mut punctuated) = (0, 0, 0, 0);
    for sentence in &sentences {
        let speech = voice.synthesize(sentence).unwrap();
        let speech = hark::audio::resample::resample(&speech, voice.sample_rate(), 16_000).unwrap();
        let plain = session
            .transcribe(&speech, &TranscribeOptions::default())
            .unwrap()
            .text;
        let options = TranscribeOptions {
            prompt: Some(prompt.clone()),
            ..Default::default()
        };
        let biased = session.transcribe(&speech, &options).unwrap().text;
        let (e_plain, n) = word_errors(sentence, &plain);
        let (e_biased, _) = word_errors(sentence, &biased);
        eprintln!(
            "{sentence:?}\n   plain  {plain:?} ({e_plain})\n   biased {biased:?} ({e_biased})"
        );
        plain_errors += e_plain;
        biased_errors += e_biased;
        words += n;
        punctuated += usize::from(biased.trim_end().ends_with(['.', '?', '!']));
    }
    let wer = |e: usize| 100.0 * e as f64 / words as f64;
    eprintln!(
        "espeak speech, {} requests: WER {:.1} % without the vocabulary prompt, {:.1} % with it",
        sentences.len(),
        wer(plain_errors),
        wer(biased_errors)
    );
    // Measured here: 12.7 % → 11.4 %. A tie is allowed (the gain is a few words on 12
    // sentences); making recognition worse is not.
    assert!(
        biased_errors <= plain_errors,
        "the prompt made recognition worse: {biased_errors} vs {plain_errors} errors"
    );
    assert_eq!(
        punctuated,
        sentences.len(),
        "biased transcripts must keep closing punctuation"
    );
}
