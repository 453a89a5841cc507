//! The command line of `minderctl`, as one clap definition. The help text, the man page
//! (`man/minderctl.1`) and the shell completions (`completions/`) are all generated
//! from it, so what is written here is what a user reads everywhere.
//!
//! This module only describes arguments; it neither connects nor prints.

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use minder::control::protocol::SignalArg;
use std::path::PathBuf;

/// The exit codes, decided here once: `main` maps every outcome to one of these, and
/// the help text and the man page list them from `EXIT_CODES`.
pub mod exit_code {
    pub const OK: u8 = 0;
    pub const REQUEST_FAILED: u8 = 1;
    /// clap exits with 2 on a usage error by itself; this names the same number.
    pub const USAGE: u8 = 2;
    pub const CANNOT_CONNECT: u8 = 3;
}

/// Each exit code with what it means, for `--help` and the man page's EXIT STATUS.
pub const EXIT_CODES: &[(u8, &str)] = &[
    (
        exit_code::OK,
        "Success; also when Ctrl-C or minder's shutdown ends a followed stream, and when \
         the reader of standard output goes away (minderctl logs -f | head).",
    ),
    (
        exit_code::REQUEST_FAILED,
        "minder refused or could not do the request (printed as \"minderctl: KIND: MESSAGE\" \
         on standard error), the connection broke before the answer, a stream ended because \
         minderctl read too slowly, or a reload applied a change that failed.",
    ),
    (
        exit_code::USAGE,
        "The command line is wrong (an unknown command or option, a missing name, an unknown \
         signal).",
    ),
    (
        exit_code::CANNOT_CONNECT,
        "minderctl could not connect to the control socket; the message names the socket's \
         path and the error (ENOENT: minder is not running there; EACCES: this user may not \
         use it; ECONNREFUSED: a stale socket file).",
    ),
];

const ABOUT: &str = "Control a running minder over its control socket";

const LONG_ABOUT: &str = "\
Control a running minder over its control socket: show the state of its services and \
groups, start, stop and restart them, send them signals, read their output and minder's \
supervision events, reload the configuration, and shut minder down.

A NAME is a service, one instance of a service with instances (web.2), all instances \
of a service (web), or a group with everything under it.

minderctl talks to the socket of daemon.control_socket. Root and the user minder runs \
as may use every command; members of daemon.control_group may only use status, logs and \
events.";

/// The text after the options in `--help`: where the socket is and the exit codes.
fn after_help() -> String {
    let mut text = String::from(
        "The socket: --socket, else $MINDER_SOCKET, else /run/minder/control.sock \
         (for a user other than root with $XDG_RUNTIME_DIR set: \
         $XDG_RUNTIME_DIR/minder/control.sock).\n\nExit codes:\n",
    );
    for (code, meaning) in EXIT_CODES {
        text.push_str(&format!("  {code}  {meaning}\n"));
    }
    text
}

#[derive(Debug, Parser)]
#[command(
    name = "minderctl",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_help = after_help(),
    disable_help_subcommand = true
)]
pub struct Cli {
    /// The control socket of the minder to talk to [default: $MINDER_SOCKET, else
    /// /run/minder/control.sock].
    // Not clap's `env`: an empty $MINDER_SOCKET must mean "unset" (as it does for
    // minder), where clap would refuse it; `protocol::default_socket_path` reads it.
    #[arg(long, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Print JSON: status, reload and the other commands print their result as one
    /// document; logs and events print one object per line.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show services and groups: state, pid, uptime, restarts, last exit, last check, reason.
    #[command(long_about = "\
Show the services and groups named (default: the whole tree) as a table: for a service \
its state (waiting, starting, started, running, backoff, stopping, stopped, done), pid, \
uptime, restarts since it first started, how its last process ended, its last ready or \
health check and why it was last restarted or stopped; for a group its state, strategy \
and how much of its restart budget is spent. A service that is stopping shows for how \
long, and when it will be killed.")]
    Status {
        /// Services, instances or groups to show (default: everything).
        #[arg(value_name = "NAME")]
        names: Vec<String>,
    },

    /// Start services or groups, releasing an operator's stop.
    #[command(long_about = "\
Start what NAME stands for. A service or group stopped with `minderctl stop` is held \
down until it is started again; start releases that hold.")]
    Start(Names),

    /// Stop services or groups and hold them stopped until `start`.
    #[command(long_about = "\
Stop what NAME stands for, in reverse start order, with each service's stop_signal and \
stop_timeout. It stays stopped, whatever its restart type or its group's strategy does, \
until `minderctl start`; this is not a failure and does not count against any restart \
budget.")]
    Stop(Names),

