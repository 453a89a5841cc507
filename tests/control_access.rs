//! Who may use the control socket, and how minder claims its path: a client of another
//! uid is refused changes (and everything without `control_group`), a member of
//! `control_group` may read; a stale socket file is replaced, a live minder's is not
//! (exit 2 for an explicit path, a warning for the default one), and a file that is
//! not a socket is never touched.

mod common;

use common::{Minder, PATIENCE, make_world_writable, pid_then_sleep, sh_service, wait_for};
use serde_json::{Value, json};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;

/// The system's Python, which `nobody` can run (a pyenv shim under /root would not be).
const PYTHON: &str = "/usr/bin/python3";

/// Sends one request as `nobody` (with `extra_group` as a supplementary group if
/// given), through a tiny Python client run under `setpriv`; the response, parsed.
fn request_as_nobody(socket: &Path, extra_group: Option<&str>, cmd: &str, args: Value) -> Value {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} is needed to act as another user's client"
    );
    let client = "import socket,sys\n\
        s=socket.socket(socket.AF_UNIX)\n\
        s.connect(sys.argv[1])\n\
        s.sendall(sys.argv[2].encode()+b'\\n')\n\
        print(s.makefile().readline(), end='')\n";
    let request = json!({"v": 1, "id": 1, "cmd": cmd, "args": args}).to_string();
    let groups = match extra_group {
        Some(group) => format!("--groups={group}"),
        None => "--clear-groups".to_string(),
    };
    let socket = socket.to_str().expect("a UTF-8 path");
    let text = common::command_stdout(
        "setpriv",
        &[
            "--reuid=nobody",
            "--regid=nogroup",
            &groups,
            PYTHON,
            "-c",
            client,
            socket,
            &request,
        ],
    );
    serde_json::from_str(text.trim())
        .unwrap_or_else(|error| panic!("no JSON answer as nobody ({error}): {text:?}"))
}

/// A minder whose socket other users can reach: a world-writable test directory and
/// a socket mode of 0666, so only the peer check stands in their way.
fn open_minder(extra_daemon: &str) -> Minder {
    let mut minder = Minder::new();
    make_world_writable(minder.dir.path());
    let config = format!(
        "[daemon]\ncontrol_mode = \"0666\"\n{extra_daemon}\n{}",
        sh_service("api", &pid_then_sleep("api"), "")
    );
    minder.write("cfg.toml", &config);
    minder.start_run(&[]);
    minder.wait_pid("api", None);
    // Waits (bounded) for the socket.
    assert_eq!(minder.control("status", json!({}))["ok"], true);
    minder
}

#[test]
fn another_user_is_refused_everything_without_control_group() {
    let minder = open_minder("");
    let mode = std::fs::metadata(minder.socket())
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666);
    for (cmd, args) in [("status", json!({})), ("stop", json!({"name": "api"}))] {
        let response = request_as_nobody(&minder.socket(), None, cmd, args);
        assert_eq!(response["ok"], false, "{response}");
        assert_eq!(response["error"]["kind"], "forbidden", "{response}");
    }
    assert_eq!(
        minder.control("status", json!({}))["result"]["services"][0]["state"],
        "running"
    );
}

#[test]
fn a_member_of_control_group_may_read_but_not_stop() {
    let minder = open_minder("control_group = \"users\"");
    let response = request_as_nobody(&minder.socket(), Some("users"), "status", json!({}));
    assert_eq!(response["ok"], true, "{response}");
    assert_eq!(response["result"]["services"][0]["name"], "api");
    let response = request_as_nobody(
        &minder.socket(),
        Some("users"),
        "stop",
        json!({"name": "api"}),
    );
    assert_eq!(response["error"]["kind"], "forbidden", "{response}");
    // Without the group, nothing.
    let response = request_as_nobody(&minder.socket(), None, "status", json!({}));
    assert_eq!(response["error"]["kind"], "forbidden", "{response}");
    let pid = minder.pid_file("api").expect("api's pid");
    assert!(common::is_alive(pid), "api was stopped");
}

#[test]
fn an_unknown_control_group_is_a_startup_error() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ncontrol_group = \"no-such-group-here\"\n{}",
            sh_service("api", &pid_then_sleep("api"), "")
        ),
    );
    minder.start_run(&[]);
    assert_eq!(minder.expect_exit(PATIENCE), 2);
    assert!(
        minder.stderr_text().contains("no-such-group-here"),
        "{}",
        minder.stderr_text()
    );
    assert_eq!(minder.pid_file("api"), None, "a service started");
}

#[test]
fn a_stale_socket_file_is_replaced() {
    let minder = Minder::new();
    let path = minder.path("stale.sock");
    // Bound and closed: the file stays, nobody listens (what a SIGKILLed minder leaves).
    drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ncontrol_socket = \"stale.sock\"\n{}",
            sh_service("api", &pid_then_sleep("api"), "")
        ),
    );
    let mut minder = minder;
    minder.start_run(&[]);
    minder.wait_pid("api", None);
    let mut client = common::Client::connect(&path);
    assert_eq!(client.request("status", json!({}))["ok"], true);
    assert!(
        minder
            .stderr_text()
            .contains("replaced a stale control socket")
    );
}

