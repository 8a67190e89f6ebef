//! `leapcraft notifications --follow`: new notifications are printed as they appear, once
//! each, even while the list grows under the pages; failures are reported once per streak;
//! a refused key ends it with exit 3; Ctrl-C (SIGINT) ends it cleanly.

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::*;
use leapcraft_fake::{FakeServer, FaultKind};
use predicates::prelude::*;
use serde_json::Value;

/// A running `notifications --follow`, its stdout read line by line.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Follower {
    fn start(fake: &FakeServer, args: &[&str]) -> Self {
        let mut all = vec!["notifications", "--follow", "--interval", "1"];
        all.extend_from_slice(args);
        let mut child = spawn_at(fake.base_url(), fake.api_key(), &all);
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next line printed, within a minute.
    fn next_line(&self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(60))
            .expect("a line within a minute")
    }

    /// Pushes notifications (one each time nothing is printed for a while) until a line is
    /// printed: the first poll only learns what exists, so this waits for a later one.
    fn push_until_printed(&self, fake: &FakeServer, message: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            assert!(Instant::now() < deadline, "nothing printed");
            fake.push_notification("C4:FE:50:48:68:C5", "thresholdAlert", message);
            if let Ok(line) = self.lines.recv_timeout(Duration::from_millis(500)) {
                return line;
            }
        }
    }

    /// Ctrl-C; the exit status and what was printed on stderr.
    fn stop(mut self) -> (std::process::ExitStatus, String) {
        interrupt(&self.child);
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (self.child.wait().unwrap(), stderr)
    }
}

/// Following logs at info (a long-running command), but nothing went wrong.
fn assert_no_warning(stderr: &str) {
    assert!(
        !stderr.contains(" WARN ") && !stderr.contains(" ERROR "),
        "no poll failed: {stderr}"
    );
}

fn id_of(line: &str) -> i64 {
    let n: Value = serde_json::from_str(line).expect("one JSON object per line");
    n["id"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_prints_new_notifications_until_interrupted() {
    let fake = fake().await;
    let existing = fake.notifications().len();
    let follower = Follower::start(&fake, &["--format", "json"]);
    let first = follower.push_until_printed(&fake, "CO2 above 1200 ppm");
    let n: Value = serde_json::from_str(&first).unwrap();
    assert!(
        n["id"].as_i64().unwrap() > existing as i64,
        "the notifications that existed are not printed"
    );
    assert_eq!(n["message"], "CO2 above 1200 ppm");
    assert_eq!(n["category"], "thresholdAlert");

    let (status, stderr) = follower.stop();
    assert_eq!(
        status.code(),
        Some(130),
        "Ctrl-C exits 130 like every command"
    );
    assert_no_warning(&stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_with_a_limit_shows_the_newest_first_then_new_ones() {
    let fake = fake().await;
    let mut existing: Vec<i64> = fake.notifications().iter().map(|n| n.id).collect();
    existing.sort();
    assert!(existing.len() > 3);
    let follower = Follower::start(&fake, &["--format", "json", "--limit", "3"]);
    let backlog: Vec<i64> = (0..3).map(|_| id_of(&follower.next_line())).collect();
    assert_eq!(
        backlog,
        existing[existing.len() - 3..],
        "the newest 3, oldest first"
    );
    let new = follower.push_until_printed(&fake, "after the backlog");
    assert!(id_of(&new) > *existing.last().unwrap(), "{new}");
    let (status, _) = follower.stop();
    assert_eq!(status.code(), Some(130));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_merges_by_id_while_the_list_grows_between_pages() {
    // Every request raises a notification first: a poll that reads two pages sees the list
    // shifted by one between them.
    let fake = FakeServer::builder()
        .churn(leapcraft_fake::Churn::AddEachRequest)
        .start()
        .await
        .unwrap();
    let follower = Follower::start(&fake, &["--format", "json"]);
    let mut printed = vec![id_of(&follower.next_line())];
    // More than a page at once: the next poll reads two pages.
    let pushed: Vec<i64> = (0..60)
        .map(|_| fake.push_generated_notification().id)
        .collect();
    while printed.last() < pushed.last() {
        printed.push(id_of(&follower.next_line()));
    }
    let (status, stderr) = follower.stop();
    assert_eq!(status.code(), Some(130));
    assert_no_warning(&stderr);
    let expected: Vec<i64> = (printed[0]..=*printed.last().unwrap()).collect();
    assert_eq!(printed, expected, "each once, in order, none lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streak_of_failed_polls_is_reported_once() {
    let fake = fake().await;
    let follower = Follower::start(&fake, &["--format", "json", "--max-attempts", "1"]);
    follower.push_until_printed(&fake, "before");
    fake.inject_faults(FaultKind::ServiceUnavailable, 2);
    let after = fake.push_notification("C4:FE:50:48:68:C5", "thresholdAlert", "after");
    // Following goes on: the notification pushed meanwhile is printed (after any other
    // pushed before the failures).
    loop {
        let line = follower.next_line();
        if id_of(&line) == after.id {
            break;
        }
        assert!(line.contains("before"), "{line}");
    }
    let (status, stderr) = follower.stop();
    assert_eq!(status.code(), Some(130));
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains(" WARN ")).collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning for two failed polls: {stderr}"
    );
    assert!(warnings[0].contains("503"), "{stderr}");
    assert_eq!(fake.counters().faults.get(FaultKind::ServiceUnavailable), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_ends_following_with_exit_3() {
    let fake = fake().await;
    leapcraft_at(fake.base_url(), "sk-live-revoked")
        .timeout(Duration::from_secs(60))
        .args(["notifications", "--follow", "--interval", "1"])
        .assert()
        .code(3)
        .stdout("")
        .stderr(predicate::str::contains("authentication failed"));
}

#[test]
fn the_interval_has_a_minimum() {
    bare()
        .args(["notifications", "--follow", "--interval", "0.05"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "shorter than the minimum interval, 1s",
        ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followed_lines_are_safe_on_a_terminal_and_in_a_spreadsheet() {
    let fake = fake().await;
    let hostile = "=HYPERLINK(\"http://evil.example\")\u{1b}]52;c;eA==\u{7}\u{1b}[2J\r";
    let table = Follower::start(&fake, &[]);
    let line = table.push_until_printed(&fake, hostile);
    assert_terminal_safe("table line", line.as_bytes());
    assert!(line.contains("\\u{1b}]52"), "{line}");
    table.stop();

    let csv = Follower::start(&fake, &["--format", "csv"]);
    let header = csv.next_line();
    assert!(header.starts_with("id,"), "{header}");
    let row = csv.push_until_printed(&fake, hostile);
    csv.stop();
    let (_, rows) = parse_csv(&format!("{header}\n{row}\n"));
    assert!(rows[0][4].starts_with("'="), "neutralised: {row}");
}
