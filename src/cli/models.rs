//! `hark models`: list, download, convert and quantize model files.

use std::path::Path;

use std::io::Write;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use hark::models::{self, fetch, ModelDir, WHISPER_CATALOG};

pub fn models_list(models: &ModelDir) -> Result<()> {
    println!("models folder: {}", models.root.display());
    println!("{:<12} {:>8}  {:<9} status", "whisper", "size", "language");
    for entry in WHISPER_CATALOG {
        let path = models.whisper(entry.name);
        let status = if path.exists() { "installed" } else { "-" };
        let language = if entry.english_only {
            "English"
        } else {
            "multi"
        };
        println!(
            "{:<12} {:>5} MiB  {:<9} {status}",
            entry.name, entry.size_mib, language
        );
        let quantized = models::convert::quantize::quantized_name(entry.name);
        if let Ok(meta) = std::fs::metadata(models.whisper(&quantized)) {
            println!(
                "{:<12} {:>5} MiB  {:<9} installed (hark models quantize {})",
                quantized,
                meta.len() / 1_048_576,
                language,
                entry.name
            );
        }
    }
    for (what, path) in [
        ("piper voice", models.piper_voice(models::PIPER_VOICE)),
        ("onnxruntime", models.onnxruntime()),
        ("sentence encoder", models.sentence_encoder()),
        ("slot tagger", models.slot_tagger()),
        ("end-of-turn model", models.smart_turn()),
    ] {
        let status = if path.exists() {
            "installed"
        } else {
            "missing"
        };
        println!("{what:<16} {status:<9} {}", path.display());
    }
    Ok(())
}

pub fn models_fetch(models: &ModelDir, name: &str) -> Result<()> {
    let entry = models::whisper_catalog_entry(name)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    eprintln!(
        "downloading {} ({} MiB) from {}",
        entry.file_name(),
        entry.size_mib,
        entry.url()
    );
    let mut last_percent = u64::MAX;
    let mut progress = |received: u64, total: Option<u64>| {
        let percent = total.map_or(0, |t| received * 100 / t.max(1));
        if percent != last_percent {
            last_percent = percent;
            let filled = (percent / 5) as usize;
            eprint!(
                "\r[{}{}] {:>3}% {:>7.1} MiB",
                "#".repeat(filled),
                " ".repeat(20 - filled.min(20)),
                percent,
                received as f64 / 1048576.0
            );
            let _ = std::io::stderr().flush();
        }
    };
    let path = runtime.block_on(fetch::fetch_whisper(entry, models, &mut progress))?;
    eprintln!();
    println!("{} (sha1 verified)", path.display());
    Ok(())
}

pub fn models_quantize(models: &ModelDir, name: &str) -> Result<()> {
    let input = models.whisper(name);
    let output = models.whisper(&models::convert::quantize::quantized_name(name));
    let report = models::convert::quantize::quantize_q8_0(&input, &output)
        .with_context(|| format!("quantizing {}", input.display()))?;
    println!(
        "{}: {} matrices in Q8_0, {} tensors kept, {:.1} → {:.1} MiB",
        output.display(),
        report.quantized,
        report.kept,
        report.bytes_in as f64 / 1048576.0,
        report.bytes_out as f64 / 1048576.0
    );
    Ok(())
}

pub fn models_import(models: &ModelDir, dir: &Path, name: &str) -> Result<()> {
    let out = models.whisper(name);
    let start = Instant::now();
    let report = models::convert::ggml::convert_ct2_whisper(dir, &out)
        .with_context(|| format!("converting {} to {}", dir.display(), out.display()))?;
    let expected = models::convert::ggml::expected_tensor_count(&report.hparams);
    if report.tensor_count != expected {
        bail!(
            "wrote {} tensors but whisper.cpp expects {expected}",
            report.tensor_count
        );
    }
    let hp = report.hparams;
    println!(
        "{}: {} tensors, {:.1} MiB, {} audio / {} text layers of width {}, vocabulary {} ({:.1} s; largest dropped key bias {:.2e})",
        out.display(),
        report.tensor_count,
        report.bytes_written as f64 / 1048576.0,
        hp.n_audio_layer,
        hp.n_text_layer,
        hp.n_audio_state,
        hp.n_vocab,
        start.elapsed().as_secs_f64(),
        report.max_dropped_key_bias
    );
    Ok(())
}
