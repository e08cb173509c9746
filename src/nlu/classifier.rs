//! Intent classification: multinomial logistic regression over two kinds of features,
//! trained at start-up from example utterances.
//!
//! - the sentence embedding (meaning: "cancel my booking" is near "call off the reservation");
//! - hashed lexical features, word 1–2-grams and character 3–5-grams (surface form: robust to
//!   ASR spellings, "worker count" still shares most character n-grams with "work account").
//!
//! The confidence is the softmax probability after temperature scaling (fitted on held-out
//! data by the caller), so one threshold separates in-scope from out-of-scope requests.

/// Features of one utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// Unit-length sentence embedding (may be empty when no encoder is used).
    pub dense: Vec<f32>,
    /// (bucket, value) pairs, unit length, buckets unique.
    pub sparse: Vec<(u32, f32)>,
}

/// Buckets for hashed lexical features.
pub const LEXICAL_BUCKETS: u32 = 1 << 16;

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in bytes {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// American Soundex of a word ("council" and "cancel" are both C524): speech recognition
/// swaps words that sound alike, and their keys stay the same.
pub fn soundex(word: &str) -> Option<String> {
    let letters: Vec<char> = word
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    let first = *letters.first()?;
    let code = |c: char| match c {
        'b' | 'f' | 'p' | 'v' => '1',
        'c' | 'g' | 'j' | 'k' | 'q' | 's' | 'x' | 'z' => '2',
        'd' | 't' => '3',
        'l' => '4',
        'm' | 'n' => '5',
        'r' => '6',
        'h' | 'w' => '-', // transparent: letters on both sides with one code count once
        _ => '0',         // vowels separate repeated codes
    };
    let mut key = String::from(first.to_ascii_uppercase());
    let mut last = code(first);
    for &c in &letters[1..] {
        let k = code(c);
        if k == '-' {
            continue;
        }
        if k != '0' && k != last {
            key.push(k);
            if key.len() == 4 {
                break;
            }
        }
        last = k;
    }
    while key.len() < 4 {
        key.push('0');
    }
    Some(key)
}

/// Lower-case words: letters, digits and apostrophes.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

/// Word unigrams and bigrams, the Soundex key of each word, and character 3–5-grams inside
/// each word (with its boundaries), with sublinear counts, L2-normalised.
pub fn lexical_features(text: &str) -> Vec<(u32, f32)> {
    let words = words(text);
    let mut counts: std::collections::HashMap<u32, f32> = std::collections::HashMap::new();
    let mut add = |key: String| {
        *counts
            .entry(fnv1a(key.as_bytes()) % LEXICAL_BUCKETS)
            .or_insert(0.0) += 1.0
    };
    for (i, w) in words.iter().enumerate() {
        add(format!("w:{w}"));
        if let Some(key) = soundex(w).filter(|_| w.len() >= 3) {
            add(format!("s:{key}"));
        }
        if let Some(next) = words.get(i + 1) {
            add(format!("b:{w} {next}"));
        }
        let chars: Vec<char> = format!("<{w}>").chars().collect();
        for n in 3..=5 {
            for gram in chars.windows(n) {
                add(format!("c:{}", gram.iter().collect::<String>()));
            }
        }
    }
    let mut sparse: Vec<(u32, f32)> = counts.into_iter().map(|(k, c)| (k, 1.0 + c.ln())).collect();
    sparse.sort_by_key(|&(k, _)| k);
    let norm = sparse.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        sparse.iter_mut().for_each(|(_, v)| *v /= norm);
    }
    sparse
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub learning_rate: f32,
    /// L2 penalty on the weights.
    pub l2: f32,
    /// Scale of the lexical features relative to the embedding.
    pub lexical_weight: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 12,
            learning_rate: 0.5,
            l2: 1e-5,
            lexical_weight: 1.0,
            seed: 7,
        }
    }
}

/// A trained classifier over `labels`.
#[derive(Debug, Clone)]
pub struct IntentModel {
    pub labels: Vec<String>,
    dense_dim: usize,
    lexical_weight: f32,
    w_dense: Vec<f32>,
    w_sparse: Vec<f32>,
    bias: Vec<f32>,
    /// Logits are divided by this before the softmax (calibration).
    pub temperature: f32,
}

