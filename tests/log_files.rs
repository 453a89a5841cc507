//! Black-box tests of where and how `minder run` writes its services' output: per-service
//! files under `log_dir`, rotated by size and reopened on SIGUSR1; timestamps; JSON
//! lines; `log_overflow = "drop"`; a full disk; a `log_dir` that cannot be created.
//!
//! Every check reads what the real binary wrote: the files, or minder's stdout and
//! stderr. Lines carry numbers so that "none lost, none merged, in order" is a plain
//! comparison.

mod common;

use common::{MINDER, Minder, PATIENCE, Signal, Stream, pid_then_sleep, sh_service, wait_for};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// `[daemon]` for these tests: no control socket (each minder is alone), plus `extra`.
fn daemon(extra: &str) -> String {
    format!("[daemon]\ncontrol_socket = \"\"\n{extra}\n")
}

/// A tree that ends (exit 0) once its one significant service has ended.
const ENDS_WITH_ITS_SERVICE: &str = "[root]\nauto_shutdown = \"any_significant\"\n\n";

/// The numbers of `text`'s lines, each `PREFIX<number>`; panics on any other line,
/// naming it (a merged or cut line shows up here).
fn numbers(text: &str, prefix: &str, what: &str) -> Vec<u64> {
    text.lines()
        .map(|line| {
            line.strip_prefix(prefix)
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("{what}: unexpected line {line:?}"))
        })
        .collect()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// The names in `dir`, sorted.
fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .filter_map(|entry| entry.ok())
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn rotation_keeps_log_keep_old_files_holding_the_last_lines_in_order() {
    const LINES: u64 = 400_000;
    let config = format!(
        "{}{ENDS_WITH_ITS_SERVICE}{}",
        daemon("log_dir = \"logs\"\nlog_max_size = \"1MiB\"\nlog_keep = 3"),
        sh_service(
            "counter",
            &format!("seq 1 {LINES}"),
            "restart = \"temporary\"\nsignificant = true"
        )
    );
    let mut minder = Minder::run(&config);
    assert_eq!(
        minder.expect_exit(Duration::from_secs(60)),
        0,
        "{}",
        minder.stderr_text()
    );
    let logs = minder.path("logs");
    assert_eq!(
        file_names(&logs),
        [
            "counter.log",
            "counter.log.1",
            "counter.log.2",
            "counter.log.3"
        ]
    );
    // Oldest first: .3, .2, .1, then the current file.
    let mut all = Vec::new();
    for name in [
        "counter.log.3",
        "counter.log.2",
        "counter.log.1",
        "counter.log",
    ] {
        let text = read(&logs.join(name));
        assert!(text.len() <= 1 << 20, "{name} is {} bytes", text.len());
        assert!(text.ends_with('\n'), "{name} ends inside a line");
        all.extend(numbers(&text, "stdout | ", name));
    }
    let first = all[0];
    let expected: Vec<u64> = (first..=LINES).collect();
    assert!(
        all == expected,
        "the kept lines are not {first}..={LINES} in order ({} lines kept)",
        all.len()
    );
    // Four files of about 1 MiB hold well over half of the 6 MB written.
    assert!(all.len() > 200_000, "only {} lines kept", all.len());
    // Nothing went to minder's stdout.
    assert!(
        !minder.stdout_text().contains("stdout |"),
        "{}",
        minder.stdout_text()
    );
}

