//! Black-box tests of `minder run` supervising real processes: restart strategies,
//! escalation to exit 3, orderly shutdown, cleanup of a crashed service's forks, and
//! the parent-death signal. Each service records its pid in a file of the test
//! directory; the tests kill services from outside and watch which pids change.

mod common;

use common::{Minder, PATIENCE, Signal, is_alive, pid_then_sleep, send_signal, sh_service};
use std::time::Duration;

/// A service that records its pid, then waits on a background sleep. A TERM (minder
/// stopping it) appends its name to `stops` before it exits, so `stops` holds the stop
/// order: minder sees the exit only after the line is written.
fn logged_service(name: &str) -> String {
    sh_service(
        name,
        &format!(
            "trap 'echo {name} >> stops; exit 0' TERM; echo $$ > {name}.pid; sleep 1000 & wait"
        ),
        "backoff = { initial = \"10ms\" }",
    )
}

/// Whether `pids` were forked in this order. Pids are handed out increasing, wrapping
/// at pid_max (32768 here), so one descent is allowed if the sequence wrapped.
fn forked_in_order(pids: &[i32]) -> bool {
    let descents = pids.windows(2).filter(|pair| pair[1] < pair[0]).count();
    descents == 0 || (descents == 1 && pids.last() < pids.first())
}

/// What one failure did under a strategy, as seen from outside.
#[derive(Debug, PartialEq)]
struct Restarted {
    /// The services with a new process, in child order.
    restarted: Vec<&'static str>,
    /// The services minder stopped (TERM), in the order it stopped them.
    stopped: Vec<String>,
}

/// Runs a root with three services a, b, c under `strategy`, kills b from outside with
/// SIGKILL, and reports what minder restarted and stopped.
fn kill_middle_child(strategy: &str) -> Restarted {
    let config = format!(
        "[root]\nstrategy = \"{strategy}\"\nintensity = 10\n\n{}{}{}",
        logged_service("a"),
        logged_service("b"),
        logged_service("c"),
    );
    let minder = Minder::run(&config);
    let names = ["a", "b", "c"];
    let before: Vec<i32> = names
        .iter()
        .map(|name| minder.wait_pid(name, None))
        .collect();

    send_signal(before[1], Signal::SIGKILL);
    // b is restarted under every strategy. Siblings are stopped before any restart, so
    // once b's new pid is there, every sibling the strategy stops has been stopped.
    let new_b = minder.wait_pid("b", Some(before[1]));
    let mut restarted = Vec::new();
    let mut new_pids = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let pid = if *name == "b" {
            new_b
        } else {
            minder.pid_file(name).expect("pid file")
        };
        if pid != before[index] || !is_alive(before[index]) {
            restarted.push(*name);
            // A sibling the strategy stopped must come back, not merely be stopped.
            new_pids.push(minder.wait_pid(name, Some(before[index])));
        }
    }
    assert!(
        forked_in_order(&new_pids),
        "{restarted:?} were not started in child order: pids {new_pids:?}"
    );
    Restarted {
        restarted,
        stopped: minder.lines("stops"),
    }
}

#[test]
fn one_for_one_restarts_only_the_killed_child() {
    let outcome = kill_middle_child("one_for_one");
    assert_eq!(outcome.restarted, ["b"]);
    assert!(outcome.stopped.is_empty(), "{outcome:?}");
}

#[test]
fn one_for_all_stops_the_others_in_reverse_order_and_restarts_all_in_order() {
    let outcome = kill_middle_child("one_for_all");
    assert_eq!(outcome.restarted, ["a", "b", "c"]);
    assert_eq!(outcome.stopped, ["c", "a"]);
}

#[test]
fn rest_for_one_restarts_the_killed_child_and_those_after_it() {
    let outcome = kill_middle_child("rest_for_one");
    assert_eq!(outcome.restarted, ["b", "c"]);
    assert_eq!(outcome.stopped, ["c"]);
}

#[test]
fn a_strategy_applies_inside_a_nested_group_only() {
    // rest_for_one inside `inner`; the root's other child `outside` is untouched.
    let config = format!(
        "[root]\nchildren = [\"outside\", \"inner\"]\n\n\
         [group.inner]\nstrategy = \"rest_for_one\"\nchildren = [\"x\", \"y\", \"z\"]\n\n{}{}{}{}",
        logged_service("outside"),
        logged_service("x"),
        logged_service("y"),
        logged_service("z"),
    );
    let minder = Minder::run(&config);
    let outside = minder.wait_pid("outside", None);
    let x = minder.wait_pid("x", None);
    let y = minder.wait_pid("y", None);
    let z = minder.wait_pid("z", None);
    send_signal(y, Signal::SIGKILL);
    minder.wait_pid("y", Some(y));
    minder.wait_pid("z", Some(z));
    assert!(
        is_alive(outside) && is_alive(x),
        "outside or x was restarted"
    );
    assert_eq!(minder.pid_file("outside"), Some(outside));
    assert_eq!(minder.pid_file("x"), Some(x));
    assert_eq!(minder.lines("stops"), ["z"]);
}

