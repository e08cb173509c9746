//! The domains that ship with hark, built into the binary so that an installed `hark` has
//! its defaults wherever it runs. A built-in domain is written out once to the user's cache
//! (as the files `load` reads) the first time it is asked for by name and no folder of that
//! name is found.

use std::path::{Path, PathBuf};

/// (domain, file inside its folder, contents).
const FILES: &[(&str, &str, &str)] = &[
    (
        "customer-service",
        "domain.toml",
        include_str!("../../config/domains/customer-service/domain.toml"),
    ),
    (
        "customer-service",
        "flows/book_appointment.toml",
        include_str!("../../config/domains/customer-service/flows/book_appointment.toml"),
    ),
    (
        "customer-service",
        "flows/human_handoff.toml",
        include_str!("../../config/domains/customer-service/flows/human_handoff.toml"),
    ),
    (
        "customer-service",
        "flows/order_status.toml",
        include_str!("../../config/domains/customer-service/flows/order_status.toml"),
    ),
    (
        "customer-service",
        "flows/reset_password.toml",
        include_str!("../../config/domains/customer-service/flows/reset_password.toml"),
    ),
    (
        "assistant",
        "domain.toml",
        include_str!("../../config/domains/assistant/domain.toml"),
    ),
    (
        "barista",
        "domain.toml",
        include_str!("../../config/domains/barista/domain.toml"),
    ),
    (
        "barista",
        "flows/order_drink.toml",
        include_str!("../../config/domains/barista/flows/order_drink.toml"),
    ),
];

/// The names of the built-in domains.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&str> = FILES.iter().map(|f| f.0).collect();
    names.dedup();
    names
}

/// The folder of built-in domain `name`, written under `cache` if it is not there yet (a
/// folder per hark version, so an upgrade never reads an older copy). None if there is no
/// such built-in domain.
pub fn materialize(name: &str, cache: &Path) -> std::io::Result<Option<PathBuf>> {
    let files: Vec<_> = FILES.iter().filter(|f| f.0 == name).collect();
    if files.is_empty() {
        return Ok(None);
    }
    let dir = cache
        .join(format!("domains-{}", env!("CARGO_PKG_VERSION")))
        .join(name);
    for (_, file, contents) in files {
        let path = dir.join(file);
        let current = std::fs::read_to_string(&path).ok();
        if current.as_deref() != Some(*contents) {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // Written aside and renamed, so a second process never reads half a file.
            let partial = path.with_extension(format!("partial-{}", std::process::id()));
            std::fs::write(&partial, contents)?;
            std::fs::rename(&partial, &path)?;
        }
    }
    Ok(Some(dir))
}

/// Where built-in domains are written: `$XDG_CACHE_HOME/hark`, else `~/.cache/hark`, else
/// the temporary folder.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("hark")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_domains_load_from_where_they_are_written() {
        let cache = std::env::temp_dir().join(format!("hark-builtin-{}", std::process::id()));
        for name in names() {
            let dir = materialize(name, &cache).unwrap().unwrap();
            let domain = crate::domain::load(&dir).unwrap();
            assert!(!domain.training_examples().is_empty(), "{name}");
            // A second time finds the files as they are.
            assert_eq!(materialize(name, &cache).unwrap().unwrap(), dir);
        }
        assert!(materialize("nonesuch", &cache).unwrap().is_none());
        std::fs::remove_dir_all(cache).ok();
    }
}
