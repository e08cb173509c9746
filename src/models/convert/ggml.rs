//! Converts a CTranslate2 Whisper model (as shipped in registry packages) into whisper.cpp's
//! ggml file, so the offline path needs nothing but a registry download.
//!
//! The ggml layout is the one `convert-pt-to-ggml.py` writes: magic, 11 i32 hyper-parameters,
//! the mel filterbank, the byte-level vocabulary, then tensors as
//! (i32 n_dims, i32 name length, i32 type, dims innermost-first, name, raw data).

use std::collections::{BTreeSet, HashMap};
use std::io::{BufWriter, Write};
use std::path::Path;

use super::ct2::{Ct2Model, Ct2Variable};
use super::mel::slaney_mel_filterbank;
use crate::models::ModelError;

pub const GGML_MAGIC: u32 = 0x6767_6d6c;
/// whisper.cpp adds the special tokens itself; the file carries the BPE tokens only.
const GGML_VOCAB_TOKENS: usize = 50256;
const N_FFT: usize = 400;
const SAMPLE_RATE: f64 = 16000.0;

/// Whisper hyper-parameters, read from the tensors rather than trusted from a config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperHparams {
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
}

/// What a conversion produced, for the CLI to report.
#[derive(Debug, Clone)]
pub struct ConversionReport {
    pub hparams: WhisperHparams,
    pub tensor_count: usize,
    pub bytes_written: u64,
    /// Largest |value| among the key biases that whisper.cpp has no slot for. Dropping a key
    /// bias is exact (it adds the same q·b to every key's score, which softmax cancels), but a
    /// large value would mean the source is not what we think it is.
    pub max_dropped_key_bias: f32,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OutType {
    F32,
    F16,
}

struct Tensor {
    name: String,
    /// Row-major (numpy order) dimensions.
    dims: Vec<usize>,
    out: OutType,
    values: TensorValues,
}

enum TensorValues {
    /// Raw little-endian f16 bits, copied without rounding.
    F16Bits(Vec<u16>),
    F32(Vec<f32>),
}

/// Converts `ct2_dir` (model.bin + vocabulary.txt) into a ggml file at `out_path`.
/// The file is written to a temporary name and renamed, so a failure (full disk) never
/// leaves a half-written model where the loader would find it.
pub fn convert_ct2_whisper(
    ct2_dir: &Path,
    out_path: &Path,
) -> Result<ConversionReport, ModelError> {
    let model = Ct2Model::open(&ct2_dir.join("model.bin"))?;
    if model.spec != "WhisperSpec" {
        return Err(ModelError::Format(format!(
            "{} holds a {} model, not Whisper",
            ct2_dir.display(),
            model.spec
        )));
    }
    let vocabulary = super::ct2::read_to_string(&ct2_dir.join("vocabulary.txt"))?;
    let hparams = read_hparams(&model)?;
    let (tensors, max_dropped_key_bias) = build_tensors(&model, &hparams)?;
    let tokens = decode_vocabulary(&vocabulary)?;

    if let Some(parent) = out_path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
    }
    let tmp = out_path.with_extension("bin.partial");
    let written = write_ggml(&tmp, &hparams, &tokens, &tensors).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    std::fs::rename(&tmp, out_path).map_err(|e| ModelError::io(out_path, e))?;
    Ok(ConversionReport {
        hparams,
        tensor_count: tensors.len(),
        bytes_written: written,
        max_dropped_key_bias,
    })
}

fn scalar_i64(model: &Ct2Model, name: &str) -> Result<i64, ModelError> {
    let v = model.require(name)?;
    let b = &v.bytes;
    Ok(match (v.dtype.size(), b.len()) {
        (1, 1) => b[0] as i8 as i64,
        (2, 2) => i16::from_le_bytes([b[0], b[1]]) as i64,
        (4, 4) => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
        _ => {
            return Err(ModelError::Format(format!(
                "{name} is not an integer scalar"
            )))
        }
    })
}

/// Number of `prefix/layer_N/` blocks. Matches `layer_<digits>/` exactly, so the sibling
/// `prefix/layer_norm` is not miscounted as a block.
fn count_layers(model: &Ct2Model, prefix: &str) -> usize {
    let mut indices = BTreeSet::new();
    let lead = format!("{prefix}/layer_");
    for name in model.variables.keys() {
        if let Some(rest) = name.strip_prefix(&lead) {
            if let Some((index, _)) = rest.split_once('/') {
                if let Ok(i) = index.parse::<usize>() {
                    indices.insert(i);
                }
            }
        }
    }
    indices.len()
}

