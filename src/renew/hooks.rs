//! Running the operator's commands: the `post_renew` hook, the dns-01 hook and the tkauth-01
//! token command. Every run is bounded by a timeout (the child is killed after it), and a failure carries the exit status
//! and the end of what the command printed.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How much of a failed command's output goes into the error message.
const OUTPUT_TAIL: usize = 2000;
/// Default bound on a hook.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Run `command` (stdin closed, output captured); an error explains the failure.
pub async fn run(command: Command, timeout: Duration) -> Result<(), String> {
    output(command, timeout).await.map(drop)
}

/// Run `command` like [`run`] and return what it printed on stdout (lossily UTF-8).
pub async fn output(mut command: Command, timeout: Duration) -> Result<String, String> {
    let description = format!("{:?}", command.as_std());
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| format!("could not start {description}: {e}"))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(format!("waiting for {description}: {e}")),
        // Dropping the future drops the child, which kills it (kill_on_drop).
        Err(_) => return Err(format!("{description} did not finish within {timeout:?}")),
    };
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let mut printed = String::from_utf8_lossy(&output.stderr).into_owned();
    printed.push_str(&String::from_utf8_lossy(&output.stdout));
    let printed = printed.trim();
    let tail = match printed.char_indices().rev().nth(OUTPUT_TAIL) {
        Some((index, _)) => &printed[index..],
        None => printed,
    };
    Err(format!("{description} failed ({}): {tail}", output.status))
}

/// `/bin/sh -c SCRIPT` with `env` added.
pub fn shell(script: &str, env: &[(&str, String)]) -> Command {
    let mut command = Command::new("/bin/sh");
    command.arg("-c").arg(script);
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_cases() {
        let env = [("MAYFLY_RENEW_TEST", "value".to_owned())];
        assert!(
            run(
                shell("test \"$MAYFLY_RENEW_TEST\" = value", &env),
                DEFAULT_TIMEOUT
            )
            .await
            .is_ok()
        );
        let error = run(shell("echo broken >&2; exit 3", &env), DEFAULT_TIMEOUT)
            .await
            .unwrap_err();
        assert!(error.contains("broken") && error.contains('3'), "{error}");
        let error = run(shell("sleep 5", &env), Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(error.contains("did not finish"), "{error}");
        let printed = output(shell("echo \"$MAYFLY_RENEW_TEST\"", &env), DEFAULT_TIMEOUT)
            .await
            .unwrap();
        assert_eq!(printed, "value\n");
    }
}
