//! `minderctl` against a real minder: every command through the real binaries and a
//! real control socket, the pids in the services' own pid files proving what happened,
//! plus the exit codes (2 for usage, 3 without a daemon, 1 for a refused request).

// `Command::output` and `Child::wait` are banned by clippy.toml to protect minder's
// reaper; this test process owns its minderctl children and waiting for them steals
// nothing from anyone.
#![allow(clippy::disallowed_methods)]

mod common;

use common::{
    Minder, PATIENCE, Signal, is_alive, pid_then_sleep, send_signal, sh_service, wait_for,
};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MINDERCTL: &str = env!("CARGO_BIN_EXE_minderctl");

/// A minder started on `services`, answering `status` on its control socket (the
/// fixture's `MINDER_SOCKET`, waited for, bounded); with that socket's path.
fn minder_with(services: &str) -> (Minder, PathBuf) {
    let minder = Minder::run(services);
    let socket = minder.socket();
    let answered = wait_for(PATIENCE, || {
        socket.exists() && minderctl(&socket, &["status"]).status.success()
    });
    assert!(
        answered,
        "minder did not answer on {}\nstderr:\n{}",
        socket.display(),
        minder.stderr_text()
    );
    (minder, socket)
}

/// `minderctl --socket SOCKET args...`, run to its end.
fn minderctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(MINDERCTL)
        .arg("--socket")
        .arg(socket)
        .args(args)
        .env_remove("MINDER_SOCKET")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("run minderctl {args:?}: {error}"))
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that `output` is a success and returns its standard output.
fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "minderctl failed ({:?})\nstdout:\n{}stderr:\n{}",
        output.status,
        stdout(output),
        stderr(output)
    );
    stdout(output)
}

/// The `status --json` document.
fn status_json(socket: &Path) -> Value {
    serde_json::from_str(&ok(&minderctl(socket, &["status", "--json"])))
        .expect("status --json is one JSON document")
}

/// The entry of service `name` in a `status --json` document.
fn service<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["services"]
        .as_array()
        .expect("services is an array")
        .iter()
        .find(|service| service["name"] == name)
        .unwrap_or_else(|| panic!("no service {name} in {status:#}"))
}

/// Waits until `status --json` shows service `name` in `state`.
fn wait_state(socket: &Path, name: &str, state: &str) -> Value {
    let mut last = Value::Null;
    let reached = wait_for(PATIENCE, || {
        last = status_json(socket);
        service(&last, name)["state"] == state
    });
    assert!(reached, "{name} never became {state}: {last:#}");
    last
}

