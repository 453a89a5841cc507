//! The stat parser on awkward command names (made up, and real ones set with
//! `prctl(PR_SET_NAME)`), on malformed text, and on random bytes; the readers against
//! this test's own process.

use super::*;
use proptest::prelude::*;

/// A stat line as the kernel writes it (52 fields, field 24 the resident pages), with
/// the given command name and numbers; the other fields are small distinct numbers.
fn stat_line(
    pid: i32,
    comm: &[u8],
    state: u8,
    ppid: i32,
    pgrp: i32,
    session: i32,
    rss: i64,
) -> Vec<u8> {
    let mut line = format!("{pid} (").into_bytes();
    line.extend_from_slice(comm);
    line.extend_from_slice(b") ");
    line.push(state);
    line.extend_from_slice(format!(" {ppid} {pgrp} {session}").as_bytes());
    for field in 7..=23 {
        line.extend_from_slice(format!(" {}", field * 11).as_bytes());
    }
    line.extend_from_slice(format!(" {rss}").as_bytes());
    for field in 25..=52 {
        line.extend_from_slice(format!(" {}", field * 13).as_bytes());
    }
    line.push(b'\n');
    line
}

fn parsed(comm: &[u8]) -> Stat {
    let line = stat_line(4242, comm, b'S', 1, 4242, 4242, 300);
    parse_stat(&line)
        .unwrap_or_else(|| panic!("did not parse {:?}", String::from_utf8_lossy(&line)))
}

#[test]
fn a_command_name_with_spaces_and_parentheses_is_read_whole() {
    for comm in [
        &b"sleep"[..],
        b"",
        b" ",
        b"a b",
        b")",
        b"(",
        b"()",
        b") (",
        b"x) S 1 2 3 (",
        b"evil) R 9 9 9",
        b"))))",
        b"line\nbreak",
        b"\xff\xfe not utf-8",
        b"tab\there",
    ] {
        let stat = parsed(comm);
        assert_eq!(stat.comm, comm, "{:?}", String::from_utf8_lossy(comm));
        assert_eq!(
            (
                stat.pid,
                stat.state,
                stat.ppid,
                stat.pgrp,
                stat.session,
                stat.rss_pages
            ),
            (4242, b'S', 1, 4242, 4242, 300),
            "{:?}",
            String::from_utf8_lossy(comm)
        );
    }
}

#[test]
fn a_negative_resident_set_reads_as_zero() {
    let line = stat_line(7, b"x", b'R', 1, 7, 7, -5);
    assert_eq!(parse_stat(&line).map(|stat| stat.rss_pages), Some(0));
}

#[test]
fn text_not_in_the_kernels_shape_is_refused() {
    let good = stat_line(7, b"x", b'R', 1, 7, 7, 5);
    let good_text = String::from_utf8(good.clone()).expect("ascii");
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"7".to_vec(),
        b"7 (x".to_vec(),
        b"7 x) R 1 7 7".to_vec(),
        // The parentheses the wrong way round.
        b"7 )x( R 1 7 7".to_vec(),
        // Too few fields: the resident set is missing.
        b"7 (x) R 1 7 7 0 0 0".to_vec(),
        // Not a pid.
        good_text.replacen("7 (", "seven (", 1).into_bytes(),
        good_text.replacen("7 (", "-", 1).into_bytes(),
        // The state must be one letter.
        good_text.replacen(") R ", ") RR ", 1).into_bytes(),
        good_text.replacen(") R ", ") 5 ", 1).into_bytes(),
        // A pid out of range.
        good_text.replacen("7 (", "99999999999 (", 1).into_bytes(),
    ];
    assert!(parse_stat(&good).is_some());
    for case in cases {
        assert_eq!(
            parse_stat(&case),
            None,
            "{:?}",
            String::from_utf8_lossy(&case)
        );
    }
}

/// Sets the calling thread's name, as a process can to confuse a naive parser.
fn name_this_thread(name: &[u8]) {
    let name = std::ffi::CString::new(name).expect("no NUL in the name");
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of which it copies at most
    // 16 bytes; `name` outlives the call.
    let result = unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0) };
    assert_eq!(result, 0, "prctl: {}", io::Error::last_os_error());
}

