//! What Deepgram or AssemblyAI send on a streaming recognition socket.
#![no_main]
use hark::cloud::Endpoint;
use hark::stt::cloud::SttProtocol;

libfuzzer_sys::fuzz_target!(|text: &str| {
    let endpoint = |p| Endpoint::new(p, "KEY", "k", "ws://127.0.0.1:9", "wss://x").unwrap();
    let protocols: [Box<dyn SttProtocol>; 2] = [
        Box::new(hark::stt::cloud::deepgram::Deepgram::new(
            endpoint("Deepgram"),
            Default::default(),
        )),
        Box::new(hark::stt::cloud::assemblyai::AssemblyAi::new(
            endpoint("AssemblyAI"),
            Default::default(),
        )),
    ];
    for protocol in protocols {
        let _ = protocol.reader().read(text);
    }
});
