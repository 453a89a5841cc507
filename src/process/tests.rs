//! Tests of spawn, reap and signalling with real processes, read back through /proc.
//!
//! `reap()` collects *every* child of the test process, so under plain `cargo test`,
//! where tests share a process, one test can steal another's exit. Most tests only
//! look at pids they spawned, but some assert that nothing else is left to reap or
//! change process-wide limits and environment, and under load a steal also delays a
//! bounded wait. So every test here starts with `own_process!`: one process per test
//! under any runner, as nextest gives (see `crate::own_process`).
//!
//! Each test that checks an OS property also checks that the parent really had the
//! property being cleaned (a negative control), so it fails if the cleaning breaks.

use super::*;
use crate::spec::{Rlimit, RlimitResource, ServiceSpec};
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn service(command: &[&str], working_dir: &Path) -> ServiceSpec {
    ServiceSpec::new(
        "t",
        command.iter().map(|s| s.to_string()).collect(),
        working_dir.to_path_buf(),
    )
}

fn start(spec: &ServiceSpec) -> SpawnedProcess {
    spawn(&SpawnRequest::new(spec, StdioMode::Capture, &[]))
        .unwrap_or_else(|error| panic!("spawn failed: {error}"))
}

fn start_error(spec: &ServiceSpec) -> SpawnError {
    match spawn(&SpawnRequest::new(spec, StdioMode::Capture, &[])) {
        Ok(child) => panic!(
            "spawn of {:?} succeeded with pid {}",
            spec.command, child.pid
        ),
        Err(error) => error,
    }
}

/// Exits collected so far, keyed by pid; a bounded wait for one of them.
#[derive(Default)]
struct Reaped(HashMap<i32, ExitStatus>);

impl Reaped {
    fn wait_for(&mut self, pid: i32) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.0.extend(reap());
            if let Some(status) = self.0.get(&pid) {
                return *status;
            }
            assert!(Instant::now() < deadline, "pid {pid} did not exit in 10 s");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

fn wait_for_exit(pid: i32) -> ExitStatus {
    Reaped::default().wait_for(pid)
}

/// Kills a test child's group and collects it.
fn finish(pid: i32) {
    kill_group(pid);
    assert_eq!(wait_for_exit(pid), ExitStatus::Signaled(libc::SIGKILL));
}

fn proc_status_field(pid: &str, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|error| panic!("read /proc/{pid}/status: {error}"));
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// (pgrp, session) from /proc/PID/stat; fields after the `)` that ends comm.
fn pgrp_and_session(pid: i32) -> (i32, i32) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|error| panic!("read stat: {error}"));
    let after_comm = &stat[stat.rfind(')').unwrap_or(0) + 1..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // state ppid pgrp session
    let parse = |s: &str| s.parse::<i32>().unwrap_or_else(|e| panic!("{s}: {e}"));
    (parse(fields[2]), parse(fields[3]))
}

