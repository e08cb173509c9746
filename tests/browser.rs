//! The web page of `hark serve` in a real browser: headless Chromium opens it, its fake
//! microphone plays a spoken request (Piper's voice), and the page must show what hark heard
//! and answered. The page is read over the Chrome DevTools protocol.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::conversation::{self, Part};
use common::server::start_server;
use futures_util::{SinkExt, StreamExt};
use hark::audio::{resample, Pcm, SPEECH_RATE};
use hark::tts::{self, VoiceKind};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

/// Headless Chromium, killed when dropped.
struct Browser {
    child: Child,
    profile: PathBuf,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn open_browser(url: &str, microphone: &Path, profile: PathBuf) -> Browser {
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
        .arg(format!(
            "--use-file-for-fake-audio-capture={}%noloop",
            microphone.display()
        ))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium is installed (scripts/setup.sh installs it)");
    Browser { child, profile }
}

/// The DevTools WebSocket of the browser's page (Chromium writes its port to the profile).
async fn devtools_page(profile: &Path, page_url: &str) -> String {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_page_holds_a_spoken_conversation() {
    hark::models::fetch::install_tls_provider();
    let models = common::models();
    let server = start_server(&[]);
    let page_url = server.url.replacen("ws://", "http://", 1) + "/";

    // The microphone: a spoken request after the greeting, at a browser's 48 kHz.
    let mut voice = tts::open_voice(VoiceKind::Piper, &models, 2).unwrap();
    let recording = conversation::build(
        voice.as_mut(),
        &[
            Part::Silence(4500),
            Part::Say("Please reset my password."),
            Part::Silence(8000),
        ],
    );
    let dir = common::temp_dir("browser");
    let microphone = dir.join("microphone.wav");
    let samples = resample::resample(&recording.samples, SPEECH_RATE, 48_000).unwrap();
    hark::audio::wav::write_wav(&microphone, &Pcm::new(48_000, samples)).unwrap();

    // The page itself is served on the WebSocket's port.
    let page = reqwest::get(&page_url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("new WebSocket"));
    let missing = reqwest::get(format!("{page_url}nothing-here"))
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    let browser = open_browser(
        &format!("{page_url}?autostart"),
        &microphone,
        dir.join("profile"),
    );
    let devtools = devtools_page(&browser.profile, &page_url).await;
    let (mut cdp, _) = tokio_tungstenite::connect_async(&devtools).await.unwrap();

    // Read the page's conversation log until hark has heard the request and answered it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut id = 0;
    let text = loop {
        id += 1;
        let ask = json!({
            "id": id,
            "method": "Runtime.evaluate",
            "params": {"expression": "document.getElementById('log').innerText", "returnByValue": true},
        });
        cdp.send(Message::Text(ask.to_string().into()))
            .await
            .unwrap();
        let mut text = String::new();
        while let Some(Ok(message)) = cdp.next().await {
            if let Message::Text(t) = message {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] == id {
                    text = v["result"]["result"]["value"]
                        .as_str()
                        .unwrap_or("")
                        .to_string();
                    break;
                }
            }
        }
        let lower = text.to_lowercase();
        let heard = lower
            .lines()
            .any(|l| l.starts_with("you:") && l.contains("password"));
        let answered = lower
            .lines()
            .any(|l| l.starts_with("hark:") && l.contains("account"));
        if (heard && answered) || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    drop(browser);
    std::fs::remove_dir_all(&dir).ok();
    let lower = text.to_lowercase();
    assert!(lower.contains("hark: hi"), "the greeting is shown: {text}");
    assert!(
        lower
            .lines()
            .any(|l| l.starts_with("you:") && l.contains("password")),
        "the page shows what hark heard: {text}"
    );
    assert!(
        lower
            .lines()
            .any(|l| l.starts_with("hark:") && l.contains("account")),
        "the page shows hark's answer: {text}"
    );
    assert!(!lower.contains("error"), "{text}");
}