fn dim(v: &Ct2Variable, i: usize, name: &str) -> Result<usize, ModelError> {
    v.dims
        .get(i)
        .copied()
        .ok_or_else(|| ModelError::Format(format!("{name} has shape {:?}", v.dims)))
}

pub fn read_hparams(model: &Ct2Model) -> Result<WhisperHparams, ModelError> {
    let emb = model.require("decoder/embeddings/weight")?;
    let enc_pos = model.require("encoder/position_encodings/encodings")?;
    let dec_pos = model.require("decoder/position_encodings/encodings")?;
    let conv1 = model.require("encoder/conv1/weight")?;
    Ok(WhisperHparams {
        n_vocab: dim(emb, 0, "decoder/embeddings/weight")?,
        n_audio_ctx: dim(enc_pos, 0, "encoder positions")?,
        n_audio_state: dim(enc_pos, 1, "encoder positions")?,
        n_audio_head: scalar_i64(model, "encoder/num_heads")? as usize,
        n_audio_layer: count_layers(model, "encoder"),
        n_text_ctx: dim(dec_pos, 0, "decoder positions")?,
        n_text_state: dim(dec_pos, 1, "decoder positions")?,
        n_text_head: scalar_i64(model, "decoder/num_heads")? as usize,
        n_text_layer: count_layers(model, "decoder"),
        n_mels: dim(conv1, 1, "encoder/conv1/weight")?,
    })
}

/// Rows `[start, end)` of a row-major matrix or vector, as a new tensor.
fn rows(
    model: &Ct2Model,
    src: &str,
    start: usize,
    end: usize,
    name: String,
    out: OutType,
) -> Result<Tensor, ModelError> {
    let v = model.require(src)?;
    let total_rows = dim(v, 0, src)?;
    if end > total_rows {
        return Err(ModelError::Format(format!(
            "{src} has {total_rows} rows, cannot take {start}..{end}"
        )));
    }
    let row_len: usize = v.dims[1..].iter().product();
    let mut dims = v.dims.clone();
    dims[0] = end - start;
    let values = v.to_f32(src)?;
    let slice = &values[start * row_len..end * row_len];
    Ok(make_tensor(name, dims, out, v, slice, start * row_len))
}

fn make_tensor(
    name: String,
    dims: Vec<usize>,
    out: OutType,
    src: &Ct2Variable,
    values: &[f32],
    offset: usize,
) -> Tensor {
    let values = match (out, src.dtype) {
        (OutType::F16, super::ct2::Ct2Dtype::F16) => {
            // Copy the half-precision bits untouched: no double rounding.
            let bits = src
                .bytes
                .chunks_exact(2)
                .skip(offset)
                .take(values.len())
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            TensorValues::F16Bits(bits)
        }
        (OutType::F16, _) => TensorValues::F16Bits(values.iter().map(|&x| f32_to_f16(x)).collect()),
        (OutType::F32, _) => TensorValues::F32(values.to_vec()),
    };
    Tensor {
        name,
        dims,
        out,
        values,
    }
}

fn whole(model: &Ct2Model, src: &str, name: &str) -> Result<Tensor, ModelError> {
    let v = model.require(src)?;
    let out = if v.dims.len() >= 2 {
        OutType::F16
    } else {
        OutType::F32
    };
    let values = v.to_f32(src)?;
    Ok(make_tensor(
        name.to_string(),
        v.dims.clone(),
        out,
        v,
        &values,
        0,
    ))
}

fn layer_norm(model: &Ct2Model, src: &str, dst: &str) -> Result<[Tensor; 2], ModelError> {
    Ok([
        whole(model, &format!("{src}/gamma"), &format!("{dst}.weight"))?,
        whole(model, &format!("{src}/beta"), &format!("{dst}.bias"))?,
    ])
}

fn linear(model: &Ct2Model, src: &str, dst: &str) -> Result<[Tensor; 2], ModelError> {
    Ok([
        whole(model, &format!("{src}/weight"), &format!("{dst}.weight"))?,
        whole(model, &format!("{src}/bias"), &format!("{dst}.bias"))?,
    ])
}

