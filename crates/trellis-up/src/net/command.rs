//! Running `ip`, `iptables` and `kill`: output captured, stderr carried into
//! [`NetError::Command`] with the command line, and every call logged at debug level.
//!
//! `LC_ALL=C` keeps the tools' messages in English, which [`NetError::is_not_found`]
//! relies on to treat "already gone" as success when removing things.

use std::process::{Command, Stdio};

use super::error::NetError;

/// How long `iptables` waits for the xtables lock (only the legacy backend takes it;
/// iptables-nft accepts and ignores the flag). Docker or firewalld changing rules at the
/// same moment would otherwise make a call fail instead of wait.
const XTABLES_WAIT_SECONDS: &str = "5";

/// Runs `program args`, returning its stdout. Fails with the command line, exit status
/// and stderr when it exits unsuccessfully.
pub(crate) fn run<S: AsRef<str>>(program: &str, args: &[S]) -> Result<String, NetError> {
    let line = command_line(program, args);
    tracing::debug!(target: "trellis::up::net", command = %line, "running");
    let output = Command::new(program)
        .args(args.iter().map(AsRef::as_ref))
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| NetError::Spawn {
            command: line.clone(),
            source,
        })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    let stderr = if stderr.is_empty() {
        "(no output)".to_owned()
    } else {
        stderr
    };
    Err(NetError::Command {
        command: line,
        status: output.status.to_string(),
        stderr,
    })
}

/// Runs `ip args` in the host's namespace.
pub(crate) fn ip<S: AsRef<str>>(args: &[S]) -> Result<String, NetError> {
    run("ip", args)
}

/// Runs `ip -n <ns> args`: `ip` acting inside namespace `ns`.
pub(crate) fn ip_in<S: AsRef<str>>(ns: &str, args: &[S]) -> Result<String, NetError> {
    let mut all = vec!["-n".to_owned(), ns.to_owned()];
    all.extend(args.iter().map(|arg| arg.as_ref().to_owned()));
    run("ip", &all)
}

/// Runs `iptables -w 5 args` in the host's namespace.
pub(crate) fn iptables<S: AsRef<str>>(args: &[S]) -> Result<String, NetError> {
    let mut all = vec!["-w".to_owned(), XTABLES_WAIT_SECONDS.to_owned()];
    all.extend(args.iter().map(|arg| arg.as_ref().to_owned()));
    run("iptables", &all)
}

/// Runs `iptables -w 5 args` inside namespace `ns` (`ip netns exec <ns> iptables ...`):
/// the `nat` table of a namespace is its own.
pub(crate) fn iptables_in<S: AsRef<str>>(ns: &str, args: &[S]) -> Result<String, NetError> {
    let mut all = vec![
        "netns".to_owned(),
        "exec".to_owned(),
        ns.to_owned(),
        "iptables".to_owned(),
        "-w".to_owned(),
        XTABLES_WAIT_SECONDS.to_owned(),
    ];
    all.extend(args.iter().map(|arg| arg.as_ref().to_owned()));
    run("ip", &all)
}

/// Turns the result of a removal into whether something was removed: "does not exist"
/// is success (`Ok(false)`), any other failure stays an error.
pub(crate) fn removed(result: Result<String, NetError>) -> Result<bool, NetError> {
    match result {
        Ok(_) => Ok(true),
        Err(error) if error.is_not_found() => Ok(false),
        Err(error) => Err(error),
    }
}

/// Whether network interface `name` exists in the host's namespace.
pub(crate) fn link_exists(name: &str) -> Result<bool, NetError> {
    match ip(&["link", "show", "dev", name]) {
        Ok(_) => Ok(true),
        Err(error) if error.is_not_found() => Ok(false),
        Err(error) => Err(error),
    }
}

/// The command line as a person would type it: arguments that a shell would split or
/// interpret are single-quoted.
pub(crate) fn command_line<S: AsRef<str>>(program: &str, args: &[S]) -> String {
    std::iter::once(program)
        .chain(args.iter().map(AsRef::as_ref))
        .map(quote)
        .collect::<Vec<_>>()
        .join(" ")
}

fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@%+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_quote_only_what_a_shell_would_split() {
        assert_eq!(
            command_line(
                "iptables",
                &["-t", "nat", "-A", "OUTPUT", "-d", "127.0.0.1/32"]
            ),
            "iptables -t nat -A OUTPUT -d 127.0.0.1/32"
        );
        assert_eq!(
            command_line("iptables", &["--comment", "trellis: up", "", "it's"]),
            r"iptables --comment 'trellis: up' '' 'it'\''s'"
        );
    }

    #[test]
    fn failures_carry_the_command_line_status_and_stderr() {
        let error = run("sh", &["-c", "echo oops >&2; exit 3"]).err();
        let Some(NetError::Command {
            command,
            status,
            stderr,
        }) = error
        else {
            panic!("expected a command failure, got {error:?}");
        };
        assert_eq!(command, "sh -c 'echo oops >&2; exit 3'");
        assert_eq!(status, "exit status: 3");
        assert_eq!(stderr, "oops");
        let silent = run("false", &[] as &[&str]).err().map(|e| e.to_string());
        assert_eq!(
            silent.as_deref(),
            Some("`false` failed (exit status: 1): (no output)")
        );
    }

    #[test]
    fn output_is_returned_and_missing_programs_are_spawn_errors() {
        assert_eq!(run("echo", &["hi"]).ok().as_deref(), Some("hi\n"));
        let missing = run("trellis-no-such-tool", &["x"]);
        assert!(
            matches!(missing, Err(NetError::Spawn { .. })),
            "{missing:?}"
        );
    }

    #[test]
    fn removing_something_missing_is_not_an_error() {
        let gone = Err(NetError::Command {
            command: "ip link del trl0h".to_owned(),
            status: "exit status: 1".to_owned(),
            stderr: "Cannot find device \"trl0h\"".to_owned(),
        });
        assert!(matches!(removed(gone), Ok(false)));
        assert!(matches!(removed(Ok(String::new())), Ok(true)));
    }
}
