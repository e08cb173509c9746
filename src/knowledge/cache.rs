//! The sentence encoder's meanings of the documents' sentences, kept between starts: the
//! encoder is most of the time of indexing (about 3 ms a sentence on 2 cores), and documents
//! change little from one start to the next. One file per encoder model (named from its
//! files' size and time), holding the meaning of each sentence by the SHA-256 of its text;
//! only the sentences not in it are encoded, and it is rewritten with exactly the current ones.
//! Anything wrong with the file (missing, cut short, another format) means encoding afresh;
//! a file that cannot be written is only a slower next start.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &[u8; 8] = b"HARKEMB1";
type Key = [u8; 16];

/// The meanings known from the last start, by sentence.
#[derive(Debug, Default)]
pub struct MeaningCache {
    path: Option<PathBuf>,
    dim: usize,
    known: HashMap<Key, Vec<f32>>,
}

/// Where the cache of the encoder in `models` lives (`models/.cache/knowledge/`), named by
/// the encoder files' size and time of change, so another encoder never reads its meanings;
/// None without one.
pub fn path_for(models: &crate::models::ModelDir) -> Option<PathBuf> {
    let mut hasher = Sha256::new();
    for file in [models.sentence_encoder(), models.sentence_encoder_vocab()] {
        let meta = std::fs::metadata(&file).ok()?;
        let changed = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        hasher.update(meta.len().to_le_bytes());
        hasher.update(changed.as_nanos().to_le_bytes());
    }
    let id = crate::models::hex(&hasher.finalize()[..8]);
    Some(
        models
            .root
            .join(".cache")
            .join("knowledge")
            .join(format!("meanings-{id}.bin")),
    )
}

fn key(text: &str) -> Key {
    let digest = Sha256::digest(text.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

impl MeaningCache {
    /// The cache at `path`, empty when there is none or it cannot be read as one.
    pub fn open(path: Option<&Path>) -> Self {
        let Some(path) = path else {
            return Self::default();
        };
        let mut cache = Self {
            path: Some(path.to_path_buf()),
            ..Self::default()
        };
        match std::fs::read(path) {
            Ok(bytes) => match parse(&bytes) {
                Some((dim, known)) => {
                    cache.dim = dim;
                    cache.known = known;
                }
                None => {
                    tracing::warn!(path = %path.display(), "unreadable meanings cache: encoding afresh")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "meanings cache not read"),
        }
        cache
    }

    /// The meaning of `text`, if the last start encoded it.
    pub fn get(&self, text: &str) -> Option<&[f32]> {
        self.known.get(&key(text)).map(Vec::as_slice)
    }

    /// Keeps exactly the meanings of `texts` (`meanings` in the same order) for the next
    /// start; a failure to write is logged, not returned.
    pub fn keep(&self, texts: &[String], meanings: &[Vec<f32>]) {
        let Some(path) = &self.path else {
            return;
        };
        let Some(dim) = meanings.first().map(Vec::len) else {
            return;
        };
        if let Err(e) = write(path, dim, texts, meanings) {
            tracing::warn!(path = %path.display(), error = %e, "meanings cache not written (the next start encodes again)");
        }
    }

    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// The width of the meanings it holds (0 when empty).
    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// The file: magic, width and count (u32, little-endian), then each key and its floats.
fn parse(bytes: &[u8]) -> Option<(usize, HashMap<Key, Vec<f32>>)> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let dim = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let count = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?) as usize;
    let body = &rest[8..];
    let entry = 16 + 4 * dim;
    if dim == 0 || body.len() != count.checked_mul(entry)? {
        return None;
    }
    let known = body
        .chunks_exact(entry)
        .map(|e| {
            let key: Key = e[..16].try_into().expect("16 bytes");
            let meaning = e[16..]
                .chunks_exact(4)
                .map(|f| f32::from_le_bytes(f.try_into().expect("4 bytes")))
                .collect();
            (key, meaning)
        })
        .collect();
    Some((dim, known))
}

fn write(path: &Path, dim: usize, texts: &[String], meanings: &[Vec<f32>]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut unique: HashMap<Key, &[f32]> = HashMap::new();
    for (text, meaning) in texts.iter().zip(meanings) {
        if meaning.len() == dim {
            unique.insert(key(text), meaning);
        }
    }
    let mut bytes = Vec::with_capacity(16 + unique.len() * (16 + 4 * dim));
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(dim as u32).to_le_bytes());
    bytes.extend_from_slice(&(unique.len() as u32).to_le_bytes());
    for (key, meaning) in unique {
        bytes.extend_from_slice(&key);
        for f in meaning {
            bytes.extend_from_slice(&f.to_le_bytes());
        }
    }
    // Written whole under another name first: a reader never sees half a file.
    let partial = path.with_extension("partial");
    let mut file = std::fs::File::create(&partial)?;
    file.write_all(&bytes)?;
    file.sync_all()?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("hark-meanings-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join("meanings.bin")
    }

    #[test]
    fn meanings_kept_are_found_at_the_next_start_and_only_those() {
        let path = temp("kept");
        let texts = vec![
            "Shipping: we ship to Canada.".to_string(),
            "Returns: 30 days.".into(),
        ];
        let meanings = vec![vec![0.5, -0.25, 1.0], vec![0.0, 2.0, -1.5]];
        MeaningCache::open(Some(&path)).keep(&texts, &meanings);
        let cache = MeaningCache::open(Some(&path));
        assert_eq!((cache.len(), cache.dim()), (2, 3));
        assert_eq!(cache.get(&texts[1]), Some(&meanings[1][..]));
        assert_eq!(cache.get("Returns: 60 days."), None);
        // Kept again with one sentence gone: it is gone from the file too.
        cache.keep(&texts[..1], &meanings[..1]);
        assert_eq!(MeaningCache::open(Some(&path)).len(), 1);
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_damaged_or_foreign_file_is_an_empty_cache() {
        let path = temp("damaged");
        let texts = vec!["a".to_string()];
        MeaningCache::open(Some(&path)).keep(&texts, &[vec![1.0, 2.0]]);
        let whole = std::fs::read(&path).unwrap();
        for broken in [
            &whole[..whole.len() - 1],
            &whole[..10],
            b"not a cache at all".as_slice(),
            &[],
        ] {
            std::fs::write(&path, broken).unwrap();
            assert!(MeaningCache::open(Some(&path)).is_empty());
        }
        std::fs::remove_dir_all(path.parent().unwrap()).ok();
    }

    #[test]
    fn a_cache_that_cannot_be_written_is_only_not_kept() {
        let blocked = temp("blocked");
        // A file where the cache's folder should be.
        std::fs::write(&blocked, b"x").unwrap();
        let path = blocked.join("meanings.bin");
        MeaningCache::open(Some(&path)).keep(&["a".to_string()], &[vec![1.0]]);
        assert!(MeaningCache::open(Some(&path)).is_empty());
        std::fs::remove_dir_all(blocked.parent().unwrap()).ok();
    }
}
