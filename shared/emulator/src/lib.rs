//! The emulator harness of raptr's tests: starts moto's server (installed by
//! `make setup` into the project's `.cache/venv`) on 127.0.0.1 on a free
//! port, waits until it answers, runs the shared bootstrap
//! (`scripts/bootstrap.sh`: buckets, table, queue, S3 event notifications),
//! and stops it when the handle is dropped, or when the test process ends in
//! any way: the server exits when its standard input, held by this process,
//! closes.
//!
//! What this crate does not do: talk S3 or DynamoDB itself. Tests build
//! their clients from [`Emulator::endpoint`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Names the bootstrap gives what it creates; [`Names::default`] is what the
/// demo and `localstack/` use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub bucket: String,
    /// (bucket, region)
    pub replicas: Vec<(String, String)>,
    pub table: String,
    pub queue: String,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            bucket: "raptr-primary".into(),
            replicas: vec![
                ("raptr-replica-eu".into(), "eu-west-1".into()),
                ("raptr-replica-us".into(), "us-west-2".into()),
                ("raptr-replica-ap".into(), "ap-southeast-1".into()),
            ],
            table: "raptr".into(),
            queue: "raptr-ingest".into(),
        }
    }
}

/// A running emulator.
#[derive(Debug)]
pub struct Emulator {
    child: Mutex<Child>,
    // Held open for the emulator's lifetime: closing it stops the server.
    _stdin: ChildStdin,
    port: u16,
    root: PathBuf,
}

/// The region the emulator's primary resources live in.
pub const REGION: &str = "us-east-1";

/// The repository's root (where `.cache/venv` and `scripts/` are).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
}

fn venv_bin(root: &Path, name: &str) -> PathBuf {
    root.join(".cache/venv/bin").join(name)
}

impl Emulator {
    /// Starts an emulator and bootstraps [`Names::default`] on it.
    pub fn start() -> io::Result<Emulator> {
        let root = repo_root();
        let python = venv_bin(&root, "python");
        if !python.exists() || !venv_bin(&root, "aws").exists() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} has no emulator: run `make setup` (it installs moto and the AWS CLI there)",
                    root.join(".cache/venv").display()
                ),
            ));
        }
        let mut child = Command::new(&python)
            .arg(root.join("scripts/emulator.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| io::Error::other("no stdin"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let port: u16 = line
            .trim()
            .strip_prefix("port ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| {
                let _ = child.kill();
                io::Error::other(format!("the emulator did not start (it said {line:?})"))
            })?;
        let emulator = Emulator {
            child: Mutex::new(child),
            _stdin: stdin,
            port,
            root,
        };
        emulator.wait_ready(Duration::from_secs(30))?;
        emulator.bootstrap(&Names::default())?;
        Ok(emulator)
    }

    /// One emulator per test process, started on first use.
    pub fn shared() -> &'static Emulator {
        static SHARED: OnceLock<Emulator> = OnceLock::new();
        SHARED.get_or_init(|| match Emulator::start() {
            Ok(e) => e,
            Err(e) => panic!("cannot start the emulator: {e}"),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The environment a child process (the AWS CLI, a raptr command) needs
    /// to talk to this emulator.
    pub fn env(&self) -> Vec<(String, String)> {
        let path = format!(
            "{}:{}",
            self.root.join(".cache/venv/bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        [
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", "raptr-emulator".into()),
            ("AWS_SECRET_ACCESS_KEY", "raptr-emulator".into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_REGION", REGION.into()),
            ("RAPTR_S3_PATH_STYLE", "true".into()),
            ("PATH", path),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Turns moto's IAM enforcement on or off for the whole emulator. On,
    /// every request must be signed with an access key of an IAM user
    /// created on it, and is allowed only as that user's policies say;
    /// the default credentials of [`Emulator::env`] are refused. Off (as
    /// it starts), nothing is checked. Use it on an emulator of your own:
    /// it applies to everyone talking to this one.
    pub fn enforce_iam(&self, on: bool) -> io::Result<()> {
        // moto's reset-auth takes the number of requests still let through
        // unchecked: none, or more than any test makes.
        let body = if on { "0" } else { "1000000000" };
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        write!(
            stream,
            "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.port,
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(io::Error::other(format!(
                "the emulator refused to change IAM enforcement: {}",
                answer.lines().next().unwrap_or("no answer")
            )))
        }
    }

    fn wait_ready(&self, limit: Duration) -> io::Result<()> {
        let start = Instant::now();
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if let Ok(Some(status)) = self
                .child
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .try_wait()
            {
                return Err(io::Error::other(format!("the emulator exited: {status}")));
            }
            if start.elapsed() > limit {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "the emulator did not answer on port {} within {limit:?}",
                        self.port
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs `scripts/bootstrap.sh` for `names` (idempotent).
    pub fn bootstrap(&self, names: &Names) -> io::Result<()> {
        let replicas: Vec<String> = names
            .replicas
            .iter()
            .map(|(b, r)| format!("{b}@{r}"))
            .collect();
        let out = Command::new("bash")
            .arg(self.root.join("scripts/bootstrap.sh"))
            .envs(self.env())
            .env("RAPTR_BUCKET", &names.bucket)
            .env("RAPTR_REPLICAS", replicas.join(" "))
            .env("RAPTR_TABLE", &names.table)
            .env("RAPTR_QUEUE", &names.queue)
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "bootstrap failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Ok(mut c) = self.child.lock() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