/// Splits a fused projection (`parts` × `state` rows) into named linears. A `None` bias name
/// drops that part's bias (keys), returning the largest magnitude dropped.
fn split_linear(
    model: &Ct2Model,
    src: &str,
    state: usize,
    parts: &[(&str, bool)],
    out: &mut Vec<Tensor>,
) -> Result<f32, ModelError> {
    let weight = format!("{src}/weight");
    let bias = format!("{src}/bias");
    let fused = model.require(&weight)?;
    if dim(fused, 0, &weight)? != state * parts.len() {
        return Err(ModelError::Format(format!(
            "{weight} has shape {:?}, expected {} rows",
            fused.dims,
            state * parts.len()
        )));
    }
    let bias_values = model.require(&bias)?.to_f32(&bias)?;
    let mut dropped = 0f32;
    for (i, (dst, keep_bias)) in parts.iter().enumerate() {
        let (a, b) = (i * state, (i + 1) * state);
        out.push(rows(
            model,
            &weight,
            a,
            b,
            format!("{dst}.weight"),
            OutType::F16,
        )?);
        if *keep_bias {
            out.push(rows(
                model,
                &bias,
                a,
                b,
                format!("{dst}.bias"),
                OutType::F32,
            )?);
        } else {
            dropped = bias_values[a..b]
                .iter()
                .fold(dropped, |m, x| m.max(x.abs()));
        }
    }
    Ok(dropped)
}

/// Every tensor whisper.cpp reads, in its order, and the largest key bias dropped on the way.
fn build_tensors(model: &Ct2Model, hp: &WhisperHparams) -> Result<(Vec<Tensor>, f32), ModelError> {
    let mut t = Vec::new();
    let mut dropped = 0f32;
    push_outside_blocks(model, &mut t)?;
    for i in 0..hp.n_audio_layer {
        let s = format!("encoder/layer_{i}");
        let d = format!("encoder.blocks.{i}");
        let key_bias = push_self_attention(model, &s, &d, hp.n_audio_state, &mut t)?;
        dropped = dropped.max(key_bias);
        push_mlp(model, &s, &d, &mut t)?;
    }
    for i in 0..hp.n_text_layer {
        let s = format!("decoder/layer_{i}");
        let d = format!("decoder.blocks.{i}");
        let key_bias = push_self_attention(model, &s, &d, hp.n_text_state, &mut t)?;
        dropped = dropped.max(key_bias);
        let key_bias = push_cross_attention(model, &s, &d, hp.n_text_state, &mut t)?;
        dropped = dropped.max(key_bias);
        push_mlp(model, &s, &d, &mut t)?;
    }
    Ok((t, dropped))
}

/// The tensors outside the blocks: the convolutions, the positional embeddings, the final
/// layer norms and the token embedding.
fn push_outside_blocks(model: &Ct2Model, t: &mut Vec<Tensor>) -> Result<(), ModelError> {
    for conv in ["conv1", "conv2"] {
        t.push(whole(
            model,
            &format!("encoder/{conv}/weight"),
            &format!("encoder.{conv}.weight"),
        )?);
        // whisper.cpp adds the bias to a (frames × channels) result, so it wants (channels, 1).
        let src = format!("encoder/{conv}/bias");
        let v = model.require(&src)?;
        let values = v.to_f32(&src)?;
        t.push(make_tensor(
            format!("encoder.{conv}.bias"),
            vec![values.len(), 1],
            OutType::F32,
            v,
            &values,
            0,
        ));
    }
    for (side, dst) in [("encoder", "encoder"), ("decoder", "decoder")] {
        let src = format!("{side}/position_encodings/encodings");
        let v = model.require(&src)?;
        let values = v.to_f32(&src)?;
        t.push(make_tensor(
            format!("{dst}.positional_embedding"),
            v.dims.clone(),
            OutType::F32,
            v,
            &values,
            0,
        ));
    }
    t.extend(layer_norm(model, "encoder/layer_norm", "encoder.ln_post")?);
    t.extend(layer_norm(model, "decoder/layer_norm", "decoder.ln")?);
    t.push(whole(
        model,
        "decoder/embeddings/weight",
        "decoder.token_embedding.weight",
    )?);
    Ok(())
}

