//! Domain packs and spoken commands, end to end through the `hark` binary: the barista
//! domain imported from its Rhino context, its loading checks, real recordings of people
//! ordering coffee (`shared/data/barista/dev`) through real Whisper, the intent model and
//! the slot spotter, clean and with kitchen noise mixed in. Floors sit a little under the
//! measured figures (README), so a change that makes understanding worse fails here.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use common::{hark, stderr, stdout};

fn barista_data() -> PathBuf {
    let dir = common::root().join("../shared/data/barista");
    assert!(
        dir.join("dev/labels.json").exists(),
        "the barista recordings ship in shared/data/barista"
    );
    dir
}

/// An empty folder for one test.
fn temp_dir(name: &str) -> PathBuf {
    let dir = common::temp_dir(&format!("spoken-{name}"));
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn labels() -> BTreeMap<String, Value> {
    let text = std::fs::read_to_string(barista_data().join("dev/labels.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The first `n` dev recordings (by name), the same every run.
fn dev_files(n: usize) -> Vec<PathBuf> {
    labels()
        .keys()
        .take(n)
        .map(|name| barista_data().join("dev").join(name))
        .collect()
}

#[test]
fn the_barista_pack_is_the_import_of_its_rhino_context() {
    let _cores = common::cores();
    let out = temp_dir("import");
    let yaml = barista_data().join("coffee_maker.yaml");
    let import = || {
        hark(&[
            "domain",
            "import",
            yaml.to_str().unwrap(),
            "--name",
            "barista",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let o = import();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("1 flow(s): orderDrink"),
        "{}",
        stdout(&o)
    );
    for file in ["domain.toml", "flows/order_drink.toml"] {
        let imported = std::fs::read_to_string(out.join(file)).unwrap();
        let shipped =
            std::fs::read_to_string(common::root().join("config/domains/barista").join(file))
                .unwrap();
        assert_eq!(
            imported, shipped,
            "{file}: re-import config/domains/barista"
        );
    }
    // Importing over an existing domain needs --force.
    let again = import();
    assert!(!again.status.success());
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn broken_domains_are_refused_with_the_file_and_the_reason() {
    let _cores = common::cores();
    let dir = temp_dir("broken");
    let check = |dir: &Path| hark(&["domain", "check", dir.to_str().unwrap()]);
    std::fs::create_dir_all(dir.join("flows")).unwrap();
    std::fs::copy(
        common::root().join("config/domains/barista/domain.toml"),
        dir.join("domain.toml"),
    )
    .unwrap();
    let flow = std::fs::read_to_string(
        common::root().join("config/domains/barista/flows/order_drink.toml"),
    )
    .unwrap();
    // No flows is a domain of intents alone (and documents), like the built-in assistant.
    let empty = check(&dir);
    assert!(empty.status.success(), "{}", stderr(&empty));
    let cases = [
        (
            flow.replacen("$size:size", "$size:cupSize", 1),
            "'$cupSize', which is not a slot of this flow",
        ),
        (
            flow.replacen("[brew, can I get", "[brew, can I get, ", 1),
            "empty alternative",
        ),
        (
            flow.replacen("type = \"choice\"", "type = \"number\"", 1),
            "which is not a list (choice) slot",
        ),
    ];
    for (broken, reason) in cases {
        std::fs::write(dir.join("flows/order_drink.toml"), broken).unwrap();
        let o = check(&dir);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert!(err.contains("order_drink.toml"), "names the file: {err}");
        assert!(err.contains(reason), "says why ({reason}): {err}");
    }
    std::fs::write(dir.join("flows/order_drink.toml"), flow).unwrap();
    assert!(check(&dir).status.success(), "{}", stderr(&check(&dir)));

    let o = hark(&["domain", "check", "no-such-domain"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("barista"),
        "lists the domains there are: {}",
        stderr(&o)
    );

    std::fs::write(dir.join("bad.yaml"), "context: [unclosed").unwrap();
    let o = hark(&[
        "domain",
        "import",
        dir.join("bad.yaml").to_str().unwrap(),
        "--name",
        "x",
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("not a Rhino context file"),
        "{}",
        stderr(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn typed_orders_fill_the_slots_through_recognition_errors() {
    let _cores = common::cores();
    // The same slot spotter serves typed (or recognised) text in a conversation.
    let turns = common::json_turns(&common::run_chat(
        &["--json", "--domain", "barista", "--store", "none"],
        &[],
        &[
            "I'd like a 12-ounce dark rose double shot moco with some hole milk.",
            "Get me a medium, medium roast latte with a bit of brown sugar",
        ],
    ));
    // The order completes in one turn; the reply says each value in slot order (size,
    // roast, shots, drink, milk, sugar), so a value in the wrong slot shows.
    for turn in &turns {
        assert_eq!(turn["intent"], "orderDrink");
        assert_eq!(turn["completed"], "orderDrink");
    }
    assert_eq!(
        turns[0]["reply"].as_str().unwrap(),
        "Okay: twelve ounce dark roast double shot mocha some whole milk. Is there anything else I can help with?"
    );
    assert_eq!(
        turns[1]["reply"].as_str().unwrap(),
        "Okay: medium medium roast latte a bit of brown sugar. Is there anything else I can help with?",
        "size medium, roast medium roast, no milk invented"
    );
}

#[test]
fn understand_prints_one_json_object_per_file_and_reports_bad_files() {
    let _cores = common::cores();
    let files = dev_files(4);
    let bad = temp_dir("bad-wav").join("not-audio.wav");
    std::fs::write(&bad, b"RIFF but not really").unwrap();
    let mut args = vec!["understand", "--domain", "barista", "--json"];
    let names: Vec<String> = files
        .iter()
        .map(|f| f.to_str().unwrap().to_string())
        .collect();
    args.extend(names.iter().map(String::as_str));
    args.push(bad.to_str().unwrap());
    let o = hark(&args);
    assert!(!o.status.success(), "a bad file makes the run fail");
    assert!(stderr(&o).contains("1 of 5 files"), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "the good files are still read");
    let labels = labels();
    for (line, file) in lines.iter().zip(&files) {
        for key in ["file", "transcript", "intent", "slots", "ms"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
        let name = file.file_name().unwrap().to_str().unwrap();
        let expected = &labels[name];
        assert_eq!(line["intent"], expected["intent"], "{line}");
        for (slot, value) in expected["slots"].as_object().unwrap() {
            assert_eq!(
                line["slots"][slot].as_str().map(str::trim),
                value.as_str().map(str::trim),
                "{name} {slot}: {line}"
            );
        }
    }
    assert!(
        lines[4]["error"]
            .as_str()
            .unwrap()
            .contains("not-audio.wav")
            || lines[4]["file"].as_str().unwrap().contains("not-audio.wav")
    );
    let _ = std::fs::remove_file(&bad);
}

#[test]
fn eval_spoken_on_dev_recordings_clean_and_in_kitchen_noise() {
    let _cores = common::cores();
    // A subset of the dev set, so the test stays short: files are matched to labels by name.
    let dir = temp_dir("eval");
    for file in dev_files(16) {
        std::fs::copy(&file, dir.join(file.file_name().unwrap())).unwrap();
    }
    let data = barista_data();
    let o = eval_in_kitchen_noise(&dir, "12", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    eprintln!("{report:#}");
    assert_eq!(report["files"], 16);
    let rate = |i: usize| report["conditions"][i]["acceptance_rate"].as_f64().unwrap();
    assert_eq!(report["conditions"][0]["condition"], "clean");
    assert_eq!(report["conditions"][1]["condition"], "12 dB");
    assert!(rate(0) >= 93.0, "clean acceptance {}", rate(0));
    assert!(rate(1) >= 80.0, "12 dB acceptance {}", rate(1));
    assert_eq!(report["noisy_average"].as_f64(), Some(rate(1)));
    assert!(report["latency"]["p50_ms"].as_f64().unwrap() > 0.0);

    // Bad input: SNRs without noise, labels that are not labels, a folder with nothing
    // labelled.
    let labels = data.join("dev/labels.json");
    let eval_fails = |data: &Path, labels: &Path, extra: &[&str], says: &str| {
        let mut args = vec!["eval", "spoken", "--domain", "barista"];
        args.extend([
            "--data",
            data.to_str().unwrap(),
            "--labels",
            labels.to_str().unwrap(),
        ]);
        args.extend(extra);
        let o = hark(&args);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    };
    eval_fails(&dir, &labels, &["--snr", "6"], "--snr needs --noise");
    std::fs::write(dir.join("labels.json"), "[1, 2]").unwrap();
    eval_fails(&dir, &dir.join("labels.json"), &[], "not a labels file");
    let empty = temp_dir("eval-empty");
    eval_fails(&empty, &labels, &[], "has a label");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&empty);
}

#[test]
fn the_grammar_holds_recognition_to_the_domain_and_short_answers_are_confirmed() {
    let _cores = common::cores();
    // The barista domain is all templates, so recognition is held to its grammar.
    let check = hark(&["domain", "check", "barista"]);
    assert!(check.status.success(), "{}", stderr(&check));
    assert!(
        stdout(&check).contains("held to a grammar of"),
        "{}",
        stdout(&check)
    );
    // Spoken with the project's TTS voice: utility commands the grammar holds, an order, and
    // sentences outside the domain, which must not turn into a help request or a handoff.
    // Piper's voice differs a little each time it speaks; the sentences outside the domain
    // are spoken by espeak, which says them the same way every run (a Piper rendering of the
    // weather question was once misheard as "… weather light …" and read as an order: a
    // known weakness, not something a run should decide by chance).
    let dir = temp_dir("grammar");
    let said = [
        ("cancel that", Some("cancel"), "piper"),
        ("what can I say", Some("help"), "piper"),
        (
            "can I get a large iced mocha with soy milk",
            Some("orderDrink"),
            "piper",
        ),
        ("hello there", None, "espeak"),
        ("what is the weather like tomorrow", None, "espeak"),
    ];
    let mut args = vec!["understand", "--domain", "barista", "--json"];
    let files: Vec<String> = said
        .iter()
        .enumerate()
        .map(|(i, (text, _, voice))| {
            let file = dir.join(format!("{i}.wav"));
            let o = hark(&[
                "say",
                "--voice",
                voice,
                "--output",
                file.to_str().unwrap(),
                text,
            ]);
            assert!(o.status.success(), "{}", stderr(&o));
            file.to_str().unwrap().to_string()
        })
        .collect();
    args.extend(files.iter().map(String::as_str));
    let o = hark(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines: Vec<Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), said.len());
    for (line, (text, intent, _)) in lines.iter().zip(said) {
        match intent {
            Some(intent) => assert_eq!(line["intent"], intent, "{text}: {line}"),
            None => assert!(
                !["cancel", "help", "human", "goodbye"]
                    .contains(&line["intent"].as_str().unwrap_or("")),
                "{text}: {line}"
            ),
        }
    }
    assert_eq!(
        lines[2]["slots"]["coffeeDrink"], "iced mocha",
        "{}",
        lines[2]
    );
    assert_eq!(lines[2]["slots"]["milkAmount"], "soy milk", "{}", lines[2]);
    // The imported domain knows what is outside it: no intent at all, not an order.
    assert!(lines[4]["intent"].is_null(), "{}", lines[4]);
    assert_eq!(lines[2]["slots"]["size"], "large", "{}", lines[2]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn speech_is_found_in_kitchen_noise_not_only_in_quiet() {
    let _cores = common::cores();
    use hark::spoken::{eval::read_recording, speech_range};
    let noise = read_recording(&barista_data().join("kitchen.wav")).unwrap();
    let files = dev_files(8);
    for (i, file) in files.iter().enumerate() {
        let clean = read_recording(file).unwrap();
        let std::ops::Range { start: begin, end } = speech_range(&clean);
        assert!(
            end - begin < clean.len(),
            "{}: silence trimmed",
            file.display()
        );
        let mut rng = hark::rng::SplitMix::new(i as u64);
        let noisy = hark::audio::noise::mix_at_snr(&clean, &noise, 15.0, &mut rng).unwrap();
        let std::ops::Range {
            start: noisy_begin,
            end: noisy_end,
        } = speech_range(&noisy);
        // The voiced stretch found in quiet (the span less its 300 ms margins) is kept whole
        // in noise...
        let margin = 4800;
        assert!(
            noisy_begin <= begin + margin && noisy_end + margin >= end,
            "{}: speech at {begin}..{end} in quiet, {noisy_begin}..{noisy_end} in noise",
            file.display()
        );
        // ...and the noise around it is left out: the VAD alone calls kitchen noise voice,
        // and a clatter a second or more from the command is not part of it.
        assert!(
            noisy_end - noisy_begin <= end - begin + 16_000,
            "{}: {} s of speech in quiet, {} s in noise",
            file.display(),
            (end - begin) as f32 / 16_000.0,
            (noisy_end - noisy_begin) as f32 / 16_000.0
        );
    }
}

#[test]
fn rescoring_recovers_slot_values_the_greedy_decoder_confused() {
    let _cores = common::cores();
    // Dev recordings where greedy decoding under the grammar heard another value of the same
    // slot: in quiet "iced coffee" for "iced mocha" and "sugar" for "sweetener"; the third
    // only in 6 dB noise ("a little bit of" for "a bit of"), here to show a right decode
    // stays right. Comparing whole sentences given the audio gets all three right.
    let names = [
        "2a6cdcfc-22c3-410b-a329-aae941869b98.wav",
        "6b28cf60-fb3e-46b0-bbad-80e812f54078.wav",
        "99bbe081-c8b1-4f7d-bbd4-c4188129670b.wav",
    ];
    let labels = labels();
    let files: Vec<String> = names
        .iter()
        .map(|n| {
            barista_data()
                .join("dev")
                .join(n)
                .to_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let understand = |extra: &[&str]| -> Vec<Value> {
        let mut args = vec!["understand", "--domain", "barista", "--json"];
        args.extend(extra);
        args.extend(files.iter().map(String::as_str));
        let o = hark(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let greedy = understand(&["--no-rescoring"]);
    let rescored = understand(&[]);
    for ((name, greedy), rescored) in names.iter().zip(&greedy).zip(&rescored) {
        eprintln!(
            "{name}: greedy {:?}, rescored {:?}",
            greedy["transcript"], rescored["transcript"]
        );
        let expected = &labels[*name]["slots"];
        for (slot, value) in expected.as_object().unwrap() {
            assert_eq!(
                rescored["slots"][slot].as_str(),
                Some(value.as_str().unwrap().trim()),
                "{name} {slot}: {rescored}"
            );
        }
    }
    // The switch turns it off: the sentences differ where a value was swapped.
    assert!(
        greedy
            .iter()
            .zip(&rescored)
            .any(|(g, r)| g["transcript"] != r["transcript"]),
        "{greedy:?} {rescored:?}"
    );
}

/// `hark eval spoken --json` on the labelled recordings in `dir`, clean and at `snr` dB of
/// kitchen noise.
fn eval_in_kitchen_noise(dir: &Path, snr: &str, extra: &[&str]) -> std::process::Output {
    let data = barista_data();
    let (labels, noise) = (data.join("dev/labels.json"), data.join("kitchen.wav"));
    let mut args = vec![
        "eval",
        "spoken",
        "--domain",
        "barista",
        "--data",
        dir.to_str().unwrap(),
        "--labels",
        labels.to_str().unwrap(),
        "--noise",
        noise.to_str().unwrap(),
        "--snr",
        snr,
        "--json",
    ];
    args.extend(extra);
    hark(&args)
}

/// `eval spoken` on one dev recording at one SNR of kitchen noise: whether it was accepted.
fn accepted_in_noise(name: &str, snr: &str, extra: &[&str]) -> bool {
    let dir = temp_dir(&format!("one-{snr}-{}", extra.len()));
    let data = barista_data();
    std::fs::copy(data.join("dev").join(name), dir.join(name)).unwrap();
    let mut args = vec!["--show-errors"];
    args.extend(extra);
    let o = eval_in_kitchen_noise(&dir, snr, &args);
    assert!(o.status.success(), "{}", stderr(&o));
    eprintln!("{}", stderr(&o));
    let report: Value = serde_json::from_str(&stdout(&o)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(report["conditions"][1]["condition"], format!("{snr} dB"));
    report["conditions"][1]["accepted"].as_u64() == Some(1)
}

/// How many of a dev recording's labelled slots `eval spoken` got right at one SNR of
/// kitchen noise (all of them when it accepted the command).
fn slots_right_in_noise(name: &str, snr: &str, extra: &[&str]) -> usize {
    let dir = temp_dir(&format!("slots-{snr}-{}", extra.len()));
    let data = barista_data();
    std::fs::copy(data.join("dev").join(name), dir.join(name)).unwrap();
    let mut args = vec!["--show-errors"];
    args.extend(extra);
    let o = eval_in_kitchen_noise(&dir, snr, &args);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(o.status.success(), "{}", stderr(&o));
    let labels: Value =
        serde_json::from_str(&std::fs::read_to_string(data.join("dev/labels.json")).unwrap())
            .unwrap();
    let expected = labels[name]["slots"].as_object().unwrap().clone();
    let prefix = format!("{snr} dB {name}: ");
    let err = stderr(&o);
    let Some(line) = err.lines().find(|l| l.starts_with(&prefix)) else {
        return expected.len(); // accepted: no error shown
    };
    eprintln!("{line}");
    let got = line
        .rsplit_once(", got ")
        .map(|(_, tail)| tail)
        .unwrap_or("");
    let got: Value = got
        .find('{')
        .and_then(|at| serde_json::from_str(&got[at..]).ok())
        .unwrap_or_default();
    expected
        .iter()
        .filter(|(slot, value)| {
            got[slot.as_str()].as_str().map(str::trim) == value.as_str().map(str::trim)
        })
        .count()
}

#[test]
fn two_values_misheard_in_one_noisy_command_are_set_right_together() {
    let _cores = common::cores();
    // A dev recording ("… a single shot large americano with soy milk") that greedy decoding
    // under the grammar hears at 9 dB of kitchen noise with two slots wrong ("… single shot
    // light, roasted, … mocha …"). Swapping one value at a time cannot fix it; swaps at two
    // places that each make the sentence likelier are made together. How many the swaps get
    // back depends on the CPU's floating point (whisper.cpp's kernels differ between Intel
    // and AMD): both on one machine, the drink on another; never fewer than without them.
    let name = "cdb84aae-4762-49c9-8f24-6aebb201fde8.wav";
    let with = slots_right_in_noise(name, "9", &[]);
    let without = slots_right_in_noise(name, "9", &["--no-rescoring"]);
    assert!(
        with > without,
        "rescoring sets misheard values right: {with} slots right, {without} without it"
    );
}

#[test]
fn a_common_word_does_not_win_over_the_one_the_audio_supports() {
    let _cores = common::cores();
    // "I'd like a latte with sugar and a bit of whole milk" at 15 dB: the greedy decoder
    // hears "latte"; scored as whole sentences, "a coffee" was likelier, the decoder's
    // expectation of common words outweighing the audio. With that expectation (the
    // sentence given no audio) partly taken out, "latte" stands.
    let name = "4bf32777-06a2-482e-9464-c1ab15ce538e.wav";
    assert!(accepted_in_noise(name, "15", &[]));
}
