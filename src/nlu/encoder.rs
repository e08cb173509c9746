//! Sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) on ONNX Runtime, mean-pooled over the
//! real tokens and normalised to unit length, so a dot product is the cosine similarity.

use std::path::Path;

use ort::session::Session;
use ort::value::Tensor;

use super::wordpiece::WordPiece;
use super::NluError;

/// Tokens per sentence at most: user requests are far shorter.
const MAX_TOKENS: usize = 64;
/// Sentences encoded together; padding to the longest in a batch is cheap at these lengths.
const BATCH: usize = 32;

pub struct SentenceEncoder {
    session: Session,
    tokenizer: WordPiece,
    /// Whether the model takes `token_type_ids` (BERT exports differ).
    wants_token_types: bool,
    pub dimension: usize,
}

impl SentenceEncoder {
    /// The sentence encoder installed in `models` (`models/minilm/`, ONNX Runtime from there).
    pub fn from_models(models: &crate::models::ModelDir, threads: usize) -> Result<Self, NluError> {
        Self::open(
            &models.sentence_encoder(),
            &models.sentence_encoder_vocab(),
            &models.onnxruntime(),
            threads,
        )
    }

    /// Loads `model` (ONNX) and `vocab` (WordPiece `vocab.txt`) with ONNX Runtime from
    /// `onnxruntime`.
    pub fn open(
        model: &Path,
        vocab: &Path,
        onnxruntime: &Path,
        threads: usize,
    ) -> Result<Self, NluError> {
        for path in [model, vocab] {
            if !path.exists() {
                return Err(NluError::ModelMissing {
                    path: path.to_path_buf(),
                    reason: "not found; run scripts/setup.sh (it installs the sentence encoder into models/minilm/)"
                        .into(),
                });
            }
        }
        let tokenizer = WordPiece::from_file(vocab)?;
        let environment = crate::models::onnx::environment(onnxruntime).map_err(|reason| {
            NluError::ModelMissing {
                path: onnxruntime.to_path_buf(),
                reason: format!("ONNX Runtime: {reason}"),
            }
        })?;
        let session = crate::models::onnx::session(environment, model, threads)
            .map_err(|e| NluError::BadModel(format!("{}: {e}", model.display())))?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        if !names.contains(&"input_ids") || !names.contains(&"attention_mask") {
            return Err(NluError::BadModel(format!(
                "{}: expected inputs input_ids and attention_mask, found {names:?}",
                model.display()
            )));
        }
        let wants_token_types = names.contains(&"token_type_ids");
        let mut encoder = Self {
            session,
            tokenizer,
            wants_token_types,
            dimension: 0,
        };
        encoder.dimension = encoder.encode(&["hello"])?[0].len();
        Ok(encoder)
    }

    /// Unit-length embeddings of `sentences`, in order.
    pub fn encode<S: AsRef<str>>(&mut self, sentences: &[S]) -> Result<Vec<Vec<f32>>, NluError> {
        // Batched by length: a batch is padded to its longest sentence, so sentences of
        // like length together waste the least.
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        order.sort_by_key(|&i| sentences[i].as_ref().len());
        let mut out = vec![Vec::new(); sentences.len()];
        for batch in order.chunks(BATCH) {
            let texts: Vec<&str> = batch.iter().map(|&i| sentences[i].as_ref()).collect();
            for (&i, vector) in batch.iter().zip(self.encode_batch(&texts)?) {
                out[i] = vector;
            }
        }
        Ok(out)
    }

    fn encode_batch<S: AsRef<str>>(&mut self, batch: &[S]) -> Result<Vec<Vec<f32>>, NluError> {
        let ids: Vec<Vec<i64>> = batch
            .iter()
            .map(|s| self.tokenizer.encode(s.as_ref(), MAX_TOKENS))
            .collect();
        let rows = ids.len();
        let cols = ids.iter().map(Vec::len).max().unwrap_or(2);
        let mut input_ids = vec![self.tokenizer.pad; rows * cols];
        let mut mask = vec![0i64; rows * cols];
        for (r, row) in ids.iter().enumerate() {
            input_ids[r * cols..r * cols + row.len()].copy_from_slice(row);
            mask[r * cols..r * cols + row.len()].fill(1);
        }
        let engine = |e: ort::Error| NluError::BadModel(format!("sentence encoder: {e}"));
        let mut inputs = ort::inputs![
            "input_ids" => Tensor::from_array(([rows, cols], input_ids)).map_err(engine)?,
            "attention_mask" => Tensor::from_array(([rows, cols], mask.clone())).map_err(engine)?,
        ];
        if self.wants_token_types {
            inputs.push((
                "token_type_ids".into(),
                Tensor::from_array(([rows, cols], vec![0i64; rows * cols]))
                    .map_err(engine)?
                    .into(),
            ));
        }
        let outputs = self.session.run(inputs).map_err(engine)?;
        let (shape, values) = outputs[0].try_extract_tensor::<f32>().map_err(engine)?;
        let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        let vectors: Vec<Vec<f32>> = match dims.as_slice() {
            // Already pooled: one vector per sentence.
            [r, d] if *r == rows => values.chunks(*d).map(<[f32]>::to_vec).collect(),
            // Token vectors: mean over the real tokens (padding excluded).
            [r, t, d] if *r == rows && *t == cols => (0..rows)
                .map(|row| {
                    let mut sum = vec![0f32; *d];
                    let mut count = 0f32;
                    for tok in 0..cols {
                        if mask[row * cols + tok] == 1 {
                            let at = (row * cols + tok) * d;
                            for (s, v) in sum.iter_mut().zip(&values[at..at + d]) {
                                *s += v;
                            }
                            count += 1.0;
                        }
                    }
                    sum.iter_mut().for_each(|s| *s /= count.max(1.0));
                    sum
                })
                .collect(),
            other => {
                return Err(NluError::BadModel(format!(
                    "sentence encoder output has shape {other:?}, expected [{rows}, d] or [{rows}, {cols}, d]"
                )))
            }
        };
        Ok(vectors.into_iter().map(normalized).collect())
    }
}

fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}
