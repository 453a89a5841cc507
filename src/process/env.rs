//! The environment a service starts with: minder's own environment minus the variables
//! that belong to minder's supervisor (systemd), then the passwd entry's variables when a
//! user is set, then the service's `env_file`, then `env`, then `MINDER_INSTANCE`, then
//! whatever the runtime adds (`NOTIFY_SOCKET`, `WATCHDOG_USEC`).
//!
//! Owns the env file format. Reads the env file (at spawn time, so an edited file takes
//! effect at the next restart) but touches nothing else of the OS: it runs in the parent,
//! before the child is created, and builds plain data. The spawn runs on the
//! supervision loop's thread, so the file is read through `config::read_regular_file`:
//! a FIFO, a device, a directory or a file over `config::ENV_FILE_LIMIT` (1 MiB) is an
//! error at once, never a wait or an endless read; like any env file error, it fails
//! that one start.
//!
//! The env file format, chosen to match systemd's `EnvironmentFile=` on the common subset:
//! one `KEY=VALUE` per line; blank lines and lines whose first non-blank character is `#`
//! are skipped; whitespace around the key and around the value is trimmed; a value
//! wrapped in one matching pair of `"` or `'` loses that pair (no escapes inside); no
//! `export` keyword, no shell expansion, no line continuation. A key must match
//! `[A-Za-z_][A-Za-z0-9_]*`. Any other line is an error naming the file and line, so a
//! typo never silently drops a variable. Bytes are kept as bytes (non-UTF-8 allowed);
//! a NUL byte is an error since it cannot reach `execve`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

/// One variable, as bytes-clean OS strings.
pub type EnvVar = (OsString, OsString);

/// True for variables minder must not pass down: they describe minder's own relation
/// to *its* supervisor (systemd notify socket, watchdog, socket activation), and a
/// service that saw them would talk to systemd in minder's name.
pub fn is_supervisor_variable(key: &OsStr) -> bool {
    let key = key.as_bytes();
    key == b"NOTIFY_SOCKET" || key.starts_with(b"WATCHDOG_") || key.starts_with(b"LISTEN_")
}

/// minder's environment without the supervisor variables. Read once: minder never
/// changes its own environment, and re-reading it on every spawn showed up in the
/// restart benchmark.
pub fn inherited() -> Vec<EnvVar> {
    static INHERITED: std::sync::OnceLock<Vec<EnvVar>> = std::sync::OnceLock::new();
    INHERITED
        .get_or_init(|| {
            std::env::vars_os()
                .filter(|(key, _)| !is_supervisor_variable(key))
                .collect()
        })
        .clone()
}

/// Sets `key` to `value` in `env`, replacing an earlier value in place so the order of
/// first appearance is kept (stable environments make diffs of /proc/PID/environ
/// readable).
pub fn set(env: &mut Vec<EnvVar>, key: OsString, value: OsString) {
    match env.iter_mut().find(|(existing, _)| *existing == key) {
        Some(slot) => slot.1 = value,
        None => env.push((key, value)),
    }
}

/// Reads and parses an env file. The error is a sentence without the service name
/// (the caller prefixes `spawn NAME: `).
pub fn read_env_file(path: &Path) -> Result<Vec<EnvVar>, String> {
    let shown = path.display().to_string();
    let shown = crate::config::printable(&shown);
    let bytes = crate::config::read_regular_file(path, crate::config::ENV_FILE_LIMIT)
        .map_err(|error| format!("read env file {shown}: {error}"))?;
    parse_env_file(&bytes).map_err(|(line, what)| format!("env file {shown} line {line}: {what}"))
}