/// The environment of `pid`, read from /proc once the new program has it. `spawn`
/// returns as soon as the child's exec has replaced its memory; the kernel copies the
/// environment onto the new stack a moment later, and until then /proc shows none.
/// (Every child here has one: it inherits the test's.)
fn child_environment(pid: i32) -> HashMap<String, String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let bytes = std::fs::read(format!("/proc/{pid}/environ"))
            .unwrap_or_else(|error| panic!("read environ: {error}"));
        let environment: HashMap<String, String> = bytes
            .split(|&b| b == 0)
            .filter(|entry| !entry.is_empty())
            .filter_map(|entry| {
                let entry = String::from_utf8_lossy(entry);
                let (key, value) = entry.split_once('=')?;
                Some((key.to_string(), value.to_string()))
            })
            .collect();
        if !environment.is_empty() {
            return environment;
        }
        assert!(Instant::now() < deadline, "pid {pid} has no environment");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn write_script(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap_or_else(|error| panic!("write script: {error}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|error| panic!("chmod script: {error}"));
    path
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap_or_else(|error| panic!("tempdir: {error}"))
}

#[test]
fn reap_reports_exit_codes_and_signals() {
    crate::own_process::own_process!(reap_reports_exit_codes_and_signals);
    let root = Path::new("/");
    let exited = start(&service(&["/bin/sh", "-c", "exit 7"], root));
    let killed = start(&service(&["/bin/sh", "-c", "kill -TERM $$; sleep 5"], root));
    // A real-time signal: nix's WaitStatus cannot represent it, the reaper must.
    let realtime = libc::SIGRTMIN() + 3;
    let killed_rt = start(&service(
        &["/bin/sh", "-c", &format!("kill -{realtime} $$; sleep 5")],
        root,
    ));
    let mut reaped = Reaped::default();
    assert_eq!(reaped.wait_for(exited.pid), ExitStatus::Exited(7));
    assert_eq!(
        reaped.wait_for(killed.pid),
        ExitStatus::Signaled(libc::SIGTERM)
    );
    assert_eq!(
        reaped.wait_for(killed_rt.pid),
        ExitStatus::Signaled(realtime)
    );
}

#[test]
fn reap_drains_many_exits_and_never_blocks() {
    crate::own_process::own_process!(reap_drains_many_exits_and_never_blocks);
    let root = Path::new("/");
    let pids: Vec<i32> = (0..20)
        .map(|i| start(&service(&["/bin/sh", "-c", &format!("exit {i}")], root)).pid)
        .collect();
    let mut reaped = Reaped::default();
    for (i, pid) in pids.iter().enumerate() {
        assert_eq!(reaped.wait_for(*pid), ExitStatus::Exited(i as i32));
    }
    // Nothing left: returns at once (ECHILD), with a running child too (0).
    let started = Instant::now();
    assert!(reap().is_empty());
    let sleeper = start(&service(&["sleep", "30"], root));
    assert!(reap().is_empty());
    assert!(started.elapsed() < Duration::from_secs(1));
    finish(sleeper.pid);
}

#[test]
fn missing_command_is_127_with_the_path_in_the_reason() {
    crate::own_process::own_process!(missing_command_is_127_with_the_path_in_the_reason);
    let error = start_error(&service(&["/nonexistent/minder-test"], Path::new("/")));
    assert_eq!(error.code, CODE_NOT_FOUND);
    assert_eq!(
        error.reason,
        "spawn t: exec /nonexistent/minder-test: No such file or directory (os error 2)"
    );
    let error = start_error(&service(&["no-such-command-minder"], Path::new("/")));
    assert_eq!(error.code, CODE_NOT_FOUND, "{}", error.reason);
    assert!(
        error.reason.contains("exec no-such-command-minder"),
        "{}",
        error.reason
    );
}

#[test]
fn non_executable_command_is_126() {
    crate::own_process::own_process!(non_executable_command_is_126);
    let dir = temp_dir();
    write_script(dir.path(), "plain.txt", "#!/bin/sh\nexit 0\n", 0o644);
    let error = start_error(&service(&["./plain.txt"], dir.path()));
    assert_eq!(error.code, CODE_NOT_EXECUTABLE, "{}", error.reason);
    assert!(
        error.reason.contains("Permission denied"),
        "{}",
        error.reason
    );
    // A directory is found but cannot be executed either.
    let error = start_error(&service(&["/tmp"], dir.path()));
    assert_eq!(error.code, CODE_NOT_EXECUTABLE, "{}", error.reason);
    // (A file with the execute bit but no known format is not a failure: it runs
    // with /bin/sh, as execvp and shells do; see
    // `script_without_a_shebang_runs_with_bin_sh_as_execvp_does`.)
}

/// Regression for the std trap (docs/design.md §3): a failed exec on std's fork path
/// made std wait for the child itself, and a reaper that took it first turned that into
/// a panic. `spawn` now collects a failed child itself, by pid; here the reaper runs
/// between spawns on the same thread, as in the runtime, and must find nothing.
#[test]
fn repeated_exec_failures_do_not_panic() {
    crate::own_process::own_process!(repeated_exec_failures_do_not_panic);
    let spec = service(&["/nonexistent/minder-test"], Path::new("/"));
    let sleeper = start(&service(&["sleep", "30"], Path::new("/")));
    for _ in 0..200 {
        assert_eq!(start_error(&spec).code, CODE_NOT_FOUND);
        // Nothing of the failed children is left to reap; the sleeper is still running.
        assert!(reap().is_empty());
    }
    finish(sleeper.pid);
}

#[test]
fn capture_child_has_its_own_session_and_group() {
    crate::own_process::own_process!(capture_child_has_its_own_session_and_group);
    let child = start(&service(&["sleep", "30"], Path::new("/")));
    let (pgrp, session) = pgrp_and_session(child.pid);
    assert_eq!((pgrp, session), (child.pid, child.pid));
    // Negative control: the test process is in another session.
    assert_ne!(nix::unistd::getsid(None).map(|p| p.as_raw()), Ok(child.pid));
    assert!(child.stdout.is_some() && child.stderr.is_some());
    // stdin is /dev/null.
    let stdin = std::fs::read_link(format!("/proc/{}/fd/0", child.pid))
        .unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(stdin, Path::new("/dev/null"));
    finish(child.pid);
}

#[test]
fn foreground_child_has_its_own_group_in_our_session_and_our_stdio() {
    crate::own_process::own_process!(
        foreground_child_has_its_own_group_in_our_session_and_our_stdio
    );
    let spec = service(&["sleep", "30"], Path::new("/"));
    let child = spawn(&SpawnRequest::new(&spec, StdioMode::Foreground, &[]))
        .unwrap_or_else(|error| panic!("{error}"));
    let our_session = nix::unistd::getsid(None)
        .unwrap_or_else(|error| panic!("{error}"))
        .as_raw();
    assert_eq!(pgrp_and_session(child.pid), (child.pid, our_session));
    assert!(child.stdout.is_none() && child.stderr.is_none());
    for fd in 0..3 {
        let ours = std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
        let theirs = std::fs::read_link(format!("/proc/{}/fd/{fd}", child.pid)).ok();
        assert_eq!(ours, theirs, "fd {fd}");
    }
    finish(child.pid);
}

#[test]
fn child_gets_empty_signal_mask_and_default_dispositions() {
    crate::own_process::own_process!(child_gets_empty_signal_mask_and_default_dispositions);
    // What minder does to itself (prepare_supervisor), plus a blocked signal on the
    // forking thread and a handled one.
    // A real-time signal too: exec keeps SIG_IGN for those as well.
    let realtime = libc::SIGRTMIN() + 2;
    for signal in [
        libc::SIGPIPE,
        libc::SIGTTOU,
        libc::SIGTTIN,
        libc::SIGUSR1,
        realtime,
    ] {
        // SAFETY: SIG_IGN installs no code.
        unsafe { libc::signal(signal, libc::SIG_IGN) };
    }
    let mut blocked = nix::sys::signal::SigSet::empty();
    blocked.add(nix::sys::signal::Signal::SIGUSR2);
    blocked.add(nix::sys::signal::Signal::SIGTERM);
    blocked
        .thread_block()
        .unwrap_or_else(|error| panic!("{error}"));

    // Negative control: the forking thread really has them blocked and ignored.
    let tid = nix::unistd::gettid();
    let ours = format!("self/task/{tid}");
    assert_ne!(proc_status_field(&ours, "SigBlk"), "0000000000000000");
    assert_ne!(proc_status_field(&ours, "SigIgn"), "0000000000000000");

    let child = start(&service(&["sleep", "30"], Path::new("/")));
    let pid = child.pid.to_string();
    assert_eq!(proc_status_field(&pid, "SigBlk"), "0000000000000000");
    assert_eq!(proc_status_field(&pid, "SigIgn"), "0000000000000000");
    blocked
        .thread_unblock()
        .unwrap_or_else(|error| panic!("{error}"));
    finish(child.pid);
}

/// Waits (at most 10 s) until `pid` runs `comm`. `spawn` returns as soon as the
/// child's exec has replaced its memory, and the kernel closes the close-on-exec fds
/// (and renames the process) a moment later: a test of what the new program has open
/// must wait for that.
fn wait_for_exec(pid: i32, comm: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map_or(true, |name| name.trim() != comm)
    {
        assert!(Instant::now() < deadline, "pid {pid} did not exec {comm}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn child_sees_no_fds_beyond_stdio() {
    crate::own_process::own_process!(child_sees_no_fds_beyond_stdio);
    // An fd minder inherited without close-on-exec (dup never sets it).
    let file = std::fs::File::open("/proc/self/stat").unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: dup of an open fd; the result is closed below.
    let leaked = unsafe { libc::dup(file.as_raw_fd()) };
    assert!(leaked >= 3);
    // Negative control: it really is inheritable.
    // SAFETY: fcntl on an fd we own.
    assert_eq!(
        unsafe { libc::fcntl(leaked, libc::F_GETFD) } & libc::FD_CLOEXEC,
        0
    );

    let child = start(&service(&["sleep", "30"], Path::new("/")));
    wait_for_exec(child.pid, "sleep");
    // `sleep` may still be opening its locale files just after exec; an fd it opens
    // itself goes away, one it inherited stays. So look until only 0, 1, 2 are left,
    // for a bounded time.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{}/fd", child.pid))
            .unwrap_or_else(|e| panic!("{e}"))
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        fds.sort_unstable();
        if fds == [0, 1, 2] || Instant::now() >= deadline {
            assert_eq!(fds, [0, 1, 2]);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: closing the fd dup'ed above.
    unsafe { libc::close(leaked) };
    finish(child.pid);
}

#[test]
fn environment_rules() {
    crate::own_process::own_process!(environment_rules);
    // SAFETY: nextest runs this test alone in its process; no other thread reads the
    // environment concurrently.
    unsafe {
        std::env::set_var("NOTIFY_SOCKET", "/run/systemd/notify");
        std::env::set_var("WATCHDOG_USEC", "1000000");
        std::env::set_var("WATCHDOG_PID", "1");
        std::env::set_var("LISTEN_FDS", "2");
        std::env::set_var("MINDER_TEST_INHERITED", "kept");
        std::env::set_var("FROM_ALL", "minder");
    }
    let dir = temp_dir();
    let env_file = dir.path().join("svc.env");
    std::fs::write(
        &env_file,
        "# env file\nFROM_ALL=file\nFILE_ONLY=\"quoted value\"\nFILE_AND_ENV=file\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut spec = service(&["sleep", "30"], dir.path());
    spec.env_file = Some(env_file);
    spec.env = vec![
        ("FILE_AND_ENV".into(), "env".into()),
        ("EXTRA".into(), "env".into()),
    ];
    spec.instance = Some(3);
    let extra = [("EXTRA".to_string(), "runtime".to_string())];
    let child = spawn(&SpawnRequest::new(&spec, StdioMode::Capture, &extra))
        .unwrap_or_else(|error| panic!("{error}"));
    let environment = child_environment(child.pid);
    for removed in [
        "NOTIFY_SOCKET",
        "WATCHDOG_USEC",
        "WATCHDOG_PID",
        "LISTEN_FDS",
    ] {
        assert!(!environment.contains_key(removed), "{removed} leaked");
    }
    let get = |key: &str| environment.get(key).map(String::as_str);
    assert_eq!(get("MINDER_TEST_INHERITED"), Some("kept"));
    assert_eq!(get("FROM_ALL"), Some("file"));
    assert_eq!(get("FILE_ONLY"), Some("quoted value"));
    assert_eq!(get("FILE_AND_ENV"), Some("env"));
    assert_eq!(get("EXTRA"), Some("runtime"));
    assert_eq!(get("MINDER_INSTANCE"), Some("3"));
    assert!(get("PATH").is_some());
    finish(child.pid);
}

#[test]
fn missing_env_file_is_an_error_naming_it() {
    crate::own_process::own_process!(missing_env_file_is_an_error_naming_it);
    let mut spec = service(&["true"], Path::new("/"));
    spec.env_file = Some(PathBuf::from("/nonexistent/db.env"));
    let error = start_error(&spec);
    assert_eq!(error.code, CODE_OTHER);
    assert_eq!(
        error.reason,
        "spawn t: read env file /nonexistent/db.env: No such file or directory (os error 2)"
    );
}

#[test]
fn relative_command_runs_from_the_working_dir_and_path_is_the_childs() {
    crate::own_process::own_process!(
        relative_command_runs_from_the_working_dir_and_path_is_the_childs
    );
    let dir = temp_dir();
    write_script(dir.path(), "hello.sh", "#!/bin/sh\nexec sleep 30\n", 0o755);
    let mut spec = service(&["./hello.sh"], dir.path());
    spec.umask = Some(0o027);
    spec.rlimits = vec![Rlimit {
        resource: RlimitResource::Core,
        soft: 0,
        hard: 0,
    }];
    let child = start(&spec);
    let pid = child.pid.to_string();
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cwd, dir.path());
    assert_eq!(proc_status_field(&pid, "Umask"), "0027");
    let limits =
        std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap_or_else(|e| panic!("{e}"));
    let core = limits
        .lines()
        .find(|line| line.starts_with("Max core file size"))
        .unwrap_or_default();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    finish(child.pid);

    // A bare name is searched in the PATH the child gets, not minder's.
    let bin = temp_dir();
    write_script(
        bin.path(),
        "minder-test-tool",
        "#!/bin/sh\nexit 42\n",
        0o755,
    );
    let mut spec = service(&["minder-test-tool"], dir.path());
    spec.env = vec![(
        "PATH".into(),
        format!("{}:/usr/bin:/bin", bin.path().display()),
    )];
    let child = start(&spec);
    assert_eq!(wait_for_exit(child.pid), ExitStatus::Exited(42));
}

#[test]
fn missing_working_dir_and_unknown_user_are_code_1() {
    crate::own_process::own_process!(missing_working_dir_and_unknown_user_are_code_1);
    let error = start_error(&service(&["true"], Path::new("/nonexistent/dir")));
    assert_eq!(error.code, CODE_OTHER);
    assert_eq!(
        error.reason,
        "spawn t: chdir /nonexistent/dir: No such file or directory (os error 2)"
    );
    let mut spec = service(&["true"], Path::new("/"));
    spec.user = Some("no-such-user-minder".into());
    let error = start_error(&spec);
    assert_eq!(error.code, CODE_OTHER);
    assert_eq!(error.reason, "spawn t: unknown user `no-such-user-minder`");
    assert!(
        start_error(&service(&[], Path::new("/")))
            .reason
            .contains("empty command")
    );
}

#[test]
fn user_nobody_gets_its_uid_gid_groups_and_passwd_environment() {
    crate::own_process::own_process!(user_nobody_gets_its_uid_gid_groups_and_passwd_environment);
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: switching users needs root (CI runs as root)");
        return;
    }
    let Ok(Some(nobody)) = nix::unistd::User::from_name("nobody") else {
        panic!("no user `nobody` on this machine");
    };
    let mut spec = service(&["sleep", "30"], Path::new("/"));
    spec.user = Some("nobody".into());
    spec.env = vec![("SHELL".into(), "/bin/custom".into())];
    let child = start(&spec);
    let pid = child.pid.to_string();
    let uid = nobody.uid.as_raw();
    let gid = nobody.gid.as_raw();
    assert_eq!(
        proc_status_field(&pid, "Uid"),
        format!("{uid}\t{uid}\t{uid}\t{uid}")
    );
    assert_eq!(
        proc_status_field(&pid, "Gid"),
        format!("{gid}\t{gid}\t{gid}\t{gid}")
    );
    let name = std::ffi::CString::new("nobody").unwrap_or_default();
    let mut expected: Vec<String> = nix::unistd::getgrouplist(&name, nobody.gid)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|g| g.as_raw().to_string())
        .collect();
    expected.sort();
    expected.dedup();
    let mut groups: Vec<String> = proc_status_field(&pid, "Groups")
        .split_whitespace()
        .map(String::from)
        .collect();
    groups.sort();
    // Negative control: root's own groups (0) must not have leaked.
    assert!(!groups.contains(&"0".to_string()) || gid == 0);
    assert_eq!(groups, expected);
    let environment = child_environment(child.pid);
    assert_eq!(environment.get("USER").map(String::as_str), Some("nobody"));
    assert_eq!(
        environment.get("LOGNAME").map(String::as_str),
        Some("nobody")
    );
    assert_eq!(
        environment.get("HOME").map(PathBuf::from),
        Some(nobody.dir.clone())
    );
    // `env` wins over the passwd entry.
    assert_eq!(
        environment.get("SHELL").map(String::as_str),
        Some("/bin/custom")
    );
    finish(child.pid);
}

#[test]
fn kill_group_kills_a_grandchild_that_ignores_sigterm() {
    crate::own_process::own_process!(kill_group_kills_a_grandchild_that_ignores_sigterm);
    // As in minder: orphans come back to us so we can reap and check them.
    let setup = prepare_supervisor();
    assert!(setup.subreaper || setup.is_pid1, "{:?}", setup.warnings);
    let dir = temp_dir();
    let pid_file = dir.path().join("grandchild.pid");
    let script = format!(
        "trap '' TERM; sleep 300 & echo $! > {}; wait",
        pid_file.display()
    );
    let child = start(&service(&["/bin/sh", "-c", &script], dir.path()));
    let deadline = Instant::now() + Duration::from_secs(10);
    let grandchild: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "no grandchild pid");
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(pgrp_and_session(grandchild).0, child.pid);

    // Negative control: SIGTERM to the group leaves both alive.
    signal_group(child.pid, libc::SIGTERM).unwrap_or_else(|e| panic!("{e}"));
    std::thread::sleep(Duration::from_millis(100));
    let mut reaped = Reaped::default();
    reaped.0.extend(reap());
    assert!(reaped.0.is_empty(), "{:?}", reaped.0);

    kill_group(child.pid);
    assert_eq!(
        reaped.wait_for(child.pid),
        ExitStatus::Signaled(libc::SIGKILL)
    );
    assert_eq!(
        reaped.wait_for(grandchild),
        ExitStatus::Signaled(libc::SIGKILL)
    );
    // The group is gone: signalling it again is ESRCH, killing it again is fine.
    assert_eq!(signal_group(child.pid, libc::SIGTERM), Err(Errno::ESRCH));
    kill_group(child.pid);
}

#[test]
fn signal_group_refuses_our_own_and_inits_group() {
    crate::own_process::own_process!(signal_group_refuses_our_own_and_inits_group);
    for pgid in [-5, 0, 1] {
        assert_eq!(signal_group(pgid, 0), Err(Errno::EINVAL));
    }
}

#[test]
fn prepare_supervisor_raises_nofile_and_services_get_the_original() {
    crate::own_process::own_process!(
        prepare_supervisor_raises_nofile_and_services_get_the_original
    );
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .unwrap_or_else(|e| panic!("{e}"));
    let original_soft = 1000.min(hard);
    nix::sys::resource::setrlimit(
        nix::sys::resource::Resource::RLIMIT_NOFILE,
        original_soft,
        hard,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // An inherited fd without close-on-exec.
    let file = std::fs::File::open("/proc/self/stat").unwrap_or_else(|e| panic!("{e}"));
    // SAFETY: dup of an open fd, closed below.
    let leaked = unsafe { libc::dup(file.as_raw_fd()) };

    let setup = prepare_supervisor();
    assert!(setup.warnings.is_empty(), "{:?}", setup.warnings);
    assert_eq!(setup.original_nofile, (original_soft, hard));
    assert!(setup.nofile.0 >= hard && setup.nofile.0 == setup.nofile.1);
    assert!(setup.inherited_fds_marked.contains(&leaked));
    // SAFETY: fcntl/close on the fd we own.
    unsafe {
        assert_ne!(libc::fcntl(leaked, libc::F_GETFD) & libc::FD_CLOEXEC, 0);
        libc::close(leaked);
    }
    assert_ne!(proc_status_field("self", "SigIgn"), "0000000000000000");

    let child = start(&service(&["sleep", "30"], Path::new("/")));
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", child.pid))
        .unwrap_or_else(|e| panic!("{e}"));
    let nofile = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .unwrap_or_default();
    let numbers: Vec<&str> = nofile.split_whitespace().skip(3).take(2).collect();
    assert_eq!(
        numbers,
        [original_soft.to_string(), hard.to_string()],
        "{nofile}"
    );
    assert_eq!(
        proc_status_field(&child.pid.to_string(), "SigIgn"),
        "0000000000000000"
    );
    finish(child.pid);
}

/// The fds open in `pid`, sorted.
/// `open_fds`, once it equals `expected` (bounded): a program starting up (the
/// dynamic loader, locale files) holds extra fds for an instant after exec.
fn settled_fds(pid: i32, expected: &[i32]) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let fds = open_fds(pid);
        if fds == expected || Instant::now() >= deadline {
            return fds;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("{e}"))
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    fds
}

#[test]
fn null_child_has_dev_null_on_0_1_2_and_its_own_session() {
    crate::own_process::own_process!(null_child_has_dev_null_on_0_1_2_and_its_own_session);
    let spec = service(&["sleep", "30"], Path::new("/"));
    let child = spawn(&SpawnRequest::new(&spec, StdioMode::Null, &[]))
        .unwrap_or_else(|error| panic!("{error}"));
    assert!(child.stdout.is_none() && child.stderr.is_none() && child.ready_fd.is_none());
    wait_for_exec(child.pid, "sleep");
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{}/fd/{fd}", child.pid))
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(target, Path::new("/dev/null"), "fd {fd}");
    }
    assert_eq!(settled_fds(child.pid, &[0, 1, 2]), [0, 1, 2]);
    assert_eq!(pgrp_and_session(child.pid), (child.pid, child.pid));
    finish(child.pid);
}

/// Reads from a blocking fd until a newline or end of file, at most 10 s (the child
/// is killed by `finish` otherwise, which ends the read with end of file).
fn read_line_or_eof(fd: std::os::fd::OwnedFd) -> Vec<u8> {
    use std::io::Read;
    let mut file = std::fs::File::from(fd);
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 64];
    loop {
        match file.read(&mut chunk) {
            Ok(0) => return bytes,
            Ok(n) => {
                bytes.extend_from_slice(&chunk[..n]);
                if bytes.contains(&b'\n') {
                    return bytes;
                }
            }
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => panic!("read readiness pipe: {error}"),
        }
    }
}

