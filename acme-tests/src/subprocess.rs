//! A child process whose stdout and stderr go to a log file, killed and reaped on drop.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rustix::process::{Pid, Signal, kill_process};
use tempfile::TempDir;

/// How long a child gets to exit after SIGTERM before it is sent SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(3);
/// How often to check whether a child has exited.
const POLL_INTERVAL: Duration = Duration::from_millis(25);

/// A spawned child process, owned by the test that started it.
///
/// Only this process is ever signalled, by its own PID, and only while it is still our
/// un-reaped child (so the PID cannot have been reused).
pub struct Subprocess {
    name: String,
    child: Option<Child>,
    exit: Option<ExitStatus>,
    log_path: PathBuf,
    _log_dir: TempDir,
}

impl Subprocess {
    /// Spawn `command` with stdin closed and stdout and stderr appended to one log file.
    pub fn spawn(name: &str, command: &mut Command) -> Result<Self> {
        let log_dir = tempfile::Builder::new()
            .prefix(&format!("{name}-log-"))
            .tempdir()?;
        let log_path = log_dir.path().join(format!("{name}.log"));
        let stdout = File::create(&log_path)?;
        let stderr = stdout.try_clone()?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("spawning {name}: {command:?}"))?;
        Ok(Self {
            name: name.to_owned(),
            child: Some(child),
            exit: None,
            log_path,
            _log_dir: log_dir,
        })
    }

    /// The name given at spawn time, used in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The path of the combined stdout/stderr log.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything the child has written so far (lossily decoded).
    pub fn log(&self) -> String {
        match fs::read(&self.log_path) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(err) => format!("<could not read {}: {err}>", self.log_path.display()),
        }
    }

    /// The exit status, if the child has exited; never blocks.
    pub fn try_exit_status(&mut self) -> Result<Option<ExitStatus>> {
        if self.exit.is_none()
            && let Some(child) = self.child.as_mut()
        {
            self.exit = child.try_wait()?;
        }
        Ok(self.exit)
    }

    /// Wait up to `timeout` for the child to exit on its own.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<Option<ExitStatus>> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Ask the child to stop (SIGTERM), then SIGKILL it after a short grace, and reap it.
    pub fn stop(&mut self) -> Result<ExitStatus> {
        if let Some(status) = self.try_exit_status()? {
            return Ok(status);
        }
        let Some(child) = self.child.as_mut() else {
            anyhow::bail!("{} has no child process", self.name);
        };
        // The child is not reaped yet, so its PID still names it.
        let _ = kill_process(Pid::from_child(child), Signal::TERM);
        if let Some(status) = self.wait_timeout(TERM_GRACE)? {
            return Ok(status);
        }
        let child = self.child.as_mut().context("child vanished")?;
        let _ = child.kill();
        let status = child.wait()?;
        self.exit = Some(status);
        Ok(status)
    }
}

impl Drop for Subprocess {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("failed to stop {}: {err:#}", self.name);
        }
    }
}
