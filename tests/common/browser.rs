//! Headless Chromium for the tests, driven over the Chrome DevTools protocol.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Headless Chromium, killed when dropped.
pub struct Browser {
    child: Child,
    pub profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

pub fn open_browser(url: &str, microphone: Option<&Path>, profile: PathBuf) -> Browser {
    let child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            // The microphone is a WAV file, allowed without asking.
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            "--autoplay-policy=no-user-gesture-required",
        ])
        .args(
            microphone.map(|m| format!("--use-file-for-fake-audio-capture={}%noloop", m.display())),
        )
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is installed (scripts/setup.sh installs it)");
    Browser { child, profile }
}

/// The DevTools WebSocket of the browser's page (Chromium writes its port to the profile).
pub async fn devtools_page(profile: &Path, page_url: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(
            Instant::now() < deadline,
            "chromium did not open its DevTools port"
        );
        let port = std::fs::read_to_string(profile.join("DevToolsActivePort"))
            .ok()
            .and_then(|s| s.lines().next().map(str::to_string));
        if let Some(port) = port {
            let targets: Option<Value> =
                match reqwest::get(format!("http://127.0.0.1:{port}/json/list")).await {
                    Ok(r) => r.json().await.ok(),
                    Err(_) => None,
                };
            let page = targets.as_ref().and_then(Value::as_array).and_then(|ts| {
                ts.iter().find(|t| {
                    t["type"] == "page"
                        && t["url"].as_str().is_some_and(|u| u.starts_with(page_url))
                })
            });
            if let Some(ws) = page.and_then(|p| p["webSocketDebuggerUrl"].as_str()) {
                return ws.to_string();
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A page's DevTools connection.
pub type Devtools =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The value of a JavaScript expression in the page (`id` numbers the request).
pub async fn evaluate(cdp: &mut Devtools, id: u64, expression: &str) -> Value {
    let ask = json!({
        "id": id,
        "method": "Runtime.evaluate",
        "params": {"expression": expression, "returnByValue": true},
    });
    cdp.send(Message::Text(ask.to_string().into()))
        .await
        .unwrap();
    while let Some(Ok(message)) = cdp.next().await {
        if let Message::Text(t) = message {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["id"] == id {
                return v["result"]["result"]["value"].clone();
            }
        }
    }
    Value::Null
}