#[test]
fn sigusr1_reopens_the_log_files_after_an_external_rename_losing_no_line() {
    // Writes numbered lines as fast as a shell can, until killed.
    let config = format!(
        "{}{}",
        daemon("log_dir = \"logs\"\nlog_max_size = \"1GiB\"\nshutdown_timeout = \"5s\""),
        sh_service("writer", "i=0; while :; do i=$((i+1)); echo $i; done", "")
    );
    let mut minder = Minder::run(&config);
    let current = minder.path("logs/writer.log");
    let rotated = minder.path("logs/writer.log.rotated");
    let started = wait_for(PATIENCE, || {
        std::fs::metadata(&current).is_ok_and(|meta| meta.len() > 10_000)
    });
    assert!(started, "no output in the file\n{}", minder.stderr_text());
    // What logrotate does without copytruncate: rename, then signal.
    std::fs::rename(&current, &rotated).unwrap_or_else(|error| panic!("rename: {error}"));
    minder.signal(Signal::SIGUSR1);
    minder.wait_log(&["SIGUSR1: reopening the log files in"], 1, PATIENCE);
    let reopened = wait_for(PATIENCE, || {
        std::fs::metadata(&current).is_ok_and(|meta| meta.len() > 10_000)
    });
    assert!(
        reopened,
        "no new file after SIGUSR1\n{}",
        minder.stderr_text()
    );
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0, "{}", minder.stderr_text());
    let before = numbers(&read(&rotated), "stdout | ", "the renamed file");
    let after = numbers(&read(&current), "stdout | ", "the new file");
    assert!(!before.is_empty() && !after.is_empty());
    let all: Vec<u64> = before.iter().chain(&after).copied().collect();
    let expected: Vec<u64> = (1..=all.len() as u64).collect();
    assert!(
        all == expected,
        "lines lost or out of order across the reopen: renamed file 1..{:?}, new file {:?}..{:?}",
        before.last(),
        after.first(),
        after.last()
    );
}

