//! Black-box tests of `minder run` supervising real processes: restart strategies,
//! escalation to exit 3, orderly shutdown, cleanup of a crashed service's forks, and
//! the parent-death signal. Each service records its pid in a file of the test
//! directory; the tests kill services from outside and watch which pids change.

mod common;

use common::{Minder, PATIENCE, Signal, is_alive, pid_then_sleep, send_signal, sh_service};

/// A service that logs each of its starts to `starts` (one line with its name, appended
/// atomically) and then records its pid and sleeps.
fn logged_service(name: &str) -> String {
    sh_service(
        name,
        &format!("echo {name} >> starts; {}", pid_then_sleep(name)),
        "backoff = { initial = \"10ms\" }",
    )
}

/// Runs a root with three services a, b, c under `strategy`, kills b from outside, and
/// returns (services whose pid changed, the starts logged after the kill).
fn kill_middle_child(strategy: &str) -> (Vec<&'static str>, Vec<String>) {
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
    let starts_before = minder.lines("starts").len();
    assert_eq!(starts_before, 3, "{:?}", minder.lines("starts"));

    send_signal(before[1], Signal::SIGKILL);
    // b is restarted under every strategy; by the time its new pid is there, every
    // sibling the strategy stops has been stopped (stops come before the restart).
    let new_b = minder.wait_pid("b", Some(before[1]));
    let mut changed = Vec::new();
    for (index, name) in names.iter().enumerate() {
        let pid = if *name == "b" {
            new_b
        } else {
            minder.pid_file(name).expect("pid file")
        };
        if pid != before[index] || !is_alive(before[index]) {
            changed.push(*name);
            // A restarted sibling must come back, not merely be stopped.
            minder.wait_pid(name, Some(before[index]));
        }
    }
    let starts = minder.lines("starts")[starts_before..].to_vec();
    (changed, starts)
}

#[test]
fn one_for_one_restarts_only_the_killed_child() {
    let (changed, starts) = kill_middle_child("one_for_one");
    assert_eq!(changed, ["b"]);
    assert_eq!(starts, ["b"]);
}

#[test]
fn one_for_all_restarts_every_child_in_order() {
    let (changed, starts) = kill_middle_child("one_for_all");
    assert_eq!(changed, ["a", "b", "c"]);
    assert_eq!(starts, ["a", "b", "c"]);
}

#[test]
fn rest_for_one_restarts_the_killed_child_and_those_after_it() {
    let (changed, starts) = kill_middle_child("rest_for_one");
    assert_eq!(changed, ["b", "c"]);
    assert_eq!(starts, ["b", "c"]);
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
    minder.signal(Signal::SIGTERM);
    let code = minder.expect_exit(PATIENCE);
    assert_eq!(code, 0, "stderr:\n{}", minder.stderr_text());
    for pid in pids {
        assert!(!is_alive(pid), "{pid} survived the shutdown");
    }
    minder.assert_nothing_left();
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
