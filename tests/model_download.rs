//! The online download path (`hark models fetch`) against a local HTTP server: the file
//! arrives, its SHA-1 is checked, and a corrupt or failed download leaves nothing behind.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use hark::models::fetch::{download_verified, sha1_file};

/// Serves `body` (optionally cut short) to each connection, `count` times.
fn serve(body: Vec<u8>, declared_len: usize, count: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let mut stream = stream.unwrap();
            let mut request = [0u8; 2048];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {declared_len}\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}/ggml-test.bin")
}

fn dest(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hark-dl-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("ggml-test.bin")
}

fn sha1_hex(data: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    hark::models::hex(&Sha1::digest(data))
}

#[tokio::test]
async fn downloads_and_verifies() {
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let url = serve(body.clone(), body.len(), 1);
    let path = dest("ok");
    let mut last = (0, None);
    download_verified(&url, &sha1_hex(&body), &path, &mut |got, total| {
        last = (got, total)
    })
    .await
    .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), body);
    assert_eq!(last, (body.len() as u64, Some(body.len() as u64)));
    assert_eq!(sha1_file(&path).unwrap(), sha1_hex(&body));
}

#[tokio::test]
async fn a_corrupt_download_is_discarded() {
    let body = b"definitely not the model you asked for".to_vec();
    let url = serve(body.clone(), body.len(), 1);
    let path = dest("corrupt");
    let err = download_verified(&url, &sha1_hex(b"the real model"), &path, &mut |_, _| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("checksum mismatch"), "{err}");
    assert!(!path.exists());
    assert!(!path.with_extension("bin.partial").exists());
}

#[tokio::test]
async fn a_truncated_download_is_discarded() {
    let body = vec![7u8; 1000];
    let url = serve(body.clone(), 5000, 1);
    let path = dest("short");
    let result = download_verified(&url, &sha1_hex(&vec![7u8; 5000]), &path, &mut |_, _| {}).await;
    assert!(result.is_err());
    assert!(!path.exists());
    assert!(!path.with_extension("bin.partial").exists());
}

#[tokio::test]
async fn an_unreachable_host_is_a_clear_error() {
    // A port nothing listens on, on this machine.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let path = dest("refused");
    let err = download_verified(
        &format!("http://127.0.0.1:{port}/x.bin"),
        "00",
        &path,
        &mut |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("download of"), "{err}");
    assert!(!path.exists());
}
