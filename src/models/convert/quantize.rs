//! Quantizes a ggml Whisper file's weight matrices to 8 bits (ggml's Q8_0: blocks of 32
//! values sharing one f16 scale), the format whisper.cpp's own `quantize` tool writes. Half
//! the bytes of f16 to read per matrix product, for the same model.

use std::io::{BufWriter, Write};
use std::path::Path;

use super::ggml::{parse_ggml_index, tensor_bytes, GGML_TYPE_F16, GGML_TYPE_Q8_0, Q8_0_BLOCK};
use crate::models::ModelError;

/// `GGML_FTYPE_MOSTLY_Q8_0`, with ggml's quantization version (2) × 1000 added as whisper.cpp
/// writes it.
const FTYPE_Q8_0: i32 = 2 * 1000 + 7;
/// `GGML_FTYPE_MOSTLY_F16`: the files hark converts or downloads.
const FTYPE_F16: i32 = 1;

const QUANTIZED_SUFFIX: &str = "-q8_0";

/// The name the Q8_0 copy of model `name` is installed under.
pub fn quantized_name(name: &str) -> String {
    format!("{name}{QUANTIZED_SUFFIX}")
}

/// The model a Q8_0 copy's name was made from (None for other names).
pub fn quantized_from(name: &str) -> Option<&str> {
    name.strip_suffix(QUANTIZED_SUFFIX)
}

#[derive(Debug, Clone)]
pub struct QuantizeReport {
    pub quantized: usize,
    pub kept: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

/// Writes `input` (an f16 ggml Whisper file) to `output` with every 2-D weight matrix in Q8_0;
/// biases, norms, positional embeddings and the convolutions stay as they are (whisper.cpp
/// loads those in fixed types). Written under a temporary name, then renamed.
pub fn quantize_q8_0(input: &Path, output: &Path) -> Result<QuantizeReport, ModelError> {
    let bytes = std::fs::read(input).map_err(|e| ModelError::io(input, e))?;
    let index = parse_ggml_index(&bytes, input)?;
    if index.ftype % 1000 != FTYPE_F16 {
        return Err(ModelError::Format(format!(
            "{} is not an f16 model (ftype {}); quantize the f16 original",
            input.display(),
            index.ftype
        )));
    }
    let tmp = output.with_extension("bin.partial");
    let file = std::fs::File::create(&tmp).map_err(|e| ModelError::io(&tmp, e))?;
    let mut out = BufWriter::new(file);
    let mut report = QuantizeReport {
        quantized: 0,
        kept: 0,
        bytes_in: bytes.len() as u64,
        bytes_out: 0,
    };
    let result = (|| -> Result<(), ModelError> {
        let io = |e| ModelError::io(&tmp, e);
        // Magic and the first ten hyper-parameters as they are; then the new ftype, the mel
        // filters and the vocabulary.
        out.write_all(&bytes[..4 * 11]).map_err(io)?;
        out.write_all(&FTYPE_Q8_0.to_le_bytes()).map_err(io)?;
        out.write_all(&bytes[index.filters_and_vocab.clone()])
            .map_err(io)?;
        for tensor in &index.tensors {
            let data = &bytes[tensor.data.clone()];
            // Row-major dims: the last is ggml's row (the values one block scale covers).
            let matrix = match tensor.dims[..] {
                [rows, per_row]
                    if tensor.ftype == GGML_TYPE_F16
                        && tensor.name.ends_with(".weight")
                        && per_row % Q8_0_BLOCK == 0 =>
                {
                    Some((rows, per_row))
                }
                _ => None,
            };
            let (ttype, values) = match matrix {
                Some((rows, per_row)) => {
                    report.quantized += 1;
                    (GGML_TYPE_Q8_0, q8_0(data, per_row, rows))
                }
                None => {
                    report.kept += 1;
                    (tensor.ftype, data.to_vec())
                }
            };
            let name = tensor.name.as_bytes();
            for v in [tensor.dims.len(), name.len()] {
                out.write_all(&(v as i32).to_le_bytes()).map_err(io)?;
            }
            out.write_all(&ttype.to_le_bytes()).map_err(io)?;
            for d in tensor.dims.iter().rev() {
                out.write_all(&(*d as i32).to_le_bytes()).map_err(io)?;
            }
            out.write_all(name).map_err(io)?;
            out.write_all(&values).map_err(io)?;
        }
        out.flush().map_err(io)?;
        Ok(())
    })();
    drop(out);
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, output).map_err(|e| ModelError::io(output, e))?;
    report.bytes_out = std::fs::metadata(output)
        .map(|m| m.len())
        .unwrap_or_default();
    Ok(report)
}

/// `rows` rows of `per_row` f16 values (little-endian) in Q8_0, by ggml's own quantizer.
fn q8_0(f16_bytes: &[u8], per_row: usize, rows: usize) -> Vec<u8> {
    let values: Vec<f32> = f16_bytes
        .chunks_exact(2)
        .map(|c| super::ct2::f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
        .collect();
    let size = tensor_bytes(GGML_TYPE_Q8_0, rows * per_row).unwrap_or_default();
    let mut out = vec![0u8; size];
    // SAFETY: `values` holds rows × per_row floats and `out` the Q8_0 size of as many, which
    // is all ggml_quantize_chunk reads and writes; no importance matrix is needed for Q8_0.
    let written = unsafe {
        whisper_rs_sys::ggml_quantize_chunk(
            whisper_rs_sys::ggml_type_GGML_TYPE_Q8_0,
            values.as_ptr(),
            out.as_mut_ptr().cast(),
            0,
            rows as i64,
            per_row as i64,
            std::ptr::null(),
        )
    };
    out.truncate(written);
    out
}
