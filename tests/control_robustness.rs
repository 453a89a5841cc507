//! The control socket under bad and demanding clients: malformed lines, a 2 MiB line,
//! unknown commands and versions, a half-closed connection, 50 clients at once while a
//! service crash-loops, and a `logs -f` follower that never reads a flooding service.
//! Each gets an error or is disconnected, and minder stays responsive.

mod common;

use common::{Minder, PATIENCE, pid_then_sleep, sh_service, wait_for};
use serde_json::{Value, json};
use std::time::Duration;

fn assert_responsive(minder: &Minder) {
    let response = minder.control("status", json!({}));
    assert_eq!(response["ok"], true, "{response}");
}

fn error_of(response: &Value) -> (&str, &Value) {
    assert_eq!(response["ok"], false, "{response}");
    (
        response["error"]["kind"].as_str().expect("kind"),
        &response["id"],
    )
}

#[test]
fn malformed_requests_get_errors_and_the_connection_stays_usable() {
    let minder = Minder::run(&sh_service("api", &pid_then_sleep("api"), ""));
    let mut client = minder.client();

    client
        .send_raw(b"{\"v\":1,\"id\":3,\"cmd\":\n")
        .expect("send");
    let response = client.read().expect("an answer");
    assert_eq!(error_of(&response), ("bad_request", &Value::Null));

    client.send_raw(b"\xff\xfe not even text\n").expect("send");
    assert_eq!(
        error_of(&client.read().expect("an answer")).0,
        "bad_request"
    );

    client
        .send_raw(b"{\"v\":2,\"id\":4,\"cmd\":\"status\"}\n")
        .expect("send");
    let response = client.read().expect("an answer");
    assert_eq!(error_of(&response), ("unsupported_version", &json!(4)));

    let response = client.request("frobnicate", json!({}));
    assert_eq!(error_of(&response).0, "unknown_command");

    let response = client.request("stop", json!({"nam": "api"}));
    assert_eq!(error_of(&response).0, "bad_request");
    let message = response["error"]["message"].as_str().expect("message");
    assert!(message.contains("nam"), "{message}");

    // The same connection still serves a good request.
    let response = client.request("status", json!({}));
    assert_eq!(response["ok"], true, "{response}");
}

#[test]
fn a_two_mebibyte_line_is_refused_and_its_connection_closed() {
    let minder = Minder::run(&sh_service("api", &pid_then_sleep("api"), ""));
    let mut client = minder.client();
    let mut line = b"{\"v\":1,\"id\":1,\"cmd\":\"status\",\"args\":{\"names\":[\"".to_vec();
    line.resize(2 * 1024 * 1024, b'a');
    line.extend_from_slice(b"\"]}}\n");
    // The server may close before the whole line is written: that is fine.
    let _ = client.send_raw(&line);
    let response = client.read().expect("an error before the close");
    assert_eq!(error_of(&response).0, "bad_request");
    assert!(
        client.reaches_end_of_file(PATIENCE),
        "the connection stayed open"
    );
    assert_responsive(&minder);
}

#[test]
fn a_half_closed_connection_still_gets_its_answer() {
    let minder = Minder::run(&sh_service("api", &pid_then_sleep("api"), ""));
    // Waits (bounded) for minder to listen.
    assert_responsive(&minder);
    let mut stream = std::os::unix::net::UnixStream::connect(minder.socket()).expect("connect");
    use std::io::{Read, Write};
    // No newline at all: the request ends with the client's half of the connection.
    stream
        .write_all(b"{\"v\":1,\"id\":9,\"cmd\":\"status\"}")
        .expect("send");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    stream
        .set_read_timeout(Some(common::CLIENT_PATIENCE))
        .expect("timeout");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read to the end");
    let response: Value = serde_json::from_str(answer.trim()).expect("one JSON line");
    assert_eq!(response["id"], 9);
    assert_eq!(response["ok"], true);

    // A client that connects and leaves without a word costs nothing either.
    drop(std::os::unix::net::UnixStream::connect(minder.socket()).expect("connect"));
    assert_responsive(&minder);
}

#[test]
fn fifty_concurrent_clients_get_status_while_a_service_crash_loops() {
    let config = format!(
        "[root]\nintensity = 1000\n{}{}",
        sh_service("api", &pid_then_sleep("api"), ""),
        sh_service(
            "crashy",
            "echo x >> crashes.txt; exit 1",
            "backoff = { initial = \"10ms\", max = \"20ms\" }"
        ),
    );
    let minder = Minder::run(&config);
    minder.wait_pid("api", None);
    let socket = minder.socket();
    let answers: Vec<Value> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..50)
            .map(|_| {
                let socket = socket.clone();
                scope.spawn(move || {
                    let mut client = common::Client::connect(&socket);
                    // Three requests each on one connection: 150 in all.
                    (0..3)
                        .map(|_| client.request("status", json!({})))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        clients
            .into_iter()
            .flat_map(|client| client.join().expect("a client thread"))
            .collect()
    });
    assert_eq!(answers.len(), 150);
    for answer in &answers {
        assert_eq!(answer["ok"], true, "{answer}");
    }
    // minder went on supervising meanwhile: the crash loop keeps being restarted.
    let crashes = minder.lines("crashes.txt").len();
    assert!(
        wait_for(PATIENCE, || minder.lines("crashes.txt").len() > crashes + 2),
        "the crashing service is no longer restarted"
    );
}

#[test]
fn a_logs_follower_that_never_reads_is_disconnected() {
    // A service that writes as fast as it can: the follower's socket buffer fills and
    // its share of the output tap overflows.
    let config = sh_service(
        "flood",
        "echo $$ > flood.pid; exec yes 'a line of output that keeps on coming, and coming'",
        "",
    );
    let minder = Minder::run(&config);
    minder.wait_pid("flood", None);
    let sockets_before = sockets_of(minder.pid());
    let mut follower = minder.client();
    follower.send("logs", json!({"names": ["flood"], "follow": true}));
    // The daemon answers others meanwhile.
    for _ in 0..5 {
        assert_responsive(&minder);
    }
    // Without the follower reading a byte, minder closes its end (the server gives a
    // blocked client 2 s): its count of sockets is back to what it was.
    assert!(
        wait_for(Duration::from_secs(20), || sockets_of(minder.pid())
            <= sockets_before),
        "the non-reading follower is still connected"
    );
    assert!(follower.reaches_end_of_file(PATIENCE));
    assert_responsive(&minder);
}

/// How many sockets `pid` has open.
fn sockets_of(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// Followers of a quiet service (or of events on a quiet tree) that hang up were kept
/// connected until the next item for them, which may never come: one socket, task and
/// subscription per vanished client. minder must notice the hang-up by itself.
#[test]
fn followers_that_hang_up_on_a_quiet_stream_are_let_go() {
    let minder = Minder::run(&sh_service("quiet", &pid_then_sleep("quiet"), ""));
    minder.wait_pid("quiet", None);
    assert_responsive(&minder);
    let sockets_before = sockets_of(minder.pid());
    for _ in 0..20 {
        let mut client = minder.client();
        client.send(
            "logs",
            json!({"names": ["quiet"], "lines": 0, "follow": true}),
        );
        drop(client);
        let mut client = minder.client();
        client.send("events", json!({"last": 0, "follow": true}));
        drop(client);
    }
    assert!(
        wait_for(PATIENCE, || sockets_of(minder.pid()) <= sockets_before),
        "{} sockets open, {sockets_before} before the followers came and went",
        sockets_of(minder.pid())
    );
    assert_responsive(&minder);
}
