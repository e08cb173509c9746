//! Sessions and memory kept between processes: SQLite (the embedded default) across
//! restarts of `hark chat`, and Redis, with a real `redis-server` started here, shared by
//! two hark processes as two instances behind a load balancer would share it.

mod common;

use std::net::TcpListener;

fn chat(store: &str, user: &str, lines: &[&str]) -> (Vec<String>, String) {
    let out = common::run_chat(&["--store", store, "--user", user], &[], lines);
    let stdout: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    eprintln!("{}", stdout.join("\n"));
    (stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A conversation interrupted by a restart: the second process greets the user by name
/// and continues the booking where it stopped.
fn interrupted_booking_resumes(store: &str) {
    let (first, _) = chat(
        store,
        "ana",
        &["hi, my name is ana", "I'd like to book a haircut tomorrow"],
    );
    assert_eq!(first.last().unwrap(), "Hark: At what time?");
    let (second, _) = chat(store, "ana", &["at 2pm", "yes"]);
    assert_eq!(second[0], "Hark: Welcome back, Ana! At what time?");
    assert!(
        second[2].contains("Your haircut is booked for Thursday, November 26 at 2 PM"),
        "{second:?}"
    );
    // Another user has a conversation of their own.
    let (other, _) = chat(store, "bob", &[]);
    assert_eq!(other[0], "Hark: Hi, I'm Hark. How can I help you today?");
}

/// Without `--user` nobody's conversation is resumed or remembered: the next person at the
/// same machine starts afresh, with nothing of the last one's name, e-mail or booking.
#[test]
fn anonymous_conversations_leave_nothing_for_the_next_person() {
    let dir = common::temp_dir("store-anonymous");
    let store = format!("sqlite:{}", dir.join("sessions.sqlite").display());
    let anonymous = |lines: &[&str]| {
        let out = common::run_chat(&["--store", &store], &[], lines);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = anonymous(&[
        "hi, my name is Alex",
        "reset my password",
        "work",
        "it's alex at example dot com",
    ]);
    assert!(
        first.contains("Alex") || first.contains("password"),
        "{first}"
    );
    let second = anonymous(&["I'd like to book a haircut tomorrow"]);
    assert!(
        second.starts_with("Hark: Hi, I'm Hark. How can I help you today?"),
        "{second}"
    );
    for secret in ["Alex", "alex", "example", "password"] {
        assert!(
            !second.contains(secret),
            "{secret:?} reached the next person: {second}"
        );
    }
    // Nothing was stored about either person.
    let (named, _) = chat(&store, "anonymous", &[]);
    assert_eq!(named[0], "Hark: Hi, I'm Hark. How can I help you today?");
    std::fs::remove_dir_all(dir).ok();
}

/// A kiosk forgets each conversation once it is over: after a goodbye the next person is
/// greeted afresh, and the last one's unfinished booking and name are gone.
#[test]
fn a_kiosk_forgets_each_conversation_after_goodbye() {
    let out = common::run_chat(
        &["--store", "none", "--kiosk"],
        &[],
        &[
            "hi, my name is Alex",
            "I'd like to book a haircut tomorrow",
            "bye",
            "at 2pm",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines[2].ends_with("At what time?"), "{stdout}");
    let greeting = "Hark: Hi, I'm Hark. How can I help you today?";
    assert_eq!(lines[4], greeting, "{stdout}");
    assert!(
        !lines[5].contains("booked"),
        "the booking carried over: {stdout}"
    );
    assert!(!lines[5..].join(" ").contains("Alex"), "{stdout}");
    // --kiosk and --user contradict each other.
    let both = common::run_chat(&["--kiosk", "--user", "ana"], &[], &[]);
    assert!(!both.status.success());
}

#[test]
fn sqlite_keeps_sessions_across_restarts() {
    let dir = common::temp_dir("store-sqlite");
    interrupted_booking_resumes(&format!("sqlite:{}", dir.join("sessions.sqlite").display()));
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn redis_shares_sessions_between_instances() {
    let (_server, port) = common::redis::start_redis();
    interrupted_booking_resumes(&format!("redis://127.0.0.1:{port}/"));
}

#[test]
fn an_unreachable_store_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (_, err) = chat(&format!("redis://127.0.0.1:{port}/"), "ana", &["hi"]);
    assert!(err.contains(&format!("redis://127.0.0.1:{port}/")), "{err}");
    let (_, err) = chat("mongodb://x", "ana", &["hi"]);
    assert!(err.contains("unknown session store 'mongodb://x'"), "{err}");
}

/// Redis stops mid-conversation: the conversation goes on, and the user is told once that
/// what they said was not saved.
#[test]
fn a_store_that_fails_mid_conversation_is_told_to_the_user_once() {
    use std::io::{BufRead, BufReader, Write};
    let (server, port) = common::redis::start_redis();
    let store = format!("redis://127.0.0.1:{port}/");
    let mut child = common::spawn_chat(&["--store", &store, "--user", "ana"], &[]);
    let mut stdin = child.stdin.take().unwrap();
    let mut replies = BufReader::new(child.stdout.take().unwrap()).lines();
    let greeting = replies.next().unwrap().unwrap();
    assert!(greeting.starts_with("Hark: "), "{greeting}");
    let mut say = |line: &str| {
        writeln!(stdin, "{line}").unwrap();
        replies.next().unwrap().unwrap()
    };
    let first = say("hi, my name is Ana");
    assert!(!first.contains("couldn't save"), "{first}");
    drop(server);
    let second = say("I'd like to book a haircut tomorrow");
    assert!(
        second.contains("At what time?") && second.contains("couldn't save"),
        "{second}"
    );
    let third = say("at 2pm");
    assert!(!third.contains("couldn't save"), "said once: {third}");
    drop(stdin);
    let _ = child.wait();
}
