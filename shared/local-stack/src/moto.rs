//! The moto server: a DynamoDB + SQS emulator from the project's virtualenv
//! (`scripts/venv.sh moto` installs it into `.venv/`).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long a fresh moto server may take to answer. It usually starts in
/// 1-3 s; the margin is for a machine busy compiling.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A running moto server, killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Moto {
    /// `http://127.0.0.1:<port>`
    pub endpoint: String,
    pub port: u16,
    /// Where the server's output goes (removed on drop).
    pub log_path: PathBuf,
    child: Child,
}

impl Moto {
    /// Starts `<repo_root>/.venv/bin/moto_server` on a free port and waits
    /// until it answers.
    pub fn start(repo_root: &Path) -> anyhow::Result<Moto> {
        start_with(repo_root, false)
    }

    /// The endpoint tests share: `$MOTO_ENDPOINT` if set, else one server
    /// per test process, started on first use and killed by the kernel when
    /// the process exits (however it exits).
    ///
    /// Panics if the server cannot be started: tests cannot go on without it.
    pub fn shared() -> &'static str {
        static ENDPOINT: OnceLock<String> = OnceLock::new();
        ENDPOINT.get_or_init(|| {
            if let Ok(endpoint) = std::env::var("MOTO_ENDPOINT")
                && !endpoint.is_empty()
            {
                return endpoint;
            }
            match start_shared() {
                Ok(endpoint) => endpoint,
                Err(e) => panic!("cannot start the shared moto server: {e:#}"),
            }
        })
    }

    /// The PID of the server process.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID (SIGKILL); wait reaps it.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log_path);
    }
}

/// The repository root, found from this crate's location (tests and the
/// binary both run from within the workspace).
pub fn repo_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .find(|dir| dir.join("scripts").join("venv.sh").exists() || dir.join(".venv").exists())
        .unwrap_or_else(|| manifest.parent().and_then(Path::parent).unwrap_or(manifest))
        .to_path_buf()
}

fn moto_binary(repo_root: &Path) -> PathBuf {
    match std::env::var_os("MOTO_SERVER_BIN") {
        Some(bin) if !bin.is_empty() => PathBuf::from(bin),
        _ => repo_root.join(".venv").join("bin").join("moto_server"),
    }
}

/// Starts the shared server from a dedicated thread that never exits: the
/// child gets `PR_SET_PDEATHSIG = SIGKILL`, which fires when the *thread*
/// that forked it exits, so that thread must live as long as the process.
fn start_shared() -> anyhow::Result<String> {
    let (tx, rx) = std::sync::mpsc::channel::<anyhow::Result<String>>();
    std::thread::Builder::new()
        .name("moto-keeper".to_owned())
        .spawn(move || {
            let moto = start_with(&repo_root(), true);
            match moto {
                Ok(moto) => {
                    // Nobody reads the shared server's log once it is up;
                    // unlinking it now frees the space when the process ends.
                    let _ = std::fs::remove_file(&moto.log_path);
                    let _ = tx.send(Ok(moto.endpoint.clone()));
                    // Keep the server (and this thread) alive until the
                    // process ends; the kernel then kills the child.
                    let _moto = moto;
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .context("spawning the moto keeper thread")?;
    rx.recv().context("the moto keeper thread died")?
}

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

fn start_with(repo_root: &Path, die_with_thread: bool) -> anyhow::Result<Moto> {
    let bin = moto_binary(repo_root);
    if !bin.exists() {
        bail!(
            "moto server not found at {}: run `scripts/venv.sh moto` in {} to install it into .venv/",
            bin.display(),
            repo_root.display()
        );
    }
    // The port is free when picked but could be taken before moto binds it;
    // moto then exits at once and we try another port.
    let mut last_err = None;
    for _ in 0..3 {
        match try_start(&bin, die_with_thread) {
            Ok(moto) => return Ok(moto),
            Err(e) => last_err = Some(e),
        }
    }
    Err(last_err.expect("at least one attempt"))
}

fn try_start(bin: &Path, die_with_thread: bool) -> anyhow::Result<Moto> {
    let port = free_port()?;
    let log_path = std::env::temp_dir().join(format!("moto-{port}.log"));
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Moto must not pick up real credentials or regions from the
        // environment; it does not need them.
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1");
    if die_with_thread {
        set_parent_death_signal(&mut cmd);
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("spawning {}", bin.display()))?;
    let mut moto = Moto {
        endpoint: format!("http://127.0.0.1:{port}"),
        port,
        log_path,
        child,
    };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = moto.child.try_wait()? {
            bail!(
                "moto server exited during start-up ({status}); its output:\n{}",
                tail(&moto.log_path)
            );
        }
        if answers(port) {
            return Ok(moto);
        }
        if Instant::now() > deadline {
            // Dropping `moto` kills the child.
            bail!(
                "moto server on port {port} did not answer within {:?}; its output:\n{}",
                START_TIMEOUT,
                tail(&moto.log_path)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True when an HTTP server on the port answers moto's own API with 200.
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /moto-api/ HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    let mut read = 0;
    while read < buf.len() {
        match stream.read(&mut buf[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    let head = String::from_utf8_lossy(&buf[..read]);
    head.starts_with("HTTP/") && head.contains(" 200")
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid is async-signal-safe.
    let parent = unsafe { libc::getpid() };
    // SAFETY: the closure runs in the forked child before exec and only calls
    // async-signal-safe functions (prctl, getppid).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("parent exited before moto started"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_cmd: &mut Command) {}
