//! The pure parts of the metrics: exit reasons, the recovery histogram's buckets, and
//! the rendered text of a hand-made snapshot. The endpoint itself is tested through
//! the real binary in tests/metrics.rs.

use super::*;
use crate::procfs::GroupUsage;
use render::Units;
use std::collections::HashMap;

#[test]
fn each_end_has_one_reason_and_a_death_by_signal_is_not_an_abnormal_exit_code() {
    let exited = ExitStatus::Exited(3);
    let killed = ExitStatus::Signaled(libc::SIGKILL);
    assert_eq!(
        ExitReason::of(EndKind::Abnormal, exited),
        ExitReason::Abnormal
    );
    assert_eq!(
        ExitReason::of(EndKind::Abnormal, killed),
        ExitReason::Signal
    );
    assert_eq!(ExitReason::of(EndKind::Normal, killed), ExitReason::Normal);
    assert_eq!(
        ExitReason::of(EndKind::Stopped, killed),
        ExitReason::Stopped
    );
    assert_eq!(
        ExitReason::of(EndKind::Failure(FailureReason::ReadyDeadline), exited),
        ExitReason::ReadyDeadline
    );
    assert_eq!(
        ExitReason::of(EndKind::StartFailure, exited),
        ExitReason::StartFailure
    );
    for (index, reason) in ExitReason::ALL.iter().enumerate() {
        assert_eq!(reason.index(), index, "{reason:?}");
    }
}

#[test]
fn a_recovery_lands_in_the_first_bucket_that_holds_it_and_beyond_the_last_in_inf_only() {
    let mut recovery = Recovery::default();
    recovery.observe(Duration::from_micros(500));
    recovery.observe(Duration::from_millis(1));
    recovery.observe(Duration::from_millis(3));
    recovery.observe(Duration::from_secs(600));
    assert_eq!(recovery.buckets[0], 2);
    assert_eq!(recovery.buckets[2], 1, "3 ms is in the 5 ms bucket");
    assert_eq!(recovery.buckets.iter().sum::<u64>(), 3);
    assert_eq!(recovery.count, 4);
    assert!((recovery.sum - 600.0045).abs() < 1e-9, "{}", recovery.sum);
}

fn snapshot() -> Snapshot {
    let mut counters = ServiceCounters::default();
    counters.exits[ExitReason::Signal.index()] = 2;
    counters.recovery.observe(Duration::from_millis(2));
    counters.recovery.observe(Duration::from_secs(2));
    Snapshot {
        phase: Phase::Running,
        info: vec![ServiceInfo {
            name: "web".into(),
            group: "front".into(),
            ready_check: true,
        }]
        .into(),
        services: vec![ServiceState {
            pid: Some(4242),
            up: true,
            ready: true,
            settled: true,
            restarts: 2,
            counters,
        }],
        groups: vec![GroupState {
            name: "front".into(),
            restarts_in_period: 1,
            escalations: 0,
        }],
        orphans_reaped: 7,
        log_lines_dropped: 0,
    }
}

#[test]
fn the_text_has_every_family_with_its_labels_and_cumulative_buckets() {
    let usage = HashMap::from([(
        4242,
        GroupUsage {
            cpu_ticks: 250,
            rss_pages: 3,
        },
    )]);
    let units = Units {
        ticks_per_second: 100,
        page_size: 4096,
    };
    let text = render(&snapshot(), &usage, units, Vec::new());
    let labels = r#"{service="web",group="front"}"#;
    for line in [
        format!("minder_service_up{labels} 1"),
        format!("minder_service_restarts_total{labels} 2"),
        r#"minder_service_exits_total{service="web",group="front",reason="signal"} 2"#.into(),
        r#"minder_service_exits_total{service="web",group="front",reason="abnormal"} 0"#.into(),
        format!("minder_service_cpu_seconds_total{labels} 2.5"),
        format!("minder_service_memory_bytes{labels} 12288"),
        r#"minder_service_recovery_seconds_bucket{service="web",group="front",le="0.001"} 0"#
            .into(),
        r#"minder_service_recovery_seconds_bucket{service="web",group="front",le="0.0025"} 1"#
            .into(),
        r#"minder_service_recovery_seconds_bucket{service="web",group="front",le="5"} 2"#.into(),
        r#"minder_service_recovery_seconds_bucket{service="web",group="front",le="+Inf"} 2"#.into(),
        format!("minder_service_recovery_seconds_count{labels} 2"),
        r#"minder_group_restarts_in_period{group="front"} 1"#.into(),
        "minder_orphans_reaped_total 7".into(),
        format!(
            r#"minder_build_info{{version="{}"}} 1"#,
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(
            text.lines().any(|have| have == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(text.contains("# TYPE minder_service_recovery_seconds histogram\n"));
}

#[test]
fn a_tree_without_services_still_renders_every_other_family() {
    let mut empty = snapshot();
    empty.info = Vec::new().into();
    empty.services.clear();
    let units = Units {
        ticks_per_second: 100,
        page_size: 4096,
    };
    let text = render(&empty, &HashMap::new(), units, Vec::new());
    assert!(!text.contains("minder_service_"), "{text}");
    for family in [
        "minder_group_escalations_total{group=\"front\"} 0",
        "minder_orphans_reaped_total 7",
        "minder_log_lines_dropped_total 0",
    ] {
        assert!(
            text.lines().any(|line| line == family),
            "{family} in:\n{text}"
        );
    }
}