    /// Restart services or groups (not counted against a restart budget).
    #[command(long_about = "\
Stop and start again what NAME stands for, as an operator: the restart is not counted \
against the group's restart budget.")]
    Restart(Names),

    /// Send a signal to the process groups of services.
    #[command(long_about = "\
Send SIGNAL to the process group of every service NAME stands for. SIGNAL is a name \
with or without SIG (HUP, SIGHUP, any case) or a number.")]
    Signal {
        /// A service, an instance or a group.
        name: String,
        /// HUP, SIGUSR1, 10, ...
        #[arg(value_parser = parse_signal)]
        signal: SignalArg,
    },

    /// Show (and follow) the output of services.
    #[command(long_about = "\
Print the last lines of the output (stdout and stderr together, in the order they were \
written) that minder keeps in memory for each service NAME stands for, then, with \
--follow, every new line until Ctrl-C. When the names cover more than one service, \
their lines interleave, each prefixed with the service's name.")]
    Logs {
        /// Services, instances or groups.
        #[arg(value_name = "NAME", required = true)]
        names: Vec<String>,
        /// How many past lines to print per service first.
        #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
        lines: u64,
        #[command(flatten)]
        follow: Follow,
    },

    /// Show (and follow) supervision events.
    #[command(long_about = "\
Print minder's latest supervision events (started, ready, exited with a code or a \
signal, restart_scheduled, escalated, check_failed, stopped, reload, ...), oldest \
first, then, with --follow, every new one until Ctrl-C.")]
    Events {
        /// How many past events to print first.
        #[arg(short = 'n', long = "last", value_name = "N", default_value_t = 10)]
        last: u64,
        #[command(flatten)]
        follow: Follow,
    },

    /// Re-read the config file and apply what changed.
    #[command(long_about = "\
Re-read minder's config file (as SIGHUP does) and apply only what changed: removed \
services stop, added ones start, services whose settings changed restart, and the rest \
keep running untouched. An invalid file changes nothing; every error is printed with \
its file, line and column. minderctl prints each change (action, kind, name and the \
config keys that caused it) and its outcome, once the changed services are ready or \
one has failed. With --dry-run it prints the plan only.")]
    Reload {
        /// Print what would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },

    /// Stop every service in order and make minder exit.
    #[command(long_about = "\
Start minder's orderly shutdown, as SIGTERM does: every service stops in reverse start \
order within daemon.shutdown_timeout, then minder exits.")]
    Shutdown,
}

/// The names of `start`, `stop` and `restart`: each is one request, in order.
#[derive(Debug, Args)]
pub struct Names {
    /// Services, instances or groups.
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Args)]
pub struct Follow {
    /// Keep printing new ones as they come, until Ctrl-C or minder's shutdown.
    #[arg(short, long)]
    pub follow: bool,
}

/// `minderctl generate`: writes the man page or the shell completions, for packaging.
/// It is kept out of `Cli` so that neither the help, the man page nor the completions
/// mention it; `parse` adds it, hidden, to the command line it reads.
#[derive(Debug, Subcommand)]
pub enum Generate {
    /// minderctl.1 in DIR.
    Man { dir: PathBuf },
    /// The completion script for SHELL in DIR (minderctl.bash, _minderctl, minderctl.fish).
    Completions { shell: Shell, dir: PathBuf },
}

/// The shells completions are made for: the ones the package installs them for.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// What the command line asks for.
pub enum Invocation {
    Control(Cli),
    Generate(Generate),
}

/// Parses the command line, exiting with clap's message (and code 2) on a usage error.
pub fn parse() -> Invocation {
    let generate = Generate::augment_subcommands(clap::Command::new("generate"))
        .about("Write the man page or the shell completions (for packaging)")
        .subcommand_required(true)
        .hide(true);
    let mut command = Cli::command().subcommand(generate);
    let matches = command.get_matches_mut();
    let parsed = match matches.subcommand() {
        Some(("generate", generate)) => {
            Generate::from_arg_matches(generate).map(Invocation::Generate)
        }
        _ => Cli::from_arg_matches(&matches).map(Invocation::Control),
    };
    parsed.unwrap_or_else(|error| error.format(&mut command).exit())
}

/// A signal argument: a number, or a name minder knows (checked here, so that a typo is
/// a usage error before anything is sent).
fn parse_signal(text: &str) -> Result<SignalArg, String> {
    let signal = match text.parse::<i64>() {
        Ok(number) => SignalArg::Number(number),
        Err(_) => SignalArg::Name(text.to_string()),
    };
    signal.number()?;
    Ok(signal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