/// Parses the env file format (see the module doc). Errors carry the 1-based line.
pub fn parse_env_file(bytes: &[u8]) -> Result<Vec<EnvVar>, (usize, &'static str)> {
    let mut vars = Vec::new();
    for (index, raw_line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_number = index + 1;
        let line = raw_line
            .strip_suffix(b"\r")
            .unwrap_or(raw_line)
            .trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let Some(eq) = line.iter().position(|&b| b == b'=') else {
            return Err((line_number, "expected KEY=VALUE"));
        };
        let key = line[..eq].trim_ascii();
        if !is_valid_key(key) {
            return Err((
                line_number,
                "invalid variable name (expected [A-Za-z_][A-Za-z0-9_]*)",
            ));
        }
        let value = strip_quotes(line[eq + 1..].trim_ascii());
        if value.contains(&0) {
            return Err((line_number, "NUL byte in value"));
        }
        vars.push((
            OsString::from_vec(key.to_vec()),
            OsString::from_vec(value.to_vec()),
        ));
    }
    Ok(vars)
}

fn is_valid_key(key: &[u8]) -> bool {
    match key.split_first() {
        Some((first, rest)) => {
            (first.is_ascii_alphabetic() || *first == b'_')
                && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_')
        }
        None => false,
    }
}

fn strip_quotes(value: &[u8]) -> &[u8] {
    for quote in [b'"', b'\''] {
        if value.len() >= 2 && value[0] == quote && value[value.len() - 1] == quote {
            return &value[1..value.len() - 1];
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Vec<(String, String)> {
        parse_env_file(text.as_bytes())
            .unwrap_or_else(|error| panic!("parse failed: {error:?}"))
            .into_iter()
            .map(|(k, v)| (k.to_string_lossy().into(), v.to_string_lossy().into()))
            .collect()
    }

    #[test]
    fn env_file_format() {
        let vars = parsed(
            "# comment\n\nA=1\n  B = two words  \nC=\"quoted # not a comment\"\nD='single'\nE=\nF=a=b\r\nG=\"unbalanced\n",
        );
        let expected: Vec<(String, String)> = [
            ("A", "1"),
            ("B", "two words"),
            ("C", "quoted # not a comment"),
            ("D", "single"),
            ("E", ""),
            ("F", "a=b"),
            ("G", "\"unbalanced"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(vars, expected);
    }

    #[test]
    fn env_file_errors_name_the_line() {
        assert_eq!(
            parse_env_file(b"A=1\nnot a pair\n"),
            Err((2, "expected KEY=VALUE"))
        );
        assert!(matches!(parse_env_file(b"1A=x"), Err((1, _))));
        assert!(matches!(parse_env_file(b"A-B=x"), Err((1, _))));
        assert!(matches!(parse_env_file(b"=x"), Err((1, _))));
        assert!(matches!(parse_env_file(b"A=x\0y"), Err((1, _))));
    }

    #[test]
    fn env_file_that_is_no_regular_file_or_too_large_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        let big = dir.path().join("big.env");
        let line = "KEY=value\n".repeat(crate::config::ENV_FILE_LIMIT as usize / 10 + 1);
        std::fs::write(&big, line).expect("write big.env");
        assert_eq!(
            read_env_file(&big),
            Err(format!(
                "read env file {}: it is larger than 1MiB (the most minder reads of it)",
                big.display()
            ))
        );
        assert_eq!(
            read_env_file(Path::new("/dev/zero")),
            Err("read env file /dev/zero: it is a character device, not a regular file (only regular files are read)".to_string())
        );
        let odd = dir.path().join("a\u{1b}[31mb");
        let refused = read_env_file(&odd).expect_err("missing file");
        assert!(refused.contains("a\\u{1b}[31mb: No such file"), "{refused}");
    }

    #[test]
    fn supervisor_variables_are_recognised() {
        for key in [
            "NOTIFY_SOCKET",
            "WATCHDOG_USEC",
            "WATCHDOG_PID",
            "LISTEN_FDS",
            "LISTEN_PID",
        ] {
            assert!(is_supervisor_variable(OsStr::new(key)), "{key}");
        }
        for key in ["PATH", "NOTIFY_SOCKETS", "MY_WATCHDOG_USEC", "HOME"] {
            assert!(!is_supervisor_variable(OsStr::new(key)), "{key}");
        }
    }
}
