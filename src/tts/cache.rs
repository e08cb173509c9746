//! Audio of what the assistant says again and again (greetings, questions, fixed answers),
//! synthesized once and kept: in memory up to a bound, and on disk keyed by the engine, the
//! voice and the text, so the first audio of such a reply plays with no synthesis delay, in
//! this process and the next. Only pieces of the domain's own fixed wording are kept: a
//! sentence with a user's value in it ("Okay, 3 PM.") is never written anywhere.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use sha2::{Digest, Sha256};

/// Counts of lookups of cacheable pieces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

#[derive(Default)]
struct Memory {
    audio: HashMap<String, Arc<Vec<f32>>>,
    /// Oldest first, for eviction.
    order: VecDeque<String>,
    samples: usize,
}

pub struct AudioCache {
    /// Engine, voice and rate: audio from another voice is never served.
    voice: String,
    dir: Option<PathBuf>,
    max_samples: usize,
    memory: Mutex<Memory>,
    /// The domain's fixed wording; a piece inside one of these may be kept.
    fixed: RwLock<Vec<String>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl AudioCache {
    /// A cache for `voice` (engine and voice name), holding at most `max_bytes` of audio in
    /// memory and, with `dir`, every piece on disk there.
    pub fn new(voice: &str, dir: Option<PathBuf>, max_bytes: usize) -> Self {
        Self {
            voice: voice.to_string(),
            dir,
            max_samples: max_bytes / std::mem::size_of::<f32>(),
            memory: Mutex::default(),
            fixed: RwLock::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The domain's fixed wording (see `Domain::fixed_texts`): pieces of it may be kept.
    pub fn allow(&self, texts: Vec<String>) {
        *self.fixed.write().unwrap_or_else(|p| p.into_inner()) = texts;
    }

    /// Whether `piece` is part of the domain's fixed wording (and so holds nothing a user said).
    pub fn cacheable(&self, piece: &str) -> bool {
        let piece = piece.trim();
        !piece.is_empty()
            && self
                .fixed
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .any(|t| t.contains(piece))
    }

    /// The audio of `piece`, from memory or disk; counted as a hit or a miss.
    pub fn get(&self, piece: &str) -> Option<Arc<Vec<f32>>> {
        let found = self.in_memory(piece).or_else(|| {
            let audio = Arc::new(self.on_disk(piece)?);
            self.remember(piece, audio.clone());
            Some(audio)
        });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Keeps the audio of `piece` (a cacheable one).
    pub fn put(&self, piece: &str, audio: &[f32]) {
        let audio = Arc::new(audio.to_vec());
        self.remember(piece, audio.clone());
        if let Some(path) = self.path(piece) {
            // Written whole under a name of its own, then renamed: a full disk or another
            // process writing the same piece leaves no half piece to be played.
            static WRITES: AtomicU64 = AtomicU64::new(0);
            let n = WRITES.fetch_add(1, Ordering::Relaxed);
            let partial = path.with_extension(format!("{}-{n}.partial", std::process::id()));
            let bytes: Vec<u8> = audio.iter().flat_map(|s| s.to_le_bytes()).collect();
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| std::fs::write(&partial, bytes))
                .and_then(|()| std::fs::rename(&partial, &path));
            if let Err(e) = written {
                std::fs::remove_file(&partial).ok();
                tracing::debug!(error = %e, "a reply's audio was not kept on disk");
            }
        }
    }

    /// Whether `piece` is kept (in memory or on disk), without counting a lookup.
    pub fn contains(&self, piece: &str) -> bool {
        self.in_memory(piece).is_some() || self.path(piece).is_some_and(|p| p.exists())
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn in_memory(&self, piece: &str) -> Option<Arc<Vec<f32>>> {
        let memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        memory.audio.get(piece).cloned()
    }

    fn remember(&self, piece: &str, audio: Arc<Vec<f32>>) {
        if audio.len() > self.max_samples {
            return;
        }
        let mut memory = self.memory.lock().unwrap_or_else(|p| p.into_inner());
        if memory.audio.contains_key(piece) {
            return;
        }
        while memory.samples + audio.len() > self.max_samples {
            let Some(oldest) = memory.order.pop_front() else {
                break;
            };
            if let Some(gone) = memory.audio.remove(&oldest) {
                memory.samples -= gone.len();
            }
        }
        memory.samples += audio.len();
        memory.order.push_back(piece.to_string());
        memory.audio.insert(piece.to_string(), audio);
    }

    /// The file of `piece`: a digest of the voice and the text (the text itself is not in
    /// the name).
    fn path(&self, piece: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let digest = Sha256::digest(format!("{}\n{piece}", self.voice));
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        Some(dir.join(format!("{name}.f32")))
    }

    fn on_disk(&self, piece: &str) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.path(piece)?).ok()?;
        if bytes.is_empty() || bytes.len() % 4 != 0 {
            return None;
        }
        Some(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(dir: Option<PathBuf>, max_bytes: usize) -> AudioCache {
        let cache = AudioCache::new("piper/joe@22050", dir, max_bytes);
        cache.allow(vec![
            "Hi, I'm Hark. How can I help you today?".into(),
            "For which day?".into(),
        ]);
        cache
    }

    #[test]
    fn only_pieces_of_the_fixed_wording_are_cacheable() {
        let c = cache(None, 1 << 20);
        assert!(c.cacheable("How can I help you today?"));
        assert!(c.cacheable("Hi, I'm Hark."));
        assert!(!c.cacheable("Okay, 3 PM."));
        assert!(!c.cacheable("  "));
    }

    #[test]
    fn memory_is_bounded_oldest_out_first_and_hits_are_counted() {
        // Room for 300 samples.
        let c = cache(None, 1200);
        c.put("a", &[0.1; 200]);
        c.put("b", &[0.2; 100]);
        assert!(c.get("a").is_some() && c.get("b").is_some());
        c.put("c", &[0.3; 100]);
        assert!(c.get("a").is_none(), "the oldest went to make room");
        assert_eq!(c.get("c").unwrap().len(), 100);
        c.put("huge", &[0.0; 1000]);
        assert!(
            c.get("huge").is_none(),
            "a piece over the bound is not kept"
        );
        assert_eq!(c.stats(), CacheStats { hits: 3, misses: 2 });
    }

    #[test]
    fn pieces_on_disk_outlive_the_process_and_a_torn_file_is_ignored() {
        let dir = std::env::temp_dir().join(format!("hark-tts-cache-{}", std::process::id()));
        let first = cache(Some(dir.clone()), 1 << 20);
        first.put("For which day?", &[0.25, -0.5, 1.0]);
        let next = cache(Some(dir.clone()), 1 << 20);
        assert_eq!(*next.get("For which day?").unwrap(), vec![0.25, -0.5, 1.0]);
        let other_voice = AudioCache::new("espeak@22050", Some(dir.clone()), 1 << 20);
        assert!(other_voice.get("For which day?").is_none());
        std::fs::write(next.path("torn").unwrap(), [1u8, 2, 3]).unwrap();
        assert!(next.get("torn").is_none());
        std::fs::remove_dir_all(dir).ok();
    }
}
