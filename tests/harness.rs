//! Test harness: a `#[must_use]` builder that writes a repository into a temp dir, runs the real
//! binary, and checks status and output; plus the real emulator over loopback.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use assert_cmd::assert::OutputAssertExt;
use predicates::prelude::*;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_kore-notify");
pub(crate) const CLIENT_ID: &str = "cs-test";
pub(crate) const SECRET: &str = "s3cr3t-never-printed-7f3a";
pub(crate) const NOW: &str = "2026-11-24T09:00:00Z";

pub(crate) fn config(host: &str) -> String {
    format!(
        "host: {host}\nbotId: st-test-bot\nclientId: ${{KORE_CLIENT_ID}}\nclientSecret: ${{KORE_CLIENT_SECRET}}\nstate: .kore-notify/state.json\nmanifests: [notifications]\nbatchSize: 1000\ntimeouts: {{connectSeconds: 2, requestSeconds: 5}}\n"
    )
}

pub(crate) struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Builder methods are `#[must_use]`: a test that forgets `.run()` does not compile cleanly.
pub(crate) struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
    unset: Vec<String>,
    expected_status: Option<i32>,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
    cwd: Option<PathBuf>,
}

impl Test {
    pub(crate) fn new() -> Test {
        let dir = tempfile::tempdir().expect("tempdir");
        Test {
            dir,
            args: vec![],
            env: vec![
                ("KORE_CLIENT_ID".into(), CLIENT_ID.into()),
                ("KORE_CLIENT_SECRET".into(), SECRET.into()),
                ("KORE_NOTIFY_NOW".into(), NOW.into()),
            ],
            unset: vec![
                "GITHUB_ACTIONS".into(),
                "NO_COLOR".into(),
                "FORCE_COLOR".into(),
                "KORE_NOTIFY_EVENTS".into(),
                "KORE_NOTIFY_REPO_URL".into(),
                "KORE_NOTIFY_CONFIG".into(),
                "KORE_NOTIFY_MAX_RECIPIENTS".into(),
            ],
            expected_status: None,
            stdout_has: vec![],
            stderr_has: vec![],
            cwd: None,
        }
    }

    /// A repository with the standard config pointing at `host`.
    #[must_use]
    pub(crate) fn repo(host: &str) -> Test {
        Test::new().file("kore-notify.yaml", &config(host))
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    #[must_use]
    pub(crate) fn file(self, rel: &str, content: &str) -> Test {
        self.bytes(rel, content.as_bytes())
    }

    #[must_use]
    pub(crate) fn bytes(self, rel: &str, content: &[u8]) -> Test {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
        self
    }

    /// A file of `len` bytes starting with `head`, the rest a hole (NUL bytes that take no disk
    /// space): a huge hostile file, cheaply.
    #[must_use]
    pub(crate) fn sparse(self, rel: &str, head: &[u8], len: u64) -> Test {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, head).expect("write");
        std::fs::OpenOptions::new().write(true).open(&p).and_then(|f| f.set_len(len)).expect("sparse");
        self
    }

    #[must_use]
    pub(crate) fn manifest(self, name: &str, content: &str) -> Test {
        self.file(&format!("notifications/{name}"), content)
    }

