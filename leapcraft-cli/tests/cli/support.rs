//! What the CLI tests share: the binary with a clean environment, readers of its output, and
//! [`Scripted`], a purpose-built server for what the fake does not do (hostile text, extreme
//! values, failures on one page, requests that never end): test-kit's [`Script`] answering
//! from a handler, with the token exchange done for it.

use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;

use assert_cmd::Command;
use leapcraft_fake::FakeServer;
pub use leapcraft_test_kit::Reply;
use leapcraft_test_kit::Script;
use serde_json::Value;

/// What the environment of the binary in a test never holds: the user's own settings.
const CLEARED: [&str; 8] = [
    "LEAPCRAFT_API_KEY",
    "LEAPCRAFT_BASE_URL",
    "LEAPCRAFT_PROFILE",
    "LEAPCRAFT_CONFIG",
    "LEAPCRAFT_MQTT_BROKER",
    "LEAPCRAFT_MQTT_USERNAME",
    "LEAPCRAFT_MQTT_PASSWORD",
    "COLUMNS",
];

/// `program` with none of the user's settings in its environment, and a home without a
/// config file (so that no profile of the user's applies).
pub fn isolated(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let home = std::env::temp_dir().join("leapcraft-tests-home-without-config");
    let mut cmd = std::process::Command::new(program);
    for name in CLEARED {
        cmd.env_remove(name);
    }
    cmd.env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"));
    cmd
}

