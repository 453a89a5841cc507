//! Black-box tests of `minder check`: the real binary on the shipped example configs
//! (so they cannot rot), on a broken file (exit 2, every error with FILE:LINE:COL), and
//! on hostile input: a FIFO or a device as the config, a huge chain of nested groups,
//! ambiguous durations, control characters in keys.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn minder_check(config: &Path) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_minder"))
        .arg("check")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn minder");
    // No reaper runs in this test process, so waiting here steals nothing.
    #[allow(clippy::disallowed_methods)]
    child.wait_with_output().expect("wait for minder check")
}

fn example_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("read config/")
        .map(|entry| entry.expect("config/ entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_config_passes_check() {
    let files = example_configs();
    assert!(
        files.iter().any(|path| path.ends_with("example.toml")),
        "config/example.toml is missing: {files:?}"
    );
    assert!(files.iter().any(|path| path.ends_with("sidecars.toml")));
    for path in files {
        let output = minder_check(&path);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{} failed:\n{}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.starts_with("root: "), "{stdout}");
        assert!(stdout.contains("\n  service "), "{stdout}");
    }
}

#[test]
fn example_shows_the_resolved_tree() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/example.toml");
    let output = minder_check(&path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "  service setup\n",
        "  group workers: rest_for_one, intensity 3 per 10s\n",
        "    service worker.0 (instance 0 of worker)\n",
        "    service worker.1 (instance 1 of worker)\n",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn a_bad_file_exits_2_and_lists_every_error_with_its_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[root]\n\
         strategy = \"one_for_al\"\n\
         [service.web]\n\
         command = \"x\"\n\
         restart = \"alwayz\"\n\
         watchdog = \"30s\"\n",
    )
    .expect("write bad.toml");
    let output = minder_check(&path);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        output.stdout.is_empty(),
        "nothing is rendered for a bad file"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let file = path.display();
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 3, "{stderr}");
    assert!(
        errors[0].starts_with(&format!("error: {file}:2:12: `root.strategy`")),
        "{stderr}"
    );
    assert!(
        errors[0].contains("did you mean \"one_for_all\"?"),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with(&format!("error: {file}:5:11: `service.web.restart`")),
        "{stderr}"
    );
    assert!(errors[1].contains("did you mean \"always\"?"), "{stderr}");
    assert!(
        errors[2].starts_with(&format!(
            "error: {file}:6:1: `service.web.watchdog`: a watchdog needs `ready.notify = true`"
        )),
        "{stderr}"
    );
}

#[test]
fn a_syntax_error_exits_2_with_a_position() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("syntax.toml");
    std::fs::write(&path, "[service.web\ncommand = \"x\"\n").expect("write syntax.toml");
    let output = minder_check(&path);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("error: {}:1:", path.display())),
        "{stderr}"
    );
    assert!(stderr.contains("TOML syntax error"), "{stderr}");
}

#[test]
fn a_missing_file_exits_2() {
    let output = minder_check(Path::new("/nonexistent/minder.toml"));
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read config file"), "{stderr}");
}

/// How long a hostile-input check may take before the test calls it a hang. A guard
/// against a frozen or runaway minder, not a timing assertion: the real runs take a
/// fraction of it.
const HANG_GUARD: Duration = Duration::from_secs(30);

/// `minder ARGS`, killed if it has not exited within `HANG_GUARD`; `None` then.
fn minder_bounded(args: &[&std::ffi::OsStr]) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_minder"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn minder");
    // Read both pipes meanwhile, so a long report cannot fill one and stall minder.
    let stdout = drain(child.stdout.take().expect("piped stdout"));
    let stderr = drain(child.stderr.take().expect("piped stderr"));
    let status = wait_bounded(&mut child)?;
    Some(Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    })
}

fn drain(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

// No reaper runs in this test process, so waiting here steals nothing.
#[allow(clippy::disallowed_methods)]
fn wait_bounded(child: &mut Child) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + HANG_GUARD;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait minder") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_fifo_or_a_device_as_config_is_refused_at_once_not_waited_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let fifo = dir.path().join("minder.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let cases = [
        ("check", fifo.as_path(), "a FIFO (named pipe)"),
        ("run", fifo.as_path(), "a FIFO (named pipe)"),
        ("check", Path::new("/dev/zero"), "a character device"),
        ("check", dir.path(), "a directory"),
    ];
    for (command, path, what) in cases {
        let output = minder_bounded(&[command.as_ref(), path.as_os_str()]).unwrap_or_else(|| {
            panic!(
                "`minder {command} {}` still running after {HANG_GUARD:?}",
                path.display()
            )
        });
        let stderr = text(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command} {}: {stderr}",
            path.display()
        );
        assert!(
            stderr.starts_with(&format!(
                "error: {}: cannot read config file: it is {what}, not a regular file",
                path.display()
            )),
            "{stderr}"
        );
    }
}

#[test]
fn a_chain_of_100000_nested_groups_is_refused_for_its_depth_without_hanging() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("deep.toml");
    let mut config = String::new();
    for level in 0..100_000 {
        config.push_str(&format!(
            "[group.g{level}]\nchildren = [\"g{}\"]\n",
            level + 1
        ));
    }
    config.push_str("[service.g100000]\ncommand = \"x\"\n");
    std::fs::write(&path, config).expect("write deep.toml");
    let output = minder_bounded(&["check".as_ref(), path.as_os_str()]).unwrap_or_else(|| {
        panic!("`minder check` on 100 000 nested groups still running after {HANG_GUARD:?}")
    });
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr),
        format!(
            "error: {0}:62:13: group `g31` is nested more than 32 levels deep\n\
             {0}: 1 error(s), nothing started\n",
            path.display()
        )
    );
}

#[test]
fn ambiguous_or_unitless_durations_are_refused_with_the_accepted_units() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("durations.toml");
    std::fs::write(
        &path,
        "[service.web]\n\
         command = \"x\"\n\
         stop_timeout = \"1M\"\n\
         backoff = { initial = \"0\", max = \"1y\", reset_after = \"1month\" }\n",
    )
    .expect("write durations.toml");
    let output = minder_check(&path);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 4, "{stderr}");
    let units = "(units ns, us, ms, s or sec, m or min, h or hr, d or day, w or week)";
    for error in &errors {
        assert!(error.contains(units), "{error}");
    }
    let file = path.display();
    assert!(
        errors[0].starts_with(&format!("error: {file}:3:16: `service.web.stop_timeout`")),
        "{stderr}"
    );
    assert!(
        errors[0].contains("for minutes write \"1m\" or \"1min\""),
        "{stderr}"
    );
    assert!(
        errors[1].starts_with(&format!("error: {file}:4:23:")),
        "{stderr}"
    );
    assert!(errors[1].contains("a unit is required after 0"), "{stderr}");
    assert!(errors[2].contains("\"y\" is not a unit"), "{stderr}");
    assert!(errors[3].contains("\"month\" is not a unit"), "{stderr}");
}

#[test]
fn control_characters_in_keys_are_printed_escaped() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("nul.toml");
    std::fs::write(
        &path,
        "[service.\"a\\u0000b\"]\ncommand = \"x\"\n\"\\u001b[2J\" = 1\n",
    )
    .expect("write nul.toml");
    let output = minder_check(&path);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "a raw control character reached the terminal: {stderr:?}"
    );
    assert!(stderr.contains("invalid name \"a\\0b\""), "{stderr}");
    assert!(
        stderr.contains("unknown key `service.a\\0b.\\u{1b}[2J`"),
        "{stderr}"
    );
}