fn spawn_with_ready_fd(spec: &ServiceSpec, ready_fd: i32) -> SpawnedProcess {
    let mut request = SpawnRequest::new(spec, StdioMode::Capture, &[]);
    request.ready_fd = Some(ready_fd);
    spawn(&request).unwrap_or_else(|error| panic!("{error}"))
}

#[test]
fn ready_fd_gives_the_child_a_pipe_on_fd_n_and_nothing_else() {
    crate::own_process::own_process!(ready_fd_gives_the_child_a_pipe_on_fd_n_and_nothing_else);
    // Both ways the child can get fd N: N taken in the parent (by `occupied`: the
    // child's copy comes from dup2) and N free (the write end is moved onto it in the
    // parent first). Both must give the child exactly 0, 1, 2 and N.
    let occupied = std::fs::File::open("/dev/null").unwrap_or_else(|e| panic!("{e}"));
    let free = 200;
    // SAFETY: F_GETFD on a number we do not use; it only reports.
    assert!(
        unsafe { libc::fcntl(free, libc::F_GETFD) } < 0,
        "fd {free} is in use"
    );
    for target in [occupied.as_raw_fd(), free] {
        // bash, not sh: dash only redirects fds 0-9.
        let spec = service(
            &[
                "/bin/bash",
                "-c",
                &format!("echo >&{target}; exec sleep 30"),
            ],
            Path::new("/"),
        );
        let mut child = spawn_with_ready_fd(&spec, target);
        let Some(ready) = child.ready_fd.take() else {
            panic!("no readiness pipe returned");
        };
        assert_eq!(read_line_or_eof(ready), b"\n", "fd {target}");
        // The newline came before `exec sleep`; wait for the exec to be sure the fds
        // seen are sleep's.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{}/comm", child.pid))
            .map_or(true, |comm| comm.trim() != "sleep")
        {
            assert!(Instant::now() < deadline, "child did not exec sleep");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            settled_fds(child.pid, &[0, 1, 2, target]),
            [0, 1, 2, target],
            "fd {target}"
        );
        let link = std::fs::read_link(format!("/proc/{}/fd/{target}", child.pid))
            .unwrap_or_else(|error| panic!("{error}"));
        assert!(link.to_string_lossy().starts_with("pipe:"), "{link:?}");
        finish(child.pid);
    }
}