/// A block's self-attention (source layer `s`, ggml block `d`): its layer norm, the fused
/// query/key/value split and the output; returns the largest magnitude of the key bias dropped.
fn push_self_attention(
    model: &Ct2Model,
    s: &str,
    d: &str,
    state: usize,
    t: &mut Vec<Tensor>,
) -> Result<f32, ModelError> {
    t.extend(layer_norm(
        model,
        &format!("{s}/self_attention/layer_norm"),
        &format!("{d}.attn_ln"),
    )?);
    let dropped = split_linear(
        model,
        &format!("{s}/self_attention/linear_0"),
        state,
        &[
            (&format!("{d}.attn.query"), true),
            (&format!("{d}.attn.key"), false),
            (&format!("{d}.attn.value"), true),
        ],
        t,
    )?;
    t.extend(linear(
        model,
        &format!("{s}/self_attention/linear_1"),
        &format!("{d}.attn.out"),
    )?);
    Ok(dropped)
}

/// A decoder block's cross-attention: its layer norm, the query, the fused key/value split and
/// the output; returns the largest magnitude of the key bias dropped.
fn push_cross_attention(
    model: &Ct2Model,
    s: &str,
    d: &str,
    state: usize,
    t: &mut Vec<Tensor>,
) -> Result<f32, ModelError> {
    t.extend(layer_norm(
        model,
        &format!("{s}/attention/layer_norm"),
        &format!("{d}.cross_attn_ln"),
    )?);
    t.extend(linear(
        model,
        &format!("{s}/attention/linear_0"),
        &format!("{d}.cross_attn.query"),
    )?);
    let dropped = split_linear(
        model,
        &format!("{s}/attention/linear_1"),
        state,
        &[
            (&format!("{d}.cross_attn.key"), false),
            (&format!("{d}.cross_attn.value"), true),
        ],
        t,
    )?;
    t.extend(linear(
        model,
        &format!("{s}/attention/linear_2"),
        &format!("{d}.cross_attn.out"),
    )?);
    Ok(dropped)
}

/// A block's feed-forward network: its layer norm and its two linears.
fn push_mlp(model: &Ct2Model, s: &str, d: &str, t: &mut Vec<Tensor>) -> Result<(), ModelError> {
    t.extend(layer_norm(
        model,
        &format!("{s}/ffn/layer_norm"),
        &format!("{d}.mlp_ln"),
    )?);
    t.extend(linear(
        model,
        &format!("{s}/ffn/linear_0"),
        &format!("{d}.mlp.0"),
    )?);
    t.extend(linear(
        model,
        &format!("{s}/ffn/linear_1"),
        &format!("{d}.mlp.2"),
    )?);
    Ok(())
}

/// The number of tensors whisper.cpp expects for these hyper-parameters.
pub fn expected_tensor_count(hp: &WhisperHparams) -> usize {
    // encoder: 2 convs × (w, b) + positions + ln_post (w, b) = 7; 15 per encoder block.
    // decoder: positions + token embedding + ln (w, b) = 4; 24 per decoder block.
    7 + 15 * hp.n_audio_layer + 4 + 24 * hp.n_text_layer
}

/// GPT-2's reversible byte ↔ printable-character table, inverted: char → byte.
fn gpt2_unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = ('!' as u32..='~' as u32)
        .chain('¡' as u32..='¬' as u32)
        .chain('®' as u32..='ÿ' as u32)
        .collect();
    let mut chars = printable.clone();
    let mut extra = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            printable.push(b);
            chars.push(256 + extra);
            extra += 1;
        }
    }
    printable
        .into_iter()
        .zip(chars)
        .filter_map(|(b, c)| char::from_u32(c).map(|c| (c, b as u8)))
        .collect()
}