/// The binary, with no key nor base URL in its environment.
pub fn bare() -> Command {
    let mut cmd = Command::from_std(isolated(assert_cmd::cargo::cargo_bin!("leapcraft")));
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// The binary pointed at `fake`, run by `sh` after the shell commands `prelude` (such as
/// `ulimit -f 8`), with the environment of [`bare`].
pub fn leapcraft_after(prelude: &str, fake: &FakeServer) -> Command {
    let mut sh = isolated("sh");
    sh.arg("-c")
        .arg(format!("{prelude}; exec \"$0\" \"$@\""))
        .arg(assert_cmd::cargo::cargo_bin!("leapcraft"))
        .args(["--base-url", fake.base_url(), "--api-key", fake.api_key()]);
    let mut cmd = Command::from_std(sh);
    cmd.timeout(Duration::from_secs(120));
    cmd
}

/// The binary, pointed at `base_url` with `key`.
pub fn leapcraft_at(base_url: &str, key: &str) -> Command {
    let mut cmd = bare();
    cmd.args(["--base-url", base_url, "--api-key", key]);
    cmd
}

/// The binary, pointed at `fake`.
pub fn leapcraft(fake: &FakeServer) -> Command {
    leapcraft_at(fake.base_url(), fake.api_key())
}

/// The binary as a child process pointed at `base_url` (for tests that interrupt it), its
/// stdout and stderr piped.
pub fn spawn_at(base_url: &str, key: &str, args: &[&str]) -> Child {
    isolated(assert_cmd::cargo::cargo_bin!("leapcraft"))
        .args(["--base-url", base_url, "--api-key", key])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Ctrl-C: SIGINT to `child`.
pub fn interrupt(child: &Child) {
    signal(child, "-INT");
}

/// What systemd sends to stop a service: SIGTERM to `child`.
pub fn terminate(child: &Child) {
    signal(child, "-TERM");
}

fn signal(child: &Child, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// A fake with every default.
pub async fn fake() -> FakeServer {
    FakeServer::builder()
        .start()
        .await
        .expect("the fake starts")
}

/// What a successful run printed on stdout (nothing on stderr when it is not a terminal).
pub fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.assert().success().get_output().clone();
    assert!(
        out.stderr.is_empty(),
        "nothing on stderr when it is not a terminal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

pub fn json(cmd: &mut Command) -> Value {
    let out = stdout_of(cmd.args(["--format", "json"]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

pub fn json_list(cmd: &mut Command) -> Vec<Value> {
    match json(cmd) {
        Value::Array(items) => items,
        other => panic!("expected an array, got {other}"),
    }
}

/// CSV text: header, then rows (each checked to have as many cells as the header).
pub fn parse_csv(text: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    for row in &rows {
        assert_eq!(row.len(), header.len(), "{text}");
    }
    (header, rows)
}

/// The CSV output of a successful run.
pub fn csv(cmd: &mut Command) -> (Vec<String>, Vec<Vec<String>>) {
    parse_csv(&stdout_of(cmd.args(["--format", "csv"])))
}

pub fn table(cmd: &mut Command) -> String {
    let out = stdout_of(cmd);
    assert!(!out.trim().is_empty());
    out
}

pub fn ids(items: &[Value], key: &str) -> Vec<String> {
    items
        .iter()
        .map(|i| i[key].as_str().expect("an id").to_owned())
        .collect()
}

/// A week of daily averages, as `telemetry` and `export` take it.
pub const RANGE: [&str; 6] = [
    "--averages",
    "daily",
    "--from",
    "2026-03-01",
    "--to",
    "2026-03-08",
];

/// `export` of [`RANGE`] into `out`.
pub fn export_args(out: &Path) -> Vec<String> {
    ["export"]
        .into_iter()
        .chain(RANGE)
        .chain(["--out", out.to_str().unwrap()])
        .map(str::to_owned)
        .collect()
}

/// The API key [`Scripted`] accepts.
pub const KEY: &str = "scripted-key";

/// A request to a [`Scripted`] server, the token exchange aside.
#[derive(Debug, Clone)]
pub struct Req {
    /// The path, such as `/v1/devices`.
    pub path: String,
    /// The query parameters.
    pub query: HashMap<String, String>,
}

impl Req {
    /// The query parameter `name`, as a number.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.query.get(name)?.parse().ok()
    }
}

/// A server on 127.0.0.1 that exchanges [`KEY`] for a token and answers every other request
/// with a handler written for the test. It records the requests.
pub struct Scripted {
    script: Script,
}

/// The token exchange's path.
const TOKEN_PATH: &str = "/v1/auth/client/token";

impl Scripted {
    pub async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Req) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let script = Script::answering(move |seen| {
            let handler = handler.clone();
            async move {
                if seen.path() == TOKEN_PATH {
                    let form = url_decoded(&seen.body);
                    return if form.get("api_key").map(String::as_str) == Some(KEY) {
                        Reply::token("tok")
                    } else {
                        reply(401, serde_json::json!({"message": "Invalid API key"}))
                    };
                }
                let query = seen.target.split_once('?').map_or("", |(_, q)| q);
                let req = Req {
                    path: seen.path().to_owned(),
                    query: url_decoded(query),
                };
                handler(req).await
            }
        })
        .await;
        Self { script }
    }

    pub fn base_url(&self) -> &str {
        self.script.base_url()
    }

    /// The requests so far (path and query), the token exchange aside.
    pub fn requests(&self) -> Vec<String> {
        self.script
            .requests()
            .into_iter()
            .filter(|seen| seen.path() != TOKEN_PATH)
            .map(|seen| seen.target)
            .collect()
    }

    /// How many requests had a path starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }

    /// The binary, pointed at this server with the right key.
    pub fn leapcraft(&self) -> Command {
        leapcraft_at(self.base_url(), KEY)
    }
}

fn url_decoded(query: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

/// A JSON response.
pub fn reply(status: u16, body: Value) -> Reply {
    Reply::json(status, body.to_string())
}

/// The devices `ids` as `GET /devices` answers for `req` (paged by `page` and `limit`).
pub fn device_page(ids: &[String], req: &Req) -> Reply {
    let limit = req.int("limit").unwrap_or(100);
    let page = req.int("page").unwrap_or(1);
    let items: Vec<Value> = if limit == -1 {
        ids.iter().map(|id| device(id)).collect()
    } else {
        ids.iter()
            .skip(((page - 1) * limit) as usize)
            .take(limit as usize)
            .map(|id| device(id))
            .collect()
    };
    reply(200, Value::Array(items))
}

/// A plain device.
pub fn device(id: &str) -> Value {
    serde_json::json!({"physical_id": id, "name": null, "type": "airbird", "meta": {}})
}

/// `n` device ids: `dev-0000`...
pub fn device_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("dev-{i:04}")).collect()
}

/// The last path segment of a request (the id of `/telemetry/{id}`), decoded.
pub fn last_segment(req: &Req) -> String {
    let segment = req.path.rsplit('/').next().unwrap_or_default();
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// Whether `bytes` can be shown on a terminal: no C0 control but line feed, no DEL, no C1
/// control (as UTF-8).
pub fn assert_terminal_safe(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c.is_control() && c != '\n')
        .collect();
    assert!(bad.is_empty(), "{what}: raw controls {bad:?} in:\n{text}");
}

/// Whether every cell of a CSV text is one a spreadsheet shows as text or a number.
pub fn assert_spreadsheet_safe(what: &str, csv_text: &str) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv_text.as_bytes());
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            let formula =
                cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell.parse::<f64>().is_err();
            assert!(!formula, "{what}: a formula cell {cell:?} in:\n{csv_text}");
        }
    }
}