#[test]
fn a_root_whose_budget_is_spent_exits_3_and_leaves_nothing() {
    // `crash` fails at once, every time; the root allows 2 restarts, so the third
    // failure spends the budget. `steady` must be stopped on the way out.
    let config = format!(
        "[root]\nintensity = 2\nperiod = \"30s\"\n\n{}{}",
        sh_service("steady", &pid_then_sleep("steady"), ""),
        sh_service(
            "crash",
            "echo $$ >> crash.pids; exit 1",
            "backoff = { initial = \"10ms\" }"
        ),
    );
    let mut minder = Minder::run(&config);
    let steady = minder.wait_pid("steady", None);
    let code = minder.expect_exit(PATIENCE);
    assert_eq!(code, 3, "stderr:\n{}", minder.stderr_text());
    assert_eq!(
        minder.lines("crash.pids").len(),
        3,
        "one start and two restarts"
    );
    assert!(!is_alive(steady));
    minder.assert_nothing_left();
}

#[test]
fn sigterm_stops_every_group_including_a_grandchild_that_ignores_term() {
    // `stubborn` ignores TERM, and so does the sleep it forks (an ignored disposition
    // survives fork and exec): only the SIGKILL after stop_timeout ends them.
    let stubborn =
        "trap '' TERM; sleep 1000 & echo $! > grandchild.pid; echo $$ > stubborn.pid; wait";
    let config = format!(
        "[daemon]\nshutdown_timeout = \"5s\"\n\n\
         [root]\nchildren = [\"first\", \"backend\"]\n\n\
         [group.backend]\nstrategy = \"one_for_all\"\nchildren = [\"stubborn\", \"last\"]\n\n{}{}{}",
        sh_service("first", &pid_then_sleep("first"), ""),
        sh_service("stubborn", stubborn, "stop_timeout = \"500ms\""),
        sh_service("last", &pid_then_sleep("last"), ""),
    );
    let mut minder = Minder::run(&config);
    // Every service has started, so minder's signal handlers are installed.
    let pids = [
        minder.wait_pid("first", None),
        minder.wait_pid("stubborn", None),
        minder.wait_pid("grandchild", None),
        minder.wait_pid("last", None),
    ];
    sigterm_leaves_nothing(&mut minder, &pids);
}

#[test]
fn a_worker_forked_by_a_crashed_main_process_is_killed_before_the_restart() {
    // The first run forks a worker and crashes; the second run checks, as its first
    // act, whether that worker is still alive (state from /proc, so a zombie counts as
    // dead) and records the answer, then stays up.
    let script = r#"
        sleep 1000 &
        echo $! > worker.$$
        if [ -e crashed ]; then
            old=$(cat crashed)
            state=$(cut -d' ' -f3 /proc/$old/stat 2>/dev/null)
            echo "${state:-gone}" > verdict
            echo $$ > main.pid
            exec sleep 1000
        fi
        cat worker.$$ > crashed
        exit 1
    "#;
    let config = format!(
        "[root]\nintensity = 10\n\n{}",
        sh_service("main", script, "backoff = { initial = \"10ms\" }")
    );
    let minder = Minder::run(&config);
    minder.wait_pid("main", None);
    let old_worker: i32 = std::fs::read_to_string(minder.path("crashed"))
        .expect("the first run recorded its worker")
        .trim()
        .parse()
        .expect("worker pid");
    let verdict = std::fs::read_to_string(minder.path("verdict")).expect("verdict");
    let verdict = verdict.trim();
    assert!(
        verdict == "gone" || verdict == "Z",
        "the old worker {old_worker} was in state {verdict} when the new main process started"
    );
    assert!(!is_alive(old_worker));
}

