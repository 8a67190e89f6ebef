//! What the workspace's tests share (dev-only, not published): [`Script`], a scripted HTTP
//! server on 127.0.0.1 that answers each route from a queue of replies (so a test can say
//! "503, then 503, then 200") or from a handler written for the test, including broken
//! replies that httpmock cannot give (a dropped
//! connection, a truncated body, a body without end, no answer at all); [`RecordingSleep`],
//! the one stand-in [`Sleep`](leapcraft_ext::Sleep), which records the waits instead of
//! waiting; clients of the scripted server and of `leapcraft-fake`; and [`mocked`], a typed
//! httpmock server that hands out a token; and [`Mosquitto`], a real MQTT broker of one's own.

mod mosquitto;

pub use mosquitto::Mosquitto;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use leapcraft_httpmock::MockServerExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One scripted answer.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete response.
    Http {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Headers claiming `claimed` bytes, then `body` (shorter), then the connection closes.
    Truncated {
        status: u16,
        body: String,
        claimed: usize,
    },
    /// Headers claiming `claimed` bytes, then `body` (shorter), then nothing: the connection
    /// stays open.
    Stall {
        status: u16,
        body: String,
        claimed: usize,
    },
    /// A complete JSON response whose body is these bytes, valid UTF-8 or not.
    Bytes { status: u16, body: Vec<u8> },
    /// The connection closes without a response.
    Drop,
    /// The connection stays open and nothing is ever sent (until the client closes it).
    Hang,
    /// A chunked body that never ends: 64 KiB chunks until the client stops reading.
    Endless { status: u16 },
    /// Headers announcing `length` bytes, then nothing.
    Announced { status: u16, length: u64 },
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Reply::Http {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    pub fn status(status: u16) -> Self {
        Reply::json(status, r#"{"message":"scripted"}"#)
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        if let Reply::Http { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    pub fn token(token: &str) -> Self {
        Reply::json(200, format!(r#"{{"type":"bearer","token":"{token}"}}"#))
    }
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The raw request target: path and query, as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }
}

/// What answers a request no queue or fixed reply is for.
type Handler =
    Arc<dyn Fn(Seen) -> std::pin::Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

#[derive(Default)]
struct State {
    queues: HashMap<(String, String), VecDeque<Reply>>,
    fallback: HashMap<(String, String), Reply>,
    handler: Option<Handler>,
    seen: Vec<Seen>,
}

/// See the module docs. Routes are `(method, path)`; the path includes the `/v1` prefix.
#[derive(Clone)]
pub struct Script {
    base: String,
    state: Arc<Mutex<State>>,
    /// Connections open now.
    open: Arc<tokio::sync::watch::Sender<usize>>,
}

impl Script {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/v1", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State::default()));
        let open = Arc::new(tokio::sync::watch::Sender::new(0));
        let (shared, counter) = (state.clone(), open.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, counter) = (shared.clone(), counter.clone());
                counter.send_modify(|n| *n += 1);
                tokio::spawn(async move {
                    serve(stream, state).await;
                    counter.send_modify(|n| *n -= 1);
                });
            }
        });
        Self { base, state, open }
    }

    /// A server that answers every request with `handler`, but those a queue
    /// ([`push`](Self::push)) or a fixed reply ([`always`](Self::always)) is for. The handler
    /// may take its time, or never answer.
    pub async fn answering<F, Fut>(handler: F) -> Self
    where
        F: Fn(Seen) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Reply> + Send + 'static,
    {
        let script = Self::start().await;
        script.state.lock().unwrap().handler = Some(Arc::new(move |seen| Box::pin(handler(seen))));
        script
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// Waits until no connection is open.
    pub async fn all_closed(&self) {
        let mut open = self.open.subscribe();
        let _ = open.wait_for(|n| *n == 0).await;
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Queues replies for a route, answered in order.
    pub fn push(&self, method: &str, path: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut state = self.state.lock().unwrap();
        state
            .queues
            .entry((method.into(), format!("/v1{path}")))
            .or_default()
            .extend(replies);
    }

    /// The reply for a route once its queue is empty.
    pub fn always(&self, method: &str, path: &str, reply: Reply) {
        let mut state = self.state.lock().unwrap();
        state
            .fallback
            .insert((method.into(), format!("/v1{path}")), reply);
    }

    /// Requests received for a path (without `/v1`), any method.
    pub fn seen(&self, path: &str) -> Vec<Seen> {
        let path = format!("/v1{path}");
        let state = self.state.lock().unwrap();
        state
            .seen
            .iter()
            .filter(|s| s.path() == path)
            .cloned()
            .collect()
    }

    pub fn count(&self, path: &str) -> usize {
        self.seen(path).len()
    }
}

async fn serve(mut stream: TcpStream, state: Arc<Mutex<State>>) {
    let mut buffer = Vec::new();
    loop {
        let Some(seen) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let key = (seen.method.clone(), seen.path().to_owned());
        let scripted = {
            let mut state = state.lock().unwrap();
            state.seen.push(seen.clone());
            let queued = state.queues.get_mut(&key).and_then(VecDeque::pop_front);
            queued
                .or_else(|| state.fallback.get(&key).cloned())
                .ok_or_else(|| state.handler.clone())
        };
        let reply = match scripted {
            Ok(reply) => reply,
            Err(Some(handler)) => handler(seen).await,
            Err(None) => Reply::json(404, r#"{"message":"no such route"}"#),
        };
        let stall = matches!(reply, Reply::Stall { .. });
        match reply {
            Reply::Http {
                status,
                headers,
                body,
            } => {
                let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n", body.len());
                for (name, value) in headers {
                    head.push_str(&format!("{name}: {value}\r\n"));
                }
                head.push_str("\r\n");
                head.push_str(&body);
                // One write: two small ones meet Nagle and delayed ACKs (40 ms each).
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
            }
            Reply::Bytes { status, body } => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                let mut all = head.into_bytes();
                all.extend_from_slice(&body);
                if stream.write_all(&all).await.is_err() {
                    return;
                }
            }
            Reply::Truncated {
                status,
                body,
                claimed,
            }
            | Reply::Stall {
                status,
                body,
                claimed,
            } => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {claimed}\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let _ = stream.write_all(body.as_bytes()).await;
                if !stall {
                    return;
                }
                std::future::pending::<()>().await;
            }
            Reply::Drop => return,
            Reply::Hang => {
                // Until the client closes the connection.
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
            Reply::Endless { status } => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
                );
                if stream.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
                while stream.write_all(chunk.as_bytes()).await.is_ok() {}
                return;
            }
            Reply::Announced { status, length } => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
                );
                let _ = stream.write_all(head.as_bytes()).await;
                let mut sink = [0u8; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
                return;
            }
        }
    }
}

