//! Process harness for integration tests and benchmarks: a real Xvfb, the test X client
//! and a real `kelpie`, each killed by PID when dropped. Every wait is bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A child process killed (and reaped) on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A private X server on a free display number.
pub struct Xvfb {
    pub display: String,
    proc: Proc,
}

impl Xvfb {
    pub fn start(width: u32, height: u32) -> Self {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", &format!("{width}x{height}x24"), "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed (apt-get install xvfb)");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(15)).expect("Xvfb reports its display number");
        let display = format!(":{}", line.trim());
        assert!(display.len() > 1, "Xvfb gave no display number");
        Self { display, proc: Proc(child) }
    }
}

impl Xvfb {
    /// Kills the X server, as a crash would.
    pub fn kill(&mut self) {
        let _ = self.proc.0.kill();
        let _ = self.proc.0.wait();
    }
}

/// The test X client (`kelpie-xprobe`): a full-screen window reporting input as JSON lines.
pub struct XProbe {
    pub lines: Receiver<Value>,
    _proc: Proc,
}

impl XProbe {
    pub fn start(display: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(workspace_bin("kelpie-xprobe"))
            .args(extra)
            .env("DISPLAY", display)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("kelpie-xprobe starts");
        let out = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    if tx.send(v).is_err() {
                        return;
                    }
                }
            }
        });
        let probe = Self { lines: rx, _proc: Proc(child) };
        let ready = probe.next_event("ready", Duration::from_secs(10)).expect("xprobe becomes ready");
        assert!(ready["width"].as_u64().is_some(), "ready line has the size: {ready}");
        probe
    }

    pub fn pid(&self) -> u32 {
        self._proc.0.id()
    }

    /// The next event of kind `ev`, skipping others, within `timeout`.
    pub fn next_event(&self, ev: &str, timeout: Duration) -> Option<Value> {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(v) if v["ev"] == ev => return Some(v),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    }
}

/// Path of a workspace binary built by `cargo build`, next to the running executable (a
/// binary) or one level up (an integration test in `target/<profile>/deps`). `KELPIE_BIN`
/// and `KELPIE_XPROBE_BIN` override.
pub fn workspace_bin(name: &str) -> PathBuf {
    let var = format!("{}_BIN", name.trim_start_matches("kelpie-").replace('-', "_").to_uppercase());
    let var = if name == "kelpie" { "KELPIE_BIN".to_string() } else { format!("KELPIE_{var}") };
    if let Ok(p) = std::env::var(&var) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("exe dir");
    for candidate in [dir.join(name), dir.parent().map(|d| d.join(name)).unwrap_or_default()] {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!(
        "{name} is missing next to {}: run `cargo build --workspace` first (make test does), or set {var}",
        exe.display()
    );
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// A bare HTTP/1.0 GET to 127.0.0.1:`port` with extra request headers.
pub fn request_at(port: u16, path: &str, headers: &[(&str, &str)]) -> Option<HttpResponse> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let mut lines = head.lines();
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Some(HttpResponse { status, headers, body: body.to_string() })
}

/// What [`Kelpie::request`] got back.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Lower-cased names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// A running `kelpie` attached to a display.
pub struct Kelpie {
    pub port: u16,
    /// Where `/health` answers: `--ops-listen`'s port when given, else `port`.
    pub health_port: u16,
    proc: Proc,
}

impl Kelpie {
    pub fn start(display: &str, args: &[&str]) -> Self {
        Self::start_bin(&workspace_bin("kelpie"), display, args)
    }

    /// Starts `kelpie` with extra environment variables (secrets are passed this way).
    pub fn start_env(display: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::spawn_full(&workspace_bin("kelpie"), display, args, env, Stdio::inherit())
    }

    /// Starts a specific `kelpie` binary (benchmarks use the release build).
    pub fn start_bin(bin: &std::path::Path, display: &str, args: &[&str]) -> Self {
        Self::spawn(bin, display, args, Stdio::inherit())
    }

    /// Starts `kelpie` with its log (stderr) written to `log`, for tests that read it.
    pub fn start_logged(display: &str, args: &[&str], log: &std::path::Path) -> Self {
        let file = std::fs::File::create(log).expect("log file");
        Self::spawn(&workspace_bin("kelpie"), display, args, Stdio::from(file))
    }

    fn spawn(bin: &std::path::Path, display: &str, args: &[&str], stderr: Stdio) -> Self {
        Self::spawn_full(bin, display, args, &[], stderr)
    }

    fn spawn_full(bin: &std::path::Path, display: &str, args: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Self {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let child = Command::new(bin)
            .args(["--display", display, "--listen", &listen])
            .args(args)
            .env("KELPIE_LOG", std::env::var("KELPIE_LOG").unwrap_or_else(|_| "info".into()))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("kelpie starts");
        let ops_port = args
            .iter()
            .position(|a| *a == "--ops-listen")
            .and_then(|i| args.get(i + 1))
            .and_then(|a| a.rsplit_once(':'))
            .and_then(|(_, p)| p.parse().ok());
        let k = Self { port, health_port: ops_port.unwrap_or(port), proc: Proc(child) };
        k.wait_healthy(Duration::from_secs(20));
        k
    }

    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    /// Waits up to `timeout` for the process to exit; its exit code if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.proc.0.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Whether the process is still running (it must never die from network input).
    pub fn alive(&mut self) -> bool {
        matches!(self.proc.0.try_wait(), Ok(None))
    }

    pub fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some((200, _)) = self.get_at(self.health_port, "/health") {
                return;
            }
            assert!(Instant::now() < deadline, "kelpie did not become healthy within {timeout:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `/health` as JSON (whatever its status code).
    pub fn health(&self) -> Value {
        let (_, body) = self.get_at(self.health_port, "/health").expect("health answers");
        serde_json::from_str(&body).expect("health is JSON")
    }

    /// A bare HTTP/1.0 GET: status code and body.
    pub fn get(&self, path: &str) -> Option<(u16, String)> {
        self.request(path, &[]).map(|r| (r.status, r.body))
    }

    /// A bare HTTP/1.0 GET to another of its ports (`--ops-listen`).
    pub fn get_at(&self, port: u16, path: &str) -> Option<(u16, String)> {
        request_at(port, path, &[]).map(|r| (r.status, r.body))
    }

    /// A bare HTTP/1.0 GET with extra request headers.
    pub fn request(&self, path: &str, headers: &[(&str, &str)]) -> Option<HttpResponse> {
        request_at(self.port, path, headers)
    }

    /// Polls `/health` until `pred` holds, returning the last body, or panics after `timeout`.
    pub fn wait_health(&self, timeout: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let h = self.health();
            if pred(&h) {
                return h;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; last /health: {h}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}
