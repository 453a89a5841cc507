//! Signal names: the one table from name to number and back, used by the config
//! loader (`stop_signal = "SIGINT"`), by `minder check`'s rendering and by every log
//! line that names a signal.
//!
//! Numbers come from libc, so the table is right on every target minder builds for.
//! The core (`minder_core::spec`) has no libc and writes the few numbers it decides
//! with by hand; the assertions at the end of this file make a build fail on a target
//! where those differ from libc's.

/// Every signal with a name, without its `SIG` prefix: the names `stop_signal`
/// accepts (with or without the prefix) and the ones minder writes.
pub const SIGNALS: &[(&str, i32)] = &[
    ("HUP", libc::SIGHUP),
    ("INT", libc::SIGINT),
    ("QUIT", libc::SIGQUIT),
    ("ILL", libc::SIGILL),
    ("TRAP", libc::SIGTRAP),
    ("ABRT", libc::SIGABRT),
    ("BUS", libc::SIGBUS),
    ("FPE", libc::SIGFPE),
    ("KILL", libc::SIGKILL),
    ("USR1", libc::SIGUSR1),
    ("SEGV", libc::SIGSEGV),
    ("USR2", libc::SIGUSR2),
    ("PIPE", libc::SIGPIPE),
    ("ALRM", libc::SIGALRM),
    ("TERM", libc::SIGTERM),
    ("CHLD", libc::SIGCHLD),
    ("CONT", libc::SIGCONT),
    ("STOP", libc::SIGSTOP),
    ("TSTP", libc::SIGTSTP),
    ("TTIN", libc::SIGTTIN),
    ("TTOU", libc::SIGTTOU),
    ("URG", libc::SIGURG),
    ("XCPU", libc::SIGXCPU),
    ("XFSZ", libc::SIGXFSZ),
    ("VTALRM", libc::SIGVTALRM),
    ("PROF", libc::SIGPROF),
    ("WINCH", libc::SIGWINCH),
    ("IO", libc::SIGIO),
    ("PWR", libc::SIGPWR),
    ("SYS", libc::SIGSYS),
];

/// `SIGTERM` for 15; `signal 42` for a number without a name (real-time signals).
pub fn signal_name(number: i32) -> String {
    match SIGNALS.iter().find(|(_, n)| *n == number) {
        Some((name, _)) => format!("SIG{name}"),
        None => format!("signal {number}"),
    }
}

// The core's signal numbers must be this target's.
const _: () = {
    use minder_core::spec as core;
    assert!(core::SIGHUP == libc::SIGHUP);
    assert!(core::SIGINT == libc::SIGINT);
    assert!(core::SIGQUIT == libc::SIGQUIT);
    assert!(core::SIGKILL == libc::SIGKILL);
    assert!(core::SIGUSR1 == libc::SIGUSR1);
    assert!(core::SIGUSR2 == libc::SIGUSR2);
    assert!(core::SIGTERM == libc::SIGTERM);
    assert!(core::SIGWINCH == libc::SIGWINCH);
};

#[cfg(test)]
mod tests {
    use super::signal_name;

    #[test]
    fn names_known_signals_and_numbers_the_rest() {
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(libc::SIGKILL), "SIGKILL");
        assert_eq!(
            signal_name(libc::SIGRTMIN() + 1),
            format!("signal {}", libc::SIGRTMIN() + 1)
        );
    }
}