#[test]
fn services_die_with_a_sigkilled_minder() {
    let config = format!(
        "{}{}",
        sh_service("a", &pid_then_sleep("a"), ""),
        sh_service(
            "b",
            &pid_then_sleep("b"),
            "user = \"nobody\"\nworking_dir = \"/\""
        ),
    );
    let mut minder = Minder::new();
    common::make_world_writable(minder.dir.path());
    // b runs as nobody in `/`, so it writes its pid file by absolute path.
    let config = config.replace("b.pid", &minder.path("b.pid").display().to_string());
    minder.write("cfg.toml", &config);
    minder.start_run(&[]);
    let a = minder.wait_pid("a", None);
    let b = minder.wait_pid("b", None);
    send_signal(minder.pid(), Signal::SIGKILL);
    minder
        .wait_exit(PATIENCE)
        .expect("minder ends after SIGKILL");
    // The parent-death signal is SIGKILL or SIGTERM: both end a plain `sleep`. b checks
    // that it is set after the credential change, which would clear it.
    let gone = common::wait_for(PATIENCE, || !is_alive(a) && !is_alive(b));
    assert!(
        gone,
        "services outlived minder: a alive {}, b alive {}",
        is_alive(a),
        is_alive(b)
    );
}

#[test]
fn orphans_of_a_service_are_reaped_by_minder_as_a_subreaper() {
    // Each `( sleep 0.2 & )` subshell exits at once; its sleep is re-parented to
    // minder (a child subreaper outside a pid namespace) and must be reaped when it
    // ends. pid1_namespace.rs holds the negative control of this check.
    let script =
        "for i in 1 2 3 4 5; do (sleep 0.2 &); done; touch orphans.made; exec tail -f /dev/null";
    let minder = Minder::run(&sh_service("orphans", script, ""));
    assert!(common::wait_for(PATIENCE, || minder
        .path("orphans.made")
        .exists()));
    let others = || {
        common::descendants(minder.pid())
            .into_iter()
            .filter(|pid| common::comm_of(*pid).as_deref() != Some("tail"))
            .collect::<Vec<i32>>()
    };
    let reaped = common::wait_for(PATIENCE, || others().is_empty());
    let left = others();
    assert!(
        reaped,
        "not reaped: {left:?} in states {:?}\nstderr:\n{}",
        left.iter()
            .map(|pid| common::proc_state(*pid))
            .collect::<Vec<_>>(),
        minder.stderr_text()
    );
}

/// A service that ignores TERM, whose stop_timeout (60 s) outlasts every test bound.
fn stubborn_service(name: &str) -> String {
    sh_service(
        name,
        &format!("trap '' TERM; echo $$ > {name}.pid; while :; do sleep 1; done"),
        "stop_timeout = \"60s\"",
    )
}

#[test]
fn shutdown_timeout_bounds_the_whole_shutdown() {
    let config = format!(
        "[daemon]\nshutdown_timeout = \"500ms\"\n\n{}{}",
        stubborn_service("slow1"),
        stubborn_service("slow2")
    );
    let mut minder = Minder::run(&config);
    let pids = [
        minder.wait_pid("slow1", None),
        minder.wait_pid("slow2", None),
    ];
    // Well before any stop_timeout runs out: only shutdown_timeout can end this.
    sigterm_leaves_nothing(&mut minder, &pids);
}

#[test]
fn a_second_sigterm_kills_everything_at_once() {
    let config = format!(
        "[daemon]\nshutdown_timeout = \"60s\"\n\n{}",
        stubborn_service("slow")
    );
    let mut minder = Minder::run(&config);
    let pid = minder.wait_pid("slow", None);
    minder.signal(Signal::SIGTERM);
    // The first TERM has reached the service (it ignores it) once minder logs the
    // shutdown; the second one must not wait for the 60 s stop_timeout.
    assert!(
        common::wait_for(PATIENCE, || minder.stderr_text().contains("shutdown")),
        "no shutdown in the log:\n{}",
        minder.stderr_text()
    );
    assert!(
        minder.wait_exit(Duration::from_millis(200)).is_none(),
        "minder did not wait for the stubborn service"
    );
    minder.signal(Signal::SIGTERM);
    minder.wait_exit(PATIENCE).unwrap_or_else(|| {
        panic!(
            "a second SIGTERM did not end minder:\n{}",
            minder.stderr_text()
        )
    });
    assert!(!is_alive(pid));
    minder.assert_nothing_left();
}

/// SIGTERM to minder: it exits 0, none of `pids` survives, and nothing of the test is
/// left alive.
fn sigterm_leaves_nothing(minder: &mut Minder, pids: &[i32]) {
    minder.signal(Signal::SIGTERM);
    let code = minder.expect_exit(PATIENCE);
    assert_eq!(code, 0, "stderr:\n{}", minder.stderr_text());
    for pid in pids {
        assert!(!is_alive(*pid), "{pid} survived the shutdown");
    }
    minder.assert_nothing_left();
}
