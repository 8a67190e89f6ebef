//! A real Mosquitto broker (Debian's `mosquitto`) of a test's or a benchmark's own, on a free
//! port of 127.0.0.1, without persistence; killed when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the broker may take to say it is running.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// A running Mosquitto, its configuration and its directory.
pub struct Mosquitto {
    child: Option<Child>,
    port: u16,
    conf: PathBuf,
    dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Where `mosquitto` is installed (Debian puts it in `/usr/sbin`), if it is.
    pub fn binary() -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|dir| dir.join("mosquitto"))
            .find(|p| p.is_file())
    }

    /// A broker with `extra` configuration lines (`{dir}` stands for its directory), its log
    /// echoed on stderr as `[mosquitto] ...`.
    pub fn start(extra: &str) -> Result<Self, String> {
        Self::start_with(extra, |_| {})
    }

    /// A broker with `extra` configuration lines, started once `prepare` has written the
    /// files they name in its directory.
    pub fn start_with(extra: &str, prepare: impl FnOnce(&Path)) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let user = Command::new("id")
            .arg("-un")
            .output()
            .map_err(|e| e.to_string())?;
        let user = String::from_utf8_lossy(&user.stdout).trim().to_owned();
        let conf = dir.path().join("mosquitto.conf");
        let extra = extra.replace("{dir}", &dir.path().display().to_string());
        // As root, mosquitto drops to its own user unless told to stay: the files here are
        // ours. Its default queue of 1,000 messages per client would drop part of what a
        // subscriber to `#` gets at once from a thousand devices.
        let text = format!(
            "listener {port} 127.0.0.1\npersistence false\nlog_dest stderr\n\
             log_type error\nlog_type warning\nlog_type notice\nlog_type information\n\
             max_queued_messages 100000\nuser {user}\n{extra}\n"
        );
        std::fs::write(&conf, text).map_err(|e| e.to_string())?;
        prepare(dir.path());
        let mut broker = Self {
            child: None,
            port,
            conf,
            dir,
        };
        broker.run()?;
        Ok(broker)
    }

    /// Runs the broker (again) and waits until it says it is running.
    pub fn run(&mut self) -> Result<(), String> {
        let binary =
            Self::binary().ok_or("mosquitto is not installed (apt-get install mosquitto)")?;
        let mut child = Command::new(binary)
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stderr = child.stderr.take().ok_or("no stderr")?;
        let (ready, running) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[mosquitto] {line}");
                if line.contains(" running") {
                    let _ = ready.send(());
                }
            }
        });
        self.child = Some(child);
        running
            .recv_timeout(START_DEADLINE)
            .map_err(|_| "mosquitto did not say it is running".to_owned())
    }

    /// Kills the broker (without persistence its retained messages are lost) and starts a new
    /// one on the same port.
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.run()
    }

    /// Kills the broker.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its port on 127.0.0.1.
    /// Freezes the broker (SIGSTOP): its connections stay open, and nothing is answered.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen broker run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("the broker runs");
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Its directory (configuration, password file, certificates).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}