#[test]
fn ready_fd_reaches_end_of_file_when_the_child_exits_without_a_newline() {
    crate::own_process::own_process!(
        ready_fd_reaches_end_of_file_when_the_child_exits_without_a_newline
    );
    // minder must hold no copy of the write end, or this read would never end.
    let spec = service(&["/bin/sh", "-c", "printf x >&5; exit 0"], Path::new("/"));
    let mut child = spawn_with_ready_fd(&spec, 5);
    let Some(ready) = child.ready_fd.take() else {
        panic!("no readiness pipe returned");
    };
    assert_eq!(read_line_or_eof(ready), b"x");
    assert_eq!(wait_for_exit(child.pid), ExitStatus::Exited(0));
}

#[test]
fn ready_fd_below_3_is_refused() {
    crate::own_process::own_process!(ready_fd_below_3_is_refused);
    let spec = service(&["sleep", "30"], Path::new("/"));
    let mut request = SpawnRequest::new(&spec, StdioMode::Capture, &[]);
    request.ready_fd = Some(1);
    match spawn(&request) {
        Ok(child) => panic!("spawned {} with ready fd 1", child.pid),
        Err(error) => {
            assert_eq!(error.code, CODE_OTHER);
            assert!(error.reason.contains("readiness fd 1"), "{}", error.reason);
        }
    }
}