/// The first 50256 byte-level BPE tokens of `vocabulary.txt`, decoded to raw bytes.
pub fn decode_vocabulary(vocabulary: &str) -> Result<Vec<Vec<u8>>, ModelError> {
    let table = gpt2_unicode_to_byte();
    let lines: Vec<&str> = vocabulary.lines().take(GGML_VOCAB_TOKENS).collect();
    if lines.len() < GGML_VOCAB_TOKENS {
        return Err(ModelError::Format(format!(
            "vocabulary.txt has {} tokens, expected at least {GGML_VOCAB_TOKENS}",
            lines.len()
        )));
    }
    lines
        .iter()
        .enumerate()
        .map(|(i, token)| {
            token
                .chars()
                .map(|c| {
                    table.get(&c).copied().ok_or_else(|| {
                        ModelError::Format(format!(
                            "vocabulary token {i} ({token:?}) is not byte-level BPE"
                        ))
                    })
                })
                .collect()
        })
        .collect()
}

fn write_ggml(
    path: &Path,
    hp: &WhisperHparams,
    tokens: &[Vec<u8>],
    tensors: &[Tensor],
) -> Result<u64, ModelError> {
    let file = std::fs::File::create(path).map_err(|e| ModelError::io(path, e))?;
    let mut w = CountingWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        written: 0,
    };
    let io = |e| ModelError::io(path, e);
    let i32s = |w: &mut CountingWriter<_>, values: &[usize]| -> std::io::Result<()> {
        for &v in values {
            w.write_all(&(v as i32).to_le_bytes())?;
        }
        Ok(())
    };
    w.write_all(&GGML_MAGIC.to_le_bytes()).map_err(io)?;
    i32s(
        &mut w,
        &[
            hp.n_vocab,
            hp.n_audio_ctx,
            hp.n_audio_state,
            hp.n_audio_head,
            hp.n_audio_layer,
            hp.n_text_ctx,
            hp.n_text_state,
            hp.n_text_head,
            hp.n_text_layer,
            hp.n_mels,
            1, // ftype: matrices in f16
        ],
    )
    .map_err(io)?;

    let n_freq = N_FFT / 2 + 1;
    let filters = slaney_mel_filterbank(SAMPLE_RATE, N_FFT, hp.n_mels);
    i32s(&mut w, &[hp.n_mels, n_freq]).map_err(io)?;
    for v in &filters {
        w.write_all(&v.to_le_bytes()).map_err(io)?;
    }

    i32s(&mut w, &[tokens.len()]).map_err(io)?;
    for token in tokens {
        i32s(&mut w, &[token.len()]).map_err(io)?;
        w.write_all(token).map_err(io)?;
    }

    for t in tensors {
        let ftype = match t.out {
            OutType::F32 => 0,
            OutType::F16 => 1,
        };
        i32s(&mut w, &[t.dims.len(), t.name.len(), ftype]).map_err(io)?;
        let reversed: Vec<usize> = t.dims.iter().rev().copied().collect();
        i32s(&mut w, &reversed).map_err(io)?;
        w.write_all(t.name.as_bytes()).map_err(io)?;
        match &t.values {
            TensorValues::F16Bits(bits) => {
                for b in bits {
                    w.write_all(&b.to_le_bytes()).map_err(io)?;
                }
            }
            TensorValues::F32(values) => {
                for v in values {
                    w.write_all(&v.to_le_bytes()).map_err(io)?;
                }
            }
        }
    }
    w.inner.flush().map_err(io)?;
    w.inner.get_ref().sync_all().map_err(io)?;
    Ok(w.written)
}

