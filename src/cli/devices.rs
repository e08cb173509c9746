//! `hark devices`: the microphones and speakers cpal can reach.

use anyhow::Result;

pub fn devices(json: bool, all: bool) -> Result<()> {
    let list = hark::audio::device::list_devices(all)?;
    if json {
        for d in &list {
            println!("{}", serde_json::to_string(d)?);
        }
        return Ok(());
    }
    if list.is_empty() {
        println!("no sound devices (use WAV files: hark run --input IN.wav --output OUT.wav)");
    }
    for d in &list {
        let mark = |default: bool| if default { " (default)" } else { "" };
        println!("{}  ({}, {})", d.name, d.description, d.host);
        if let Some(f) = &d.input {
            println!("    input:  {f}{}", mark(d.default_input));
        }
        if let Some(f) = &d.output {
            println!("    output: {f}{}", mark(d.default_output));
        }
    }
    Ok(())
}