#[test]
fn exec_failure_with_a_ready_fd_is_still_reported() {
    crate::own_process::own_process!(exec_failure_with_a_ready_fd_is_still_reported);
    // The readiness fd must not displace anything the child still needs (it once
    // could land on std's exec-error pipe, and the failure went unreported).
    for target in [3, 4, 5, 6, 7, 8] {
        let spec = service(&["/nonexistent/minder-test"], Path::new("/"));
        let mut request = SpawnRequest::new(&spec, StdioMode::Capture, &[]);
        request.ready_fd = Some(target);
        match spawn(&request) {
            Ok(child) => panic!("spawn succeeded with pid {} (fd {target})", child.pid),
            Err(error) => assert_eq!(error.code, CODE_NOT_FOUND, "fd {target}: {error}"),
        }
    }
}

#[test]
fn service_owner_is_the_uid_and_gid_the_service_runs_as() {
    crate::own_process::own_process!(service_owner_is_the_uid_and_gid_the_service_runs_as);
    let mut spec = service(&["true"], Path::new("/"));
    assert_eq!(service_owner(&spec), Ok(None));
    spec.user = Some("nobody".into());
    assert_eq!(service_owner(&spec), Ok(Some((65534, 65534))));
    spec.group = Some("daemon".into());
    assert_eq!(service_owner(&spec), Ok(Some((65534, 1))));
    spec.user = None;
    let euid = nix::unistd::geteuid().as_raw();
    assert_eq!(service_owner(&spec), Ok(Some((euid, 1))));
    spec.user = Some("no-such-user-minder".into());
    assert!(service_owner(&spec).is_err());
}