/// With `log_format = "json"` every line minder writes is one JSON object: the
/// services' lines on its stdout and stderr (or in their files) and its own on stderr.
#[test]
fn log_format_json_makes_every_output_line_a_json_object() {
    let script = r#"printf '%s\n' 'plain' 'say "hi"' 'tab	and \ backslash'; printf 'bytes \377 end\n' >&2; echo $$ > talker.pid; exec sleep 1000"#;
    for log_dir in ["", "logs"] {
        let config = format!(
            "{}{}",
            daemon(&format!("log_format = \"json\"\nlog_dir = \"{log_dir}\"")),
            sh_service("talker", script, "")
        );
        let mut minder = Minder::run(&config);
        minder.wait_pid("talker", None);
        let service_lines = |minder: &Minder| -> Vec<serde_json::Value> {
            let text = if log_dir.is_empty() {
                minder.stdout_text() + &minder.stderr_text()
            } else {
                std::fs::read_to_string(minder.path("logs/talker.log")).unwrap_or_default()
            };
            text.lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .filter(|value| value["service"] == "talker" && value.get("message").is_none())
                .collect()
        };
        let complete = wait_for(PATIENCE, || service_lines(&minder).len() == 4);
        assert!(
            complete,
            "log_dir {log_dir:?}: {:?}",
            service_lines(&minder)
        );
        minder.signal(Signal::SIGTERM);
        assert_eq!(minder.expect_exit(PATIENCE), 0);
        let mut seen: Vec<(String, String)> = service_lines(&minder)
            .iter()
            .map(|value| {
                let time = value["time"].as_str().unwrap_or_default();
                assert!(
                    humantime::parse_rfc3339(time).is_ok() && time.ends_with('Z'),
                    "{value}"
                );
                (
                    value["stream"].as_str().unwrap_or_default().to_string(),
                    value["line"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        seen.sort();
        let expected: Vec<(String, String)> = [
            ("stderr", "bytes \u{fffd} end"),
            ("stdout", "plain"),
            ("stdout", "say \"hi\""),
            ("stdout", "tab\tand \\ backslash"),
        ]
        .iter()
        .map(|(stream, line)| (stream.to_string(), line.to_string()))
        .collect();
        assert_eq!(seen, expected, "log_dir {log_dir:?}");
        // Everything on both streams parses, minder's own lines included.
        let mut own = 0;
        for line in minder
            .stdout_text()
            .lines()
            .chain(minder.stderr_text().lines())
        {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|error| panic!("not JSON ({error}): {line:?}"));
            if value.get("message").is_some() {
                own += 1;
                assert!(value["level"].is_string() && value["timestamp"].is_string());
            }
        }
        assert!(own >= 2, "no lines of minder's own");
    }
}

#[test]
fn log_timestamps_put_an_rfc3339_utc_time_before_each_line() {
    for log_dir in ["", "logs"] {
        let config = format!(
            "{}{}{}",
            daemon(&format!("log_timestamps = true\nlog_dir = \"{log_dir}\"")),
            sh_service(
                "stamped",
                &format!("echo first; echo second >&2; {}", pid_then_sleep("stamped")),
                ""
            ),
            sh_service("other-name", &pid_then_sleep("other-name"), "")
        );
        let before = SystemTime::now() - Duration::from_secs(1);
        let mut minder = Minder::run(&config);
        minder.wait_pid("stamped", None);
        // `stamped` is padded to the longest name on minder's streams; in its file the
        // stream is named instead.
        let expected = if log_dir.is_empty() {
            ["stamped    | first", "stamped    | second"]
        } else {
            ["stdout | first", "stderr | second"]
        };
        let text = |minder: &Minder| {
            if log_dir.is_empty() {
                minder.stdout_text() + &minder.stderr_text()
            } else {
                std::fs::read_to_string(minder.path("logs/stamped.log")).unwrap_or_default()
            }
        };
        let complete = wait_for(PATIENCE, || {
            let text = text(&minder);
            expected
                .iter()
                .all(|want| text.lines().any(|line| line.ends_with(want)))
        });
        assert!(complete, "log_dir {log_dir:?}:\n{}", text(&minder));
        let after = SystemTime::now() + Duration::from_secs(1);
        let service_lines = text(&minder);
        let service_lines = service_lines
            .lines()
            .filter(|line| expected.iter().any(|want| line.ends_with(want)));
        for line in service_lines {
            let (time, rest) = line.split_once(' ').unwrap_or_default();
            let at =
                humantime::parse_rfc3339(time).unwrap_or_else(|error| panic!("{error}: {line:?}"));
            assert!(time.ends_with('Z') && time.len() == "2026-11-29T13:00:00.123Z".len());
            assert!(before <= at && at <= after, "{line:?} is not from now");
            assert!(expected.contains(&rest), "{line:?}");
        }
        minder.signal(Signal::SIGTERM);
        assert_eq!(minder.expect_exit(PATIENCE), 0);
    }
}

/// `log_overflow = "drop"`: a service writing into a sink that takes nothing (minder's
/// stdout, never read) is not slowed down: it writes all its lines and goes on, the
/// ones that find no room are dropped and counted, minder says so, and another
/// service's lines still arrive. Delivered and dropped add up to what was written.
#[test]
fn log_overflow_drop_counts_the_lines_a_stuck_sink_cannot_take_without_slowing_anyone() {
    const LINES: usize = 200_000;
    let config = format!(
        "{}{}{}",
        daemon("log_overflow = \"drop\"\nshutdown_timeout = \"1s\""),
        sh_service(
            "flood",
            &format!("seq 1 {LINES}; touch flood.done; exec sleep 1000"),
            ""
        ),
        sh_service(
            "quiet",
            "while [ ! -e flood.done ]; do sleep 0.02; done; echo 'quiet to stderr' >&2; exec sleep 1000",
            ""
        ),
    );
    let mut minder = Minder::new();
    minder.write("cfg.toml", &config);
    minder.stdout(Stream::Held);
    minder.start_run(&[]);
    // With "block", `flood` would sit in write() once its budget and its pipe are full
    // (its 1.3 MB are far more than both) and never get here.
    let finished = wait_for(Duration::from_secs(20), || {
        minder.path("flood.done").exists()
    });
    assert!(finished, "flood was held back\n{}", minder.stderr_text());
    minder.wait_log(&["quiet | quiet to stderr"], 1, PATIENCE);
    minder.wait_log(
        &["output dropped", "service=\"flood\"", "log_overflow"],
        1,
        PATIENCE,
    );
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0, "{}", minder.stderr_text());
    minder.drain_stdout();
    assert!(wait_for(PATIENCE, || minder.stdout_closed()));
    let stdout = minder.stdout_text();
    let delivered = stdout
        .split_inclusive('\n')
        .filter(|line| line.ends_with('\n'))
        .count();
    let report = minder.wait_log(
        &["were dropped while minder ran", "service=\"flood\""],
        1,
        PATIENCE,
    );
    let dropped: usize = report[0]
        .split_whitespace()
        .find_map(|field| field.strip_prefix("dropped="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no dropped=N in {:?}", report[0]));
    assert!(dropped > LINES / 2, "{}", report[0]);
    assert_eq!(
        delivered + dropped,
        LINES,
        "{delivered} lines delivered, {dropped} reported dropped"
    );
}

/// A full disk: writes fail with ENOSPC. minder logs it once (not per line), counts
/// the lines, keeps supervising, and once space is back and SIGUSR1 reopens the file,
/// the service's lines arrive again, none glued to the line the full disk cut short,
/// and minder says how many it lost.
#[test]
fn a_full_disk_is_logged_once_counted_and_survived() {
    let config = format!(
        "{}{}",
        daemon("log_dir = \"logs\""),
        sh_service(
            "filler",
            "seq 1 5000; touch first.done; while [ ! -e go ]; do sleep 0.02; done; echo after-space-came-back; exec sleep 1000",
            ""
        )
    );
    let mut minder = Minder::new();
    minder.write("cfg.toml", &config);
    std::fs::create_dir(minder.path("logs")).unwrap_or_else(|error| panic!("{error}"));
    // A 64 KiB file system on logs/, private to minder's mount namespace, half taken
    // by a ballast file. The 5000 lines (about 63 KB) fill the rest, so one write is
    // cut short inside a line; the test frees the ballast later, and what is left to
    // write fits then, so the disk fills only once.
    let run = format!(
        "mount -t tmpfs -o size=64k tmpfs logs && head -c 32768 /dev/zero > logs/ballast && exec {MINDER} run cfg.toml",
    );
    minder.start_program(
        "unshare",
        ["--mount", "--propagation", "private", "sh", "-c", &run]
            .iter()
            .map(Into::into)
            .collect(),
    );
    let finished = wait_for(Duration::from_secs(20), || {
        minder.path("first.done").exists()
    });
    assert!(finished, "filler was held back\n{}", minder.stderr_text());
    minder.wait_log(&["No space left on device"], 1, PATIENCE);
    // The test sees the tmpfs through minder's own root (/proc/PID/root).
    let logs = Path::new("/proc")
        .join(minder.pid().to_string())
        .join("root")
        .join(
            minder
                .path("logs")
                .strip_prefix("/")
                .unwrap_or(Path::new("")),
        );
    let ballast = logs.join("ballast");
    assert!(ballast.exists(), "{} not visible", ballast.display());
    assert!(minder.is_running());
    std::fs::remove_file(&ballast).unwrap_or_else(|error| panic!("{error}"));
    minder.signal(Signal::SIGUSR1);
    minder.wait_log(&["SIGUSR1: reopening the log files in"], 1, PATIENCE);
    minder.write("go", "");
    let recovered = minder.wait_log(&["filler.log is written again"], 1, PATIENCE);
    let dropped: u64 = recovered[0]
        .split_whitespace()
        .find_map(|field| field.strip_prefix("dropped="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no dropped=N in {:?}", recovered[0]));
    assert!(dropped > 0, "{}", recovered[0]);
    let mut text = String::new();
    let arrived = wait_for(PATIENCE, || {
        text = std::fs::read_to_string(logs.join("filler.log")).unwrap_or_default();
        text.lines()
            .any(|line| line == "stdout | after-space-came-back")
    });
    assert!(arrived, "{}", minder.stderr_text());
    let glued: Vec<&str> = text
        .lines()
        .filter(|line| line.matches("stdout | ").count() > 1)
        .collect();
    assert!(glued.is_empty(), "lines glued together: {glued:?}");
    // Once per episode, however many lines failed.
    assert_eq!(
        minder.log_lines(&["No space left on device"]).len(),
        1,
        "{}",
        minder.stderr_text()
    );
    minder.signal(Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0, "{}", minder.stderr_text());
}

#[test]
fn a_log_dir_that_cannot_be_created_is_a_startup_error_naming_it() {
    let config = format!(
        "{}{}",
        daemon("log_dir = \"plain-file/logs\""),
        sh_service("early", "touch started; exec sleep 1000", "")
    );
    let mut minder = Minder::new();
    minder.write("plain-file", "not a directory\n");
    minder.write("cfg.toml", &config);
    minder.start_run(&[]);
    assert_eq!(minder.expect_exit(PATIENCE), 2, "{}", minder.stderr_text());
    let stderr = minder.stderr_text();
    assert!(stderr.contains("plain-file/logs"), "{stderr}");
    assert!(!minder.path("started").exists(), "a service ran");
}
