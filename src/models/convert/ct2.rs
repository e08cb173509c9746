//! Reader for CTranslate2 `model.bin` files.
//!
//! Layout (little endian): u32 binary version, u16-length spec name, u32 spec revision,
//! u32 variable count, then per variable: u16-length name, u8 rank, rank × u32 dims,
//! u8 dtype, u32 byte count, raw bytes. Version ≥ 5 ends with an alias table:
//! u32 count, then pairs of u16-length strings (alias, target).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use crate::models::ModelError;

/// Element type of a CTranslate2 variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ct2Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Ct2Dtype {
    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::F32,
            1 => Self::I8,
            2 => Self::I16,
            3 => Self::I32,
            4 => Self::F16,
            5 => Self::Bf16,
            _ => return None,
        })
    }

    pub fn size(self) -> usize {
        match self {
            Self::I8 => 1,
            Self::I16 | Self::F16 | Self::Bf16 => 2,
            Self::F32 | Self::I32 => 4,
        }
    }
}

/// One named tensor (or scalar) from the model file.
#[derive(Debug, Clone)]
pub struct Ct2Variable {
    pub dims: Vec<usize>,
    pub dtype: Ct2Dtype,
    pub bytes: Vec<u8>,
}

impl Ct2Variable {
    pub fn element_count(&self) -> usize {
        self.dims.iter().product()
    }

    /// The values widened to f32 (float types only).
    pub fn to_f32(&self, name: &str) -> Result<Vec<f32>, ModelError> {
        let chunks = self.bytes.chunks_exact(self.dtype.size());
        match self.dtype {
            Ct2Dtype::F32 => Ok(chunks
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect()),
            Ct2Dtype::F16 => Ok(chunks
                .map(|c| f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect()),
            Ct2Dtype::Bf16 => Ok(chunks
                .map(|c| f32::from_bits((u16::from_le_bytes([c[0], c[1]]) as u32) << 16))
                .collect()),
            other => Err(ModelError::Format(format!(
                "variable {name} has integer type {other:?}; quantized CTranslate2 models are not supported, \
                 convert with --quantization float16"
            ))),
        }
    }
}

/// A whole CTranslate2 model: variables by name, with aliases resolved.
#[derive(Debug, Default)]
pub struct Ct2Model {
    pub spec: String,
    pub revision: u32,
    pub variables: BTreeMap<String, Ct2Variable>,
    pub aliases: BTreeMap<String, String>,
}

impl Ct2Model {
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let bytes = std::fs::read(path).map_err(|e| ModelError::io(path, e))?;
        Self::parse(&bytes)
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, ModelError> {
        let mut r = Cursor {
            data: bytes,
            pos: 0,
        };
        let version = r.u32()?;
        if !(1..=6).contains(&version) {
            return Err(ModelError::Format(format!(
                "unsupported CTranslate2 binary version {version}"
            )));
        }
        let spec = if version >= 2 {
            r.string()?
        } else {
            String::new()
        };
        let revision = if version >= 3 { r.u32()? } else { 1 };
        let count = r.u32()? as usize;
        let mut variables = BTreeMap::new();
        for _ in 0..count {
            let name = r.string()?;
            let rank = r.u8()? as usize;
            let mut dims = Vec::with_capacity(rank);
            for _ in 0..rank {
                dims.push(r.u32()? as usize);
            }
            let code = r.u8()?;
            let dtype = Ct2Dtype::from_code(code).ok_or_else(|| {
                ModelError::Format(format!("variable {name}: unknown dtype code {code}"))
            })?;
            let nbytes = r.u32()? as usize;
            let expected = dims.iter().product::<usize>() * dtype.size();
            if nbytes != expected {
                return Err(ModelError::Format(format!(
                    "variable {name}: {nbytes} bytes for shape {dims:?} of {dtype:?} (expected {expected})"
                )));
            }
            let bytes = r.take(nbytes)?.to_vec();
            variables.insert(name, Ct2Variable { dims, dtype, bytes });
        }
        let mut aliases = BTreeMap::new();
        if version >= 5 && r.remaining() >= 4 {
            let n = r.u32()?;
            for _ in 0..n {
                let alias = r.string()?;
                let target = r.string()?;
                aliases.insert(alias, target);
            }
        }
        Ok(Self {
            spec,
            revision,
            variables,
            aliases,
        })
    }

    /// A variable by name, following the alias table.
    pub fn get(&self, name: &str) -> Option<&Ct2Variable> {
        self.variables.get(name).or_else(|| {
            self.aliases
                .get(name)
                .and_then(|target| self.variables.get(target))
        })
    }

    pub fn require(&self, name: &str) -> Result<&Ct2Variable, ModelError> {
        self.get(name)
            .ok_or_else(|| ModelError::Format(format!("CTranslate2 model lacks variable {name}")))
    }
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        if self.remaining() < n {
            return Err(ModelError::Format(format!(
                "CTranslate2 file truncated at byte {} (wanted {n} more)",
                self.pos
            )));
        }
        let slice = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, ModelError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u16-length string; CTranslate2 writes a trailing NUL that is not part of the name.
    fn string(&mut self) -> Result<String, ModelError> {
        let n = self.u16()? as usize;
        let raw = self.take(n)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec())
            .map_err(|_| ModelError::Format("non-UTF-8 name in CTranslate2 file".into()))
    }
}

/// IEEE half → single precision, exact for every input including subnormals.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as u32;
    let mant = (h & 0x3ff) as u32;
    let bits = match (exp, mant) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise the mantissa.
            let mut e = 127 - 15 + 1;
            let mut m = m;
            while m & 0x400 == 0 {
                m <<= 1;
                e -= 1;
            }
            sign | ((e as u32) << 23) | ((m & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

/// Reads a whole file or fails with the path in the message.
pub fn read_to_string(path: &Path) -> Result<String, ModelError> {
    let mut s = String::new();
    std::fs::File::open(path)
        .and_then(|mut f| f.read_to_string(&mut s))
        .map_err(|e| ModelError::io(path, e))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_precision_round_values() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    #[test]
    fn parses_a_minimal_file_and_rejects_truncation() {
        let mut b = Vec::new();
        b.extend(6u32.to_le_bytes());
        let spec = b"WhisperSpec\0";
        b.extend((spec.len() as u16).to_le_bytes());
        b.extend(spec);
        b.extend(3u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        let name = b"a/b\0";
        b.extend((name.len() as u16).to_le_bytes());
        b.extend(name);
        b.push(1);
        b.extend(2u32.to_le_bytes());
        b.push(0);
        b.extend(8u32.to_le_bytes());
        b.extend(1.5f32.to_le_bytes());
        b.extend((-1.0f32).to_le_bytes());
        b.extend(1u32.to_le_bytes());
        for s in [&b"c\0"[..], &b"a/b\0"[..]] {
            b.extend((s.len() as u16).to_le_bytes());
            b.extend(s);
        }
        let m = Ct2Model::parse(&b).unwrap();
        assert_eq!(m.spec, "WhisperSpec");
        assert_eq!(
            m.require("c").unwrap().to_f32("c").unwrap(),
            vec![1.5, -1.0]
        );
        assert!(Ct2Model::parse(&b[..b.len() - 20]).is_err());
    }
}
