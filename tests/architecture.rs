//! The shape of the tree, checked: modules sit on floors and import only from their own
//! floor or below (so the shared conversation types, the engines and the stores never
//! depend on the dialogue, the loop, the server or the command line), and no function
//! outside the tests is over 100 lines.

use std::path::{Path, PathBuf};

/// Bottom to top. A module may use modules on its floor or below.
const FLOORS: &[&[&str]] = &[
    &["rng", "clock", "conversation", "audio", "cloud"],
    &["vad", "models", "store", "telemetry", "nlu", "stt", "tts"],
    &["domain", "knowledge"],
    &["dialogue"],
    &["pipeline", "spoken"],
    &["server", "wyoming", "engines", "config"],
    &["cli"],
];

const LONGEST_FUNCTION: usize = 100;

fn floor(module: &str) -> Option<usize> {
    FLOORS.iter().position(|f| f.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source of `path` without its test module (the rest of the file after
/// `#[cfg(test)]`), where tests may reach anywhere.
fn library_code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The top-level module a file under src/ belongs to.
fn module_of(src: &Path, path: &Path) -> String {
    let relative = path.strip_prefix(src).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The modules `code` names as `crate::NAME`.
fn imports(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.push(name);
        rest = after;
    }
    out
}

#[test]
fn no_module_imports_from_a_floor_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for path in &files {
        let module = module_of(&src, path);
        let Some(own) = floor(&module) else {
            continue;
        };
        for import in imports(&library_code(path)) {
            if floor(&import).is_some_and(|f| f > own) {
                wrong.push(format!("{} uses crate::{import}", path.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports from a floor above:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_module_of_the_library_has_a_floor() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(modules.len() > 10, "{modules:?}");
    for module in modules {
        assert!(
            floor(module).is_some(),
            "module {module} has no floor in FLOORS"
        );
    }
}

/// (first line, lines) of every function in `code` with a body, found by indentation: a
/// body ends at the first line that closes at the indentation its `fn` opened at.
fn functions(code: &str) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = code.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let signature = [
            "fn ",
            "pub fn ",
            "pub(crate) fn ",
            "pub(super) fn ",
            "async fn ",
            "pub async fn ",
            "const fn ",
            "pub const fn ",
        ]
        .iter()
        .find_map(|p| trimmed.strip_prefix(p));
        let Some(signature) = signature else {
            continue;
        };
        let indent = &line[..line.len() - trimmed.len()];
        let name: String = signature
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        // The line where the body opens, or a declaration without one.
        let Some(open) = (i..lines.len()).find(|&j| {
            let l = lines[j].trim_end();
            l.ends_with('{') || l.ends_with(';') || l.ends_with('}')
        }) else {
            continue;
        };
        let opened = lines[open].trim_end();
        if opened.ends_with(';') || (opened.ends_with('}') && opened.contains('{')) {
            continue;
        }
        let closing = format!("{indent}}}");
        if let Some(end) = (open..lines.len()).find(|&j| lines[j].trim_end() == closing) {
            out.push((i + 1, end - i + 1, name));
        }
    }
    out
}

#[test]
fn no_library_function_is_over_100_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut long = Vec::new();
    for path in &files {
        for (line, length, name) in functions(&library_code(path)) {
            if length > LONGEST_FUNCTION {
                long.push(format!("{}:{line} {name} ({length} lines)", path.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {LONGEST_FUNCTION} lines:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_function_finder_measures_what_it_should() {
    let code = "fn a() {\n    x();\n}\n\npub fn b(\n    y: u8,\n) -> u8 {\n    y\n}\ntrait T {\n    fn c(&self);\n}\n";
    assert_eq!(
        functions(code),
        vec![(1, 3, "a".to_string()), (5, 5, "b".to_string())]
    );
}