    #[must_use]
    pub(crate) fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Test {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    #[must_use]
    pub(crate) fn env(mut self, k: &str, v: &str) -> Test {
        self.env.retain(|(a, _)| a != k);
        self.env.push((k.into(), v.into()));
        self
    }

    #[must_use]
    pub(crate) fn unset(mut self, k: &str) -> Test {
        self.env.retain(|(a, _)| a != k);
        self.unset.push(k.into());
        self
    }

    #[must_use]
    pub(crate) fn cwd(mut self, rel: &str) -> Test {
        self.cwd = Some(self.dir.path().join(rel));
        self
    }

    #[must_use]
    pub(crate) fn status(mut self, code: i32) -> Test {
        self.expected_status = Some(code);
        self
    }

    #[must_use]
    pub(crate) fn stdout_has(mut self, s: &str) -> Test {
        self.stdout_has.push(s.into());
        self
    }

    #[must_use]
    pub(crate) fn stderr_has(mut self, s: &str) -> Test {
        self.stderr_has.push(s.into());
        self
    }

    pub(crate) fn command(&self) -> Command {
        let mut c = Command::new(BIN);
        c.current_dir(self.cwd.clone().unwrap_or_else(|| self.dir.path().to_path_buf()));
        for k in &self.unset {
            c.env_remove(k);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Starts the binary with `args` in the background, output discarded (for kill and signal
    /// trials).
    pub(crate) fn spawn(&self, args: &[&str]) -> Child {
        self.command().args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn kore-notify")
    }

    /// Runs the binary and checks the expectations; returns the output and the test for reuse.
    pub(crate) fn run(self) -> (Output, Test) {
        // assert_cmd runs the command and reports the command line, status, stdout and stderr
        // when an expectation fails.
        let mut assert = self.command().args(&self.args).assert();
        assert = assert.stderr(predicate::str::contains("panicked").not());
        if let Some(code) = self.expected_status {
            assert = assert.code(code);
        }
        for s in &self.stdout_has {
            assert = assert.stdout(predicate::str::contains(s.as_str()));
        }
        for s in &self.stderr_has {
            assert = assert.stderr(predicate::str::contains(s.as_str()));
        }
        let out = assert.get_output();
        let o = Output {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        let mut me = self;
        me.stdout_has.clear();
        me.stderr_has.clear();
        me.expected_status = None;
        (o, me)
    }

    pub(crate) fn state_path(&self) -> PathBuf {
        self.dir.path().join(".kore-notify/state.json")
    }
}

/// The real emulator, as a child process on an ephemeral loopback port.
pub(crate) struct Emulator {
    child: Child,
    pub url: String,
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Emulator {
    /// Jobs finish after 100 ms unless `extra` gives `--job-ms`.
    pub(crate) fn start(extra: &[&str]) -> Emulator {
        let job_ms: &[&str] = if extra.contains(&"--job-ms") { &[] } else { &["--job-ms", "100"] };
        let mut child = Command::new(BIN)
            .args(["emulator", "--listen", "127.0.0.1:0", "--client-id", CLIENT_ID, "--client-secret", SECRET])
            .args(job_ms)
            .args(extra)
            .env_remove("KORE_CLIENT_ID")
            .env_remove("KORE_CLIENT_SECRET")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start emulator");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).expect("emulator banner");
        let url = line.split_whitespace().find(|w| w.starts_with("http://")).expect("emulator url").to_string();
        Emulator { child, url, _stdout: reader }
    }

    pub(crate) fn stats(&self) -> serde_json::Value {
        let addr = self.url.trim_start_matches("http://");
        http_get(addr, "/_emulator/deliveries")
    }

    pub(crate) fn deliveries(&self) -> BTreeMap<String, u64> {
        serde_json::from_value(self.stats()["deliveries"].clone()).expect("deliveries")
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.0 GET over loopback (keeps the tests free of an HTTP client dependency).
pub(crate) fn http_get(addr: &str, path: &str) -> serde_json::Value {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).expect("connect emulator");
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("read");
    let body = buf.split("\r\n\r\n").nth(1).unwrap_or_default();
    serde_json::from_str(body).expect("json body")
}

/// Every file under a directory, recursively.
pub(crate) fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(all_files(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    for f in all_files(from) {
        let rel = f.strip_prefix(from).expect("prefix");
        if rel.starts_with(".kore-notify") {
            continue;
        }
        let dest = to.join(rel);
        std::fs::create_dir_all(dest.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&f, &dest).expect("copy");
    }
}

pub(crate) fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// One request as a hostile test server saw it.
#[derive(Clone, Debug)]
pub(crate) struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

/// What a hostile server answers.
pub(crate) enum Reply {
    /// These exact bytes (a whole HTTP response), then the connection is closed.
    Raw(Vec<u8>),
    /// A head, then `chunk` repeated `count` times (`usize::MAX`: until the client goes away).
    Stream { head: Vec<u8>, chunk: Vec<u8>, count: usize },
}

impl Reply {
    /// A complete response with a body and a content length.
    pub(crate) fn http(status: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut head = format!("HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        Reply::Raw([head.into_bytes(), body.as_bytes().to_vec()].concat())
    }
}

/// A programmable, hostile HTTP server on loopback: answers every request with what `reply` says
/// and records what it saw.
pub(crate) struct Hostile {
    pub url: String,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
}

impl Hostile {
    pub(crate) fn start(reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Hostile {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, reply) = (seen.clone(), std::sync::Arc::new(reply));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let (log, reply) = (log.clone(), reply.clone());
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut byte = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut byte) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&byte[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let mut lines = text.split("\r\n");
                    let first: Vec<&str> = lines.next().unwrap_or_default().split(' ').collect();
                    let headers: Vec<(String, String)> = lines
                        .take_while(|l| !l.is_empty())
                        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string())))
                        .collect();
                    let len: usize = headers
                        .iter()
                        .find(|(k, _)| k == "content-length")
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(0) + 4;
                    let mut body_len = buf.len() - head_end;
                    while body_len < len {
                        match s.read(&mut byte) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => body_len += n,
                        }
                    }
                    let seen = Seen {
                        method: first.first().unwrap_or(&"").to_string(),
                        path: first.get(1).unwrap_or(&"").to_string(),
                        headers,
                    };
                    log.lock().expect("log").push(seen.clone());
                    match reply(&seen) {
                        Reply::Raw(bytes) => {
                            let _ = s.write_all(&bytes);
                        }
                        Reply::Stream { head, chunk, count } => {
                            if s.write_all(&head).is_err() {
                                return;
                            }
                            for _ in 0..count {
                                if s.write_all(&chunk).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Hostile { url, seen }
    }

    pub(crate) fn requests(&self) -> Vec<Seen> {
        self.seen.lock().expect("log").clone()
    }
}

/// One kill -9 trial: `apply` killed after a pseudo-random delay (`min_ms` plus up to 400 ms, from
/// `seed`, which advances), then run again to the end. Returns the repository and `key`'s
/// deliveries (recipients `slack:{key}-…`), each checked to have been delivered exactly once.
#[track_caller]
pub(crate) fn kill_and_rerun(
    t: Test,
    emu: &Emulator,
    seed: &mut u64,
    min_ms: u64,
    key: &str,
) -> (Test, BTreeMap<String, u64>) {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    let delay = min_ms + *seed % 400;
    let mut child = t.spawn(&["apply", "--auto-approve", "--parallelism", "2"]);
    std::thread::sleep(std::time::Duration::from_millis(delay));
    let _ = Command::new("kill").args(["-9", &child.id().to_string()]).status();
    let _ = child.wait();
    let (o, t) = t.args(["apply", "--auto-approve"]).run();
    assert!(matches!(o.status, 0 | 3), "{key}: {}", o.stderr);
    let prefix = format!("slack:{key}-");
    let mine: BTreeMap<String, u64> = emu.deliveries().into_iter().filter(|(k, _)| k.starts_with(&prefix)).collect();
    assert!(mine.values().all(|c| *c == 1), "{key} (kill after {delay} ms): duplicate {mine:?}");
    (t, mine)
}

/// The lines of a snapshot inside its `recipients` lists.
pub(crate) fn recipient_lines(snapshot: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in snapshot.lines() {
        if l.trim_start().starts_with("\"recipients\": [") {
            inside = !l.trim_end().ends_with("[]") && !l.trim_end().ends_with("[],");
            continue;
        }
        if inside && l.trim_start().starts_with(']') {
            inside = false;
        }
        if inside {
            out.push(l);
        }
    }
    out
}

/// `git` in `dir`, checked.
pub(crate) fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@example.com")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@example.com")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes `repo` a git repository on `main` whose one commit (everything in it, "manifests") is
/// pushed to a new bare `origin`; returns the origin.
pub(crate) fn git_with_origin(repo: &Path) -> tempfile::TempDir {
    let origin = tempfile::tempdir().expect("origin");
    git(origin.path(), &["init", "--quiet", "--bare", "-b", "main"]);
    git(repo, &["init", "--quiet", "-b", "main"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "--quiet", "-m", "manifests"]);
    git(repo, &["remote", "add", "origin", origin.path().to_str().expect("utf8")]);
    git(repo, &["push", "--quiet", "origin", "HEAD:main"]);
    origin
}