struct CountingWriter<W: Write> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Single → half precision, round to nearest even, with overflow to infinity.
pub fn f32_to_f16(x: f32) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 16) & 0x8000) as u16;
    let exp = ((bits >> 23) & 0xff) as i32;
    let mant = bits & 0x7f_ffff;
    if exp == 0xff {
        return sign | 0x7c00 | if mant != 0 { 0x200 } else { 0 };
    }
    let e = exp - 127 + 15;
    if e >= 0x1f {
        return sign | 0x7c00;
    }
    if e <= 0 {
        if e < -10 {
            return sign;
        }
        let m = mant | 0x80_0000;
        let shift = (14 - e) as u32;
        let half = 1u32 << (shift - 1);
        let rest = m & ((1 << shift) - 1);
        let mut h = m >> shift;
        if rest > half || (rest == half && h & 1 == 1) {
            h += 1;
        }
        return sign | h as u16;
    }
    let mut h = ((e as u32) << 10) | (mant >> 13);
    let rest = mant & 0x1fff;
    if rest > 0x1000 || (rest == 0x1000 && h & 1 == 1) {
        h += 1; // may carry into the exponent, which is the correct rounding
    }
    sign | h as u16
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::convert::ct2::f16_to_f32;

    #[test]
    fn half_round_trip_is_exact_for_representable_values() {
        for h in (0u16..0x7c00).step_by(7) {
            assert_eq!(f32_to_f16(f16_to_f32(h)), h, "bits {h:#x}");
        }
        assert_eq!(f32_to_f16(1e6), 0x7c00);
        assert_eq!(f32_to_f16(-0.0), 0x8000);
    }

    #[test]
    fn gpt2_byte_table_is_a_bijection() {
        let t = gpt2_unicode_to_byte();
        assert_eq!(t.len(), 256);
        assert_eq!(t[&'Ġ'], b' ');
        assert_eq!(t[&'Ċ'], b'\n');
        assert_eq!(t[&'a'], b'a');
    }

    #[test]
    fn tiny_en_tensor_count() {
        let hp = WhisperHparams {
            n_vocab: 51864,
            n_audio_ctx: 1500,
            n_audio_state: 384,
            n_audio_head: 6,
            n_audio_layer: 4,
            n_text_ctx: 448,
            n_text_state: 384,
            n_text_head: 6,
            n_text_layer: 4,
            n_mels: 80,
        };
        assert_eq!(expected_tensor_count(&hp), 167);
    }
}

/// ggml tensor types hark reads and writes.
pub const GGML_TYPE_F32: i32 = 0;
pub const GGML_TYPE_F16: i32 = 1;
pub const GGML_TYPE_Q8_0: i32 = 8;
/// Q8_0 stores blocks of 32 values as an f16 scale and 32 signed bytes.
pub const Q8_0_BLOCK: usize = 32;
const Q8_0_BLOCK_BYTES: usize = 34;

/// The bytes `elements` values of a tensor type take, or None for a type hark does not know
/// (or a Q8_0 tensor whose size is not whole blocks).
pub fn tensor_bytes(ttype: i32, elements: usize) -> Option<usize> {
    match ttype {
        GGML_TYPE_F32 => Some(4 * elements),
        GGML_TYPE_F16 => Some(2 * elements),
        GGML_TYPE_Q8_0 if elements % Q8_0_BLOCK == 0 => {
            Some(elements / Q8_0_BLOCK * Q8_0_BLOCK_BYTES)
        }
        _ => None,
    }
}

/// One tensor's header in a ggml Whisper file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GgmlTensorInfo {
    pub name: String,
    /// Row-major (numpy order) dimensions.
    pub dims: Vec<usize>,
    /// `GGML_TYPE_F32`, `GGML_TYPE_F16` or `GGML_TYPE_Q8_0`.
    pub ftype: i32,
    /// Where the tensor's values lie in the file.
    pub data: std::ops::Range<usize>,
}

/// What a ggml Whisper file declares: hyper-parameters, vocabulary size and tensor headers.
#[derive(Debug, Clone)]
pub struct GgmlIndex {
    pub hparams: WhisperHparams,
    pub ftype: i32,
    pub mel_filters: (usize, usize),
    pub vocab_tokens: usize,
    /// Where the mel filters and vocabulary lie in the file (after the magic and the 11
    /// hyper-parameters, before the first tensor).
    pub filters_and_vocab: std::ops::Range<usize>,
    pub tensors: Vec<GgmlTensorInfo>,
}

/// Reads a ggml Whisper file's headers, skipping tensor data, so a file can be checked
/// without loading it into whisper.cpp.
pub fn read_ggml_index(path: &Path) -> Result<GgmlIndex, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
    parse_ggml_index(&bytes, path)
}