/// Children of the test process that have ended and not been collected (state Z in
/// /proc/PID/stat, parent us).
fn zombie_children() -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(entries) = std::fs::read_dir("/proc") else {
        panic!("list /proc");
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            let after_comm = &stat[stat.rfind(')').unwrap_or(0) + 1..];
            let fields: Vec<&str> = after_comm.split_whitespace().collect();
            fields.first() == Some(&"Z") && fields.get(1) == Some(&me.to_string().as_str())
        })
        .collect()
}

/// The calling thread's blocked-signal mask, as /proc shows it.
fn thread_signal_mask() -> String {
    proc_status_field(&format!("self/task/{}", nix::unistd::gettid()), "SigBlk")
}

#[test]
fn zombie_children_sees_an_uncollected_child() {
    crate::own_process::own_process!(zombie_children_sees_an_uncollected_child);
    // Negative control for the zombie checks below: a child that has exited and
    // not been collected is listed until `reap` takes it.
    let child = start(&service(&["true"], Path::new("/")));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !zombie_children().contains(&child.pid) {
        assert!(
            Instant::now() < deadline,
            "pid {} never became a zombie",
            child.pid
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(wait_for_exit(child.pid), ExitStatus::Exited(0));
    assert!(zombie_children().is_empty(), "{:?}", zombie_children());
}

#[test]
fn failed_spawns_leave_no_zombie_and_nothing_to_reap() {
    crate::own_process::own_process!(failed_spawns_leave_no_zombie_and_nothing_to_reap);
    let dir = temp_dir();
    write_script(dir.path(), "plain.txt", "#!/bin/sh\nexit 0\n", 0o644);
    let mut bad_limit = service(&["true"], Path::new("/"));
    // soft above hard: setrlimit refuses it in the child.
    bad_limit.rlimits = vec![Rlimit {
        resource: RlimitResource::Core,
        soft: 10,
        hard: 5,
    }];
    let cases = [
        (
            service(&["/nonexistent/minder-test"], Path::new("/")),
            CODE_NOT_FOUND,
            "spawn t: exec /nonexistent/minder-test: No such file or directory (os error 2)"
                .to_string(),
        ),
        (
            service(&["./plain.txt"], dir.path()),
            CODE_NOT_EXECUTABLE,
            format!(
                "spawn t: exec {}: Permission denied (os error 13)",
                dir.path().join("./plain.txt").display()
            ),
        ),
        (
            service(&["true"], Path::new("/nonexistent/dir")),
            CODE_OTHER,
            "spawn t: chdir /nonexistent/dir: No such file or directory (os error 2)".into(),
        ),
        (
            bad_limit,
            CODE_OTHER,
            "spawn t: set resource limits: Invalid argument (os error 22)".into(),
        ),
    ];
    let mask = thread_signal_mask();
    for (spec, code, reason) in &cases {
        let error = start_error(spec);
        assert_eq!((error.code, &error.reason), (*code, reason));
        assert!(
            zombie_children().is_empty(),
            "{reason}: {:?}",
            zombie_children()
        );
        assert!(reap().is_empty(), "{reason}: something was left to reap");
        assert_eq!(thread_signal_mask(), mask, "{reason}: signal mask changed");
    }
}

#[test]
fn script_without_a_shebang_runs_with_bin_sh_as_execvp_does() {
    crate::own_process::own_process!(script_without_a_shebang_runs_with_bin_sh_as_execvp_does);
    let dir = temp_dir();
    let out = dir.path().join("out");
    let body = format!("echo \"$0 $*\" > {}\nexit 42\n", out.display());
    write_script(dir.path(), "no-shebang", &body, 0o755);
    // A path: run as `/bin/sh PATH ARGS`.
    let child = start(&service(&["./no-shebang", "a", "b c"], dir.path()));
    assert_eq!(wait_for_exit(child.pid), ExitStatus::Exited(42));
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        text,
        format!("{} a b c\n", dir.path().join("./no-shebang").display())
    );
    // A bare name found in PATH: the same, with the directory it was found in.
    let mut spec = service(&["no-shebang", "x"], Path::new("/"));
    spec.env = vec![(
        "PATH".into(),
        format!("/nonexistent:{}:/usr/bin:/bin", dir.path().display()),
    )];
    let child = start(&spec);
    assert_eq!(wait_for_exit(child.pid), ExitStatus::Exited(42));
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text, format!("{}/no-shebang x\n", dir.path().display()));
}

