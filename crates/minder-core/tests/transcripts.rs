//! The core's test matrix, run on the simulator's virtual clock: every case is a config,
//! a script of events and the expected transcript of effects. Trees are written in
//! TOML, loaded by minder's own config loader and lowered to the core's spec
//! (`minder::spec::lower`; minder is a dev-dependency of this crate).

use expect_test::{Expect, expect};
use minder::config;
use minder_core::sim::Sim;
use minder_core::spec::BackoffSpec;
use minder_core::supervisor::{
    ChildRef, Effect, Event, ExitStatus, ServiceId, Supervisor, Time, backoff_delay,
};
use proptest::prelude::*;
use std::path::Path;
use std::time::Duration;

/// The full spec of a test config, as the config loader makes it.
fn full_spec(toml: &str) -> minder::spec::Spec {
    match config::load_str(toml, "test.toml", Path::new("/")) {
        Ok(spec) => spec,
        Err(errors) => panic!("test config is invalid: {errors:?}"),
    }
}

/// The core's spec of a test config.
fn spec(toml: &str) -> minder_core::spec::Spec {
    minder::spec::lower(&full_spec(toml)).0
}

/// The one helper of the matrix: run `script` against `toml`, compare the transcript.
fn check(toml: &str, script: &str, expected: Expect) {
    let mut sim = Sim::new(&spec(toml));
    if let Err(error) = sim.run_script(script) {
        panic!("{error}\ntranscript so far:\n{}", sim.transcript);
    }
    assert!(
        sim.violations.is_empty(),
        "invariants broken: {:?}\n{}",
        sim.violations,
        sim.transcript
    );
    expected.assert_eq(&sim.transcript);
}

/// Zero jitter keeps the transcripts exact; jitter has its own test.
const FAST: &str = r#"backoff = { initial = "100ms", jitter = 0.0 }"#;

// ----- restart type × end reason ---------------------------------------------------

#[test]
fn restart_type_by_end_reason_matrix() {
    let ends = [
        ("exit 0", "exit svc 0"),
        ("exit 3 (success code)", "exit svc 3"),
        ("exit 1", "exit svc 1"),
        ("SIGTERM from outside", "crash svc 15"),
        ("SIGKILL from outside", "crash svc 9"),
        ("stopped by minder", "stop svc"),
        ("killed for health", "fail svc health"),
    ];
    let mut table = String::new();
    for restart in ["permanent", "transient", "temporary"] {
        for (label, action) in ends {
            let toml = format!(
                "[service.svc]\ncommand = \"x\"\nrestart = \"{restart}\"\nsuccess_codes = [0, 3]\n{FAST}\n"
            );
            let mut sim = Sim::new(&spec(&toml));
            sim.run_script(&format!("{action}\nadvance 1s")).unwrap();
            let view = sim.supervisor.view(ServiceId(0)).unwrap();
            table.push_str(&format!(
                "{restart:<9} {label:<22} -> {} ({})\n",
                view.state, view.generation
            ));
            assert!(sim.violations.is_empty(), "{:?}", sim.violations);
        }
    }
    expect![[r#"
        permanent exit 0                 -> running (2)
        permanent exit 3 (success code)  -> running (2)
        permanent exit 1                 -> running (2)
        permanent SIGTERM from outside   -> running (2)
        permanent SIGKILL from outside   -> running (2)
        permanent stopped by minder      -> stopped (1)
        permanent killed for health      -> running (2)
        transient exit 0                 -> done (1)
        transient exit 3 (success code)  -> done (1)
        transient exit 1                 -> running (2)
        transient SIGTERM from outside   -> done (1)
        transient SIGKILL from outside   -> running (2)
        transient stopped by minder      -> stopped (1)
        transient killed for health      -> running (2)
        temporary exit 0                 -> done (1)
        temporary exit 3 (success code)  -> done (1)
        temporary exit 1                 -> done (1)
        temporary SIGTERM from outside   -> done (1)
        temporary SIGKILL from outside   -> done (1)
        temporary stopped by minder      -> stopped (1)
        temporary killed for health      -> done (1)
    "#]]
    .assert_eq(&table);
}

/// An empty `success_signals` restores "every signal is a failure": a transient
/// service killed by SIGTERM from outside comes back.
#[test]
fn empty_success_signals_make_every_signal_a_failure() {
    check(
        &format!(
            "[service.a]\ncommand = \"x\"\nrestart = \"transient\"\nsuccess_signals = []\n{FAST}"
        ),
        "crash a 15\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] a#1 ended: signal 15, abnormal
            [     0ms] restart a after 100ms
            [   100ms] spawn a#2 pid 101
        "#]],
    );
}

/// A signal in `success_signals` is a normal end for a oneshot too: the next sibling
/// starts, and the oneshot is not run again.
#[test]
fn a_oneshot_killed_by_a_success_signal_has_succeeded() {
    check(
        &format!(
            "[service.setup]\ncommand = \"x\"\noneshot = true\n{FAST}\n[service.app]\ncommand = \"x\"\n{FAST}"
        ),
        "crash setup 2\nadvance 1s",
        expect![[r#"
            [     0ms] spawn setup#1 pid 100
            [     0ms] setup#1 ended: signal 2, normal
            [     0ms] spawn app#1 pid 101
        "#]],
    );
}

/// A significant transient service killed by SIGTERM from outside ended normally, for
/// good: `auto_shutdown` applies, and minder exits with 128+15 as a shell reports it.
#[test]
fn a_significant_service_killed_by_a_success_signal_shuts_the_tree_down() {
    check(
        &format!(
            "[root]\nauto_shutdown = \"any_significant\"\n\
             [service.side]\ncommand = \"x\"\n{FAST}\n\
             [service.main]\ncommand = \"x\"\nrestart = \"transient\"\nsignificant = true\n{FAST}"
        ),
        "crash main 15\nadvance 1s",
        expect![[r#"
            [     0ms] spawn side#1 pid 100
            [     0ms] spawn main#1 pid 101
            [     0ms] main#1 ended: signal 15, normal
            [     0ms] shutting down: Significant { id: ServiceId(1), code: 143 }
            [     0ms] announce Stopping
            [     0ms] signal side#1 pid 100 sig 15
            [     0ms] side#1 ended: signal 15, stopped
            [     0ms] exit 143
        "#]],
    );
}

/// A permanent service is restarted after any end, a clean signal included, and that
/// end counts toward its backoff like any other: the second delay doubles.
#[test]
fn a_permanent_service_killed_by_a_success_signal_is_restarted_with_backoff() {
    check(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}"),
        "crash a 15\nadvance 100ms\ncrash a 15\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] a#1 ended: signal 15, normal
            [     0ms] restart a after 100ms
            [   100ms] spawn a#2 pid 101
            [   100ms] a#2 ended: signal 15, normal
            [   100ms] restart a after 200ms
            [   300ms] spawn a#3 pid 102
        "#]],
    );
}

/// A signal minder sent to stop the service is a planned stop even when it is one of
/// `success_signals` (SIGTERM is both the default stop signal and a success signal).
#[test]
fn a_stop_by_minder_stays_a_stop_whatever_success_signals_say() {
    check(
        &format!(
            "[root]\nstrategy = \"one_for_all\"\n\
             [service.a]\ncommand = \"x\"\nrestart = \"transient\"\n{FAST}\n\
             [service.b]\ncommand = \"x\"\n{FAST}"
        ),
        "exit b 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] restart b after 100ms
            [     0ms] signal a#1 pid 100 sig 15
            [     0ms] a#1 ended: signal 15, stopped
            [   100ms] spawn a#2 pid 102
            [   100ms] spawn b#2 pid 103
        "#]],
    );
}

#[test]
fn failure_kill_is_a_failure_whatever_the_status() {
    // The service exits 0 on its stop signal, but minder ended it for a failure.
    check(
        &format!("[service.a]\ncommand = \"x\"\nrestart = \"transient\"\n{FAST}"),
        "stubborn a\nfail a watchdog\nexit a 0\nadvance 100ms",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] a#1 condemned: watchdog
            [     0ms] signal a#1 pid 100 sig 15
            [     0ms] a#1 ended: exit 0, failure (watchdog)
            [     0ms] restart a after 100ms
            [   100ms] spawn a#2 pid 101
        "#]],
    );
}

// ----- strategies -------------------------------------------------------------------

fn three(strategy: &str) -> String {
    format!(
        "[root]\nstrategy = \"{strategy}\"\n\
         [service.a]\ncommand = \"x\"\n{FAST}\n\
         [service.b]\ncommand = \"x\"\n{FAST}\n\
         [service.c]\ncommand = \"x\"\n{FAST}\n"
    )
}

#[test]
fn one_for_one_restarts_only_the_failed_child() {
    check(
        &three("one_for_one"),
        "exit b 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] restart b after 100ms
            [   100ms] spawn b#2 pid 103
        "#]],
    );
}

#[test]
fn one_for_all_stops_all_in_reverse_and_starts_all_in_order() {
    check(
        &three("one_for_all"),
        "exit b 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] restart b after 100ms
            [     0ms] signal c#1 pid 102 sig 15
            [     0ms] c#1 ended: signal 15, stopped
            [     0ms] signal a#1 pid 100 sig 15
            [     0ms] a#1 ended: signal 15, stopped
            [   100ms] spawn a#2 pid 103
            [   100ms] spawn b#2 pid 104
            [   100ms] spawn c#2 pid 105
        "#]],
    );
}

#[test]
fn rest_for_one_restarts_the_failed_child_and_those_after_it() {
    check(
        &three("rest_for_one"),
        "exit b 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] restart b after 100ms
            [     0ms] signal c#1 pid 102 sig 15
            [     0ms] c#1 ended: signal 15, stopped
            [   100ms] spawn b#2 pid 103
            [   100ms] spawn c#2 pid 104
        "#]],
    );
}

#[test]
fn a_one_for_one_restart_does_not_wait_for_an_unrelated_sibling_in_backoff() {
    check(
        &format!(
            "[service.a]\ncommand = \"x\"\nbackoff = {{ initial = \"5s\", jitter = 0.0 }}\n\
             [service.b]\ncommand = \"x\"\n{FAST}\n"
        ),
        "exit a 1\nexit b 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 5000ms
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] restart b after 100ms
            [   100ms] spawn b#2 pid 102
        "#]],
    );
}

#[test]
fn a_restart_set_still_comes_up_in_order() {
    // rest_for_one: b and c restart as one wave, c only once b is ready again.
    let spec = with_checks(&three("rest_for_one"), |service| {
        if service.name == "b" {
            service.ready = Some(ReadySpec::new(ReadyCheck::Notify));
        }
    });
    run(
        &spec,
        "ready b\nexit b 1\nadvance 1s\nready b",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] restart b after 100ms
            [     0ms] signal c#1 pid 102 sig 15
            [     0ms] c#1 ended: signal 15, stopped
            [   100ms] spawn b#2 pid 103
            [  1000ms] spawn c#2 pid 104
        "#]],
    );
}

#[test]
fn restart_set_waits_for_a_stubborn_sibling_then_kills_it() {
    check(
        &format!(
            "[root]\nstrategy = \"one_for_all\"\n[service.a]\ncommand = \"x\"\nstop_timeout = \"2s\"\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n"
        ),
        "stubborn a\nexit b 1\nadvance 3s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] restart b after 100ms
            [     0ms] signal a#1 pid 100 sig 15
            [  2000ms] a#1 did not stop in time
            [  2000ms] kill a#1 pid 100
            [  2000ms] a#1 ended: signal 9, stopped
            [  2000ms] spawn a#2 pid 102
            [  2000ms] spawn b#2 pid 103
        "#]],
    );
}

/// Two children of a one_for_all group that end at the same instant (reaped in one
/// sweep) are each reported with what they did: the second exited on its own, it was
/// not stopped. The decision stays one restart of the set, one budget entry.
#[test]
fn two_ends_in_one_turn_are_each_reported_as_they_happened() {
    check(
        &three("one_for_all"),
        "exit a 1 b 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 100ms
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] signal c#1 pid 102 sig 15
            [     0ms] c#1 ended: signal 15, stopped
            [   100ms] spawn a#2 pid 103
            [   100ms] spawn b#2 pid 104
            [   100ms] spawn c#2 pid 105
        "#]],
    );
    check(
        &three("rest_for_one"),
        "crash b 9 c 15\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] b#1 ended: signal 9, abnormal
            [     0ms] restart b after 100ms
            [     0ms] c#1 ended: signal 15, normal
            [   100ms] spawn b#2 pid 103
            [   100ms] spawn c#2 pid 104
        "#]],
    );
}

// ----- budgets and escalation ---------------------------------------------------------

#[test]
fn root_budget_exhausted_shuts_down_with_exit_3() {
    check(
        &format!(
            "[root]\nintensity = 2\nperiod = \"10s\"\n[service.a]\ncommand = \"x\"\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n"
        ),
        "exit a 1\nadvance 1s\nexit a 1\nadvance 1s\nexit a 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 100ms
            [   100ms] spawn a#2 pid 102
            [  1000ms] a#2 ended: exit 1, abnormal
            [  1000ms] restart a after 200ms
            [  1200ms] spawn a#3 pid 103
            [  2000ms] a#3 ended: exit 1, abnormal
            [  2000ms] group root gave up: 3 restarts in 10000ms > intensity 2
            [  2000ms] shutting down: RootFailed
            [  2000ms] announce Stopping
            [  2000ms] signal b#1 pid 101 sig 15
            [  2000ms] b#1 ended: signal 15, stopped
            [  2000ms] exit 3
        "#]],
    );
}

#[test]
fn intensity_zero_allows_no_restart() {
    check(
        "[root]\nintensity = 0\n[service.a]\ncommand = \"x\"\n",
        "exit a 0",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] a#1 ended: exit 0, normal
            [     0ms] group root gave up: 1 restarts in 30000ms > intensity 0
            [     0ms] shutting down: RootFailed
            [     0ms] announce Stopping
            [     0ms] exit 3
        "#]],
    );
}

#[test]
fn budget_window_slides_a_restart_just_outside_does_not_count() {
    // intensity 1 per 10s: failures at 0 and 10.001s are two windows apart.
    let toml = "[root]\nintensity = 1\nperiod = \"10s\"\n[service.a]\ncommand = \"x\"\nbackoff = { initial = \"0s\", jitter = 0.0 }\n";
    check(
        toml,
        "exit a 1\nadvance 10001ms\nexit a 1\nadvance 9999ms\nexit a 1",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 0ms
            [     0ms] spawn a#2 pid 101
            [ 10001ms] a#2 ended: exit 1, abnormal
            [ 10001ms] restart a after 0ms
            [ 10001ms] spawn a#3 pid 102
            [ 20000ms] a#3 ended: exit 1, abnormal
            [ 20000ms] group root gave up: 2 restarts in 10000ms > intensity 1
            [ 20000ms] shutting down: RootFailed
            [ 20000ms] announce Stopping
            [ 20000ms] exit 3
        "#]],
    );
}

#[test]
fn budget_edge_a_restart_exactly_period_ago_still_counts() {
    let toml = "[root]\nintensity = 1\nperiod = \"10s\"\n[service.a]\ncommand = \"x\"\nbackoff = { initial = \"0s\" }\n";
    let mut sim = Sim::new(&spec(toml));
    sim.run_script("exit a 1\nadvance 10s\nexit a 1").unwrap();
    assert_eq!(sim.exit_code, Some(3), "{}", sim.transcript);
}

