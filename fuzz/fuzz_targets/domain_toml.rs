//! A domain's `domain.toml` and one flow file.
#![no_main]
libfuzzer_sys::fuzz_target!(|input: (&str, &str)| {
    let (domain, flow) = input;
    let dir = std::env::temp_dir().join(format!("hark-fuzz-domain-{}", std::process::id()));
    let _ = std::fs::create_dir_all(dir.join("flows"));
    let _ = std::fs::write(dir.join("domain.toml"), domain);
    let _ = std::fs::write(dir.join("flows/flow.toml"), flow);
    let _ = hark::domain::load(&dir);
});