#[test]
fn path_search_reports_permission_denied_over_not_found() {
    crate::own_process::own_process!(path_search_reports_permission_denied_over_not_found);
    // execvp's rule: keep searching after EACCES, and report it if nothing runs.
    let dir = temp_dir();
    write_script(dir.path(), "minder-test-tool", "#!/bin/sh\nexit 0\n", 0o644);
    let mut spec = service(&["minder-test-tool"], Path::new("/"));
    spec.env = vec![(
        "PATH".into(),
        format!("/nonexistent:{}:/usr/bin:/bin", dir.path().display()),
    )];
    let error = start_error(&spec);
    assert_eq!(error.code, CODE_NOT_EXECUTABLE, "{}", error.reason);
    assert_eq!(
        error.reason,
        "spawn t: exec minder-test-tool: Permission denied (os error 13)"
    );
    // Found later in PATH with the execute bit: that one runs.
    let later = temp_dir();
    write_script(
        later.path(),
        "minder-test-tool",
        "#!/bin/sh\nexit 9\n",
        0o755,
    );
    spec.env = vec![(
        "PATH".into(),
        format!("{}:{}", dir.path().display(), later.path().display()),
    )];
    let child = start(&spec);
    assert_eq!(wait_for_exit(child.pid), ExitStatus::Exited(9));
}

static SIGUSR1_IN_PARENT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static SIGUSR1_ELSEWHERE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static TEST_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn count_sigusr1(_: libc::c_int) {
    use std::sync::atomic::Ordering::Relaxed;
    // The raw system call: which process is running this handler? A child sharing
    // our memory (between clone and exec) would count in `SIGUSR1_ELSEWHERE`, and we
    // would see it, since the counter is in that shared memory.
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::syscall(libc::SYS_getpid) } as i32;
    if pid == TEST_PID.load(Relaxed) {
        SIGUSR1_IN_PARENT.fetch_add(1, Relaxed);
    } else {
        SIGUSR1_ELSEWHERE.fetch_add(1, Relaxed);
    }
}

#[test]
fn signals_during_spawn_never_run_a_handler_in_the_child() {
    crate::own_process::own_process!(signals_during_spawn_never_run_a_handler_in_the_child);
    use std::sync::atomic::Ordering::Relaxed;
    let me = std::process::id() as i32;
    TEST_PID.store(me, Relaxed);
    // SAFETY: installing a handler that only touches atomics and makes a raw
    // system call (async-signal-safe).
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count_sigusr1 as *const () as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        assert_eq!(
            libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()),
            0
        );
    }
    // Send to our process group when we lead one (nextest gives each test its own;
    // otherwise make one), so that each child gets the signal too while it is still
    // in our group, between clone and setsid. Never signal a group we do not lead: it
    // could be the test runner's.
    // SAFETY: getpgrp and setpgid have no memory-safety preconditions.
    let group_wide = unsafe { libc::getpgrp() == me || libc::setpgid(0, 0) == 0 };
    let target = if group_wide { 0 } else { me };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut sent = 0u64;
            while !stop.load(Relaxed) {
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(target, libc::SIGUSR1) };
                sent += 1;
                // Often enough to hit many spawns, rarely enough to miss some, so that
                // both kinds of child are seen.
                std::thread::sleep(Duration::from_micros(50));
            }
            sent
        })
    };

    let mask = thread_signal_mask();
    let ok = service(&["true"], Path::new("/"));
    let missing = service(&["/nonexistent/minder-test"], Path::new("/"));
    let mut reaped = Reaped::default();
    let mut started = Vec::new();
    for i in 0..500 {
        let spec = if i % 10 == 9 { &missing } else { &ok };
        match spawn(&SpawnRequest::new(spec, StdioMode::Capture, &[])) {
            Ok(child) => started.push((child.pid, i % 10 == 9)),
            Err(error) => {
                assert_eq!(error.code, CODE_NOT_FOUND, "{error}");
                assert!(i % 10 == 9, "spawn {i} failed: {error}");
            }
        }
        assert_eq!(
            thread_signal_mask(),
            mask,
            "spawn {i} left the mask changed"
        );
        reaped.0.extend(reap());
    }
    stop.store(true, Relaxed);
    let sent = sender.join().unwrap_or_else(|_| panic!("sender panicked"));
    let mut killed_by_it = 0;
    for (pid, meant_to_fail) in started {
        let status = reaped.wait_for(pid);
        killed_by_it += usize::from(status == ExitStatus::Signaled(libc::SIGUSR1));
        // A child still in our group can die of the signal (default action, after
        // its handlers were reset): that is the signal doing its job. A child meant
        // to fail exec can only end that way, before reporting.
        let normal = if meant_to_fail {
            None
        } else {
            Some(ExitStatus::Exited(0))
        };
        assert!(
            Some(status) == normal || status == ExitStatus::Signaled(libc::SIGUSR1),
            "pid {pid}: {status:?}"
        );
    }
    assert!(zombie_children().is_empty(), "{:?}", zombie_children());
    assert_eq!(
        SIGUSR1_ELSEWHERE.load(Relaxed),
        0,
        "a handler ran in a child"
    );
    assert!(
        SIGUSR1_IN_PARENT.load(Relaxed) > 0,
        "no signal arrived ({sent} sent, group-wide: {group_wide})"
    );
    eprintln!(
        "{sent} signals sent (group-wide: {group_wide}), {} handled by the test process, \
         {killed_by_it} children ended by it",
        SIGUSR1_IN_PARENT.load(Relaxed)
    );
}