/// A `minderctl` left running (a followed stream), its standard output read line by
/// line by a thread so that the test can wait for a line with a bound.
struct Follower {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Follower {
    fn start(socket: &Path, args: &[&str]) -> Follower {
        let mut child = Command::new(MINDERCTL)
            .arg("--socket")
            .arg(socket)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn minderctl");
        let stdout = child.stdout.take().expect("piped stdout");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        Follower {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits for a line that satisfies `wanted`; panics with every line seen so far
    /// after `PATIENCE`.
    fn wait_line(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if wanted(&line) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line {what} within {PATIENCE:?}; seen:\n{:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Waits (bounded) for minderctl to exit; returns its status and standard error.
    fn wait_exit(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait minderctl") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "minderctl did not exit; seen:\n{:#?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut text = String::new();
        if let Some(mut stderr) = self.child.stderr.take() {
            let _ = stderr.read_to_string(&mut text);
        }
        (status, text)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn without_a_daemon_minderctl_exits_3_naming_the_socket_and_the_errno() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("nobody-listens.sock");
    let output = minderctl(&socket, &["status"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let message = stderr(&output);
    assert!(
        message.contains(&socket.display().to_string()) && message.contains("ENOENT"),
        "the message names neither the path nor the errno: {message}"
    );
    assert!(stdout(&output).is_empty(), "{output:?}");

    // A socket file nobody listens on any more (minder was killed): refused, still 3.
    let stale = std::os::unix::net::UnixListener::bind(&socket).expect("bind");
    drop(stale);
    let output = minderctl(&socket, &["stop", "api"]);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(stderr(&output).contains("ECONNREFUSED"), "{output:?}");
}

#[test]
fn usage_errors_exit_2_before_anything_is_sent() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let socket = dir.path().join("unused.sock");
    for args in [
        &["stop"][..],
        &["signal", "api", "NOSUCHSIG"],
        &["frobnicate"],
        &["logs", "api", "-n", "many"],
        &[],
    ] {
        let output = minderctl(&socket, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "minderctl {args:?}: {output:?}"
        );
        assert!(
            !stderr(&output).is_empty(),
            "minderctl {args:?} says nothing"
        );
    }
}

#[test]
fn status_prints_a_table_and_a_json_document_with_the_real_pids() {
    let (minder, socket) = minder_with(&format!(
        "{}{}",
        sh_service("db", &pid_then_sleep("db"), ""),
        sh_service("api-server", &pid_then_sleep("api-server"), "")
    ));
    let db = minder.wait_pid("db", None);
    let api = minder.wait_pid("api-server", None);
    wait_state(&socket, "api-server", "running");

    let table = ok(&minderctl(&socket, &["status"]));
    let lines: Vec<&str> = table.lines().collect();
    let header = lines
        .iter()
        .position(|line| line.starts_with("NAME"))
        .unwrap_or_else(|| panic!("no header:\n{table}"));
    let columns = [
        "NAME", "KIND", "STATE", "PID", "UPTIME", "RESTARTS", "EXIT", "CHECK", "REASON",
    ];
    let words: Vec<&str> = lines[header].split_whitespace().collect();
    assert_eq!(words, columns, "{table}");
    // Every row's STATE starts where the header's does: the table is aligned.
    let state_column = lines[header].find("STATE").expect("STATE");
    for (name, pid) in [("db", db), ("api-server", api)] {
        let row = lines
            .iter()
            .find(|line| line.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{table}"));
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells[1], "service", "{row}");
        assert_eq!(cells[2], "running", "{row}");
        assert_eq!(cells[3], pid.to_string(), "{row}");
        assert_eq!(
            &row[state_column..state_column + "running".len()],
            "running",
            "{table}"
        );
    }

    let status = status_json(&socket);
    assert_eq!(service(&status, "db")["pid"], db);
    assert_eq!(service(&status, "api-server")["pid"], api);
    assert_eq!(status["minder"]["pid"], minder.pid());

    // Only the names asked for.
    let only_db = ok(&minderctl(&socket, &["status", "db"]));
    assert!(only_db.contains(&db.to_string()), "{only_db}");
    assert!(!only_db.contains("api-server"), "{only_db}");
}

#[test]
fn stop_holds_a_service_down_start_brings_it_back_and_restart_replaces_it() {
    let (minder, socket) = minder_with(&sh_service("api", &pid_then_sleep("api"), ""));
    let first = minder.wait_pid("api", None);

    let stopped = ok(&minderctl(&socket, &["stop", "api"]));
    assert!(stopped.contains("api"), "{stopped}");
    assert!(
        wait_for(PATIENCE, || !is_alive(first)),
        "api {first} still runs after stop"
    );
    wait_state(&socket, "api", "stopped");
    // Held down: a permanent service is not restarted behind the operator's back.
    assert_eq!(service(&status_json(&socket), "api")["pid"], Value::Null);

    ok(&minderctl(&socket, &["start", "api"]));
    let second = minder.wait_pid("api", Some(first));
    wait_state(&socket, "api", "running");

    ok(&minderctl(&socket, &["restart", "api"]));
    let third = minder.wait_pid("api", Some(second));
    assert!(
        wait_for(PATIENCE, || !is_alive(second)),
        "the old api {second} survived restart"
    );
    let status = wait_state(&socket, "api", "running");
    assert_eq!(service(&status, "api")["pid"], third);
}

#[test]
fn several_names_are_each_acted_on_and_an_unknown_one_exits_1_with_its_kind() {
    let (minder, socket) = minder_with(&format!(
        "{}{}",
        sh_service("a", &pid_then_sleep("a"), ""),
        sh_service("b", &pid_then_sleep("b"), "")
    ));
    let a = minder.wait_pid("a", None);
    let b = minder.wait_pid("b", None);

    let output = minderctl(&socket, &["stop", "a", "nosuch", "b"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(
        stderr(&output).starts_with("minderctl: unknown_name: "),
        "{}",
        stderr(&output)
    );
    assert!(
        wait_for(PATIENCE, || !is_alive(a) && !is_alive(b)),
        "a or b still runs"
    );

    let output = minderctl(&socket, &["status", "nosuch"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(stderr(&output).contains("unknown_name"), "{output:?}");
    assert!(stdout(&output).is_empty(), "{output:?}");
}

#[test]
fn signal_reaches_the_services_trap() {
    let script = "trap 'echo hup >> hup.log' HUP; echo $$ > sig.pid; \
                  while :; do sleep 1 & wait; done";
    let (minder, socket) = minder_with(&sh_service("sig", script, ""));
    let pid = minder.wait_pid("sig", None);

    let answer = ok(&minderctl(&socket, &["signal", "sig", "HUP"]));
    assert!(answer.contains("sig"), "{answer}");
    assert!(
        wait_for(PATIENCE, || minder.lines("hup.log") == ["hup"]),
        "the trap did not run: {:?}",
        minder.lines("hup.log")
    );
    assert!(is_alive(pid), "the service died of a trapped HUP");
}

#[test]
fn logs_prints_the_last_n_lines() {
    let script =
        "for i in $(seq 1 20); do echo line $i; done; echo done > out.done; exec sleep 1000";
    let (minder, socket) = minder_with(&sh_service("talker", script, ""));
    assert!(wait_for(PATIENCE, || minder.path("out.done").exists()));
    let mut printed = String::new();
    let all_in = wait_for(PATIENCE, || {
        printed = ok(&minderctl(&socket, &["logs", "talker", "-n", "5"]));
        printed.contains("line 20")
    });
    assert!(all_in, "line 20 never reached logs:\n{printed}");
    assert_eq!(
        printed.lines().collect::<Vec<_>>(),
        ["line 16", "line 17", "line 18", "line 19", "line 20"]
    );

    let json = ok(&minderctl(
        &socket,
        &["logs", "talker", "-n", "2", "--json"],
    ));
    let items: Vec<Value> = json
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    assert_eq!(items.len(), 2, "{json}");
    assert_eq!(items[1]["service"], "talker");
    assert_eq!(items[1]["line"], "line 20");
}

#[test]
fn logs_follow_interleaves_services_with_aligned_prefixes_and_ctrl_c_ends_it_quietly() {
    let ticker =
        |tag: &str| format!("i=0; while :; do echo {tag} $i; i=$((i+1)); sleep 0.05; done");
    let (_minder, socket) = minder_with(&format!(
        "{}{}",
        sh_service("a", &ticker("tick-a"), ""),
        sh_service("bbb", &ticker("tick-b"), "")
    ));
    let mut follower = Follower::start(&socket, &["logs", "a", "bbb", "-n", "0", "-f"]);
    follower.wait_line("from a", |line| line.starts_with("a   | tick-a "));
    follower.wait_line("from bbb", |line| line.starts_with("bbb | tick-b "));
    // Both keep coming, interleaved, every one prefixed.
    follower.wait_line("from a again", |line| line.starts_with("a   | tick-a "));
    for line in &follower.seen {
        assert!(
            line.starts_with("a   | tick-a ") || line.starts_with("bbb | tick-b "),
            "a line without its aligned prefix: {line:?}"
        );
    }

    send_signal(follower.child.id() as i32, Signal::SIGINT);
    let (status, stderr) = follower.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "Ctrl-C: {status:?}, stderr: {stderr}"
    );
    assert!(stderr.is_empty(), "Ctrl-C is not quiet: {stderr}");
}

#[test]
fn events_follow_shows_an_exit_after_a_kill() {
    let (minder, socket) = minder_with(&sh_service("victim", &pid_then_sleep("victim"), ""));
    let pid = minder.wait_pid("victim", None);
    wait_state(&socket, "victim", "running");

    // Each follower replays the last event first: once that line is out, it is
    // subscribed, and the kill below cannot be missed.
    let mut human = Follower::start(&socket, &["events", "-f", "-n", "1"]);
    let mut json = Follower::start(&socket, &["events", "-f", "-n", "1", "--json"]);
    human.wait_line("replayed", |_| true);
    json.wait_line("replayed", |_| true);
    send_signal(pid, Signal::SIGKILL);

    let line = human.wait_line("with the exit", |line| {
        line.contains(" exited ") && line.contains("victim")
    });
    assert!(line.contains("SIGKILL"), "{line}");
    let exited = json.wait_line("with the exit as JSON", |line| line.contains("\"exited\""));
    let event: Value = serde_json::from_str(&exited).expect("one JSON object per line");
    assert_eq!(event["service"], "victim");
    assert_eq!(event["signal"], "KILL");
    minder.wait_pid("victim", Some(pid));
}

#[test]
fn events_without_follow_replays_the_last_ones_and_ends() {
    let (minder, socket) = minder_with(&sh_service("one", &pid_then_sleep("one"), ""));
    minder.wait_pid("one", None);
    let mut printed = String::new();
    let started = wait_for(PATIENCE, || {
        printed = ok(&minderctl(&socket, &["events", "-n", "50"]));
        printed
            .lines()
            .any(|line| line.contains(" started ") && line.contains("one"))
    });
    assert!(started, "no start of one in:\n{printed}");
    let one = ok(&minderctl(&socket, &["events", "-n", "1"]));
    assert_eq!(one.lines().count(), 1, "{one}");
}

#[test]
fn shutdown_makes_minder_exit_0() {
    let (mut minder, socket) = minder_with(&sh_service("svc", &pid_then_sleep("svc"), ""));
    let pid = minder.wait_pid("svc", None);
    ok(&minderctl(&socket, &["shutdown"]));
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    assert!(!is_alive(pid), "svc {pid} outlived minder");
    minder.assert_nothing_left();
    // The socket went with minder: the next call cannot connect.
    assert_eq!(minderctl(&socket, &["status"]).status.code(), Some(3));
}

#[test]
fn minder_socket_names_the_default_socket() {
    let (minder, socket) = minder_with(&sh_service("svc", &pid_then_sleep("svc"), ""));
    let pid = minder.wait_pid("svc", None);
    let output = Command::new(MINDERCTL)
        .args(["status", "--json"])
        .env("MINDER_SOCKET", &socket)
        .stdin(Stdio::null())
        .output()
        .expect("run minderctl");
    let status: Value = serde_json::from_slice(&ok(&output).into_bytes()).expect("JSON");
    assert_eq!(service(&status, "svc")["pid"], pid);
}

#[test]
fn a_reader_that_goes_away_ends_a_followed_stream_quietly() {
    let ticker = "i=0; while :; do echo line $i; i=$((i+1)); sleep 0.02; done";
    let (_minder, socket) = minder_with(&sh_service("chatty", ticker, ""));
    let mut follower = Follower::start(&socket, &["logs", "chatty", "-n", "0", "-f"]);
    follower.wait_line("any", |_| true);
    // Close the pipe's read end, as `minderctl logs -f | head -1` does once head exits.
    let (sender, replaced) = mpsc::channel();
    drop(sender);
    drop(std::mem::replace(&mut follower.lines, replaced));
    let (status, stderr) = follower.wait_exit();
    assert_eq!(status.code(), Some(0), "{status:?}, stderr: {stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}

#[test]
fn the_shutdown_end_marker_reaches_a_follower_before_minder_exits() {
    let (mut minder, socket) = minder_with(&sh_service("svc", &pid_then_sleep("svc"), ""));
    minder.wait_pid("svc", None);
    let mut follower = Follower::start(&socket, &["events", "-f", "-n", "1"]);
    follower.wait_line("replayed", |_| true);
    ok(&minderctl(&socket, &["shutdown"]));
    let (status, stderr) = follower.wait_exit();
    assert_eq!(status.code(), Some(0), "{status:?}, stderr: {stderr}");
    assert!(
        stderr.contains("shutting down"),
        "no note on stderr: {stderr:?}"
    );
    assert_eq!(minder.expect_exit(PATIENCE), 0);
}

#[test]
fn a_minder_killed_under_a_followed_stream_is_exit_1_not_a_hang() {
    let (minder, socket) = minder_with(&sh_service("svc", &pid_then_sleep("svc"), ""));
    minder.wait_pid("svc", None);
    let mut follower = Follower::start(&socket, &["events", "-f", "-n", "1"]);
    follower.wait_line("replayed", |_| true);
    minder.signal(Signal::SIGKILL);
    let (status, stderr) = follower.wait_exit();
    assert_eq!(status.code(), Some(1), "{status:?}, stderr: {stderr}");
    assert!(
        stderr.starts_with("minderctl: ") && stderr.contains(&socket.display().to_string()),
        "{stderr}"
    );
}

/// `minderctl --socket SOCKET args...` run as `nobody` (with `group` as a supplementary
/// group if given), through `setpriv`.
fn minderctl_as_nobody(socket: &Path, group: Option<&str>, args: &[&str]) -> Output {
    let groups = match group {
        Some(group) => format!("--groups={group}"),
        None => "--clear-groups".to_string(),
    };
    Command::new("setpriv")
        .args([
            "--reuid=nobody",
            "--regid=nogroup",
            &groups,
            MINDERCTL,
            "--socket",
        ])
        .arg(socket)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| panic!("run setpriv minderctl {args:?}: {error}"))
}

#[test]
fn another_user_gets_exit_3_for_a_closed_socket_and_exit_1_forbidden_for_a_stop() {
    // A socket other users may reach (world-writable directory, mode 0666), where only
    // the peer check decides: a member of control_group reads, and is refused a stop.
    let mut open = Minder::new();
    common::make_world_writable(open.dir.path());
    open.write(
        "cfg.toml",
        &format!(
            "[daemon]\ncontrol_mode = \"0666\"\ncontrol_group = \"users\"\n\n{}",
            sh_service("api", &pid_then_sleep("api"), "")
        ),
    );
    open.start_run(&[]);
    let api = open.wait_pid("api", None);
    let socket = open.socket();
    assert!(wait_for(PATIENCE, || minderctl(&socket, &["status"])
        .status
        .success()));

    let status = minderctl_as_nobody(&socket, Some("users"), &["status"]);
    assert!(ok(&status).contains(&api.to_string()), "{status:?}");
    let stop = minderctl_as_nobody(&socket, Some("users"), &["stop", "api"]);
    assert_eq!(stop.status.code(), Some(1), "{stop:?}");
    assert!(
        stderr(&stop).starts_with("minderctl: forbidden: "),
        "{stop:?}"
    );
    assert!(is_alive(api), "api was stopped by a reader");

    // The default: a 0600 socket in root's 0700 directory; nobody cannot even connect.
    let (_closed, closed_socket) = minder_with(&sh_service("svc", &pid_then_sleep("svc"), ""));
    let refused = minderctl_as_nobody(&closed_socket, None, &["status"]);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(stderr(&refused).contains("EACCES"), "{refused:?}");
}
