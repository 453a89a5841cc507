//! The record of a running process against real processes: ending it kills its process
//! group and its exec probes' groups, cancelling a probe run stops that run only, and
//! the books stay right across generations.
//!
//! These tests collect children with `process::reap`, which takes *any* child of the
//! test process, so each test starts with `own_process!` (one process per test under
//! any runner, see `crate::own_process`).

use super::*;
use crate::process::{SpawnRequest, StdioMode};
use crate::spec::ServiceSpec;
use crate::supervisor::ExitStatus;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const SERVICE: ServiceId = ServiceId(3);

fn child(generation: u64) -> ChildRef {
    ChildRef {
        id: SERVICE,
        generation,
    }
}

/// `sleep 100` in a session of its own, as the loop spawns services and probes.
fn sleeper() -> i32 {
    let spec = ServiceSpec::new(
        "t",
        vec!["sleep".to_string(), "100".to_string()],
        std::path::PathBuf::from("/"),
    );
    process::spawn(&SpawnRequest::new(&spec, StdioMode::Null, &[]))
        .unwrap_or_else(|error| panic!("{error}"))
        .pid
}

/// Collects `pids` (bounded), with how each ended.
fn collect(pids: &[i32]) -> HashMap<i32, ExitStatus> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut ended = HashMap::new();
    while pids.iter().any(|pid| !ended.contains_key(pid)) {
        assert!(
            Instant::now() < deadline,
            "not all of {pids:?} ended: {ended:?}"
        );
        ended.extend(process::reap());
        std::thread::sleep(Duration::from_millis(5));
    }
    ended
}

#[test]
fn ending_a_record_kills_its_group_and_its_probes_still_running() {
    crate::own_process::own_process!(ending_a_record_kills_its_group_and_its_probes_still_running);
    let main = sleeper();
    let running_probe = sleeper();
    let finished_probe = sleeper();
    let mut records = Incarnations::default();
    let mut record = Incarnation::new(child(1), main);
    record.add_exec_probe(ProbeKind::Health, 1, running_probe);
    record.add_exec_probe(ProbeKind::Health, 2, finished_probe);
    records.insert(record);
    assert!(records.is_current(child(1)));
    assert!(!records.is_current(child(2)));

    // One probe ends on its own and is reaped: the record forgets it, so its pid
    // (free for reuse from now on) is never signalled.
    process::kill_group(finished_probe);
    collect(&[finished_probe]);
    assert!(records.exec_probe_reaped(child(1), finished_probe));
    assert!(!records.exec_probe_reaped(child(1), finished_probe));
    let other = sleeper();

    // The main process's record ends (as when the reaper collects it): its drop kills
    // the main process's group and the probe still running, and nothing else.
    assert_eq!(records.end(main), Some(child(1)));
    assert_eq!(records.end(main), None);
    assert!(!records.is_current(child(1)));
    assert_eq!(records.len(), 0);
    let ended = collect(&[main, running_probe]);
    assert_eq!(ended[&main], ExitStatus::Signaled(libc::SIGKILL));
    assert_eq!(ended[&running_probe], ExitStatus::Signaled(libc::SIGKILL));
    assert!(crate::procfs::stat(other).is_ok_and(|stat| !stat.is_dead()));
    process::kill_group(other);
    collect(&[other]);
}

#[tokio::test]
async fn cancelling_a_probe_run_stops_only_that_run() {
    crate::own_process::own_process!(cancelling_a_probe_run_stops_only_that_run);
    let main = sleeper();
    let cancelled_exec = sleeper();
    let other_run = sleeper();
    let network = tokio::spawn(std::future::pending::<()>()).abort_handle();
    let other_network = tokio::spawn(std::future::pending::<()>()).abort_handle();
    let mut records = Incarnations::default();
    let mut record = Incarnation::new(child(1), main);
    record.add_exec_probe(ProbeKind::Ready, 4, cancelled_exec);
    record.add_exec_probe(ProbeKind::Ready, 5, other_run);
    record.add_network_probe(ProbeKind::Health, 4, network.clone());
    record.add_network_probe(ProbeKind::Health, 5, other_network.clone());
    records.insert(record);
    let record = records
        .current_mut(child(1))
        .unwrap_or_else(|| panic!("child 1 runs"));

    // The exec probe of that run is killed (and returned, for the loop's books); the
    // other run's probe and the main process are left alone.
    assert_eq!(
        record.cancel_probe(ProbeKind::Ready, 4),
        vec![cancelled_exec]
    );
    let ended = collect(&[cancelled_exec]);
    assert_eq!(ended[&cancelled_exec], ExitStatus::Signaled(libc::SIGKILL));
    assert!(crate::procfs::stat(other_run).is_ok_and(|stat| !stat.is_dead()));
    assert!(crate::procfs::stat(main).is_ok_and(|stat| !stat.is_dead()));
    // Reaped: the record forgets it, so its pid is never signalled again.
    assert!(records.exec_probe_reaped(child(1), cancelled_exec));
    let record = records
        .current_mut(child(1))
        .unwrap_or_else(|| panic!("child 1 runs"));

    // The network probe of that run is aborted, the other one still runs.
    assert!(record.cancel_probe(ProbeKind::Health, 4).is_empty());
    tokio::task::yield_now().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !network.is_finished() {
        assert!(Instant::now() < deadline, "the cancelled task did not end");
        tokio::task::yield_now().await;
    }
    assert!(!other_network.is_finished());

    // The record's end stops what is left: the other run's exec probe and task.
    assert_eq!(records.end(main), Some(child(1)));
    let ended = collect(&[main, other_run]);
    assert_eq!(ended[&other_run], ExitStatus::Signaled(libc::SIGKILL));
    while !other_network.is_finished() {
        assert!(Instant::now() < deadline, "the record's task did not end");
        tokio::task::yield_now().await;
    }
}
