//! The web page of `hark serve` in a real browser: headless Chromium opens it, its fake
//! microphone plays a spoken request (Piper's voice), and the page must show what hark heard
//! and answered. The page is read over the Chrome DevTools protocol.

mod common;

use std::time::{Duration, Instant};

use common::browser::{devtools_page, evaluate, open_browser};
use common::conversation::{self, Part};
use common::server::start_server;
use hark::audio::{resample, Pcm, SPEECH_RATE};
use hark::tts::{self, VoiceKind};

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
        Some(&microphone),
        dir.join("profile"),
    );
    let devtools = devtools_page(&browser.profile, &page_url).await;
    let (mut cdp, _) = tokio_tungstenite::connect_async(&devtools).await.unwrap();

    // Read the page's conversation log until hark has heard the request and answered it.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut id = 0;
    let text = loop {
        id += 1;
        let text = evaluate(&mut cdp, id, "document.getElementById('log').innerText")
            .await
            .as_str()
            .unwrap_or("")
            .to_string();
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
