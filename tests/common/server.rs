//! `hark serve` as a test starts it: the real binary on a free port.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `hark serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// ws://127.0.0.1:PORT
    pub url: String,
    /// What it printed before listening.
    pub startup: Vec<String>,
    /// What it printed since.
    printed: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Server {
    /// Everything it printed on stderr after it started listening, so far.
    // Not every test binary that shares this module reads the log.
    #[allow(dead_code)]
    pub fn stderr_so_far(&self) -> String {
        self.printed.lock().unwrap().join("\n")
    }

    /// A plain HTTP GET of `path`: the whole response, head and body.
    pub async fn http_get(&self, path: &str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.url.trim_start_matches("ws://");
        let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        tcp.write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.unwrap();
        response
    }

    /// Waits until the server holds no connection but the one asking (its `hark_connections`
    /// gauge reads 1): a closed conversation's task may still be ending after its client saw
    /// the close, and it holds a connection slot until then.
    pub async fn wait_until_idle(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let metrics = self.http_get("/metrics").await;
            if metrics.lines().any(|l| l.trim() == "hark_connections 1") {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "connections still open: {metrics}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits (at most `limit`) for the process to end.
    pub fn terminate(&mut self, limit: std::time::Duration) -> Option<std::process::ExitStatus> {
        // SAFETY: kill sends a signal to our own child's pid; no memory is involved.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_server(extra: &[&str]) -> Server {
    start_server_with("none", extra)
}

/// `hark serve` with sessions in `store`.
pub fn start_server_with(store: &str, extra: &[&str]) -> Server {
    let models = super::models();
    // The customer-service domain unless the test names one.
    let domain: &[&str] = if extra.contains(&"--domain") {
        &[]
    } else {
        &["--domain", "customer-service"]
    };
    let mut child = Command::new(super::hark_bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(domain)
        .args(["--voice", "espeak", "--store", store])
        .args(if extra.contains(&"--log") {
            &[][..]
        } else {
            &["--log", "none"][..]
        })
        .args(extra)
        .env("HARK_MODELS_DIR", &models.root)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start hark serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let url = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!("hark serve ended before listening: {seen:?}");
        };
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_string();
        }
        seen.push(line);
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    let printed = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = printed.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            keep.lock().unwrap().push(line);
        }
    });
    Server {
        child,
        url,
        startup: seen,
        printed,
    }
}