fn nested(inner_strategy: &str) -> String {
    format!(
        "[root]\nstrategy = \"one_for_one\"\nintensity = 3\nchildren = [\"first\", \"mid\", \"last\"]\n\
         [group.mid]\nstrategy = \"{inner_strategy}\"\nintensity = 1\nperiod = \"60s\"\nchildren = [\"x\", \"y\"]\n\
         [service.first]\ncommand = \"x\"\n{FAST}\n\
         [service.x]\ncommand = \"x\"\n{FAST}\n\
         [service.y]\ncommand = \"x\"\n{FAST}\n\
         [service.last]\ncommand = \"x\"\n{FAST}\n"
    )
}

#[test]
fn one_for_one_group_escalates_to_parent_which_restarts_it_fresh() {
    check(
        &nested("one_for_one"),
        "exit x 1\nadvance 1s\nexit x 1\nadvance 1s\nexit x 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn first#1 pid 100
            [     0ms] spawn x#1 pid 101
            [     0ms] spawn y#1 pid 102
            [     0ms] spawn last#1 pid 103
            [     0ms] x#1 ended: exit 1, abnormal
            [     0ms] restart x after 100ms
            [   100ms] spawn x#2 pid 104
            [  1000ms] x#2 ended: exit 1, abnormal
            [  1000ms] group mid gave up: 2 restarts in 60000ms > intensity 1
            [  1000ms] signal y#1 pid 102 sig 15
            [  1000ms] y#1 ended: signal 15, stopped
            [  1000ms] root restarts group mid
            [  1000ms] spawn x#3 pid 105
            [  1000ms] spawn y#2 pid 106
            [  2000ms] x#3 ended: exit 1, abnormal
            [  2000ms] restart x after 100ms
            [  2100ms] spawn x#4 pid 107
        "#]],
    );
}

#[test]
fn one_for_all_group_escalation_under_one_for_all_parent() {
    let toml = nested("one_for_all").replace(
        "strategy = \"one_for_one\"\nintensity = 3",
        "strategy = \"one_for_all\"\nintensity = 3",
    );
    check(
        &toml,
        "exit y 1\nadvance 1s\nexit y 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn first#1 pid 100
            [     0ms] spawn x#1 pid 101
            [     0ms] spawn y#1 pid 102
            [     0ms] spawn last#1 pid 103
            [     0ms] y#1 ended: exit 1, abnormal
            [     0ms] restart y after 100ms
            [     0ms] signal x#1 pid 101 sig 15
            [     0ms] x#1 ended: signal 15, stopped
            [   100ms] spawn x#2 pid 104
            [   100ms] spawn y#2 pid 105
            [  1000ms] y#2 ended: exit 1, abnormal
            [  1000ms] group mid gave up: 2 restarts in 60000ms > intensity 1
            [  1000ms] signal x#2 pid 104 sig 15
            [  1000ms] x#2 ended: signal 15, stopped
            [  1000ms] root restarts group mid
            [  1000ms] signal last#1 pid 103 sig 15
            [  1000ms] last#1 ended: signal 15, stopped
            [  1000ms] signal first#1 pid 100 sig 15
            [  1000ms] first#1 ended: signal 15, stopped
            [  1000ms] spawn first#2 pid 106
            [  1000ms] spawn x#3 pid 107
            [  1000ms] spawn y#3 pid 108
            [  1000ms] spawn last#2 pid 109
        "#]],
    );
}

#[test]
fn rest_for_one_group_escalation_restarts_later_siblings() {
    let toml = nested("rest_for_one").replace(
        "strategy = \"one_for_one\"\nintensity = 3",
        "strategy = \"rest_for_one\"\nintensity = 3",
    );
    let mut sim = Sim::new(&spec(&toml));
    sim.run_script("exit x 1\nadvance 1s\nexit x 1\nadvance 1s")
        .unwrap();
    assert!(sim.violations.is_empty());
    // `first` keeps its process; the group and `last` after it are restarted.
    let generation = |name: &str| {
        sim.supervisor
            .view(sim.service_id(name).unwrap())
            .unwrap()
            .generation
    };
    assert_eq!(
        (
            generation("first"),
            generation("x"),
            generation("y"),
            generation("last")
        ),
        (1, 3, 3, 2),
        "{}",
        sim.transcript
    );
}