/// A deterministic shuffle (xorshift), so training gives the same model every time.
fn shuffle(order: &mut [usize], seed: u64) {
    let mut state = seed.max(1);
    for i in (1..order.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        order.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

impl IntentModel {
    /// Trains on `examples` (features, index into `labels`).
    pub fn train(labels: Vec<String>, examples: &[(Features, usize)], config: TrainConfig) -> Self {
        let classes = labels.len();
        let dense_dim = examples.first().map_or(0, |(f, _)| f.dense.len());
        let mut model = Self {
            labels,
            dense_dim,
            lexical_weight: config.lexical_weight,
            w_dense: vec![0.0; classes * dense_dim],
            w_sparse: vec![0.0; classes * LEXICAL_BUCKETS as usize],
            bias: vec![0.0; classes],
            temperature: 1.0,
        };
        if classes == 0 || examples.is_empty() {
            return model;
        }
        let mut order: Vec<usize> = (0..examples.len()).collect();
        let mut probs = vec![0.0; classes];
        let total_steps = (config.epochs * examples.len()).max(1) as f32;
        let mut step = 0.0;
        for epoch in 0..config.epochs {
            shuffle(&mut order, config.seed.wrapping_add(epoch as u64));
            for &i in &order {
                let (features, label) = &examples[i];
                // Linearly decaying step size: large early, fine at the end.
                let lr = config.learning_rate * (1.0 - step / total_steps).max(0.05);
                step += 1.0;
                model.logits_into(features, &mut probs);
                softmax(&mut probs, 1.0);
                for (c, p) in probs.iter().enumerate() {
                    let g = p - if c == *label { 1.0 } else { 0.0 };
                    // Most classes are already near-certainly wrong for this example after
                    // the first epoch: skipping their negligible updates makes training
                    // several times faster. The L2 penalty is applied to the weights touched.
                    if g.abs() < 1e-4 {
                        continue;
                    }
                    let row = &mut model.w_dense[c * dense_dim..(c + 1) * dense_dim];
                    for (w, x) in row.iter_mut().zip(&features.dense) {
                        *w -= lr * (g * x + config.l2 * *w);
                    }
                    let base = c * LEXICAL_BUCKETS as usize;
                    for &(k, v) in &features.sparse {
                        let w = &mut model.w_sparse[base + k as usize];
                        *w -= lr * (g * v * config.lexical_weight + config.l2 * *w);
                    }
                    model.bias[c] -= lr * g;
                }
            }
        }
        model
    }

    fn logits_into(&self, features: &Features, out: &mut [f32]) {
        let d = self.dense_dim;
        for (c, logit) in out.iter_mut().enumerate() {
            let row = &self.w_dense[c * d..(c + 1) * d];
            let mut z = self.bias[c]
                + row
                    .iter()
                    .zip(&features.dense)
                    .map(|(w, x)| w * x)
                    .sum::<f32>();
            let base = c * LEXICAL_BUCKETS as usize;
            z += self.lexical_weight
                * features
                    .sparse
                    .iter()
                    .map(|&(k, v)| self.w_sparse[base + k as usize] * v)
                    .sum::<f32>();
            *logit = z;
        }
    }

    /// Raw scores per label.
    pub fn logits(&self, features: &Features) -> Vec<f32> {
        let mut out = vec![0.0; self.labels.len()];
        self.logits_into(features, &mut out);
        out
    }

    /// Calibrated probabilities per label.
    pub fn probabilities(&self, features: &Features) -> Vec<f32> {
        let mut p = self.logits(features);
        softmax(&mut p, self.temperature);
        p
    }

    /// Fits the temperature that minimises the negative log-likelihood of `held_out`
    /// (logits with their true label), by a search over a log grid.
    pub fn calibrate(&mut self, held_out: &[(Vec<f32>, usize)]) {
        if held_out.is_empty() {
            return;
        }
        let nll = |t: f32| {
            held_out
                .iter()
                .map(|(logits, label)| {
                    let mut p = logits.clone();
                    softmax(&mut p, t);
                    -(p[*label].max(1e-12)).ln()
                })
                .sum::<f32>()
        };
        let mut best = (1.0, nll(1.0));
        for i in -20..=20 {
            let t = 10f32.powf(i as f32 / 10.0);
            let loss = nll(t);
            if loss < best.1 {
                best = (t, loss);
            }
        }
        self.temperature = best.0;
    }
}

/// In-place softmax of `z / temperature`.
pub fn softmax(z: &mut [f32], temperature: f32) {
    let t = temperature.max(1e-6);
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = ((*v - max) / t).exp();
        sum += *v;
    }
    if sum > 0.0 {
        z.iter_mut().for_each(|v| *v /= sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lexical_only(text: &str) -> Features {
        Features {
            dense: Vec::new(),
            sparse: lexical_features(text),
        }
    }

    #[test]
    fn lexical_features_are_unit_length_and_share_ngrams_across_asr_errors() {
        let a = lexical_features("reset my work account");
        let b = lexical_features("reset my worker count");
        let norm: f32 = a.iter().map(|(_, v)| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        let dot: f32 = a
            .iter()
            .filter_map(|(k, v)| b.iter().find(|(k2, _)| k2 == k).map(|(_, w)| v * w))
            .sum();
        assert!(dot > 0.5, "similarity {dot}");
    }

    #[test]
    fn soundex_keys() {
        assert_eq!(soundex("council"), soundex("cancel"));
        assert_eq!(soundex("Robert").as_deref(), Some("R163"));
        assert_eq!(soundex("Ashcraft").as_deref(), Some("A261"));
        assert_eq!(soundex("Tymczak").as_deref(), Some("T522"));
        assert_eq!(soundex("42"), None);
    }

    #[test]
    fn learns_intents_from_a_few_examples() {
        let labels = vec!["book".to_string(), "cancel".to_string()];
        let examples: Vec<(Features, usize)> = [
            ("book a table", 0),
            ("reserve a table for two", 0),
            ("i want to book a table", 0),
            ("cancel my booking", 1),
            ("call off the reservation", 1),
            ("please cancel it", 1),
        ]
        .into_iter()
        .map(|(t, l)| (lexical_only(t), l))
        .collect();
        let model = IntentModel::train(labels, &examples, TrainConfig::default());
        let p = model.probabilities(&lexical_only("could you book me a table"));
        assert!(p[0] > 0.7, "{p:?}");
        let p = model.probabilities(&lexical_only("council my booking"));
        assert!(p[1] > p[0], "ASR-style 'council' for 'cancel': {p:?}");
    }
}