#[test]
fn every_stage_failure_reports_its_code_and_reason_and_leaves_no_zombie() {
    crate::own_process::own_process!(
        every_stage_failure_reports_its_code_and_reason_and_leaves_no_zombie
    );
    use super::spawn::{Stage, spawn_failing_at};
    // Our own uid and gid as "user": the steps then run (and would succeed) as root
    // and as anyone else, so each injected failure is reached.
    let me = nix::unistd::geteuid().as_raw().to_string();
    let mut spec = service(&["/bin/true"], Path::new("/"));
    spec.user = Some(me.clone());
    let cases = [
        (
            Stage::ProcessGroup,
            libc::EPERM,
            CODE_OTHER,
            "create the process group: Operation not permitted (os error 1)".to_string(),
        ),
        (
            Stage::Rlimit,
            libc::EINVAL,
            CODE_OTHER,
            "set resource limits: Invalid argument (os error 22)".into(),
        ),
        (
            Stage::Groups,
            libc::EPERM,
            CODE_OTHER,
            format!(
                "set supplementary groups of user `{me}`: Operation not permitted (os error 1)"
            ),
        ),
        (
            Stage::Gid,
            libc::EPERM,
            CODE_OTHER,
            format!(
                "switch to the primary group of user `{me}`: Operation not permitted (os error 1)"
            ),
        ),
        (
            Stage::Uid,
            libc::EAGAIN,
            CODE_OTHER,
            format!("switch to user `{me}`: Resource temporarily unavailable (os error 11)"),
        ),
        (
            Stage::ParentDeathSignal,
            libc::EINVAL,
            CODE_OTHER,
            "set the parent-death signal: Invalid argument (os error 22)".into(),
        ),
        (
            Stage::ParentGone,
            libc::ESRCH,
            CODE_OTHER,
            "minder exited during the spawn".into(),
        ),
        (
            Stage::Chdir,
            libc::EACCES,
            CODE_OTHER,
            "chdir /: Permission denied (os error 13)".into(),
        ),
        (
            Stage::Stdio,
            libc::EBADF,
            CODE_OTHER,
            "connect the standard streams: Bad file descriptor (os error 9)".into(),
        ),
        (
            Stage::ReadyFd,
            libc::EBADF,
            CODE_OTHER,
            "set up the readiness fd: Bad file descriptor (os error 9)".into(),
        ),
        (
            Stage::Exec,
            libc::ENOENT,
            CODE_NOT_FOUND,
            "exec /bin/true: No such file or directory (os error 2)".into(),
        ),
        (
            Stage::Exec,
            libc::ETXTBSY,
            CODE_NOT_EXECUTABLE,
            "exec /bin/true: Text file busy (os error 26)".into(),
        ),
    ];
    let mask = thread_signal_mask();
    for mode in [StdioMode::Capture, StdioMode::Foreground, StdioMode::Null] {
        for (stage, errno, code, reason) in &cases {
            let mut request = SpawnRequest::new(&spec, mode, &[]);
            request.ready_fd = Some(7);
            match spawn_failing_at(&request, *stage, *errno) {
                Ok(child) => panic!("{stage:?}: spawned {}", child.pid),
                Err(error) => {
                    assert_eq!(error.code, *code, "{stage:?} {mode:?}");
                    assert_eq!(error.reason, format!("spawn t: {reason}"), "{mode:?}");
                }
            }
            assert!(
                zombie_children().is_empty(),
                "{stage:?}: {:?}",
                zombie_children()
            );
            assert!(reap().is_empty(), "{stage:?}: something was left to reap");
            assert_eq!(thread_signal_mask(), mask, "{stage:?}: signal mask changed");
        }
    }
    // Negative control: without an injected failure the same request starts.
    let mut request = SpawnRequest::new(&spec, StdioMode::Capture, &[]);
    request.ready_fd = Some(7);
    let child = spawn(&request).unwrap_or_else(|error| panic!("{error}"));
    assert_eq!(wait_for_exit(child.pid), ExitStatus::Exited(0));
}

#[test]
fn spawn_restores_the_callers_signal_mask() {
    crate::own_process::own_process!(spawn_restores_the_callers_signal_mask);
    let mut blocked = nix::sys::signal::SigSet::empty();
    blocked.add(nix::sys::signal::Signal::SIGUSR2);
    blocked
        .thread_block()
        .unwrap_or_else(|error| panic!("{error}"));
    let before = thread_signal_mask();
    assert_ne!(before, "0000000000000000");
    let child = start(&service(&["sleep", "30"], Path::new("/")));
    assert_eq!(thread_signal_mask(), before);
    assert_eq!(
        proc_status_field(&child.pid.to_string(), "SigBlk"),
        "0000000000000000"
    );
    let _ = start_error(&service(&["/nonexistent/minder-test"], Path::new("/")));
    assert_eq!(thread_signal_mask(), before);
    blocked
        .thread_unblock()
        .unwrap_or_else(|error| panic!("{error}"));
    finish(child.pid);
}