#[test]
fn escalation_two_levels_deep_reaches_the_root_and_exits_3() {
    let toml = format!(
        "[root]\nintensity = 0\nchildren = [\"outer\"]\n\
         [group.outer]\nintensity = 0\nchildren = [\"inner\"]\n\
         [group.inner]\nintensity = 0\nchildren = [\"leaf\", \"other\"]\n\
         [service.leaf]\ncommand = \"x\"\n{FAST}\n[service.other]\ncommand = \"x\"\n{FAST}\n"
    );
    check(
        &toml,
        "exit leaf 1",
        expect![[r#"
            [     0ms] spawn leaf#1 pid 100
            [     0ms] spawn other#1 pid 101
            [     0ms] leaf#1 ended: exit 1, abnormal
            [     0ms] group inner gave up: 1 restarts in 30000ms > intensity 0
            [     0ms] signal other#1 pid 101 sig 15
            [     0ms] other#1 ended: signal 15, stopped
            [     0ms] group outer gave up: 1 restarts in 30000ms > intensity 0
            [     0ms] group root gave up: 1 restarts in 30000ms > intensity 0
            [     0ms] shutting down: RootFailed
            [     0ms] announce Stopping
            [     0ms] exit 3
        "#]],
    );
}

#[test]
fn restarted_group_starts_with_fresh_budget_and_backoff() {
    // mid allows 1 restart; after its escalation and fresh restart it allows 1 again.
    let mut sim = Sim::new(&spec(&nested("one_for_one")));
    sim.run_script("exit x 1\nadvance 1s\nexit x 1\nadvance 1s")
        .unwrap();
    let mid = sim.supervisor.lookup("mid")[0];
    assert_eq!(sim.supervisor.restarts_in_period(mid), Some(0));
    let x = sim.service_id("x").unwrap();
    assert_eq!(sim.supervisor.view(x).unwrap().backoff_count, 0);
    sim.run_script("exit x 1\nadvance 1s").unwrap();
    assert_eq!(sim.supervisor.restarts_in_period(mid), Some(1));
    assert_eq!(sim.supervisor.view(x).unwrap().state, "running");
}

// ----- backoff ------------------------------------------------------------------------

#[test]
fn backoff_grows_caps_and_resets_after_a_stable_run() {
    let toml = "[root]\nintensity = 100\nperiod = \"1s\"\n[service.a]\ncommand = \"x\"\n\
                backoff = { initial = \"100ms\", max = \"1s\", multiplier = 3.0, jitter = 0.0, reset_after = \"10s\" }\n";
    let mut sim = Sim::new(&spec(toml));
    sim.run_script(
        "exit a 1\nadvance 5s\nexit a 1\nadvance 5s\nexit a 1\nadvance 5s\nexit a 1\nadvance 5s\n\
         advance 20s\nexit a 1\nadvance 5s",
    )
    .unwrap();
    let delays: Vec<&str> = sim
        .transcript
        .lines()
        .filter(|l| l.contains("restart a"))
        .map(|l| l.trim())
        .collect();
    expect![[r#"
        [
            "[     0ms] restart a after 100ms",
            "[  5000ms] restart a after 300ms",
            "[ 10000ms] restart a after 900ms",
            "[ 15000ms] restart a after 1000ms",
            "[ 40000ms] restart a after 100ms",
        ]
    "#]]
    .assert_debug_eq(&delays);
}

#[test]
fn backoff_jitter_stays_within_bounds_and_is_seeded() {
    let backoff = BackoffSpec {
        initial: Duration::from_secs(1),
        jitter: 0.25,
        ..BackoffSpec::default()
    };
    let mut rng = fastrand::Rng::with_seed(1);
    let mut seen_low = false;
    let mut seen_high = false;
    for _ in 0..1000 {
        let delay = backoff_delay(&backoff, 1, &mut rng).as_secs_f64();
        assert!((0.75..=1.25).contains(&delay), "{delay}");
        seen_low |= delay < 0.9;
        seen_high |= delay > 1.1;
    }
    assert!(seen_low && seen_high, "jitter does not spread");
    let first = |seed| backoff_delay(&backoff, 1, &mut fastrand::Rng::with_seed(seed));
    assert_eq!(first(5), first(5));
}

#[test]
fn regression_zero_initial_backoff_stays_zero_after_1024_restarts() {
    // multiplier^(n-1) overflows to infinity past n = 1024 and 0 * inf is NaN, which
    // used to turn into a full `max` delay: a zero-backoff service stalled for 30 s.
    let mut backoff = BackoffSpec {
        initial: Duration::ZERO,
        jitter: 0.0,
        ..BackoffSpec::default()
    };
    let mut rng = fastrand::Rng::with_seed(1);
    for n in [1, 1024, 1025, 5000, u32::MAX] {
        assert_eq!(
            backoff_delay(&backoff, n, &mut rng),
            Duration::ZERO,
            "n = {n}"
        );
    }
    backoff.initial = Duration::from_millis(100);
    for n in [1025, 5000, u32::MAX] {
        assert_eq!(backoff_delay(&backoff, n, &mut rng), backoff.max, "n = {n}");
    }
}

#[test]
fn regression_jitter_pushed_a_backoff_past_max() {
    // Issue 7: at the cap, +jitter made the delay up to (1 + jitter) * max.
    let backoff = BackoffSpec {
        initial: Duration::from_secs(1),
        max: Duration::from_secs(1),
        jitter: 0.5,
        ..BackoffSpec::default()
    };
    let mut rng = fastrand::Rng::with_seed(3);
    let mut below = false;
    for n in [1, 2, 10, 1000] {
        for _ in 0..200 {
            let delay = backoff_delay(&backoff, n, &mut rng);
            assert!(delay <= backoff.max, "n = {n}: {delay:?}");
            below |= delay < Duration::from_millis(900);
        }
    }
    // Jitter still spreads the delays below the cap.
    assert!(below, "jitter no longer spreads restarts");
}

proptest! {
    /// Whatever the parameters and the draw, a delay never exceeds `max`.
    #[test]
    fn backoff_delay_stays_within_zero_and_max(
        initial_ms in 0u64..20_000,
        max_ms in 0u64..20_000,
        multiplier in 1.0f64..10.0,
        jitter in 0.0f64..=1.0,
        n in 1u32..3_000,
        seed in any::<u64>(),
    ) {
        let backoff = BackoffSpec {
            initial: Duration::from_millis(initial_ms),
            max: Duration::from_millis(max_ms),
            multiplier,
            jitter,
            reset_after: Duration::from_secs(30),
        };
        let delay = backoff_delay(&backoff, n, &mut fastrand::Rng::with_seed(seed));
        prop_assert!(delay <= backoff.max, "{delay:?} > {:?}", backoff.max);
    }
}

// ----- order ----------------------------------------------------------------------------

#[test]
fn start_waits_for_readiness_depth_first_and_stop_is_reverse() {
    let toml = format!(
        "[root]\nchildren = [\"a\", \"g\", \"d\"]\n[group.g]\nchildren = [\"b\", \"h\"]\n[group.h]\nchildren = [\"c\"]\n\
         [service.a]\ncommand = \"x\"\noneshot = true\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n\
         [service.c]\ncommand = \"x\"\n{FAST}\n[service.d]\ncommand = \"x\"\n{FAST}\n"
    );
    check(
        &toml,
        "advance 1s\nexit a 0\nshutdown",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [  1000ms] a#1 ended: exit 0, normal
            [  1000ms] spawn b#1 pid 101
            [  1000ms] spawn c#1 pid 102
            [  1000ms] spawn d#1 pid 103
            [  1000ms] > shutdown
            [  1000ms] shutting down: Requested
            [  1000ms] announce Stopping
            [  1000ms] signal d#1 pid 103 sig 15
            [  1000ms] d#1 ended: signal 15, stopped
            [  1000ms] signal c#1 pid 102 sig 15
            [  1000ms] c#1 ended: signal 15, stopped
            [  1000ms] signal b#1 pid 101 sig 15
            [  1000ms] b#1 ended: signal 15, stopped
            [  1000ms] exit 0
        "#]],
    );
}

#[test]
fn a_failed_oneshot_is_retried_and_blocks_the_next_sibling() {
    check(
        &format!(
            "[service.setup]\ncommand = \"x\"\noneshot = true\n{FAST}\n[service.app]\ncommand = \"x\"\n{FAST}\n"
        ),
        "exit setup 2\nadvance 1s\nexit setup 0",
        expect![[r#"
            [     0ms] spawn setup#1 pid 100
            [     0ms] setup#1 ended: exit 2, abnormal
            [     0ms] restart setup after 100ms
            [   100ms] spawn setup#2 pid 101
            [  1000ms] setup#2 ended: exit 0, normal
            [  1000ms] spawn app#1 pid 102
        "#]],
    );
}

#[test]
fn a_finished_oneshot_runs_again_when_its_set_restarts() {
    check(
        &format!(
            "[root]\nstrategy = \"one_for_all\"\n[service.db]\ncommand = \"x\"\n{FAST}\n\
             [service.migrate]\ncommand = \"x\"\noneshot = true\n{FAST}\n[service.app]\ncommand = \"x\"\n{FAST}\n"
        ),
        "exit migrate 0\nexit app 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn db#1 pid 100
            [     0ms] spawn migrate#1 pid 101
            [     0ms] migrate#1 ended: exit 0, normal
            [     0ms] spawn app#1 pid 102
            [     0ms] app#1 ended: exit 1, abnormal
            [     0ms] restart app after 100ms
            [     0ms] signal db#1 pid 100 sig 15
            [     0ms] db#1 ended: signal 15, stopped
            [   100ms] spawn db#2 pid 103
            [   100ms] spawn migrate#2 pid 104
        "#]],
    );
}

// ----- instances ---------------------------------------------------------------------

fn with_instances(strategy: &str) -> String {
    format!(
        "[root]\nstrategy = \"{strategy}\"\n[service.a]\ncommand = \"x\"\n{FAST}\n\
         [service.w]\ncommand = \"x\"\ninstances = 3\n{FAST}\n[service.z]\ncommand = \"x\"\n{FAST}\n"
    )
}

#[test]
fn instances_start_together_and_one_for_one_restarts_one() {
    check(
        &with_instances("one_for_one"),
        "exit w.1 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn w.0#1 pid 101
            [     0ms] spawn w.1#1 pid 102
            [     0ms] spawn w.2#1 pid 103
            [     0ms] spawn z#1 pid 104
            [     0ms] w.1#1 ended: exit 1, abnormal
            [     0ms] restart w.1 after 100ms
            [   100ms] spawn w.1#2 pid 105
        "#]],
    );
}

#[test]
fn instances_under_rest_for_one_stop_as_a_batch() {
    check(
        &with_instances("rest_for_one"),
        "exit w.0 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn w.0#1 pid 101
            [     0ms] spawn w.1#1 pid 102
            [     0ms] spawn w.2#1 pid 103
            [     0ms] spawn z#1 pid 104
            [     0ms] w.0#1 ended: exit 1, abnormal
            [     0ms] restart w.0 after 100ms
            [     0ms] signal z#1 pid 104 sig 15
            [     0ms] z#1 ended: signal 15, stopped
            [     0ms] signal w.1#1 pid 102 sig 15
            [     0ms] signal w.2#1 pid 103 sig 15
            [     0ms] w.1#1 ended: signal 15, stopped
            [     0ms] w.2#1 ended: signal 15, stopped
            [   100ms] spawn w.0#2 pid 105
            [   100ms] spawn w.1#2 pid 106
            [   100ms] spawn w.2#2 pid 107
            [   100ms] spawn z#2 pid 108
        "#]],
    );
}

#[test]
fn instances_under_one_for_all_restart_everything() {
    let mut sim = Sim::new(&spec(&with_instances("one_for_all")));
    sim.run_script("exit w.2 1\nadvance 1s").unwrap();
    assert!(sim.violations.is_empty());
    for name in ["a", "w.0", "w.1", "w.2", "z"] {
        let view = sim.supervisor.view(sim.service_id(name).unwrap()).unwrap();
        assert_eq!(
            (view.state, view.generation),
            ("running", 2),
            "{name}\n{}",
            sim.transcript
        );
    }
}

#[test]
fn operator_addresses_all_instances_by_base_name() {
    let mut sim = Sim::new(&spec(&with_instances("one_for_one")));
    sim.run_script("stop w").unwrap();
    for name in ["w.0", "w.1", "w.2"] {
        assert_eq!(
            sim.supervisor
                .view(sim.service_id(name).unwrap())
                .unwrap()
                .state,
            "stopped"
        );
    }
    assert_eq!(
        sim.supervisor
            .view(sim.service_id("z").unwrap())
            .unwrap()
            .state,
        "running"
    );
}

// ----- shutdown -----------------------------------------------------------------------

#[test]
fn shutdown_while_a_child_is_in_backoff() {
    check(
        &format!(
            "[service.a]\ncommand = \"x\"\nbackoff = {{ initial = \"5s\", jitter = 0.0 }}\n[service.b]\ncommand = \"x\"\n{FAST}\n"
        ),
        "exit a 1\nadvance 1s\nshutdown\nadvance 10s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 5000ms
            [  1000ms] > shutdown
            [  1000ms] shutting down: Requested
            [  1000ms] announce Stopping
            [  1000ms] signal b#1 pid 101 sig 15
            [  1000ms] b#1 ended: signal 15, stopped
            [  1000ms] exit 0
        "#]],
    );
}

#[test]
fn shutdown_while_a_child_is_starting_signals_it_once_spawned() {
    let mut supervisor = Supervisor::new(&spec("[service.a]\ncommand = \"x\"\n"), 1);
    let effects = supervisor.boot(Time::ZERO);
    let child = ChildRef {
        id: ServiceId(0),
        generation: 1,
    };
    assert_eq!(effects, vec![Effect::Spawn { child }]);
    let effects = supervisor.handle(Event::Shutdown, Time::ZERO);
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Exit { .. } | Effect::Signal { .. })),
        "{effects:?}"
    );
    let effects = supervisor.handle(Event::Spawned { child, pid: 42 }, Time::ZERO);
    assert!(
        effects.contains(&Effect::Signal {
            child,
            pid: 42,
            signal: minder_core::spec::SIGTERM
        }),
        "{effects:?}"
    );
    let effects = supervisor.handle(
        Event::Exited {
            child,
            status: ExitStatus::Signaled(15),
        },
        Time::ZERO,
    );
    assert_eq!(effects.last(), Some(&Effect::Exit { code: 0 }));
}

#[test]
fn shutdown_while_a_child_is_waiting_for_an_earlier_sibling_never_starts_it() {
    check(
        &format!(
            "[service.setup]\ncommand = \"x\"\noneshot = true\n{FAST}\n[service.app]\ncommand = \"x\"\n{FAST}\n"
        ),
        "shutdown",
        expect![[r#"
            [     0ms] spawn setup#1 pid 100
            [     0ms] > shutdown
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal setup#1 pid 100 sig 15
            [     0ms] setup#1 ended: signal 15, stopped
            [     0ms] exit 0
        "#]],
    );
}

#[test]
fn shutdown_while_a_child_is_already_stopping_waits_for_it() {
    check(
        &format!(
            "[root]\nstrategy = \"one_for_all\"\n[service.a]\ncommand = \"x\"\nstop_timeout = \"3s\"\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n"
        ),
        "stubborn a\nexit b 1\nadvance 1s\nshutdown\nadvance 5s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] restart b after 100ms
            [     0ms] signal a#1 pid 100 sig 15
            [  1000ms] > shutdown
            [  1000ms] shutting down: Requested
            [  1000ms] announce Stopping
            [  2000ms] still stopping: a 2000ms, kill at 3000ms
            [  3000ms] a#1 did not stop in time
            [  3000ms] kill a#1 pid 100
            [  3000ms] still stopping: a 3000ms, killed
            [  3000ms] a#1 ended: signal 9, stopped
            [  3000ms] slow stops: a 3000ms killed
            [  3000ms] exit 0
        "#]],
    );
}

#[test]
fn a_second_shutdown_kills_everything_at_once() {
    check(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n"),
        "stubborn a\nstubborn b\nshutdown\nadvance 1s\nshutdown",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] > shutdown
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal b#1 pid 101 sig 15
            [  1000ms] still stopping: b 1000ms, kill at 10000ms
            [  1000ms] > shutdown
            [  1000ms] shutting down: Forced
            [  1000ms] kill a#1 pid 100
            [  1000ms] kill b#1 pid 101
            [  1000ms] slow stops: a 0ms killed; b 1000ms killed
            [  1000ms] exit 0
        "#]],
    );
}

#[test]
fn shutdown_timeout_bounds_the_whole_shutdown() {
    check(
        &format!(
            "[daemon]\nshutdown_timeout = \"5s\"\n[service.a]\ncommand = \"x\"\nstop_timeout = \"4s\"\n{FAST}\n[service.b]\ncommand = \"x\"\nstop_timeout = \"4s\"\n{FAST}\n"
        ),
        "stubborn a\nstubborn b\nshutdown\nadvance 10s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] > shutdown
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal b#1 pid 101 sig 15
            [  1000ms] still stopping: b 1000ms, kill at 4000ms
            [  2000ms] still stopping: b 2000ms, kill at 4000ms
            [  3000ms] still stopping: b 3000ms, kill at 4000ms
            [  4000ms] b#1 did not stop in time
            [  4000ms] kill b#1 pid 101
            [  4000ms] still stopping: b 4000ms, killed
            [  4000ms] b#1 ended: signal 9, stopped
            [  4000ms] signal a#1 pid 100 sig 15
            [  5000ms] shutting down: TimedOut
            [  5000ms] kill a#1 pid 100
            [  5000ms] slow stops: b 4000ms killed; a 1000ms killed
            [  5000ms] exit 0
        "#]],
    );
}

#[test]
fn a_stale_exit_of_an_old_generation_is_ignored() {
    check(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n"),
        "exit a 1\nadvance 1s\nstale a 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 100ms
            [   100ms] spawn a#2 pid 101
            [  1000ms] (stale exit of a#1)
        "#]],
    );
}

// ----- significant, spawn failures, operator --------------------------------------------

#[test]
fn any_significant_exits_with_the_triggering_code() {
    check(
        &format!(
            "[root]\nauto_shutdown = \"any_significant\"\n[service.side]\ncommand = \"x\"\n{FAST}\n\
             [service.main]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n"
        ),
        "exit main 42",
        expect![[r#"
            [     0ms] spawn side#1 pid 100
            [     0ms] spawn main#1 pid 101
            [     0ms] main#1 ended: exit 42, abnormal
            [     0ms] shutting down: Significant { id: ServiceId(1), code: 42 }
            [     0ms] announce Stopping
            [     0ms] signal side#1 pid 100 sig 15
            [     0ms] side#1 ended: signal 15, stopped
            [     0ms] exit 42
        "#]],
    );
}

#[test]
fn all_significant_waits_for_the_last_one_and_uses_its_code() {
    let toml = "[root]\nauto_shutdown = \"all_significant\"\n\
                [service.a]\ncommand = \"x\"\nrestart = \"transient\"\nsignificant = true\n\
                [service.b]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n";
    let mut sim = Sim::new(&spec(toml));
    sim.run_script("exit a 0\ncrash b 9").unwrap();
    assert_eq!(sim.exit_code, Some(137), "{}", sim.transcript);
}

#[test]
fn a_significant_transient_that_fails_is_restarted_not_shut_down() {
    let toml = "[root]\nauto_shutdown = \"any_significant\"\n\
                [service.a]\ncommand = \"x\"\nrestart = \"transient\"\nsignificant = true\n";
    let mut sim = Sim::new(&spec(toml));
    sim.run_script("exit a 1\nadvance 1s").unwrap();
    assert_eq!(sim.exit_code, None);
    sim.run_script("exit a 0").unwrap();
    assert_eq!(sim.exit_code, Some(0));
}

/// A sidecar and a significant `main`, as `minder run CONFIG -- cmd` builds them.
fn sidecar_and_main() -> String {
    format!(
        "[root]\nauto_shutdown = \"any_significant\"\n[service.side]\ncommand = \"x\"\n{FAST}\n\
         [service.main]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n"
    )
}

#[test]
fn regression_a_requested_shutdown_exited_0_although_the_significant_main_exited_7() {
    // Issue 7: container mode returns the main process's code after SIGTERM; `run
    // CONFIG -- cmd` returned 0. The main service answers its stop signal with 7.
    check(
        &sidecar_and_main(),
        "stubborn main\nshutdown\nexit main 7",
        expect![[r#"
            [     0ms] spawn side#1 pid 100
            [     0ms] spawn main#1 pid 101
            [     0ms] > shutdown
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal main#1 pid 101 sig 15
            [     0ms] main#1 ended: exit 7, stopped
            [     0ms] signal side#1 pid 100 sig 15
            [     0ms] side#1 ended: signal 15, stopped
            [     0ms] exit 7
        "#]],
    );
}

#[test]
fn a_requested_shutdown_exits_128_plus_the_signal_that_ended_the_significant_main() {
    let mut sim = Sim::new(&spec(&sidecar_and_main()));
    sim.run_script("shutdown").unwrap();
    assert_eq!(sim.exit_code, Some(128 + 15), "{}", sim.transcript);
    // Killed after its stop_timeout: 128 + SIGKILL.
    let mut sim = Sim::new(&spec(&sidecar_and_main()));
    sim.run_script("stubborn main\nshutdown\nadvance 11s")
        .unwrap();
    assert_eq!(sim.exit_code, Some(128 + 9), "{}", sim.transcript);
    // Killed at once by a second request: the same.
    let mut sim = Sim::new(&spec(&sidecar_and_main()));
    sim.run_script("stubborn main\nshutdown\nshutdown").unwrap();
    assert_eq!(sim.exit_code, Some(128 + 9), "{}", sim.transcript);
}

#[test]
fn a_requested_shutdown_takes_the_code_of_the_significant_end_auto_shutdown_would_take() {
    // a and b are both significant; the shutdown stops b first (reverse order), then a.
    // Under any_significant the first end decides, under all_significant the last.
    let mut table = String::new();
    for policy in ["any_significant", "all_significant"] {
        let toml = format!(
            "[root]\nauto_shutdown = \"{policy}\"\n\
             [service.a]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n\
             [service.b]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n"
        );
        let mut sim = Sim::new(&spec(&toml));
        sim.run_script("stubborn a\nstubborn b\nshutdown\nexit b 5\nexit a 6")
            .unwrap();
        assert!(sim.violations.is_empty(), "{:?}", sim.violations);
        table.push_str(&format!("{policy}: exit {:?}\n", sim.exit_code));
    }
    expect![[r#"
        any_significant: exit Some(5)
        all_significant: exit Some(6)
    "#]]
    .assert_eq(&table);
}

#[test]
fn a_shutdown_auto_shutdown_started_keeps_the_triggering_code() {
    // b's end triggers the shutdown with 3; a, also significant, then dies of its stop
    // signal, which changes nothing. A spent root budget keeps 3 the same way.
    let toml = "[root]\nauto_shutdown = \"any_significant\"\n\
                [service.a]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n\
                [service.b]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n";
    let mut sim = Sim::new(&spec(toml));
    sim.run_script("exit b 3").unwrap();
    assert_eq!(sim.exit_code, Some(3), "{}", sim.transcript);
    assert!(sim.transcript.contains("a#1 ended: signal 15, stopped"));
}

#[test]
fn a_requested_shutdown_of_a_tree_without_significant_services_exits_0() {
    let mut sim = Sim::new(&spec(&format!("[service.a]\ncommand = \"x\"\n{FAST}\n")));
    sim.run_script("stubborn a\nshutdown\nexit a 7").unwrap();
    assert_eq!(sim.exit_code, Some(0), "{}", sim.transcript);
}

#[test]
fn a_temporary_significant_service_that_cannot_start_exits_127() {
    let toml = "[root]\nauto_shutdown = \"any_significant\"\n[service.main]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n";
    let mut supervisor = Supervisor::new(&spec(toml), 1);
    let child = ChildRef {
        id: ServiceId(0),
        generation: 1,
    };
    assert_eq!(supervisor.boot(Time::ZERO), vec![Effect::Spawn { child }]);
    let effects = supervisor.handle(
        Event::SpawnFailed {
            child,
            code: 127,
            reason: "not found".into(),
        },
        Time::ZERO,
    );
    assert_eq!(effects.last(), Some(&Effect::Exit { code: 127 }));
}

#[test]
fn spawn_failures_are_retried_under_backoff_and_counted() {
    check(
        &format!("[root]\nintensity = 2\n[service.a]\ncommand = \"x\"\n{FAST}\n"),
        "spawnfail a on\ncrash a 9\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] a#1 ended: signal 9, abnormal
            [     0ms] restart a after 100ms
            [   100ms] spawn a#2 failed
            [   100ms] restart a after 200ms
            [   300ms] spawn a#3 failed
            [   300ms] group root gave up: 3 restarts in 30000ms > intensity 2
            [   300ms] shutting down: RootFailed
            [   300ms] announce Stopping
            [   300ms] exit 3
        "#]],
    );
}

#[test]
fn operator_stop_holds_and_counts_as_ready_then_start_resumes() {
    check(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n"),
        "stop a\nexit b 1\nadvance 1s\nstart a\nrestart b",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] > stop a
            [     0ms] signal a#1 pid 100 sig 15
            [     0ms] a#1 ended: signal 15, stopped
            [     0ms] b#1 ended: exit 1, abnormal
            [     0ms] restart b after 100ms
            [   100ms] spawn b#2 pid 102
            [  1000ms] > start a
            [  1000ms] spawn a#2 pid 103
            [  1000ms] > restart b
            [  1000ms] signal b#2 pid 102 sig 15
            [  1000ms] b#2 ended: signal 15, stopped
            [  1000ms] spawn b#3 pid 104
        "#]],
    );
}

// ----- groups as OTP children -------------------------------------------------------------

/// A root with a group `job` (auto_shutdown any_significant, restart `restart`) of a
/// significant transient `task` and a `helper`, and a sibling `side` of the group.
fn job_group(restart: &str) -> String {
    format!(
        "[group.job]\nchildren = [\"task\", \"helper\"]\nauto_shutdown = \"any_significant\"\nrestart = \"{restart}\"\n\
         [service.task]\ncommand = \"x\"\nrestart = \"transient\"\nsignificant = true\n{FAST}\n\
         [service.helper]\ncommand = \"x\"\n{FAST}\n\
         [service.side]\ncommand = \"x\"\n{FAST}\n"
    )
}

/// The group ends when its significant task ends: its helper is stopped, `side` is
/// untouched, and the root leaves a transient group down (it ended normally).
#[test]
fn a_transient_group_with_auto_shutdown_ends_and_stays_down() {
    check(
        &job_group("transient"),
        "exit task 0\nadvance 1s",
        expect![[r#"
            [     0ms] spawn task#1 pid 100
            [     0ms] spawn helper#1 pid 101
            [     0ms] spawn side#1 pid 102
            [     0ms] task#1 ended: exit 0, normal
            [     0ms] group job shuts itself down: significant task ended
            [     0ms] signal helper#1 pid 101 sig 15
            [     0ms] helper#1 ended: signal 15, stopped
            [     0ms] group job ended (Normal), stays down (Transient)
        "#]],
    );
}

/// A permanent group that shuts itself down is restarted at once by its parent, as
/// a fresh supervisor: both of its children start again. It counts against the
/// parent's budget.
#[test]
fn a_permanent_group_with_auto_shutdown_is_restarted_by_its_parent() {
    check(
        &job_group("permanent"),
        "exit task 0\nadvance 1s",
        expect![[r#"
            [     0ms] spawn task#1 pid 100
            [     0ms] spawn helper#1 pid 101
            [     0ms] spawn side#1 pid 102
            [     0ms] task#1 ended: exit 0, normal
            [     0ms] group job shuts itself down: significant task ended
            [     0ms] signal helper#1 pid 101 sig 15
            [     0ms] helper#1 ended: signal 15, stopped
            [     0ms] root restarts group job
            [     0ms] spawn task#2 pid 103
            [     0ms] spawn helper#2 pid 104
        "#]],
    );
}

/// A transient group that gives up (an abnormal end) is restarted; a temporary one
/// stays down.
#[test]
fn a_group_that_gives_up_is_restarted_by_its_restart_type() {
    let tree = |restart: &str| {
        format!(
            "[group.g]\nchildren = [\"a\"]\nintensity = 0\nrestart = \"{restart}\"\n\
             [service.a]\ncommand = \"x\"\n{FAST}\n\
             [service.b]\ncommand = \"x\"\n{FAST}\n"
        )
    };
    check(
        &tree("transient"),
        "exit a 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] group g gave up: 1 restarts in 30000ms > intensity 0
            [     0ms] root restarts group g
            [     0ms] spawn a#2 pid 102
        "#]],
    );
    check(
        &tree("temporary"),
        "exit a 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] group g gave up: 1 restarts in 30000ms > intensity 0
            [     0ms] group g ended (Abnormal), stays down (Temporary)
        "#]],
    );
}

/// A significant group that ends for good fires its parent's auto_shutdown: under the
/// root the whole tree stops, and minder exits with the code of the end that shut the
/// group down.
#[test]
fn a_significant_group_ending_shuts_the_root_down_with_its_code() {
    check(
        &format!(
            "[root]\nauto_shutdown = \"any_significant\"\n\
             [group.job]\nchildren = [\"task\"]\nauto_shutdown = \"any_significant\"\nrestart = \"temporary\"\nsignificant = true\n\
             [service.task]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n{FAST}\n\
             [service.side]\ncommand = \"x\"\n{FAST}\n"
        ),
        "exit task 4\nadvance 1s",
        expect![[r#"
            [     0ms] spawn task#1 pid 100
            [     0ms] spawn side#1 pid 101
            [     0ms] task#1 ended: exit 4, abnormal
            [     0ms] group job shuts itself down: significant task ended
            [     0ms] group job ended (Normal), stays down (Temporary)
            [     0ms] shutting down: SignificantGroup { group: NodeId(1), code: 4 }
            [     0ms] announce Stopping
            [     0ms] signal side#1 pid 101 sig 15
            [     0ms] side#1 ended: signal 15, stopped
            [     0ms] exit 4
        "#]],
    );
}

/// `all_significant` on a group waits for every significant child of that group.
#[test]
fn all_significant_on_a_group_waits_for_each_significant_child() {
    check(
        &format!(
            "[group.job]\nchildren = [\"t1\", \"t2\", \"h\"]\nauto_shutdown = \"all_significant\"\nrestart = \"temporary\"\n\
             [service.t1]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n{FAST}\n\
             [service.t2]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n{FAST}\n\
             [service.h]\ncommand = \"x\"\n{FAST}\n"
        ),
        "exit t1 0\nadvance 1s\nexit t2 0\nadvance 1s",
        expect![[r#"
            [     0ms] spawn t1#1 pid 100
            [     0ms] spawn t2#1 pid 101
            [     0ms] spawn h#1 pid 102
            [     0ms] t1#1 ended: exit 0, normal
            [  1000ms] t2#1 ended: exit 0, normal
            [  1000ms] group job shuts itself down: significant t2 ended
            [  1000ms] signal h#1 pid 102 sig 15
            [  1000ms] h#1 ended: signal 15, stopped
            [  1000ms] group job ended (Normal), stays down (Temporary)
        "#]],
    );
}

/// An operator can start a group that ended for good again.
#[test]
fn an_operator_starts_a_group_that_ended_for_good() {
    check(
        &job_group("transient"),
        "exit task 0\nadvance 1s\nstart job\nadvance 1s",
        expect![[r#"
            [     0ms] spawn task#1 pid 100
            [     0ms] spawn helper#1 pid 101
            [     0ms] spawn side#1 pid 102
            [     0ms] task#1 ended: exit 0, normal
            [     0ms] group job shuts itself down: significant task ended
            [     0ms] signal helper#1 pid 101 sig 15
            [     0ms] helper#1 ended: signal 15, stopped
            [     0ms] group job ended (Normal), stays down (Transient)
            [  1000ms] > start job
            [  1000ms] spawn task#2 pid 103
            [  1000ms] spawn helper#2 pid 104
        "#]],
    );
}

/// A group that ended for good comes back when a one_for_all restart set of its parent
/// holds it, unless it is temporary (as for services, OTP).
#[test]
fn a_done_group_comes_back_with_a_restart_set_unless_temporary() {
    let tree = |restart: &str| {
        format!(
            "[root]\nstrategy = \"one_for_all\"\n\
             [group.job]\nchildren = [\"task\"]\nauto_shutdown = \"any_significant\"\nrestart = \"{restart}\"\n\
             [service.task]\ncommand = \"x\"\nrestart = \"transient\"\nsignificant = true\n{FAST}\n\
             [service.side]\ncommand = \"x\"\n{FAST}\n"
        )
    };
    check(
        &tree("transient"),
        "exit task 0\nadvance 1s\nexit side 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn task#1 pid 100
            [     0ms] spawn side#1 pid 101
            [     0ms] task#1 ended: exit 0, normal
            [     0ms] group job shuts itself down: significant task ended
            [     0ms] group job ended (Normal), stays down (Transient)
            [  1000ms] side#1 ended: exit 1, abnormal
            [  1000ms] restart side after 100ms
            [  1100ms] spawn task#2 pid 102
            [  1100ms] spawn side#2 pid 103
        "#]],
    );
    check(
        &tree("temporary"),
        "exit task 0\nadvance 1s\nexit side 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn task#1 pid 100
            [     0ms] spawn side#1 pid 101
            [     0ms] task#1 ended: exit 0, normal
            [     0ms] group job shuts itself down: significant task ended
            [     0ms] group job ended (Normal), stays down (Temporary)
            [  1000ms] side#1 ended: exit 1, abnormal
            [  1000ms] restart side after 100ms
            [  1100ms] spawn side#2 pid 102
        "#]],
    );
}

// ----- invariants -------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Action {
    Exit(usize, i32),
    /// Two processes that end at the same instant, fed together.
    ExitTogether(usize, usize),
    Crash(usize, i32),
    Advance(u64),
    Fail(usize),
    Stop(usize),
    Start(usize),
    Restart(usize),
    SpawnFail(usize, bool),
    Stubborn(usize),
    Stale(usize),
    Probe(usize, bool, bool),
    Ping(usize),
    /// A result of a probe the core has cancelled.
    Late(usize, bool, bool),
    /// A signal to minder (HUP, INT, QUIT, USR1, USR2, TERM or WINCH).
    Receive(i32),
    /// A reload to one of the trees of `tree_version`, naming one service (an index
    /// into `NAMES`) for a restart, or none (an index past its end).
    Reload(usize, usize),
}

/// The signals minder listens to.
const SIGNALS: [i32; 7] = [1, 2, 3, 10, 12, 15, 28];

const NAMES: [&str; 9] = ["a", "b", "w.0", "w.1", "c", "d", "e", "f", "w.2"];
const NODES: [&str; 9] = ["a", "b", "w", "c", "d", "g", "h", "e", "f"];

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (0..NAMES.len(), prop_oneof![Just(0), Just(1), Just(3)])
            .prop_map(|(n, c)| Action::Exit(n, c)),
        (0..NAMES.len(), 0..NAMES.len()).prop_map(|(n, m)| Action::ExitTogether(n, m)),
        // SIGSEGV is a failure; SIGTERM from outside a normal end (`success_signals`).
        (0..NAMES.len(), prop_oneof![Just(11), Just(15)]).prop_map(|(n, s)| Action::Crash(n, s)),
        (0u64..3000).prop_map(Action::Advance),
        (0..NAMES.len()).prop_map(Action::Fail),
        (0..NODES.len()).prop_map(Action::Stop),
        (0..NODES.len()).prop_map(Action::Start),
        (0..NODES.len()).prop_map(Action::Restart),
        (0..NAMES.len(), any::<bool>()).prop_map(|(n, on)| Action::SpawnFail(n, on)),
        (0..NAMES.len()).prop_map(Action::Stubborn),
        (0..NAMES.len()).prop_map(Action::Stale),
        (0..NAMES.len(), any::<bool>(), any::<bool>()).prop_map(|(n, r, p)| Action::Probe(n, r, p)),
        (0..NAMES.len()).prop_map(Action::Ping),
        (0..NAMES.len(), any::<bool>(), any::<bool>()).prop_map(|(n, r, p)| Action::Late(n, r, p)),
        (0..SIGNALS.len()).prop_map(|n| Action::Receive(SIGNALS[n])),
        (0..3usize, 0..NAMES.len() + 2).prop_map(|(v, n)| Action::Reload(v, n)),
    ]
}

/// The trees the property test reloads between. Version 0 is `random_tree`; version
/// 1 removes `d`, adds `e` first under the root, turns the oneshot `a` into a
/// long-running service, grows `w` to three instances, adds `f` to `h` and changes
/// `g`'s strategy; version 2 moves `c` from `h` to the root, leaves `h` with `f`
/// alone, drops the groups' OTP settings and lowers both budgets.
fn tree_version(strategies: (usize, usize, usize), groups: usize, version: usize) -> String {
    let names = ["one_for_one", "one_for_all", "rest_for_one"];
    match version {
        1 => random_tree(strategies, groups)
            .replace(
                "children = [\"a\", \"g\", \"d\"]",
                "children = [\"e\", \"a\", \"g\"]",
            )
            .replace("children = [\"c\"]", "children = [\"c\", \"f\"]")
            .replace("instances = 2", "instances = 3")
            .replace(
                "[service.a]\ncommand = \"x\"\noneshot = true\n",
                "[service.a]\ncommand = \"x\"\n",
            )
            .replace(
                &format!("[group.g]\nstrategy = \"{}\"", names[strategies.1]),
                &format!(
                    "[group.g]\nstrategy = \"{}\"",
                    names[(strategies.1 + 1) % 3]
                ),
            )
            .replace(
                "[service.d]\ncommand = \"x\"\n",
                "[service.e]\ncommand = \"x\"\nstop_timeout = \"1s\"\n\
                 [service.f]\ncommand = \"x\"\nrestart = \"temporary\"\n",
            ),
        2 => random_tree(strategies, 0)
            .replace(
                "children = [\"a\", \"g\", \"d\"]",
                "children = [\"a\", \"g\", \"d\", \"c\"]",
            )
            .replace("children = [\"c\"]", "children = [\"f\"]")
            .replace("intensity = 4", "intensity = 2")
            .replace(
                "intensity = 2\nperiod = \"3s\"",
                "intensity = 1\nperiod = \"3s\"",
            )
            .replace(
                "[service.d]\n",
                "[service.f]\ncommand = \"x\"\nstop_timeout = \"1s\"\n[service.d]\n",
            ),
        _ => random_tree(strategies, groups),
    }
}

/// `groups` picks how the inner groups act as OTP children: 0 as plain groups; 1 `h`
/// shuts itself down when `c` ends and is transient; 2 `g` does when `b` or `h` ends
/// (all_significant), `h` is a significant temporary group; 3 `h` is permanent with
/// auto_shutdown (restarted each time it ends).
fn random_tree(strategies: (usize, usize, usize), groups: usize) -> String {
    let names = ["one_for_one", "one_for_all", "rest_for_one"];
    let (g_extra, h_extra, b_extra, c_extra) = match groups {
        1 => (
            "",
            "auto_shutdown = \"any_significant\"\nrestart = \"transient\"\n",
            "",
            "significant = true\n",
        ),
        2 => (
            "auto_shutdown = \"all_significant\"\nrestart = \"transient\"\n",
            "auto_shutdown = \"any_significant\"\nrestart = \"temporary\"\nsignificant = true\n",
            "significant = true\n",
            "significant = true\n",
        ),
        3 => (
            "",
            "auto_shutdown = \"any_significant\"\n",
            "",
            "significant = true\n",
        ),
        _ => ("", "", "", ""),
    };
    format!(
        "[root]\nstrategy = \"{}\"\nintensity = 4\nperiod = \"5s\"\nchildren = [\"a\", \"g\", \"d\"]\n\
         [group.g]\nstrategy = \"{}\"\nintensity = 2\nperiod = \"3s\"\nchildren = [\"b\", \"w\", \"h\"]\n{g_extra}\
         [group.h]\nstrategy = \"{}\"\nintensity = 1\nperiod = \"2s\"\nchildren = [\"c\"]\n{h_extra}\
         [service.a]\ncommand = \"x\"\noneshot = true\nstop_timeout = \"1s\"\n{FAST}\n\
         [service.b]\ncommand = \"x\"\nrestart = \"transient\"\nstop_timeout = \"1s\"\n{b_extra}{FAST}\n\
         [service.w]\ncommand = \"x\"\ninstances = 2\nstop_timeout = \"1s\"\n{FAST}\n\
         [service.c]\ncommand = \"x\"\nrestart = \"temporary\"\nstop_timeout = \"1s\"\n{c_extra}{FAST}\n\
         [service.d]\ncommand = \"x\"\nstop_timeout = \"1s\"\n{FAST}\n",
        names[strategies.0], names[strategies.1], names[strategies.2]
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// For any sequence of events, reloads between three trees included: never two
    /// live processes for one child, the budget never exceeds intensity without
    /// escalation, no deadline lies in the past, no probe outlives its timeout
    /// unanswered or uncancelled, a service a reload removed never spawns again, and
    /// a shutdown always ends with every spawned process stopped and one exit.
    #[test]
    fn invariants_hold_for_random_event_sequences(
        strategies in (0..3usize, 0..3usize, 0..3usize),
        groups in 0..4usize,
        drain in 0..3u64,
        actions in proptest::collection::vec(action(), 0..60),
    ) {
        // `b` and `w` have readiness probes, `d` a notify check with a watchdog, `b` and
        // `d` health probes: every kind of check is in play.
        // A drain (none, 0.7 s, 2 s) lets every event happen between a request and
        // the orderly shutdown too; every tree a reload brings keeps the same drain.
        let drained = |tree: String| {
            format!("[daemon]\ndrain_delay = \"{}ms\"\n{tree}", [0, 700, 2000][drain as usize])
        };
        let checks = |service: &mut minder::spec::ServiceSpec| {
            let mut health = HealthSpec::new(Some(tcp()));
            health.interval = Duration::from_millis(700);
            health.failures = 2;
            match service.base_name.as_str() {
                "b" | "w" => service.ready = Some(ReadySpec::new(ReadyCheck::Probe(tcp()))),
                "d" => {
                    service.ready = Some(ReadySpec::new(ReadyCheck::Notify));
                    service.watchdog = Some(Duration::from_secs(2));
                }
                _ => {}
            }
            if matches!(service.base_name.as_str(), "b" | "d") {
                service.health = Some(health);
            }
        };
        let spec = with_checks(&drained(random_tree(strategies, groups)), checks);
        let mut sim = Sim::new(&spec);
        for version in 0..3 {
            let tree = tree_version(strategies, groups, version);
            sim.define(&format!("v{version}"), with_checks(&drained(tree), checks));
        }
        // The version of the tree that runs: a reload to it, naming nothing, must
        // change nothing at all.
        let mut current = 0;
        for action in actions {
            if sim.exit_code.is_some() {
                break;
            }
            let line = match action {
                Action::Exit(n, code) => format!("exit {} {code}", NAMES[n]),
                Action::ExitTogether(n, m) => format!("exit {} 1 {} 15", NAMES[n], NAMES[m]),
                Action::Crash(n, signal) => format!("crash {} {signal}", NAMES[n]),
                Action::Advance(ms) => format!("advance {ms}ms"),
                Action::Fail(n) => format!("fail {} health", NAMES[n]),
                Action::Stop(n) => format!("stop {}", NODES[n]),
                Action::Start(n) => format!("start {}", NODES[n]),
                Action::Restart(n) => format!("restart {}", NODES[n]),
                Action::SpawnFail(n, on) => format!("spawnfail {} {}", NAMES[n], if on { "on" } else { "off" }),
                Action::Stubborn(n) => format!("stubborn {}", NAMES[n]),
                Action::Stale(n) => format!("stale {} 1", NAMES[n]),
                Action::Probe(n, ready, pass) => format!(
                    "probe {} {} {}",
                    NAMES[n],
                    if ready { "ready" } else { "health" },
                    if pass { "pass" } else { "fail" }
                ),
                Action::Ping(n) => format!("ping {}", NAMES[n]),
                Action::Late(n, ready, pass) => format!(
                    "late {} {} {}",
                    NAMES[n],
                    if ready { "ready" } else { "health" },
                    if pass { "pass" } else { "fail" }
                ),
                Action::Receive(signal) => format!("receive {signal}"),
                Action::Reload(version, n) => {
                    format!("reload v{version} {}", NAMES.get(n).copied().unwrap_or(""))
                }
            };
            let before = sim.transcript.len();
            // Exits of services with no live process are not events that can happen.
            let _ = sim.step(&line);
            prop_assert!(sim.violations.is_empty(), "{:?}\n{}", sim.violations, sim.transcript);
            if let Action::Reload(version, n) = action {
                let said = &sim.transcript[before..];
                if !said.contains("reload refused") {
                    if version == current && n >= NAMES.len() {
                        let nothing = "reloaded: added [] removed [] restarted [] groups updated []";
                        prop_assert!(
                            said.lines().count() == 2 && said.contains(nothing),
                            "a reload to the running tree did something:\n{said}\n{}",
                            sim.transcript
                        );
                    }
                    current = version;
                }
            }
        }
        if sim.exit_code.is_none() {
            sim.step("shutdown").unwrap();
            // Bounded: every stop_timeout is 1s and shutdown_timeout is 30s.
            sim.advance(Duration::from_secs(31));
        }
        prop_assert!(sim.exit_code.is_some(), "no exit after shutdown\n{}", sim.transcript);
        prop_assert_eq!(sim.live_count(), 0);
        prop_assert!(sim.violations.is_empty(), "{:?}\n{}", sim.violations, sim.transcript);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Container mode, driven by nothing but signals, the command's whims and the
    /// core's one deadline: every signal is forwarded, never more than one process
    /// lives, and once a TERM has been forwarded minder exits within the command's
    /// stop_timeout even if the command ignores it.
    #[test]
    fn container_mode_always_ends_after_a_forwarded_term(
        actions in proptest::collection::vec(container_action(), 0..30),
    ) {
        let mut sim = Sim::new(&container());
        for action in actions {
            if sim.exit_code.is_some() {
                break;
            }
            let line = match action {
                ContainerAction::Receive(signal) => format!("receive {signal}"),
                ContainerAction::Advance(ms) => format!("advance {ms}ms"),
                ContainerAction::Stubborn => "stubborn main".to_string(),
                ContainerAction::Exit(code) => format!("exit main {code}"),
            };
            let _ = sim.step(&line);
            prop_assert!(sim.violations.is_empty(), "{:?}\n{}", sim.violations, sim.transcript);
        }
        if sim.exit_code.is_none() {
            sim.step("receive 15").unwrap();
            sim.advance(Duration::from_secs(8));
        }
        prop_assert!(sim.exit_code.is_some(), "no exit after TERM\n{}", sim.transcript);
        prop_assert_eq!(sim.live_count(), 0);
        prop_assert!(sim.violations.is_empty(), "{:?}\n{}", sim.violations, sim.transcript);
    }
}

#[derive(Clone, Debug)]
enum ContainerAction {
    Receive(i32),
    Advance(u64),
    Stubborn,
    Exit(i32),
}

fn container_action() -> impl Strategy<Value = ContainerAction> {
    prop_oneof![
        (0..SIGNALS.len()).prop_map(|n| ContainerAction::Receive(SIGNALS[n])),
        (0u64..10_000).prop_map(ContainerAction::Advance),
        Just(ContainerAction::Stubborn),
        prop_oneof![Just(0), Just(3)].prop_map(ContainerAction::Exit),
    ]
}

// ----- readiness, liveness, watchdog, memory ------------------------------------------

use minder::spec::{HealthSpec, Probe, ReadyCheck, ReadySpec};

/// A spec from `toml` with checks set on named services (the keys are validated by the
/// config's own tests; here only the core's judgement is under test), lowered to the
/// core's spec.
fn with_checks(
    toml: &str,
    set: impl Fn(&mut minder::spec::ServiceSpec),
) -> minder_core::spec::Spec {
    fn visit(group: &mut minder::spec::GroupSpec, set: &dyn Fn(&mut minder::spec::ServiceSpec)) {
        for child in &mut group.children {
            match child {
                minder::spec::NodeSpec::Service(service) => set(service),
                minder::spec::NodeSpec::Group(inner) => visit(inner, set),
            }
        }
    }
    let mut spec = full_spec(toml);
    visit(&mut spec.root, &set);
    minder::spec::lower(&spec).0
}

fn tcp() -> Probe {
    Probe::Tcp {
        address: "127.0.0.1:1".into(),
    }
}

fn run(spec: &minder_core::spec::Spec, script: &str, expected: Expect) {
    let mut sim = Sim::new(spec);
    if let Err(error) = sim.run_script(script) {
        panic!("{error}\ntranscript so far:\n{}", sim.transcript);
    }
    assert!(
        sim.violations.is_empty(),
        "{:?}\n{}",
        sim.violations,
        sim.transcript
    );
    expected.assert_eq(&sim.transcript);
}

#[test]
fn ready_probe_gates_the_next_sibling_and_retries_at_its_interval() {
    let spec = with_checks(
        &format!("[service.db]\ncommand = \"x\"\n{FAST}\n[service.api]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            if service.name == "db" {
                let mut ready = ReadySpec::new(ReadyCheck::Probe(tcp()));
                ready.interval = Duration::from_millis(500);
                service.ready = Some(ready);
            }
        },
    );
    run(
        &spec,
        "probe db ready fail\nadvance 500ms\nprobe db ready pass",
        expect![[r#"
            [     0ms] spawn db#1 pid 100
            [     0ms] probe db#1 ready
            [   500ms] probe db#1 ready
            [   500ms] spawn api#1 pid 101
        "#]],
    );
}

#[test]
fn notify_readiness_comes_as_a_ready_event() {
    let spec = with_checks(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            if service.name == "a" {
                service.ready = Some(ReadySpec::new(ReadyCheck::Notify));
            }
        },
    );
    run(
        &spec,
        "advance 2s\nready a",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [  2000ms] spawn b#1 pid 101
        "#]],
    );
}

#[test]
fn missing_the_ready_deadline_is_a_failed_start_under_backoff_and_budget() {
    let spec = with_checks(
        &format!(
            "[root]\nintensity = 1\n[service.a]\ncommand = \"x\"\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n"
        ),
        |service| {
            if service.name == "a" {
                let mut ready = ReadySpec::new(ReadyCheck::Fd(3));
                ready.deadline = Duration::from_secs(2);
                service.ready = Some(ready);
            }
        },
    );
    run(
        &spec,
        "advance 5s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [  2000ms] a#1 condemned: ready_deadline
            [  2000ms] signal a#1 pid 100 sig 15
            [  2000ms] a#1 ended: signal 15, failure (ready_deadline)
            [  2000ms] restart a after 100ms
            [  2100ms] spawn a#2 pid 101
            [  4100ms] a#2 condemned: ready_deadline
            [  4100ms] signal a#2 pid 101 sig 15
            [  4100ms] a#2 ended: signal 15, failure (ready_deadline)
            [  4100ms] group root gave up: 2 restarts in 30000ms > intensity 1
            [  4100ms] shutting down: RootFailed
            [  4100ms] announce Stopping
            [  4100ms] exit 3
        "#]],
    );
}

#[test]
fn health_restarts_after_exactly_failures_consecutive_failures_not_in_start_period() {
    let spec = with_checks(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            let mut health = HealthSpec::new(Some(tcp()));
            health.interval = Duration::from_secs(1);
            health.start_period = Duration::from_millis(2500);
            health.failures = 2;
            service.health = Some(health);
        },
    );
    run(
        &spec,
        "advance 1s\nprobe a health fail\nadvance 1s\nprobe a health fail\n\
         advance 1s\nprobe a health fail\nadvance 1s\nprobe a health pass\n\
         advance 1s\nprobe a health fail\nadvance 1s\nprobe a health fail",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [  1000ms] probe a#1 health
            [  1000ms] a#1 health check failed (refused), 0 counted
            [  2000ms] probe a#1 health
            [  2000ms] a#1 health check failed (refused), 0 counted
            [  3000ms] probe a#1 health
            [  3000ms] a#1 health check failed (refused), 1 counted
            [  4000ms] probe a#1 health
            [  5000ms] probe a#1 health
            [  5000ms] a#1 health check failed (refused), 1 counted
            [  6000ms] probe a#1 health
            [  6000ms] a#1 health check failed (refused), 2 counted
            [  6000ms] a#1 condemned: health
            [  6000ms] signal a#1 pid 100 sig 15
            [  6000ms] a#1 ended: signal 15, failure (health)
            [  6000ms] restart a after 100ms
        "#]],
    );
}

#[test]
fn watchdog_is_armed_at_ready_fed_by_pings_and_honours_watchdog_usec() {
    let spec = with_checks(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            service.ready = Some(ReadySpec::new(ReadyCheck::Notify));
            service.watchdog = Some(Duration::from_secs(2));
        },
    );
    run(
        &spec,
        "advance 5s\nready a\nadvance 1500ms\nping a\nadvance 1500ms\nwatchdog a 1s\nadvance 3s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [  9000ms] a#1 condemned: watchdog
            [  9000ms] signal a#1 pid 100 sig 15
            [  9000ms] a#1 ended: signal 15, failure (watchdog)
            [  9000ms] restart a after 100ms
            [  9100ms] spawn a#2 pid 101
        "#]],
    );
}

#[test]
fn memory_over_the_limit_restarts_with_reason_memory() {
    let spec = with_checks(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            let mut health = HealthSpec::new(None);
            health.interval = Duration::from_secs(1);
            health.max_memory = Some(1000);
            service.health = Some(health);
        },
    );
    run(
        &spec,
        "advance 1s\nmemory a 999\nadvance 1s\nmemory a 1001",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [  1000ms] probe a#1 memory
            [  2000ms] probe a#1 memory
            [  2000ms] a#1 memory check failed (resident memory 1001 bytes exceeds max_memory 1000), 1 counted
            [  2000ms] a#1 condemned: memory
            [  2000ms] signal a#1 pid 100 sig 15
            [  2000ms] a#1 ended: signal 15, failure (memory)
            [  2000ms] restart a after 100ms
        "#]],
    );
}

#[test]
fn a_probe_result_for_an_old_generation_is_ignored() {
    let spec = with_checks(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            service.ready = Some(ReadySpec::new(ReadyCheck::Probe(tcp())));
        },
    );
    let mut sim = Sim::new(&spec);
    sim.run_script("crash a 9\nadvance 1s").unwrap();
    let old = ChildRef {
        id: ServiceId(0),
        generation: 1,
    };
    sim.feed(Event::ProbeResult {
        child: old,
        kind: minder_core::supervisor::ProbeKind::Ready,
        // The run in flight for generation 2 is also run 1: only the generation
        // tells this result apart.
        run: 1,
        outcome: minder_core::supervisor::ProbeOutcome::Passed,
    });
    assert_eq!(sim.supervisor.view(ServiceId(0)).unwrap().state, "started");
    assert!(sim.violations.is_empty());
}

#[test]
fn the_last_probe_results_and_restart_reason_are_kept_for_status() {
    let spec = with_checks(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            service.ready = Some(ReadySpec::new(ReadyCheck::Probe(tcp())));
            let mut health = HealthSpec::new(Some(tcp()));
            health.interval = Duration::from_secs(1);
            health.failures = 1;
            service.health = Some(health);
        },
    );
    let mut sim = Sim::new(&spec);
    sim.run_script("probe a ready pass\nadvance 1s\nprobe a health fail")
        .unwrap();
    let view = sim.supervisor.view(ServiceId(0)).unwrap();
    assert_eq!(
        view.last_restart_reason,
        Some(minder_core::supervisor::EndKind::Failure(
            minder_core::supervisor::FailureReason::Health
        ))
    );
    assert!(view.last_ready_probe.is_some_and(|r| r.passed));
    assert!(
        view.last_health_probe
            .is_some_and(|r| !r.passed && r.detail == "refused")
    );
    expect![[r#"
        root group up restarts 1/5 per 30s
          a backoff restarts 0 (last: health), health failing: refused
    "#]]
    .assert_eq(&sim.supervisor.describe());
}

#[test]
fn regression_a_nested_group_started_a_child_during_shutdown() {
    // g's child `a` leaves backoff while the stubborn `s` after g is still stopping:
    // the shutdown is under way, so `a` must not be spawned again.
    let toml = "[root]\nchildren = [\"g\", \"s\"]\n[group.g]\nchildren = [\"a\"]\n\
                [service.a]\ncommand = \"x\"\nbackoff = { initial = \"2s\", jitter = 0.0 }\n\
                [service.s]\ncommand = \"x\"\nstop_timeout = \"4s\"\n";
    check(
        toml,
        "exit a 1\nstubborn s\nshutdown\nadvance 7s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn s#1 pid 101
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 2000ms
            [     0ms] > shutdown
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal s#1 pid 101 sig 15
            [  1000ms] still stopping: s 1000ms, kill at 4000ms
            [  2000ms] still stopping: s 2000ms, kill at 4000ms
            [  3000ms] still stopping: s 3000ms, kill at 4000ms
            [  4000ms] s#1 did not stop in time
            [  4000ms] kill s#1 pid 101
            [  4000ms] still stopping: s 4000ms, killed
            [  4000ms] s#1 ended: signal 9, stopped
            [  4000ms] slow stops: s 4000ms killed
            [  4000ms] exit 0
        "#]],
    );
}

#[test]
fn regression_backoff_reset_for_a_service_that_never_stayed_healthy() {
    // Condemned by its health check each time after more than reset_after: it was not
    // healthy, so its backoff keeps growing (and the budget sees the loop).
    let spec = with_checks(
        "[root]\nintensity = 100\n[service.a]\ncommand = \"x\"\n\
         backoff = { initial = \"1s\", jitter = 0.0, reset_after = \"30s\", max = \"1h\" }\n",
        |service| {
            let mut health = HealthSpec::new(Some(tcp()));
            health.interval = Duration::from_secs(10);
            health.start_period = Duration::from_secs(30);
            health.failures = 1;
            // The script answers every probe itself: none may time out first.
            health.timeout = Duration::from_secs(3600);
            service.health = Some(health);
        },
    );
    let mut sim = Sim::new(&spec);
    for _ in 0..4 {
        for _ in 0..4 {
            sim.run_script("advance 10s").unwrap();
            let _ = sim.step("probe a health fail");
        }
        sim.run_script("advance 20s").unwrap();
    }
    let delays: Vec<&str> = sim
        .transcript
        .lines()
        .filter(|l| l.contains("restart a"))
        .map(|l| l.split("] ").nth(1).unwrap_or(""))
        .collect();
    assert_eq!(
        delays,
        [
            "restart a after 1000ms",
            "restart a after 2000ms",
            "restart a after 4000ms",
            "restart a after 8000ms"
        ],
        "{}",
        sim.transcript
    );
}

#[test]
fn regression_a_retired_temporary_child_came_back_after_a_failed_spawn() {
    // one_for_all: p fails while t's spawn is still pending; t's spawn then fails.
    // t is temporary, retired by the restart: it must not start with the set.
    let toml = "[root]\nstrategy = \"one_for_all\"\n[service.p]\ncommand = \"x\"\n\
                backoff = { initial = \"0s\" }\n[service.t]\ncommand = \"x\"\nrestart = \"temporary\"\n";
    let mut supervisor = Supervisor::new(&spec(toml), 1);
    let p = ChildRef {
        id: ServiceId(0),
        generation: 1,
    };
    let t = ChildRef {
        id: ServiceId(1),
        generation: 1,
    };
    assert_eq!(
        supervisor.boot(Time::ZERO),
        vec![Effect::Spawn { child: p }]
    );
    let effects = supervisor.handle(Event::Spawned { child: p, pid: 10 }, Time::ZERO);
    assert!(effects.contains(&Effect::Spawn { child: t }), "{effects:?}");
    supervisor.handle(
        Event::Exited {
            child: p,
            status: ExitStatus::Exited(1),
        },
        Time::ZERO,
    );
    supervisor.handle(
        Event::SpawnFailed {
            child: t,
            code: 127,
            reason: "not found".into(),
        },
        Time::ZERO,
    );
    supervisor.handle(Event::Timer, Time::from_millis(10));
    let p2 = ChildRef {
        id: ServiceId(0),
        generation: 2,
    };
    let effects = supervisor.handle(Event::Spawned { child: p2, pid: 11 }, Time::from_millis(10));
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Spawn { .. })),
        "{effects:?}"
    );
    assert_eq!(supervisor.view(ServiceId(1)).unwrap().state, "done");
}

// ----- decisions the loop used to make: signals, probe timeouts, STOPPING ------------

/// The tree of `minder -- cmd`: one temporary, significant `main`, whose signals are
/// passed on (`SignalMode::Forward`, which the runtime sets in container mode).
fn container() -> minder_core::spec::Spec {
    let mut spec = spec(
        "[root]\nauto_shutdown = \"any_significant\"\n\
         [service.main]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n\
         stop_timeout = \"8s\"\n",
    );
    spec.signals = minder_core::spec::SignalMode::Forward;
    spec
}

#[test]
fn container_mode_forwards_signals_and_the_command_ends_as_the_signal_leaves_it() {
    // HUP and WINCH go alone; TERM asks the command to end, so SIGCONT follows. It
    // ends by the signal: minder exits 128+15, with no kill. A forwarded TERM came
    // from outside (minder only passed it on), so, being one of `success_signals`, it
    // is a normal end.
    run(
        &container(),
        "receive 1\nreceive 28\nadvance 1s\nreceive 15\nadvance 20s",
        expect![[r#"
            [     0ms] spawn main#1 pid 100
            [     0ms] forward main#1 pid 100 sig 1
            [     0ms] forward main#1 pid 100 sig 28
            [  1000ms] forward main#1 pid 100 sig 15 +cont
            [  1000ms] main#1 ended: signal 15, normal
            [  1000ms] shutting down: Significant { id: ServiceId(0), code: 143 }
            [  1000ms] announce Stopping
            [  1000ms] exit 143
        "#]],
    );
}

#[test]
fn container_mode_kills_the_command_its_stop_timeout_after_the_first_forwarded_term() {
    // The command ignores TERM; a later INT does not postpone the kill, which comes
    // from the core's one deadline, 8 s after the TERM.
    let mut sim = Sim::new(&container());
    sim.run_script("stubborn main\nreceive 15\nadvance 3s\nreceive 2")
        .unwrap();
    assert_eq!(
        sim.supervisor.next_deadline(),
        Some(Time::from_millis(8000)),
        "{}",
        sim.transcript
    );
    sim.run_script("advance 5s").unwrap();
    assert!(sim.violations.is_empty(), "{:?}", sim.violations);
    expect![[r#"
        [     0ms] spawn main#1 pid 100
        [     0ms] forward main#1 pid 100 sig 15 +cont
        [  3000ms] forward main#1 pid 100 sig 2 +cont
        [  8000ms] main#1 did not end after the forwarded signal
        [  8000ms] kill main#1 pid 100
        [  8000ms] main#1 ended: signal 9, abnormal
        [  8000ms] shutting down: Significant { id: ServiceId(0), code: 137 }
        [  8000ms] announce Stopping
        [  8000ms] exit 137
    "#]]
    .assert_eq(&sim.transcript);
}

#[test]
fn in_config_mode_term_int_and_quit_shut_down_and_other_signals_are_only_reported() {
    run(
        &spec(&format!("[service.a]\ncommand = \"x\"\n{FAST}\n")),
        "receive 1\nreceive 12\nreceive 3",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] received signal 1
            [     0ms] received signal 12
            [     0ms] received signal 3
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal a#1 pid 100 sig 15
            [     0ms] a#1 ended: signal 15, stopped
            [     0ms] exit 0
        "#]],
    );
}

/// `a` with an exec health probe every 10 s, bounded by 2 s (and by nothing else:
/// no grace), condemned after 2 failures.
fn slow_probe() -> minder_core::spec::Spec {
    with_checks(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            let exec = Probe::Exec {
                command: vec!["check".into()],
            };
            let mut health = HealthSpec::new(Some(exec));
            health.interval = Duration::from_secs(10);
            health.timeout = Duration::from_secs(2);
            health.failures = 2;
            service.health = Some(health);
        },
    )
}

#[test]
fn a_probe_that_does_not_answer_times_out_at_the_cores_deadline_and_is_cancelled() {
    let mut sim = Sim::new(&slow_probe());
    sim.run_script("advance 10s").unwrap();
    // The probe in flight is the next thing the core waits for.
    assert_eq!(
        sim.supervisor.next_deadline(),
        Some(Time::from_millis(12_000))
    );
    sim.run_script("advance 10s\nadvance 2s").unwrap();
    assert!(sim.violations.is_empty(), "{:?}", sim.violations);
    expect![[r#"
        [     0ms] spawn a#1 pid 100
        [ 10000ms] probe a#1 health
        [ 12000ms] cancel a#1 health
        [ 12000ms] a#1 health check failed (timed out after 2s), 1 counted
        [ 20000ms] probe a#1 health
        [ 22000ms] cancel a#1 health
        [ 22000ms] a#1 health check failed (timed out after 2s), 2 counted
        [ 22000ms] a#1 condemned: health
        [ 22000ms] signal a#1 pid 100 sig 15
        [ 22000ms] a#1 ended: signal 15, failure (health)
        [ 22000ms] restart a after 100ms
    "#]]
    .assert_eq(&sim.transcript);
}

#[test]
fn a_late_result_of_a_cancelled_probe_is_ignored() {
    // The first probe times out and is cancelled; its "pass" arriving afterwards must
    // neither reset the failure count nor stand in for the next probe: the second
    // timeout is the second failure in a row and condemns the service.
    run(
        &slow_probe(),
        "advance 12s\nlate a health pass\nadvance 8s\nadvance 2s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [ 10000ms] probe a#1 health
            [ 12000ms] cancel a#1 health
            [ 12000ms] a#1 health check failed (timed out after 2s), 1 counted
            [ 20000ms] probe a#1 health
            [ 22000ms] cancel a#1 health
            [ 22000ms] a#1 health check failed (timed out after 2s), 2 counted
            [ 22000ms] a#1 condemned: health
            [ 22000ms] signal a#1 pid 100 sig 15
            [ 22000ms] a#1 ended: signal 15, failure (health)
            [ 22000ms] restart a after 100ms
        "#]],
    );
}

#[test]
fn a_result_within_the_timeout_is_taken_and_nothing_is_cancelled() {
    run(
        &slow_probe(),
        "advance 11s\nprobe a health fail\nadvance 9s\nprobe a health pass\nadvance 5s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [ 10000ms] probe a#1 health
            [ 11000ms] a#1 health check failed (refused), 1 counted
            [ 20000ms] probe a#1 health
        "#]],
    );
}

#[test]
fn stopping_is_announced_once_however_the_shutdown_goes() {
    // A requested shutdown, a stubborn child, a second request that kills: STOPPING=1
    // goes out once, when the shutdown begins.
    run(
        &spec(&format!("[service.a]\ncommand = \"x\"\n{FAST}\n")),
        "stubborn a\nreceive 15\nadvance 1s\nshutdown",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] received signal 15
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal a#1 pid 100 sig 15
            [  1000ms] still stopping: a 1000ms, kill at 10000ms
            [  1000ms] > shutdown
            [  1000ms] shutting down: Forced
            [  1000ms] kill a#1 pid 100
            [  1000ms] slow stops: a 1000ms killed
            [  1000ms] exit 0
        "#]],
    );
}

// ----- drain and shutdown progress ---------------------------------------------------

/// Two services and a 2 s drain: `a` stops promptly, `b` ignores its stop signal.
fn drained(extra_daemon: &str) -> String {
    format!(
        "[daemon]\ndrain_delay = \"2s\"\n{extra_daemon}\n\
         [service.a]\ncommand = \"x\"\nstop_timeout = \"3s\"\n{FAST}\n\
         [service.b]\ncommand = \"x\"\nstop_timeout = \"3s\"\n{FAST}\n"
    )
}

#[test]
fn a_drain_keeps_the_tree_supervised_then_shuts_it_down() {
    // STOPPING=1 goes out at the request; during the drain `a` crashes and is restarted
    // as usual; the orderly shutdown begins 2 s after the request.
    check(
        &drained(""),
        "receive 15\nadvance 500ms\nexit a 1\nadvance 1s\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] received signal 15
            [     0ms] draining until 2000ms
            [     0ms] announce Stopping
            [   500ms] a#1 ended: exit 1, abnormal
            [   500ms] restart a after 100ms
            [   600ms] spawn a#2 pid 102
            [  2000ms] shutting down: Requested
            [  2000ms] signal b#1 pid 101 sig 15
            [  2000ms] b#1 ended: signal 15, stopped
            [  2000ms] signal a#2 pid 102 sig 15
            [  2000ms] a#2 ended: signal 15, stopped
            [  2000ms] exit 0
        "#]],
    );
}

#[test]
fn a_second_request_cuts_the_drain_short_and_a_third_kills() {
    check(
        &drained(""),
        "stubborn b\nreceive 15\nadvance 500ms\nreceive 2\nadvance 500ms\nshutdown",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] received signal 15
            [     0ms] draining until 2000ms
            [     0ms] announce Stopping
            [   500ms] received signal 2
            [   500ms] shutting down: Requested
            [   500ms] signal b#1 pid 101 sig 15
            [  1000ms] > shutdown
            [  1000ms] shutting down: Forced
            [  1000ms] kill a#1 pid 100
            [  1000ms] kill b#1 pid 101
            [  1000ms] slow stops: a 0ms killed; b 500ms killed
            [  1000ms] exit 0
        "#]],
    );
}

#[test]
fn shutdown_timeout_counts_from_the_request_with_the_drain_inside() {
    // 2 s of drain and a 3 s bound: `b`, stubborn, would be killed by its own
    // stop_timeout at 5 s, but the shutdown ends at 3 s after the request.
    check(
        &drained("shutdown_timeout = \"3s\""),
        "stubborn b\nreceive 15\nadvance 10s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] received signal 15
            [     0ms] draining until 2000ms
            [     0ms] announce Stopping
            [  2000ms] shutting down: Requested
            [  2000ms] signal b#1 pid 101 sig 15
            [  3000ms] shutting down: TimedOut
            [  3000ms] kill a#1 pid 100
            [  3000ms] kill b#1 pid 101
            [  3000ms] slow stops: a 0ms killed; b 1000ms killed
            [  3000ms] exit 0
        "#]],
    );
}

#[test]
fn a_significant_end_during_the_drain_shuts_down_at_once_with_its_code() {
    // The drain is a requested shutdown not begun yet: a significant service ending on
    // its own fires auto_shutdown as while running, and its code is minder's.
    check(
        &format!(
            "[daemon]\ndrain_delay = \"5s\"\n[root]\nauto_shutdown = \"any_significant\"\n\
             [service.side]\ncommand = \"x\"\n{FAST}\n\
             [service.main]\ncommand = \"x\"\nrestart = \"temporary\"\nsignificant = true\n{FAST}\n"
        ),
        "receive 15\nadvance 1s\nexit main 4\nadvance 1s",
        expect![[r#"
            [     0ms] spawn side#1 pid 100
            [     0ms] spawn main#1 pid 101
            [     0ms] received signal 15
            [     0ms] draining until 5000ms
            [     0ms] announce Stopping
            [  1000ms] main#1 ended: exit 4, abnormal
            [  1000ms] shutting down: Significant { id: ServiceId(1), code: 4 }
            [  1000ms] signal side#1 pid 100 sig 15
            [  1000ms] side#1 ended: signal 15, stopped
            [  1000ms] exit 4
        "#]],
    );
}

#[test]
fn container_mode_forwards_at_once_whatever_drain_delay_says() {
    // In container mode the command gets the TERM at once, as tini passes it on: a
    // drain is the command's own business there.
    let mut spec = container();
    spec.drain_delay = Duration::from_secs(5);
    run(
        &spec,
        "receive 15\nadvance 1s",
        expect![[r#"
        [     0ms] spawn main#1 pid 100
        [     0ms] forward main#1 pid 100 sig 15 +cont
        [     0ms] main#1 ended: signal 15, normal
        [     0ms] shutting down: Significant { id: ServiceId(0), code: 143 }
        [     0ms] announce Stopping
        [     0ms] exit 143
    "#]],
    );
}

#[test]
fn progress_names_each_stopping_service_with_its_kill_time_once_a_second() {
    // In reverse order: `c` stops at once; `b` takes 1.5 s and is named in the closing
    // report; `a` ignores its signal until its 3 s stop_timeout kills it.
    check(
        &format!(
            "[service.a]\ncommand = \"x\"\nstop_timeout = \"3s\"\n{FAST}\n\
             [service.b]\ncommand = \"x\"\nstop_timeout = \"4s\"\n{FAST}\n\
             [service.c]\ncommand = \"x\"\n{FAST}\n"
        ),
        "stubborn a\nstubborn b\nshutdown\nadvance 1500ms\ncrash b 15\nadvance 10s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] > shutdown
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal c#1 pid 102 sig 15
            [     0ms] c#1 ended: signal 15, stopped
            [     0ms] signal b#1 pid 101 sig 15
            [  1000ms] still stopping: b 1000ms, kill at 4000ms
            [  1500ms] b#1 ended: signal 15, stopped
            [  1500ms] signal a#1 pid 100 sig 15
            [  2000ms] still stopping: a 500ms, kill at 4500ms
            [  3000ms] still stopping: a 1500ms, kill at 4500ms
            [  4000ms] still stopping: a 2500ms, kill at 4500ms
            [  4500ms] a#1 did not stop in time
            [  4500ms] kill a#1 pid 100
            [  4500ms] a#1 ended: signal 9, stopped
            [  4500ms] slow stops: b 1500ms; a 3000ms killed
            [  4500ms] exit 0
        "#]],
    );
}

#[test]
fn a_prompt_shutdown_reports_no_progress_and_no_slow_stops() {
    check(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n"),
        "shutdown\nadvance 5s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] > shutdown
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal a#1 pid 100 sig 15
            [     0ms] a#1 ended: signal 15, stopped
            [     0ms] exit 0
        "#]],
    );
}

#[test]
fn the_phase_view_follows_request_drain_and_shutdown() {
    use minder_core::supervisor::PhaseView;
    let mut sim = Sim::new(&spec(&drained("")));
    assert_eq!(sim.supervisor.phase_view(), PhaseView::Running);
    assert!(sim.supervisor.tree_ready());
    sim.run_script("stubborn b\nadvance 1s\nreceive 15")
        .unwrap();
    let at = |ms| Time::from_millis(ms);
    assert_eq!(
        sim.supervisor.phase_view(),
        PhaseView::Draining {
            since: at(1000),
            until: at(3000)
        }
    );
    assert!(
        !sim.supervisor.tree_ready(),
        "not ready from the request on"
    );
    sim.run_script("advance 2500ms").unwrap();
    assert_eq!(
        sim.supervisor.phase_view(),
        PhaseView::Stopping {
            since: at(3000),
            deadline: at(31000)
        }
    );
    let b = sim.service_id("b").unwrap();
    let view = sim.supervisor.view(b).unwrap();
    assert_eq!(view.state, "stopping");
    let stopping = view.stopping.expect("b is stopping");
    assert_eq!(stopping.since, at(3000));
    assert_eq!(stopping.kill_at, Some(at(6000)));
    sim.run_script("advance 10s").unwrap();
    assert_eq!(sim.supervisor.phase_view(), PhaseView::Exited);
    assert_eq!(sim.exit_code, Some(0));
}

#[test]
fn service_and_group_views_carry_uptime_readiness_hold_and_budget() {
    let mut sim = Sim::new(&spec(&format!(
        "[root]\nchildren = [\"g\"]\n[group.g]\nintensity = 4\nperiod = \"10s\"\nchildren = [\"a\", \"b\"]\n\
         [service.a]\ncommand = \"x\"\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n"
    )));
    sim.run_script("advance 1s\nexit a 1\nadvance 50ms")
        .unwrap();
    let a = sim.supervisor.view(sim.service_id("a").unwrap()).unwrap();
    assert_eq!(a.state, "backoff");
    assert_eq!((a.since, a.ready, a.held), (None, false, false));
    assert_eq!(a.group_name, "g");
    let group = sim.supervisor.group_view(a.group).unwrap();
    assert_eq!(
        (
            group.name,
            group.restarts_in_period,
            group.intensity,
            group.state
        ),
        ("g", 1, 4, "up")
    );
    assert_eq!(group.period, Duration::from_secs(10));
    let group_id = group.id;
    sim.run_script("advance 100ms\nstop b").unwrap();
    let a = sim.supervisor.view(sim.service_id("a").unwrap()).unwrap();
    assert_eq!((a.since, a.ready), (Some(Time::from_millis(1100)), true));
    let b = sim.supervisor.view(sim.service_id("b").unwrap()).unwrap();
    assert!(b.held && !b.ready, "{b:?}");
    // The window slides: 11 s after the crash it holds nothing, with no new decision.
    sim.run_script("advance 11s").unwrap();
    sim.feed(Event::Timer);
    let names: Vec<&str> = sim.supervisor.group_views().map(|g| g.name).collect();
    assert_eq!(names, ["root", "g"]);
    let group = sim.supervisor.group_view(group_id).unwrap();
    assert_eq!(group.restarts_in_period, 0);
}

#[test]
fn a_network_probe_gets_a_short_grace_to_report_its_own_timeout() {
    // A tcp probe bounds itself by its timeout and says why it ran out; the core's
    // deadline comes 100 ms later and cancels one that did not answer at all.
    let spec = with_checks(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            let mut health = HealthSpec::new(Some(tcp()));
            health.interval = Duration::from_secs(10);
            health.timeout = Duration::from_secs(2);
            service.health = Some(health);
        },
    );
    run(
        &spec,
        "advance 12s\nprobe a health fail\nadvance 10s\nadvance 100ms",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [ 10000ms] probe a#1 health
            [ 12000ms] a#1 health check failed (refused), 1 counted
            [ 20000ms] probe a#1 health
            [ 22100ms] cancel a#1 health
            [ 22100ms] a#1 health check failed (timed out after 2s), 2 counted
        "#]],
    );
}

#[test]
fn regression_a_late_result_of_a_cancelled_run_was_taken_for_the_next_run() {
    // Found by the property test. The ready probe times out at 1 s and, being overdue,
    // runs again at once; the cancelled run's late "fail" must not answer the new run,
    // whose "pass" then makes the service ready.
    let spec = with_checks(
        &format!("[service.a]\ncommand = \"x\"\n{FAST}\n[service.b]\ncommand = \"x\"\n{FAST}\n"),
        |service| {
            if service.name == "a" {
                let exec = Probe::Exec {
                    command: vec!["check".into()],
                };
                let mut ready = ReadySpec::new(ReadyCheck::Probe(exec));
                ready.interval = Duration::from_secs(1);
                ready.timeout = Duration::from_secs(1);
                service.ready = Some(ready);
            }
        },
    );
    run(
        &spec,
        "advance 1s\nlate a ready fail\nprobe a ready pass",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] probe a#1 ready
            [  1000ms] cancel a#1 ready
            [  1000ms] probe a#1 ready
            [  1000ms] spawn b#1 pid 101
        "#]],
    );
}

/// `minder run CONFIG -- cmd` under a one_for_all root: the sidecar and the main
/// command end in one reap sweep, the sidecar first (the reaper returns them in pid
/// order, not in the order they died). The sidecar's restart set takes in `main`, but
/// `main` ended on its own and for good (temporary): its end must still fire the
/// root's auto_shutdown, with its code. It used to be absorbed by the restart set,
/// and minder ran the sidecar forever.
#[test]
fn regression_a_significant_end_absorbed_by_a_siblings_restart_set_never_shut_down() {
    check(
        r#"
        [root]
        strategy = "one_for_all"
        auto_shutdown = "any_significant"
        [service.side]
        command = "sleep 100"
        [service.main]
        command = "sleep 100"
        restart = "temporary"
        significant = true
        "#,
        "ready side\ncrash side 9 main 9\nadvance 1s",
        expect![[r#"
            [     0ms] spawn side#1 pid 100
            [     0ms] spawn main#1 pid 101
            [     0ms] side#1 ended: signal 9, abnormal
            [     0ms] restart side after 105ms
            [     0ms] main#1 ended: signal 9, abnormal
            [     0ms] shutting down: Significant { id: ServiceId(1), code: 137 }
            [     0ms] announce Stopping
            [     0ms] exit 137
        "#]],
    );
}

// ----- reload -----------------------------------------------------------------------

/// Run `script` against the tree `toml`, with each `(label, toml)` of `trees` ready for
/// `reload LABEL`; return the simulator for further checks after comparing the
/// transcript.
fn check_reload(toml: &str, trees: &[(&str, &str)], script: &str, expected: Expect) -> Sim {
    let mut sim = Sim::new(&spec(toml));
    for (label, tree) in trees {
        sim.define(label, spec(tree));
    }
    if let Err(error) = sim.run_script(script) {
        panic!("{error}\ntranscript so far:\n{}", sim.transcript);
    }
    assert!(
        sim.violations.is_empty(),
        "invariants broken: {:?}\n{}",
        sim.violations,
        sim.transcript
    );
    expected.assert_eq(&sim.transcript);
    sim
}

/// `[service.NAME]` with a command and the fast backoff, plus `extra` lines.
fn svc(name: &str, extra: &str) -> String {
    format!("[service.{name}]\ncommand = \"x\"\n{extra}{FAST}\n")
}

/// The runtime names `b` (its command changed, which the core cannot see): exactly
/// `b` restarts, `a` and `c` keep their processes, and nothing is spent from the
/// budget.
#[test]
fn reload_restarts_exactly_the_one_changed_service_of_three() {
    let tree = format!("{}{}{}", svc("a", ""), svc("b", ""), svc("c", ""));
    let sim = check_reload(
        &tree,
        &[("v2", &tree)],
        "reload v2 b\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] > reload v2 b
            [     0ms] reloaded: added [] removed [] restarted [b(#1)] groups updated []
            [     0ms] signal b#1 pid 101 sig 15
            [     0ms] b#1 ended: signal 15, stopped
            [     0ms] spawn b#2 pid 103
        "#]],
    );
    assert_eq!(
        sim.supervisor
            .restarts_in_period(minder_core::supervisor::NodeId(0)),
        Some(0)
    );
}

/// A change the core sees and a running process cannot follow restarts it without
/// being named: here `b` turns from a long-running service into a oneshot. Timings
/// and thresholds (`a`'s stop_timeout, `c`'s backoff) take effect in place.
#[test]
fn reload_restarts_a_service_whose_kind_changed_and_nothing_else() {
    let tree = format!("{}{}{}", svc("a", ""), svc("b", ""), svc("c", ""));
    let new = format!(
        "{}{}{}",
        svc("a", "stop_timeout = \"3s\"\n"),
        svc("b", "oneshot = true\n"),
        "[service.c]\ncommand = \"x\"\nbackoff = { initial = \"2s\", jitter = 0.0 }\n"
    );
    check_reload(
        &tree,
        &[("v2", &new)],
        "reload v2\nexit b 0\nstubborn a\nexit c 1\nadvance 3s\nstop a\nadvance 3s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] > reload v2
            [     0ms] reloaded: added [] removed [] restarted [b(#1)] groups updated []
            [     0ms] signal b#1 pid 101 sig 15
            [     0ms] b#1 ended: signal 15, stopped
            [     0ms] spawn b#2 pid 103
            [     0ms] b#2 ended: exit 0, normal
            [     0ms] c#1 ended: exit 1, abnormal
            [     0ms] restart c after 2000ms
            [  2000ms] spawn c#2 pid 104
            [  3000ms] > stop a
            [  3000ms] signal a#1 pid 100 sig 15
            [  6000ms] a#1 did not stop in time
            [  6000ms] kill a#1 pid 100
            [  6000ms] a#1 ended: signal 9, stopped
        "#]],
    );
}

/// Added services get ids after every existing one, stand where the file puts them,
/// and come up in order as one wave: `m` (before `b`) is started first, and `z` (a
/// new last child with a ready check) only once `m` is ready; `a` and `b` keep their
/// processes.
#[test]
fn reload_adds_services_in_place_with_new_ids_started_in_order() {
    let tree = format!("{}{}", svc("a", ""), svc("b", ""));
    let new = format!(
        "[root]\nchildren = [\"a\", \"m\", \"b\", \"z\"]\n{}{}{}{}",
        svc("a", ""),
        svc("m", ""),
        svc("b", ""),
        svc("z", "")
    );
    let mut sim = Sim::new(&spec(&tree));
    let mut v2 = full_spec(&new);
    // `m` reports its readiness, so `z` waits for it.
    if let minder::spec::NodeSpec::Service(m) = &mut v2.root.children[1] {
        m.ready = Some(ReadySpec::new(ReadyCheck::Notify));
    }
    sim.define("v2", minder::spec::lower(&v2).0);
    sim.run_script("reload v2\nadvance 1s\nready m\nadvance 1s")
        .unwrap();
    assert!(sim.violations.is_empty(), "{:?}", sim.violations);
    expect![[r#"
        [     0ms] spawn a#1 pid 100
        [     0ms] spawn b#1 pid 101
        [     0ms] > reload v2
        [     0ms] reloaded: added [m(#2) z(#3)] removed [] restarted [] groups updated []
        [     0ms] spawn m#1 pid 102
        [  1000ms] spawn z#1 pid 103
    "#]]
    .assert_eq(&sim.transcript);
    let names: Vec<(usize, &str)> = sim
        .supervisor
        .services()
        .map(|(id, name)| (id.0, name))
        .collect();
    assert_eq!(names, [(0, "a"), (2, "m"), (1, "b"), (3, "z")]);
}

/// Removed services stop last first as planned stops (no restart, no budget), leave
/// the tree, and their ids are never reused: `b` added back later is a new service.
/// A removed service that ignores its stop signal is killed at its stop_timeout like
/// any other, and the one before it waits for that.
#[test]
fn reload_removes_services_last_first_and_never_reuses_their_ids() {
    let tree = format!(
        "{}{}{}{}",
        svc("a", ""),
        svc("b", ""),
        svc("c", "stop_timeout = \"2s\"\n"),
        svc("d", "")
    );
    let without = format!("{}{}", svc("a", ""), svc("d", ""));
    let sim = check_reload(
        &tree,
        &[("v2", &without), ("v3", &tree)],
        "stubborn c\nreload v2\nadvance 3s\nreload v3\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] spawn d#1 pid 103
            [     0ms] > reload v2
            [     0ms] reloaded: added [] removed [b(#1) c(#2)] restarted [] groups updated []
            [     0ms] signal c#1 pid 102 sig 15
            [  2000ms] c#1 did not stop in time
            [  2000ms] kill c#1 pid 102
            [  2000ms] c#1 ended: signal 9, stopped
            [  2000ms] signal b#1 pid 101 sig 15
            [  2000ms] b#1 ended: signal 15, stopped
            [  3000ms] > reload v3
            [  3000ms] reloaded: added [b(#4) c(#5)] removed [] restarted [] groups updated []
            [  3000ms] spawn b#1 pid 104
            [  3000ms] spawn c#1 pid 105
        "#]],
    );
    let supervisor = &sim.supervisor;
    assert!(supervisor.is_retired(ServiceId(1)) && supervisor.is_retired(ServiceId(2)));
    assert_eq!(supervisor.view(ServiceId(1)).unwrap().state, "removed");
    assert_eq!(supervisor.service_by_name("b"), Some(ServiceId(4)));
    assert_eq!(supervisor.service_count(), 4);
    assert_eq!(
        supervisor.restarts_in_period(minder_core::supervisor::NodeId(0)),
        Some(0)
    );
}

/// A service that moves to another group is a new service there: the old one stops,
/// and only once it is gone (here killed at its stop_timeout) does the new one start,
/// so the two never run at once; a service that stays where it was keeps its process.
#[test]
fn reload_moves_a_service_between_groups_by_stopping_and_starting_it() {
    let tree = format!(
        "[root]\nchildren = [\"a\", \"g\"]\n[group.g]\nchildren = [\"b\"]\n{}{}{}",
        svc("a", ""),
        svc("b", ""),
        svc("c", "stop_timeout = \"1s\"\n")
    )
    .replace(
        "children = [\"a\", \"g\"]",
        "children = [\"a\", \"g\", \"c\"]",
    );
    let moved = format!(
        "[root]\nchildren = [\"a\", \"g\"]\n[group.g]\nchildren = [\"b\", \"c\"]\n{}{}{}",
        svc("a", ""),
        svc("b", ""),
        svc("c", "")
    );
    let sim = check_reload(
        &tree,
        &[("v2", &moved)],
        "stubborn c\nreload v2\nadvance 2s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] > reload v2
            [     0ms] reloaded: added [c(#3)] removed [c(#2)] restarted [] groups updated []
            [     0ms] signal c#1 pid 102 sig 15
            [  1000ms] c#1 did not stop in time
            [  1000ms] kill c#1 pid 102
            [  1000ms] c#1 ended: signal 9, stopped
            [  1000ms] spawn c#1 pid 103
        "#]],
    );
    assert_eq!(sim.supervisor.service_by_name("c"), Some(ServiceId(3)));
    assert_eq!(sim.supervisor.lookup("c").len(), 1);
}

/// A group's strategy and budget change in place: nothing restarts at the reload, and
/// the next failure is handled by the new strategy (`one_for_all`) and judged by the
/// new intensity. The window is kept: the one restart before the reload still counts.
#[test]
fn reload_changes_a_groups_strategy_and_intensity_without_restarts() {
    let tree = format!(
        "[root]\nintensity = 5\n{}{}{}",
        svc("a", ""),
        svc("b", ""),
        svc("c", "")
    );
    let new = format!(
        "[root]\nstrategy = \"one_for_all\"\nintensity = 2\n{}{}{}",
        svc("a", ""),
        svc("b", ""),
        svc("c", "")
    );
    check_reload(
        &tree,
        &[("v2", &new)],
        "exit a 1\nadvance 1s\nreload v2\nadvance 1s\nexit b 1\nadvance 1s\nexit c 1\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 100ms
            [   100ms] spawn a#2 pid 103
            [  1000ms] > reload v2
            [  1000ms] reloaded: added [] removed [] restarted [] groups updated [root]
            [  2000ms] b#1 ended: exit 1, abnormal
            [  2000ms] restart b after 100ms
            [  2000ms] signal c#1 pid 102 sig 15
            [  2000ms] c#1 ended: signal 15, stopped
            [  2000ms] signal a#2 pid 103 sig 15
            [  2000ms] a#2 ended: signal 15, stopped
            [  2100ms] spawn a#3 pid 104
            [  2100ms] spawn b#2 pid 105
            [  2100ms] spawn c#2 pid 106
            [  3000ms] c#2 ended: exit 1, abnormal
            [  3000ms] group root gave up: 3 restarts in 30000ms > intensity 2
            [  3000ms] shutting down: RootFailed
            [  3000ms] announce Stopping
            [  3000ms] signal b#2 pid 105 sig 15
            [  3000ms] b#2 ended: signal 15, stopped
            [  3000ms] signal a#3 pid 104 sig 15
            [  3000ms] a#3 ended: signal 15, stopped
            [  3000ms] exit 3
        "#]],
    );
}

/// Lowering a group's intensity below what its window holds does not make it give up
/// at the reload: the window keeps the newest entries the new budget allows.
#[test]
fn reload_lowering_intensity_below_the_window_trims_it_instead_of_giving_up() {
    let tree = format!("[root]\nintensity = 5\n{}", svc("a", ""));
    let new = format!("[root]\nintensity = 1\n{}", svc("a", ""));
    let sim = check_reload(
        &tree,
        &[("v2", &new)],
        "exit a 1\nadvance 1s\nexit a 1\nadvance 1s\nexit a 1\nadvance 1s\nreload v2\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 100ms
            [   100ms] spawn a#2 pid 101
            [  1000ms] a#2 ended: exit 1, abnormal
            [  1000ms] restart a after 200ms
            [  1200ms] spawn a#3 pid 102
            [  2000ms] a#3 ended: exit 1, abnormal
            [  2000ms] restart a after 400ms
            [  2400ms] spawn a#4 pid 103
            [  3000ms] > reload v2
            [  3000ms] reloaded: added [] removed [] restarted [] groups updated [root]
        "#]],
    );
    assert_eq!(
        sim.supervisor
            .restarts_in_period(minder_core::supervisor::NodeId(0)),
        Some(1)
    );
}

/// A service an operator stopped stays stopped through a reload, even one that names
/// it for a restart; it starts with its new spec when the operator starts it.
#[test]
fn reload_keeps_a_held_service_held() {
    let tree = format!("{}{}", svc("a", ""), svc("b", ""));
    check_reload(
        &tree,
        &[("v2", &tree)],
        "stop b\nreload v2 b\nadvance 1s\nstart b\nadvance 1s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] > stop b
            [     0ms] signal b#1 pid 101 sig 15
            [     0ms] b#1 ended: signal 15, stopped
            [     0ms] > reload v2 b
            [     0ms] reloaded: added [] removed [] restarted [] groups updated []
            [  1000ms] > start b
            [  1000ms] spawn b#2 pid 102
        "#]],
    );
}

/// During a shutdown a reload changes nothing: it is refused, and the shutdown goes
/// on as it was (the removed `b` is still stopped by the shutdown, not by the reload).
#[test]
fn reload_is_refused_during_shutdown() {
    let tree = format!("{}{}", svc("a", ""), svc("b", "stop_timeout = \"2s\"\n"));
    let new = svc("a", "");
    check_reload(
        &tree,
        &[("v2", &new)],
        "stubborn b\nshutdown\nreload v2\nadvance 3s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] > shutdown
            [     0ms] shutting down: Requested
            [     0ms] announce Stopping
            [     0ms] signal b#1 pid 101 sig 15
            [     0ms] > reload v2
            [     0ms] reload refused: shutting down
            [  1000ms] still stopping: b 1000ms, kill at 2000ms
            [  2000ms] b#1 did not stop in time
            [  2000ms] kill b#1 pid 101
            [  2000ms] still stopping: b 2000ms, killed
            [  2000ms] b#1 ended: signal 9, stopped
            [  2000ms] signal a#1 pid 100 sig 15
            [  2000ms] a#1 ended: signal 15, stopped
            [  2000ms] slow stops: b 2000ms killed
            [  2000ms] exit 0
        "#]],
    );
}

/// A service waiting out its backoff when a reload names it is not started early: it
/// starts with its new spec when its delay is over, and its backoff count is kept (the
/// next failure waits twice as long).
#[test]
fn reload_keeps_the_backoff_of_a_service_in_backoff() {
    let tree = format!(
        "[service.a]\ncommand = \"x\"\nbackoff = {{ initial = \"1s\", jitter = 0.0 }}\n{}",
        svc("b", "")
    );
    let sim = check_reload(
        &tree,
        &[("v2", &tree)],
        "exit a 1\nadvance 500ms\nreload v2 a\nadvance 600ms\nexit a 1\nadvance 3s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] restart a after 1000ms
            [   500ms] > reload v2 a
            [   500ms] reloaded: added [] removed [] restarted [] groups updated []
            [  1000ms] spawn a#2 pid 102
            [  1100ms] a#2 ended: exit 1, abnormal
            [  1100ms] restart a after 2000ms
            [  3100ms] spawn a#3 pid 103
        "#]],
    );
    assert_eq!(sim.supervisor.view(ServiceId(0)).unwrap().backoff_count, 2);
}

/// A removed service that ends on its own while it waits for its turn to stop (the
/// one after it ignores its stop signal) is not restarted and spends no budget: the
/// reload's plan already has it going down.
#[test]
fn reload_a_removed_service_that_crashes_while_waiting_to_stop_stays_down() {
    let tree = format!(
        "[root]\nintensity = 0\n{}{}{}",
        svc("a", ""),
        svc("b", ""),
        svc("c", "stop_timeout = \"2s\"\n")
    );
    let new = format!("[root]\nintensity = 0\n{}", svc("a", ""));
    let sim = check_reload(
        &tree,
        &[("v2", &new)],
        "stubborn c\nreload v2\nadvance 1s\nexit b 1\nadvance 2s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] spawn c#1 pid 102
            [     0ms] > reload v2
            [     0ms] reloaded: added [] removed [b(#1) c(#2)] restarted [] groups updated []
            [     0ms] signal c#1 pid 102 sig 15
            [  1000ms] b#1 ended: exit 1, abnormal
            [  2000ms] c#1 did not stop in time
            [  2000ms] kill c#1 pid 102
            [  2000ms] c#1 ended: signal 9, stopped
        "#]],
    );
    assert_eq!(sim.supervisor.view(ServiceId(1)).unwrap().state, "removed");
    assert_eq!(sim.supervisor.view(ServiceId(0)).unwrap().generation, 1);
}

/// A running service's checks follow its new spec without a new process: `a`, still
/// waiting for its ready probe, loses its ready check, so the probe in flight is
/// cancelled and `a` is ready at once (and `b` starts); the health check it gains
/// runs at its interval from the reload.
#[test]
fn reload_changes_a_running_services_checks_in_place() {
    let tree = format!("{}{}", svc("a", ""), svc("b", ""));
    let before = with_checks(&tree, |service| {
        if service.name == "a" {
            service.ready = Some(ReadySpec::new(ReadyCheck::Probe(tcp())));
        }
    });
    let after = with_checks(&tree, |service| {
        if service.name == "a" {
            let mut health = HealthSpec::new(Some(tcp()));
            health.interval = Duration::from_millis(500);
            service.health = Some(health);
        }
    });
    let mut sim = Sim::new(&before);
    sim.define("v2", after);
    sim.run_script("advance 200ms\nreload v2\nadvance 600ms\nprobe a health pass")
        .unwrap();
    assert!(sim.violations.is_empty(), "{:?}", sim.violations);
    expect![[r#"
        [     0ms] spawn a#1 pid 100
        [     0ms] probe a#1 ready
        [   200ms] > reload v2
        [   200ms] reloaded: added [] removed [] restarted [] groups updated []
        [   200ms] cancel a#1 ready
        [   200ms] spawn b#1 pid 101
        [   700ms] probe a#1 health
    "#]]
    .assert_eq(&sim.transcript);
}

/// A running oneshot that becomes a long-running service is restarted, and what waits
/// for it (here `b`, after the group `g` that holds it) starts only once the new
/// process is up: the old process, about to be replaced, never counts as ready.
#[test]
fn reload_restarts_a_oneshot_that_became_long_running_before_what_waits_for_it() {
    let group = "[root]\nchildren = [\"g\", \"b\"]\n[group.g]\nchildren = [\"a\"]\n";
    let tree = format!(
        "{group}{}{}",
        svc("a", "oneshot = true\nstop_timeout = \"1s\"\n"),
        svc("b", "")
    );
    let new = format!(
        "{group}{}{}",
        svc("a", "stop_timeout = \"1s\"\n"),
        svc("b", "")
    );
    check_reload(
        &tree,
        &[("v2", &new)],
        "stubborn a\nreload v2\nadvance 2s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] > reload v2
            [     0ms] reloaded: added [] removed [] restarted [a(#0)] groups updated []
            [     0ms] signal a#1 pid 100 sig 15
            [  1000ms] a#1 did not stop in time
            [  1000ms] kill a#1 pid 100
            [  1000ms] a#1 ended: signal 9, stopped
            [  1000ms] spawn a#2 pid 101
            [  1000ms] spawn b#1 pid 102
        "#]],
    );
}

/// A reload while a group is failing is applied, and the failure's plan carries on:
/// `g` gave up and is stopping its children; the reload names `a` for a restart and
/// adds `c`, which restarts nothing at once; when `g` is down its parent restarts it,
/// and `a`, `b` and the new `c` come up in order with the new settings.
#[test]
fn reload_while_a_group_is_failing_lets_its_plan_carry_on() {
    let group = "[root]\nchildren = [\"g\"]\n[group.g]\nintensity = 0\n";
    let tree = format!(
        "{group}children = [\"a\", \"b\"]\n{}{}",
        svc("a", ""),
        svc("b", "stop_timeout = \"1s\"\n")
    );
    let new = format!(
        "{group}children = [\"a\", \"b\", \"c\"]\n{}{}{}",
        svc("a", ""),
        svc("b", "stop_timeout = \"1s\"\n"),
        svc("c", "")
    );
    check_reload(
        &tree,
        &[("v2", &new)],
        "stubborn b\nexit a 1\nreload v2 a\nadvance 2s",
        expect![[r#"
            [     0ms] spawn a#1 pid 100
            [     0ms] spawn b#1 pid 101
            [     0ms] a#1 ended: exit 1, abnormal
            [     0ms] group g gave up: 1 restarts in 30000ms > intensity 0
            [     0ms] signal b#1 pid 101 sig 15
            [     0ms] > reload v2 a
            [     0ms] reloaded: added [c(#2)] removed [] restarted [] groups updated []
            [  1000ms] b#1 did not stop in time
            [  1000ms] kill b#1 pid 101
            [  1000ms] b#1 ended: signal 9, stopped
            [  1000ms] root restarts group g
            [  1000ms] spawn a#2 pid 102
            [  1000ms] spawn b#2 pid 103
            [  1000ms] spawn c#1 pid 104
        "#]],
    );
}

/// A service removed while the runtime is still spawning it (here `a`, restarting
/// after a crash, while `b`, after it, is the first removed service to stop) never
/// gets checks from its old spec, whose probe ids no longer name anything: once it has
/// started, it gets its stop signal and nothing else. (The simulator answers every
/// spawn at once, so this drives the supervisor by hand.)
#[test]
fn regression_a_service_removed_while_being_spawned_got_checks_from_its_old_spec() {
    let tree = format!("{}{}", svc("a", ""), svc("b", ""));
    let before = with_checks(&tree, |service| {
        service.ready = Some(ReadySpec::new(ReadyCheck::Probe(tcp())));
    });
    let mut supervisor = Supervisor::new(&before, 1);
    let child = |id, generation| ChildRef {
        id: ServiceId(id),
        generation,
    };
    let (a1, a2, b1) = (child(0, 1), child(0, 2), child(1, 1));
    let mut now = Time::ZERO;
    supervisor.boot(now);
    let steps = [
        Event::Spawned { child: a1, pid: 7 },
        Event::Ready { child: a1 },
        Event::Spawned { child: b1, pid: 8 },
        Event::Exited {
            child: a1,
            status: ExitStatus::Exited(1),
        },
    ];
    for event in steps {
        supervisor.handle(event, now);
    }
    now = supervisor.next_deadline().expect("a's restart is due");
    let effects = supervisor.handle(Event::Timer, now);
    assert!(
        effects.contains(&Effect::Spawn { child: a2 }),
        "{effects:?}"
    );
    let effects = supervisor.reload(&spec(""), &[], now);
    let stop = |child, pid| Effect::Signal {
        child,
        pid,
        signal: 15,
    };
    assert!(effects.contains(&stop(b1, 8)), "{effects:?}");
    let effects = supervisor.handle(Event::Spawned { child: a2, pid: 9 }, now);
    assert!(
        !effects.iter().any(|e| matches!(e, Effect::Probe { .. })),
        "{effects:?}"
    );
    assert!(effects.contains(&stop(a2, 9)), "{effects:?}");
    assert!(supervisor.is_retired(ServiceId(0)));
    assert_eq!(supervisor.services().count(), 0);
}

/// What a reload removed and is still stopping is out of the tree but not out of
/// sight: the description of the tree (SIGUSR2) lists it apart.
#[test]
fn reload_a_removed_service_still_stopping_is_described_apart() {
    let tree = format!("{}{}", svc("a", ""), svc("b", ""));
    let mut sim = Sim::new(&spec(&tree));
    sim.define("v2", spec(&svc("a", "")));
    sim.run_script("stubborn b\nreload v2").unwrap();
    expect![[r#"
        root group up restarts 0/5 per 30s
          a running pid 100 restarts 0
        removed by a reload, stopping:
          b stopping pid 101 restarts 0
    "#]]
    .assert_eq(&sim.supervisor.describe());
    assert_eq!(sim.supervisor.lookup("b"), []);
}
