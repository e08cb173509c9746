//! Quantizes a ggml Whisper file's weight matrices to 8 bits (ggml's Q8_0: blocks of 32
//! values sharing one f16 scale), the format whisper.cpp's own `quantize` tool writes. Half
//! the bytes of f16 to read per matrix product, for the same model.

use std::io::{BufWriter, Read, Write};
use std::path::Path;

use super::ModelError;

const GGML_MAGIC: u32 = 0x6767_6d6c;
const GGML_TYPE_F32: i32 = 0;
const GGML_TYPE_F16: i32 = 1;
const GGML_TYPE_Q8_0: i32 = 8;
/// `GGML_FTYPE_MOSTLY_Q8_0`, with ggml's quantization version (2) × 1000 added as whisper.cpp
/// writes it.
const FTYPE_Q8_0: i32 = 2 * 1000 + 7;
const Q8_0_BLOCK: usize = 32;

#[derive(Debug, Clone)]
pub struct QuantizeReport {
    pub quantized: usize,
    pub kept: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(ModelError::Format(format!(
                "{} ends early (at byte {})",
                self.path.display(),
                self.at
            )));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn i32(&mut self) -> Result<i32, ModelError> {
        let b = self.take(4)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn done(&self) -> bool {
        self.at == self.bytes.len()
    }
}

/// Writes `input` (an f16 ggml Whisper file) to `output` with every 2-D weight matrix in Q8_0;
/// biases, norms, positional embeddings and the convolutions stay as they are (whisper.cpp
/// loads those in fixed types). Written under a temporary name, then renamed.
pub fn quantize_q8_0(input: &Path, output: &Path) -> Result<QuantizeReport, ModelError> {
    let mut bytes = Vec::new();
    std::fs::File::open(input)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| ModelError::io(input, e))?;
    let mut r = Reader {
        bytes: &bytes,
        at: 0,
        path: input,
    };
    if r.i32()? as u32 != GGML_MAGIC {
        return Err(ModelError::Format(format!(
            "{} is not a ggml Whisper file",
            input.display()
        )));
    }
    let mut hparams: Vec<i32> = (0..11).map(|_| r.i32()).collect::<Result<_, _>>()?;
    if hparams[10] % 1000 != 1 {
        return Err(ModelError::Format(format!(
            "{} is not an f16 model (ftype {}); quantize the f16 original",
            input.display(),
            hparams[10]
        )));
    }
    hparams[10] = FTYPE_Q8_0;
    // Mel filters and vocabulary are copied as they are.
    let header_start = r.at;
    let (n_mel, n_fft) = (r.i32()?, r.i32()?);
    r.take(4 * usize::try_from(n_mel * n_fft).unwrap_or(0))?;
    let n_vocab = r.i32()?;
    for _ in 0..n_vocab {
        let len = r.i32()?;
        r.take(usize::try_from(len).unwrap_or(0))?;
    }
    let header = &bytes[header_start..r.at];

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
        out.write_all(&GGML_MAGIC.to_le_bytes()).map_err(io)?;
        for h in &hparams {
            out.write_all(&h.to_le_bytes()).map_err(io)?;
        }
        out.write_all(header).map_err(io)?;
        while !r.done() {
            let (n_dims, name_len, ttype) = (r.i32()?, r.i32()?, r.i32()?);
            let dims: Vec<usize> = (0..n_dims)
                .map(|_| r.i32().map(|d| d.max(0) as usize))
                .collect::<Result<_, _>>()?;
            let name = r.take(name_len.max(0) as usize)?;
            let elements: usize = dims.iter().product();
            let size = match ttype {
                GGML_TYPE_F32 => 4,
                GGML_TYPE_F16 => 2,
                other => {
                    return Err(ModelError::Format(format!(
                        "{}: tensor {} has type {other}, expected f32 or f16",
                        input.display(),
                        String::from_utf8_lossy(name)
                    )))
                }
            };
            let data = r.take(elements * size)?;
            let is_matrix = n_dims == 2
                && ttype == GGML_TYPE_F16
                && name.ends_with(b".weight")
                && dims[0] % Q8_0_BLOCK == 0;
            let (out_type, out_data) = if is_matrix {
                report.quantized += 1;
                (GGML_TYPE_Q8_0, q8_0(data, dims[0], dims[1]))
            } else {
                report.kept += 1;
                (ttype, data.to_vec())
            };
            for v in [n_dims, name_len, out_type] {
                out.write_all(&v.to_le_bytes()).map_err(io)?;
            }
            for d in &dims {
                out.write_all(&(*d as i32).to_le_bytes()).map_err(io)?;
            }
            out.write_all(name).map_err(io)?;
            out.write_all(&out_data).map_err(io)?;
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
    // 34 bytes per block of 32: an f16 scale and 32 signed bytes.
    let mut out = vec![0u8; rows * per_row / Q8_0_BLOCK * 34];
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
