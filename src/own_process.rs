//! Test support: run a unit test in a process of its own, also under plain `cargo test`.
//!
//! Some unit tests depend on or change state that belongs to the whole process: they
//! reap with `waitpid(-1)` and then assert that nothing else was left to reap, they
//! raise `RLIMIT_NOFILE` through `process::prepare_supervisor`, or they read the
//! environment that `process` captures once. `cargo nextest run` (the project's
//! runner) gives every test a process anyway. Plain `cargo test` runs all tests of a
//! binary as threads of one process, where those tests would see each other's
//! children and limits. `own_process!()` at the top of such a test re-runs just that
//! test in a fresh process of the same test binary and reports its outcome; the body
//! then runs only there.
//!
//! The parent learns the outcome from the child's output (libtest's summary line),
//! not from its exit status: another test of the parent may be reaping with
//! `waitpid(-1)` at the same moment and could collect that status first.

use std::io::Read;
use std::process::{Command, Stdio};

/// Set in the environment of the process that runs the test's body.
const MARKER: &str = "MINDER_TEST_OWN_PROCESS";

/// Whether the calling test already has a process of its own: under nextest (which
/// runs one test per process) or in the child `rerun` started.
fn already_alone() -> bool {
    std::env::var_os(MARKER).is_some()
        || std::env::var("NEXTEST_EXECUTION_MODE").is_ok_and(|mode| mode == "process-per-test")
}

/// Returns true when the caller should run its body here. Otherwise it runs the test
/// `path` (`module::tests::name`) alone in a new process of this test binary, panics
/// with that process's output if the test did not pass there, and returns false.
#[expect(
    clippy::zombie_processes,
    reason = "collected with waitpid by pid below; Child::wait is banned (clippy.toml)"
)]
pub(crate) fn alone(path: &str) -> bool {
    if already_alone() {
        return true;
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("find the test binary: {e}"));
    let mut child = Command::new(exe)
        .args([path, "--exact", "--test-threads=1"])
        .env(MARKER, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("run {path} in its own process: {e}"));
    let mut output = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut output)
            .unwrap_or_else(|e| panic!("read the output of {path}: {e}"));
    }
    // Collect the child if no other test's reaper has; either way it is gone.
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child.id() as i32), None);
    assert!(
        output.contains("test result: ok. 1 passed"),
        "{path} failed in its own process:\n{output}"
    );
    false
}

/// At the top of a test: run the rest of it in a process of its own (see the module
/// documentation). Expands to an early return in the process that only watches.
macro_rules! own_process {
    ($name:ident) => {
        let path = concat!(module_path!(), "::", stringify!($name));
        // libtest names tests without the crate's own name.
        let path = path.split_once("::").map_or(path, |(_, rest)| rest);
        if !$crate::own_process::alone(path) {
            return;
        }
    };
}
pub(crate) use own_process;