#[test]
fn a_live_minder_on_an_explicit_path_makes_the_second_exit_2() {
    let first = Minder::run(&sh_service("api", &pid_then_sleep("api"), ""));
    first.wait_pid("api", None);
    assert_eq!(first.control("status", json!({}))["ok"], true);

    let mut second = Minder::new();
    second.write(
        "cfg.toml",
        &format!(
            "[daemon]\ncontrol_socket = \"{}\"\n{}",
            first.socket().display(),
            sh_service("other", &pid_then_sleep("other"), "")
        ),
    );
    second.start_run(&[]);
    assert_eq!(second.expect_exit(PATIENCE), 2);
    let stderr = second.stderr_text();
    assert!(
        stderr.contains(&first.socket().display().to_string()),
        "{stderr}"
    );
    assert!(
        stderr.contains("another minder is answering on it"),
        "{stderr}"
    );
    assert_eq!(
        second.pid_file("other"),
        None,
        "the second minder started a service"
    );
    // The first one's socket is untouched and still answers.
    assert_eq!(first.control("status", json!({}))["ok"], true);
}

#[test]
fn a_busy_default_path_only_warns_and_minder_runs_without_a_socket() {
    let first = Minder::run(&sh_service("api", &pid_then_sleep("api"), ""));
    assert_eq!(first.control("status", json!({}))["ok"], true);

    // No control_socket key: the default path, which MINDER_SOCKET points at the
    // first minder's socket.
    let mut second = Minder::new();
    second.env("MINDER_SOCKET", first.socket());
    second.write(
        "cfg.toml",
        &sh_service("other", &pid_then_sleep("other"), ""),
    );
    second.start_run(&[]);
    second.wait_pid("other", None);
    assert!(
        wait_for(PATIENCE, || second
            .stderr_text()
            .contains("running without a control socket")),
        "{}",
        second.stderr_text()
    );
    assert!(second.wait_exit(std::time::Duration::ZERO).is_none());
    // The first one still owns and serves the path.
    let status = first.control("status", json!({}));
    assert_eq!(status["result"]["minder"]["pid"], first.pid());
}

#[test]
fn a_file_that_is_not_a_socket_is_never_replaced() {
    let mut minder = Minder::new();
    minder.write("precious.txt", "keep me\n");
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ncontrol_socket = \"precious.txt\"\n{}",
            sh_service("api", &pid_then_sleep("api"), "")
        ),
    );
    minder.start_run(&[]);
    assert_eq!(minder.expect_exit(PATIENCE), 2);
    assert_eq!(
        std::fs::read_to_string(minder.path("precious.txt")).expect("still there"),
        "keep me\n"
    );
    assert!(
        minder.stderr_text().contains("not a socket"),
        "{}",
        minder.stderr_text()
    );
}

#[test]
fn the_socket_is_created_in_a_new_directory_with_the_configured_mode() {
    let mut minder = Minder::new();
    minder.write(
        "cfg.toml",
        &format!(
            "[daemon]\ncontrol_socket = \"run/minder/ctl.sock\"\ncontrol_mode = \"0640\"\n{}",
            sh_service("api", &pid_then_sleep("api"), "")
        ),
    );
    minder.start_run(&[]);
    minder.wait_pid("api", None);
    let path = minder.path("run/minder/ctl.sock");
    assert!(wait_for(PATIENCE, || path.exists()));
    let metadata = std::fs::metadata(&path).expect("the socket");
    assert!(metadata.file_type().is_socket());
    assert_eq!(metadata.permissions().mode() & 0o777, 0o640);
    let directory = std::fs::metadata(minder.path("run/minder")).expect("its directory");
    assert_eq!(directory.permissions().mode() & 0o777, 0o755);
    minder.signal(common::Signal::SIGTERM);
    assert_eq!(minder.expect_exit(PATIENCE), 0);
    assert!(!path.exists(), "the socket file was left behind");
}

#[test]
fn a_default_path_that_cannot_be_created_only_warns() {
    // /proc accepts no new directory, as a read-only /run would not.
    let mut minder = Minder::new();
    minder.env("MINDER_SOCKET", "/proc/minder-test/control.sock");
    minder.write("cfg.toml", &sh_service("api", &pid_then_sleep("api"), ""));
    minder.start_run(&[]);
    minder.wait_pid("api", None);
    assert!(
        wait_for(PATIENCE, || minder
            .stderr_text()
            .contains("running without a control socket")),
        "{}",
        minder.stderr_text()
    );
    assert!(minder.wait_exit(std::time::Duration::ZERO).is_none());
}