/// The headers of the ggml Whisper file held in `bytes` (read from `path`, named in errors).
pub fn parse_ggml_index(bytes: &[u8], path: &Path) -> Result<GgmlIndex, ModelError> {
    let mut pos = 0usize;
    let i32_at = |pos: &mut usize| -> Result<i32, ModelError> {
        let b = bytes.get(*pos..*pos + 4).ok_or_else(|| {
            ModelError::Format(format!(
                "{} ends early (truncated at byte {})",
                path.display(),
                *pos
            ))
        })?;
        *pos += 4;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let nonneg = |v: i32, what: &str| -> Result<usize, ModelError> {
        usize::try_from(v).map_err(|_| ModelError::Format(format!("negative {what} ({v})")))
    };
    if i32_at(&mut pos)? as u32 != GGML_MAGIC {
        return Err(ModelError::Format(format!(
            "{} is not a ggml file (bad magic)",
            path.display()
        )));
    }
    let mut h = [0usize; 11];
    for slot in h.iter_mut() {
        *slot = nonneg(i32_at(&mut pos)?, "hyper-parameter")?;
    }
    let hparams = WhisperHparams {
        n_vocab: h[0],
        n_audio_ctx: h[1],
        n_audio_state: h[2],
        n_audio_head: h[3],
        n_audio_layer: h[4],
        n_text_ctx: h[5],
        n_text_state: h[6],
        n_text_head: h[7],
        n_text_layer: h[8],
        n_mels: h[9],
    };
    let ftype = h[10] as i32;
    let filters_start = pos;
    let n_mel = nonneg(i32_at(&mut pos)?, "mel count")?;
    let n_fft = nonneg(i32_at(&mut pos)?, "fft size")?;
    pos += 4 * n_mel * n_fft;
    let vocab_tokens = nonneg(i32_at(&mut pos)?, "vocabulary size")?;
    for _ in 0..vocab_tokens {
        let len = nonneg(i32_at(&mut pos)?, "token length")?;
        pos += len;
    }
    let filters_and_vocab = filters_start..pos;
    let mut tensors = Vec::new();
    while pos < bytes.len() {
        let n_dims = nonneg(i32_at(&mut pos)?, "rank")?;
        let name_len = nonneg(i32_at(&mut pos)?, "name length")?;
        let ttype = i32_at(&mut pos)?;
        if n_dims > 4 {
            return Err(ModelError::Format(format!(
                "bad tensor header at byte {pos}"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            dims.push(nonneg(i32_at(&mut pos)?, "dimension")?);
        }
        dims.reverse();
        let name = bytes
            .get(pos..pos + name_len)
            .and_then(|b| std::str::from_utf8(b).ok())
            .ok_or_else(|| ModelError::Format(format!("bad tensor name at byte {pos}")))?
            .to_string();
        pos += name_len;
        let size = tensor_bytes(ttype, dims.iter().product()).ok_or_else(|| {
            ModelError::Format(format!(
                "tensor {name} has type {ttype}, which hark does not read (f32, f16, q8_0)"
            ))
        })?;
        let data = pos..pos + size;
        pos = data.end;
        if pos > bytes.len() {
            return Err(ModelError::Format(format!(
                "{} ends early: tensor {name} runs past the end of the file",
                path.display()
            )));
        }
        tensors.push(GgmlTensorInfo {
            name,
            dims,
            ftype: ttype,
            data,
        });
    }
    Ok(GgmlIndex {
        hparams,
        ftype,
        mel_filters: (n_mel, n_fft),
        vocab_tokens,
        filters_and_vocab,
        tensors,
    })
}

/// Checks that a ggml Whisper file is whole before whisper.cpp reads it (whisper.cpp aborts
/// the process on a truncated or damaged file): the magic, sane hyper-parameters, the mel
/// filters and vocabulary inside the file, and every tensor's data inside the file, reading
/// only the headers. Tensors of a type hark does not know end the check there (the file
/// may be a valid quantization hark does not read).
pub fn check_ggml_file(path: &Path) -> Result<(), ModelError> {
    use std::io::{Read, Seek, SeekFrom};
    let file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let len = file.metadata().map_err(|e| ModelError::io(path, e))?.len();
    let mut reader = std::io::BufReader::new(file);
    let bad = |what: String| ModelError::Format(format!("{}: {what}", path.display()));
    let mut pos: u64 = 0;
    let i32_at = |reader: &mut std::io::BufReader<std::fs::File>, pos: &mut u64| {
        let mut b = [0u8; 4];
        reader
            .read_exact(&mut b)
            .map_err(|_| bad(format!("ends early (truncated at byte {pos})")))?;
        *pos += 4;
        Ok::<i32, ModelError>(i32::from_le_bytes(b))
    };
    let skip = |reader: &mut std::io::BufReader<std::fs::File>,
                pos: &mut u64,
                bytes: u64,
                what: &str|
     -> Result<(), ModelError> {
        let end = pos
            .checked_add(bytes)
            .filter(|&e| e <= len)
            .ok_or_else(|| {
                ModelError::Format(format!(
                    "{}: ends early: {what} runs past the end of the file ({len} bytes)",
                    path.display()
                ))
            })?;
        reader
            .seek(SeekFrom::Start(end))
            .map_err(|e| ModelError::io(path, e))?;
        *pos = end;
        Ok(())
    };
    if i32_at(&mut reader, &mut pos)? as u32 != GGML_MAGIC {
        return Err(bad("not a ggml Whisper file (bad magic)".into()));
    }
    let mut h = [0i64; 11];
    for slot in h.iter_mut() {
        *slot = i32_at(&mut reader, &mut pos)? as i64;
    }
    // n_vocab, audio ctx/state/head/layer, text ctx/state/head/layer, n_mels: all positive
    // and of Whisper's sizes.
    if h[..10].iter().any(|&v| !(1..=1 << 20).contains(&v)) || h[9] > 512 {
        return Err(bad(format!("implausible hyper-parameters {:?}", &h[..10])));
    }
    let n_mel = i32_at(&mut reader, &mut pos)? as i64;
    let n_fft = i32_at(&mut reader, &mut pos)? as i64;
    if !(0..=1024).contains(&n_mel) || !(0..=4096).contains(&n_fft) {
        return Err(bad(format!("implausible mel filters {n_mel}×{n_fft}")));
    }
    skip(
        &mut reader,
        &mut pos,
        (4 * n_mel * n_fft) as u64,
        "the mel filters",
    )?;
    let tokens = i32_at(&mut reader, &mut pos)?;
    if !(0..=1 << 20).contains(&tokens) {
        return Err(bad(format!("implausible vocabulary size {tokens}")));
    }
    for _ in 0..tokens {
        let token_len = i32_at(&mut reader, &mut pos)?;
        let token_len =
            u64::try_from(token_len).map_err(|_| bad("negative token length".into()))?;
        skip(&mut reader, &mut pos, token_len, "the vocabulary")?;
    }
    let mut tensors = 0usize;
    while pos < len {
        let n_dims = i32_at(&mut reader, &mut pos)?;
        let name_len = i32_at(&mut reader, &mut pos)?;
        let ttype = i32_at(&mut reader, &mut pos)?;
        if !(1..=4).contains(&n_dims) || !(1..=256).contains(&name_len) {
            return Err(bad(format!("bad tensor header at byte {pos}")));
        }
        let mut elements: u64 = 1;
        for _ in 0..n_dims {
            let d = u64::try_from(i32_at(&mut reader, &mut pos)?)
                .map_err(|_| bad(format!("negative dimension at byte {pos}")))?;
            elements = elements.saturating_mul(d);
        }
        skip(&mut reader, &mut pos, name_len as u64, "a tensor name")?;
        let Some(size) = usize::try_from(elements)
            .ok()
            .and_then(|e| tensor_bytes(ttype, e))
        else {
            // A type hark does not size: the rest is whisper.cpp's to read.
            return Ok(());
        };
        skip(&mut reader, &mut pos, size as u64, "a tensor")?;
        tensors += 1;
    }
    if tensors == 0 {
        return Err(bad("holds no tensors".into()));
    }
    Ok(())
}

#[cfg(test)]
mod check_tests {
    use super::*;

    #[test]
    fn a_truncated_or_foreign_file_is_refused_before_whisper_reads_it() {
        let dir = std::env::temp_dir().join(format!("hark-ggml-check-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let models = crate::models::ModelDir::resolve(None);
        let real = models.whisper("tiny.en");
        let bytes = std::fs::read(&real).expect("run scripts/setup.sh: models/ggml-tiny.en.bin");
        check_ggml_file(&real).expect("the real model is whole");
        for (name, content) in [
            ("head100", bytes[..100].to_vec()),
            ("half", bytes[..bytes.len() / 2].to_vec()),
            ("short-by-one", bytes[..bytes.len() - 1].to_vec()),
            ("text", b"not a model at all".to_vec()),
            ("empty", Vec::new()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, content).unwrap();
            let err = check_ggml_file(&path).unwrap_err().to_string();
            assert!(err.contains(name), "{name}: {err}");
        }
        std::fs::remove_dir_all(dir).ok();
    }
}
