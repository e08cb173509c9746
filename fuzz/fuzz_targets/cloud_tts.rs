//! What ElevenLabs, Cartesia or Deepgram Aura send on a streaming synthesis socket.
#![no_main]
use hark::cloud::Endpoint;
use hark::tts::cloud::TtsProtocol;
use tokio_tungstenite::tungstenite::Message;

libfuzzer_sys::fuzz_target!(|input: (&str, &[u8])| {
    let (text, bytes) = input;
    let endpoint = |p| Endpoint::new(p, "KEY", "k", "ws://127.0.0.1:9", "wss://x").unwrap();
    let protocols: [Box<dyn TtsProtocol>; 3] = [
        Box::new(
            hark::tts::cloud::elevenlabs::ElevenLabs::new(
                endpoint("ElevenLabs"),
                "v".into(),
                Default::default(),
            )
            .unwrap(),
        ),
        Box::new(
            hark::tts::cloud::cartesia::Cartesia::new(
                endpoint("Cartesia"),
                "v".into(),
                Default::default(),
            )
            .unwrap(),
        ),
        Box::new(hark::tts::cloud::aura::Aura::new(endpoint("Aura"), Default::default()).unwrap()),
    ];
    for protocol in protocols {
        let _ = protocol.read(&Message::text(text));
        let _ = protocol.read(&Message::binary(bytes.to_vec()));
    }
});
