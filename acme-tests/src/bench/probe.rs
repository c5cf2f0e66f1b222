//! Reading a process's CPU time and memory from `/proc` (proc(5)).
//!
//! CPU time is `utime + stime` of `/proc/<pid>/stat` (fields 14 and 15, in clock ticks); memory
//! is `VmRSS` (now) and `VmHWM` (the peak since the process started) of `/proc/<pid>/status`.
//! The server's CPU per certificate does not depend on how fast the generator is, which makes
//! it the fairest figure on a machine that the server and the generator share.

use std::fs;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// One reading of a process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// User plus system CPU time consumed so far.
    pub cpu: Duration,
    /// Resident set size now, in KiB.
    pub rss_kib: u64,
    /// Peak resident set size so far, in KiB.
    pub peak_rss_kib: u64,
}

/// Reads `pid` (`None`: this process).
pub fn sample(pid: Option<u32>) -> Result<Sample> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    };
    let stat = fs::read_to_string(format!("{dir}/stat")).with_context(|| format!("{dir}/stat"))?;
    let status =
        fs::read_to_string(format!("{dir}/status")).with_context(|| format!("{dir}/status"))?;
    Ok(Sample {
        cpu: cpu_time(&stat)?,
        rss_kib: status_kib(&status, "VmRSS")?,
        peak_rss_kib: status_kib(&status, "VmHWM")?,
    })
}

/// `utime + stime` from the text of `/proc/<pid>/stat`.
fn cpu_time(stat: &str) -> Result<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces or ')': the fields
    // after it start behind the last ')'.
    let after_name = stat
        .rfind(')')
        .map(|end| &stat[end + 1..])
        .context("no ')' in /proc/<pid>/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // `fields[0]` is field 3 (state), so utime (14) and stime (15) are at 11 and 12.
    let ticks = |index: usize| -> Result<u64> {
        fields
            .get(index)
            .context("/proc/<pid>/stat is too short")?
            .parse()
            .context("a non-numeric CPU time in /proc/<pid>/stat")
    };
    let total = ticks(11)? + ticks(12)?;
    let per_second = rustix::param::clock_ticks_per_second();
    if per_second == 0 {
        bail!("the kernel reports zero clock ticks per second");
    }
    Ok(Duration::from_secs_f64(total as f64 / per_second as f64))
}

/// A `Name:   1234 kB` line of `/proc/<pid>/status`.
fn status_kib(status: &str, name: &str) -> Result<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .with_context(|| format!("no {name} in /proc/<pid>/status"))
}

/// The children of this process whose command line starts with a binary named `binary_name`.
///
/// The harness spawns servers as direct children and keeps no PID; this finds them without
/// touching any process that is not ours.
pub fn child_pids(binary_name: &str) -> Result<Vec<u32>> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let parent = stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().nth(1))
            .and_then(|ppid| ppid.parse::<u32>().ok());
        if parent != Some(me) {
            continue;
        }
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let program = cmdline.split(|&b| b == 0).next().unwrap_or_default();
        let program = String::from_utf8_lossy(program);
        if program.rsplit('/').next() == Some(binary_name) {
            found.push(pid);
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        // A command name with a space and a ')' in it, as proc(5) warns.
        let stat = "1234 (we ird) x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0";
        let cpu = cpu_time(stat).expect("parses");
        let hz = rustix::param::clock_ticks_per_second() as f64;
        assert!((cpu.as_secs_f64() - 300.0 / hz).abs() < 1e-9);

        let status = "Name:\tmayfly\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS").ok(), Some(10240));
        assert_eq!(status_kib(status, "VmHWM").ok(), Some(20480));
        assert!(status_kib(status, "VmSwap").is_err());
    }

    #[test]
    fn samples_this_process() {
        let sample = sample(None).expect("/proc/self is readable");
        assert!(sample.rss_kib > 0);
        assert!(sample.peak_rss_kib >= sample.rss_kib);
    }
}