/// Waits for the next event a scripted handler sends, at most a minute.
pub async fn next_event<T>(events: &mut tokio::sync::mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .expect("the event comes within a minute")
        .expect("the server is still there")
}

/// How long a daemon may take to log what a test waits for.
const DAEMON_DEADLINE: Duration = Duration::from_secs(45);

/// A long-running `leapcraft` (`serve`, `mqtt`) as a child process, its stderr followed a
/// line at a time as it comes (and echoed, tagged, for the test's output). Killed when
/// dropped, unless [`stop`](Self::stop)ped.
pub struct Daemon {
    child: Option<Child>,
    logs: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<String>>,
}

impl Daemon {
    /// Starts `cmd` (its stderr piped here) and waits until a line of its log holds `ready`:
    /// returns the daemon and that line.
    pub fn start(tag: &'static str, mut cmd: std::process::Command, ready: &str) -> (Self, String) {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let ready = ready.to_owned();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                eprintln!("[{tag}] {line}");
                if line.contains(&ready) {
                    let _ = ready_tx.send(line.clone());
                }
                let _ = tx.send(line);
            }
        });
        let line = ready_rx
            .recv_timeout(DAEMON_DEADLINE)
            .unwrap_or_else(|_| panic!("leapcraft {tag} did not log that it is ready"));
        let daemon = Self {
            child: Some(child),
            logs: tokio::sync::Mutex::new(lines),
        };
        (daemon, line)
    }

    /// Reads the log until a line holds `text`, and returns that line.
    pub async fn wait_log(&self, text: &str) -> String {
        let mut logs = self.logs.lock().await;
        let wait = async {
            while let Some(line) = logs.recv().await {
                if line.contains(text) {
                    return line;
                }
            }
            panic!("the daemon ended without logging {text:?}");
        };
        tokio::time::timeout(DAEMON_DEADLINE, wait)
            .await
            .unwrap_or_else(|_| panic!("no log line with {text:?} within {DAEMON_DEADLINE:?}"))
    }

    /// Whether it still runs.
    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// SIGTERM, as systemd sends, and what the process left (its exit status; its stderr
    /// was read by [`wait_log`](Self::wait_log)'s reader, not here).
    pub fn stop(mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().unwrap();
        terminate(&child);
        wait_with_deadline(&mut child)
    }

    /// SIGKILL: no goodbye.
    pub fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        wait_with_deadline(&mut child);
    }

    /// The lines logged so far that no [`wait_log`](Self::wait_log) read.
    pub async fn unread_logs(&self) -> Vec<String> {
        let mut logs = self.logs.lock().await;
        let mut lines = Vec::new();
        while let Ok(line) = logs.try_recv() {
            lines.push(line);
        }
        lines
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `child` to exit, at most [`DAEMON_DEADLINE`] (then kills it and fails).
fn wait_with_deadline(child: &mut Child) -> std::process::ExitStatus {
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > DAEMON_DEADLINE {
            let _ = child.kill();
            panic!("the daemon did not exit within {DAEMON_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binary as a daemon's command, pointed at `base_url` with `key`, running `args`.
pub fn daemon_command(base_url: &str, key: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = isolated(assert_cmd::cargo::cargo_bin!("leapcraft"));
    cmd.args(["--base-url", base_url, "--api-key", key])
        .args(args);
    cmd
}