async fn read_request(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Seen> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let body_start = head_end + 4;
    while buffer.len() < body_start + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buffer[body_start..body_start + length]).into_owned();
    buffer.drain(..body_start + length);
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

/// A `Sleep` that records each wait and returns at once.
#[derive(Clone, Debug, Default)]
pub struct RecordingSleep(pub Arc<Mutex<Vec<Duration>>>);

impl RecordingSleep {
    pub fn waits(&self) -> Vec<Duration> {
        self.0.lock().unwrap().clone()
    }
}

impl leapcraft_ext::Sleep for RecordingSleep {
    fn sleep(&self, duration: Duration) -> leapcraft_ext::SleepFuture {
        self.0.lock().unwrap().push(duration);
        Box::pin(async {})
    }
}

/// A client of `base` with key `KEY`, recording its waits.
pub fn client(base: &str, sleep: &RecordingSleep) -> leapcraft_ext::ClientBuilder {
    leapcraft_ext::Client::builder()
        .api_key(KEY)
        .base_url(base)
        .sleep(sleep.clone())
}

/// A client of the fake server.
pub fn fake_client(fake: &leapcraft_fake::FakeServer) -> leapcraft_ext::ClientBuilder {
    leapcraft_ext::Client::builder()
        .api_key(fake.api_key())
        .base_url(fake.base_url())
}

/// A client of the fake for tests on a paused clock, which jumps ahead while waiting on the
/// network: no timeouts, so no timers but the test's, the fake's and the waits'.
pub fn paused_clock_client(fake: &leapcraft_fake::FakeServer) -> leapcraft_ext::ClientBuilder {
    fake_client(fake)
        .attempt_timeout(None)
        .overall_timeout(None)
}

pub const KEY: &str = "KEY-s3cr3t-9f8e7d";
pub const DEVICE: &str = r#"{"serial":"LC-2026-X88","meta":{}}"#;

/// A typed httpmock server that hands out the token `tok` for [`KEY`], and a client of it
/// (whose base URL is the server's root: the operations' paths have no `/v1`).
pub async fn mocked() -> (httpmock::MockServer, leapcraft_ext::Client) {
    let server = httpmock::MockServer::start_async().await;
    server.get_access_token(|when, then| {
        when.body(&leapcraft_api::types::TokenRequest {
            api_key: KEY.into(),
        });
        then.ok(&leapcraft_api::types::TokenResponse {
            token: "tok".into(),
            type_: Some("bearer".into()),
        });
    });
    let client = leapcraft_ext::Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .build()
        .expect("a valid client");
    (server, client)
}
