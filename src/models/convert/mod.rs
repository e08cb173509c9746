//! Model converters, apart from the daemon's runtime path: a CTranslate2 Whisper model to
//! ggml (`ct2`, `ggml`, with the mel filterbank from `mel`), and 8-bit quantization.

pub mod ct2;
pub mod ggml;
pub mod mel;
pub mod quantize;
