//! How alike two words sound, for reading slot values out of imperfect transcripts
//! ("dark rose" for "dark roast", "moco" for "mocha", "hole milk" for "whole milk").
//!
//! Words become a rough sound spelling (letters that make one sound become one symbol,
//! doubled letters one), and two spellings are compared with an edit distance whose costs
//! follow how speech recognition errs: vowels are confused more easily than consonants,
//! voiced and unvoiced pairs (k/g, t/d, p/b) more easily than unrelated ones, and weak
//! sounds (r, h, w, y, vowels) are dropped or added more easily than strong ones.

/// A word's sound spelling: one byte per sound. Upper-case bytes are digraph sounds
/// (`C` "ch", `S` "sh", `T` "th").
pub fn sound_spelling(word: &str) -> Vec<u8> {
    let letters: Vec<u8> = word
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase() as u8)
        .collect();
    let mut out: Vec<u8> = Vec::with_capacity(letters.len());
    let mut i = 0;
    while i < letters.len() {
        let c = letters[i];
        let next = letters.get(i + 1).copied();
        let (sound, used): (&[u8], usize) = match (c, next) {
            (b'p', Some(b'h')) => (b"f", 2),
            (b'c', Some(b'k')) => (b"k", 2),
            (b'c', Some(b'h')) => (b"C", 2),
            (b's', Some(b'h')) => (b"S", 2),
            (b't', Some(b'h')) => (b"T", 2),
            // "who", "whole": the w is silent before o.
            (b'w', Some(b'h')) if letters.get(i + 2) == Some(&b'o') => (b"h", 2),
            (b'w', Some(b'h')) => (b"w", 2),
            (b'g', Some(b'h')) => (b"", 2),
            (b'k', Some(b'n')) if i == 0 => (b"n", 2),
            (b'c', Some(b'e' | b'i' | b'y')) => (b"s", 1),
            (b'c' | b'q', _) => (b"k", 1),
            (b'x', _) => (b"ks", 1),
            (b'z', _) => (b"s", 1),
            (b'y', n) if i > 0 && !n.is_some_and(is_vowel) => (b"i", 1),
            _ => (std::slice::from_ref(&letters[i]), 1),
        };
        for &s in sound {
            if out.last() != Some(&s) {
                out.push(s);
            }
        }
        i += used;
    }
    out
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// Sounds that come and go easily between speakers and recognisers.
fn is_weak(c: u8) -> bool {
    is_vowel(c) || matches!(c, b'r' | b'h' | b'w' | b'y')
}

fn indel_cost(c: u8) -> f32 {
    if is_vowel(c) {
        0.5
    } else if is_weak(c) {
        0.6
    } else {
        1.0
    }
}

fn substitution_cost(a: u8, b: u8) -> f32 {
    if a == b {
        return 0.0;
    }
    if is_vowel(a) && is_vowel(b) {
        return 0.4;
    }
    let pair = |x: u8, y: u8| (a == x && b == y) || (a == y && b == x);
    const CLOSE: [(u8, u8); 12] = [
        (b'k', b'g'),
        (b't', b'd'),
        (b'p', b'b'),
        (b'f', b'v'),
        (b'm', b'n'),
        (b's', b'S'),
        (b'C', b'k'),
        (b'C', b'S'),
        (b'T', b't'),
        (b'T', b'd'),
        (b'T', b'f'),
        (b'i', b'y'),
    ];
    if CLOSE.iter().any(|&(x, y)| pair(x, y)) {
        0.5
    } else {
        1.0
    }
}

/// Weighted edit distance between two sound spellings.
pub fn sound_distance(a: &[u8], b: &[u8]) -> f32 {
    let mut prev: Vec<f32> = Vec::with_capacity(b.len() + 1);
    prev.push(0.0);
    for &cb in b {
        let last = *prev.last().unwrap_or(&0.0);
        prev.push(last + indel_cost(cb));
    }
    let mut cur = vec![0.0f32; b.len() + 1];
    for &ca in a {
        cur[0] = prev[0] + indel_cost(ca);
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + substitution_cost(ca, cb))
                .min(prev[j + 1] + indel_cost(ca))
                .min(cur[j] + indel_cost(cb));
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn distance(a: &str, b: &str) -> f32 {
        sound_distance(&sound_spelling(a), &sound_spelling(b))
    }

    #[test]
    fn spellings_merge_letters_that_make_one_sound() {
        assert_eq!(sound_spelling("coffee"), b"kofe");
        assert_eq!(sound_spelling("cappuccino"), b"kapuksino");
        assert_eq!(sound_spelling("phone"), b"fone");
        assert_eq!(sound_spelling("mocha"), b"moCa");
        assert_eq!(sound_spelling("whole"), b"hole");
        assert_eq!(sound_spelling("which"), b"wiC");
    }

    #[test]
    fn near_homophones_are_close_and_different_words_far() {
        assert!(
            distance("rose", "roast") <= 1.5,
            "{}",
            distance("rose", "roast")
        );
        assert!(distance("hole", "whole") <= 0.6);
        assert!(distance("moco", "mocha") <= 1.0);
        assert!(distance("latte", "lat") <= 0.5);
        assert!(distance("milk", "make") >= 1.5);
        assert!(distance("small", "sugar") >= 2.0);
    }
}