#[test]
fn the_kernels_own_stat_of_a_thread_named_to_mislead_parses() {
    // The test's thread is a task whose stat has the process's format.
    name_this_thread(b") (x) S 1 2 3");
    let text = std::fs::read("/proc/thread-self/stat").expect("read /proc/thread-self/stat");
    let stat = parse_stat(&text).expect("parse");
    // The kernel keeps 15 bytes of the name.
    assert_eq!(stat.comm, b") (x) S 1 2 3");
    assert_eq!(stat.state, b'R');
    assert_eq!(stat.pgrp, nix::unistd::getpgrp().as_raw());
    assert_eq!(stat.ppid, nix::unistd::getppid().as_raw());
    let session = nix::unistd::getsid(None).expect("getsid").as_raw();
    assert_eq!(stat.session, session);
    assert!(stat.rss_pages > 0, "a running test has resident pages");
    name_this_thread(b"0123456789abcdefghij");
    let text = std::fs::read("/proc/thread-self/stat").expect("read /proc/thread-self/stat");
    assert_eq!(
        parse_stat(&text).map(|stat| stat.comm),
        Some(b"0123456789abcde".to_vec())
    );
}

#[test]
fn this_process_is_found_by_the_walk_and_read_by_pid() {
    let me = std::process::id() as i32;
    assert!(pids().any(|pid| pid == me));
    let mine = stat(me).expect("stat of this process");
    assert_eq!(mine.pid, me);
    assert_eq!(mine.ppid, nix::unistd::getppid().as_raw());
    assert!(!mine.is_dead());
    let found = processes()
        .find(|process| process.pid == me)
        .expect("in the walk");
    assert_eq!((found.pgrp, found.session), (mine.pgrp, mine.session));
    // pid 0 never exists in /proc.
    assert_eq!(
        stat(0).map_err(|error| error.kind()).err(),
        Some(io::ErrorKind::NotFound)
    );
}

#[test]
fn the_usage_of_this_process_group_counts_its_cpu_time_and_memory() {
    let mine = stat(std::process::id() as i32).expect("stat of this process");
    // Burn CPU until the kernel has charged at least one tick (bounded: a tick is
    // 10 ms at USER_HZ 100).
    let started = std::time::Instant::now();
    let mut spin = 0u64;
    while stat(mine.pid).expect("stat").cpu_ticks == 0
        && started.elapsed() < std::time::Duration::from_secs(5)
    {
        spin = spin.wrapping_add(std::hint::black_box(1));
    }
    let usage = usage_by_group();
    let group = usage.get(&mine.pgrp).expect("this process's group");
    assert!(group.cpu_ticks >= 1, "{group:?} after {spin} spins");
    assert!(group.rss_pages >= 1, "{group:?}");
    assert!(clock_ticks_per_second() >= 1);
}

#[test]
fn status_fields_are_found_by_key() {
    let text = "Name:\tsleep\nState:\tS (sleeping)\nThreads:\t12\nVmRSS:\t  1024 kB\n";
    assert_eq!(parse_status_field(text, "Threads"), Some("12"));
    assert_eq!(parse_status_field(text, "VmRSS"), Some("1024 kB"));
    assert_eq!(parse_status_field(text, "State"), Some("S (sleeping)"));
    assert_eq!(parse_status_field(text, "Thread"), None);
    assert_eq!(parse_status_field(text, "Missing"), None);
    assert_eq!(parse_status_field("", "Threads"), None);
    // A name with a colon in it is still just the Name line's value.
    assert_eq!(parse_status_field("Name:\ta:b\n", "Name"), Some("a:b"));

    let me = std::process::id() as i32;
    let threads = status_field(me, "Threads").expect("read status");
    let threads: usize = threads.expect("a Threads line").parse().expect("a number");
    assert!(threads >= 1);
    assert_eq!(status_field(me, "NoSuchKey").expect("read status"), None);
}

proptest! {
    #[test]
    fn random_bytes_never_panic_the_stat_parser(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = parse_stat(&bytes);
    }

    #[test]
    fn random_bytes_around_a_stat_shape_never_panic(
        head in proptest::collection::vec(any::<u8>(), 0..20),
        comm in proptest::collection::vec(any::<u8>(), 0..20),
        tail in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        // Text that has the `pid (comm) ` opening, so the parser reaches the fields.
        let mut text = head;
        text.extend_from_slice(b" (");
        text.extend_from_slice(&comm);
        text.extend_from_slice(b") ");
        text.extend_from_slice(&tail);
        let _ = parse_stat(&text);
    }

    #[test]
    fn any_command_name_and_numbers_round_trip(
        comm in proptest::collection::vec(1u8..=255, 0..32),
        pid in 1..i32::MAX,
        state in proptest::sample::select(b"RSDZTtXIPWK".to_vec()),
        ppid in 0..i32::MAX,
        pgrp in 0..i32::MAX,
        session in 0..i32::MAX,
        rss in 0..i64::MAX,
    ) {
        let line = stat_line(pid, &comm, state, ppid, pgrp, session, rss);
        let stat = parse_stat(&line);
        prop_assert_eq!(
            stat,
            Some(Stat {
                pid,
                comm,
                state,
                ppid,
                pgrp,
                session,
                cpu_ticks: (14..=17).map(|field| field * 11).sum(),
                rss_pages: rss as u64,
            })
        );
    }
}
