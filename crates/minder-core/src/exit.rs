//! minder's exit codes, decided here and nowhere else (man/minder.8, EXIT STATUS, says
//! what each means to a user). Other modules name these constants; none writes a bare
//! number. Under `auto_shutdown` minder exits with the significant service's own code
//! instead.

/// `minder run` after an orderly shutdown.
pub const SUCCESS: i32 = 0;
/// An internal error of minder itself (the event loop could not start...).
pub const INTERNAL: i32 = 1;
/// A config or usage error: nothing was started.
pub const USAGE: i32 = 2;
/// The root's restart budget is exhausted: minder stopped everything.
pub const ROOT_FAILED: i32 = 3;
/// Container mode: the command exists but could not be executed (as a shell says).
pub const CANNOT_EXECUTE: i32 = 126;
/// Container mode: the command was not found (as a shell says).
pub const NOT_FOUND: i32 = 127;
/// Container mode: the command could not be started for another reason (an unknown
/// user, a missing working directory...).
pub const START_FAILED: i32 = 1;
/// A death by signal N is reported as `SIGNAL_BASE + N`, as a shell does.
pub const SIGNAL_BASE: i32 = 128;
