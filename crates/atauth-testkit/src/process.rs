//! Child processes for tests: [`ChildGuard`] stops its process on drop, [`Lines`] collects a pipe's
//! lines on a thread so a test can wait for a line with a timeout.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child process that is stopped when the guard is dropped: SIGTERM, then SIGKILL after 5 s.
#[derive(Debug)]
pub struct ChildGuard {
    child: Option<Child>,
}

impl ChildGuard {
    /// Wraps a spawned child.
    pub fn new(child: Child) -> Self {
        Self { child: Some(child) }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The child (for `stdin`, `try_wait`, …).
    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().unwrap_or_else(|| unreachable!("the child is only taken on drop"))
    }

    /// Sends `signal` (e.g. `"TERM"`, `"INT"`) with `kill(1)`.
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill").args([format!("-{signal}"), self.id().to_string()]).status();
    }

    /// Waits for the process to exit, at most `timeout`. `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child_mut().try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
                _ => return None,
            }
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit status.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.signal("TERM");
        self.wait_timeout(timeout)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// The lines of a child's stdout or stderr, read on a background thread. Every line is kept (see
/// [`Lines::all`]) and optionally echoed to the test's stderr with a prefix.
#[derive(Debug)]
pub struct Lines {
    rx: mpsc::Receiver<String>,
    all: Arc<Mutex<Vec<String>>>,
    /// Set once the reader thread saw the end of the pipe: every line is in `all`.
    closed: Arc<AtomicBool>,
}

impl Lines {
    /// Starts reading `pipe`. With `echo = Some(prefix)`, each line is also printed to stderr (which
    /// the test harness captures and shows on failure).
    pub fn spawn(pipe: impl Read + Send + 'static, echo: Option<&str>) -> Self {
        let (tx, rx) = mpsc::channel();
        let all = Arc::new(Mutex::new(Vec::new()));
        let keep = Arc::clone(&all);
        let closed = Arc::new(AtomicBool::new(false));
        let closed_by_reader = Arc::clone(&closed);
        let prefix = echo.map(str::to_owned);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(p) = &prefix {
                    #[allow(clippy::print_stderr)]
                    {
                        eprintln!("[{p}] {line}");
                    }
                }
                keep.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line.clone());
                // When nobody waits any more, keep draining so the child never blocks on a full pipe.
                let _ = tx.send(line);
            }
            closed_by_reader.store(true, Ordering::Release);
        });
        Self { rx, all, closed }
    }

    /// Waits (at most `timeout`) until the pipe has closed and every line has been read. A child that
    /// has exited may still have lines in the pipe that the reader thread has not taken yet; call
    /// this after the exit before asserting on [`Lines::text`]. `false` on timeout.
    pub fn wait_closed(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.closed.load(Ordering::Acquire) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Waits for the next line that satisfies `pred`, at most `timeout`. Lines that do not match are
    /// skipped (they stay in [`Lines::all`]). `None` on timeout or when the pipe closed.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.rx.recv_timeout(left) {
                Ok(line) if pred(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Every line read so far.
    pub fn all(&self) -> Vec<String> {
        self.all.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Every line read so far, joined with newlines.
    pub fn text(&self) -> String {
        self.all().join("\n")
    }
}
