//! `minderctl`: the command-line client of minder's control socket. It parses the
//! command line (`cli`), sends one request per name over one connection
//! (`connection`), prints the answers for people (`render`) or as JSON, and maps the
//! outcome to an exit code (`cli::exit_code`, the one table).
//!
//! It holds no state and decides nothing about supervision: every answer is minder's.

mod cli;
mod connection;
mod generate;
mod render;

use cli::{Command, Invocation, exit_code};
use connection::{Connection, Failure, StreamEnd, describe_io};
use minder::control::protocol::{
    self, DoneResult, EventItem, EventsArgs, LogItem, LogsArgs, NameArgs, ReloadArgs, ReloadResult,
    SignalArgs, StatusArgs, StatusResult,
};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = match cli::parse() {
        Invocation::Control(cli) => cli,
        Invocation::Generate(what) => {
            return match generate::run(&what) {
                Ok(path) => {
                    println!("{}", path.display());
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("minderctl: generate: {error}");
                    ExitCode::from(exit_code::REQUEST_FAILED)
                }
            };
        }
    };
    // An empty --socket means "not given", as an empty $MINDER_SOCKET does.
    let socket = cli
        .socket
        .clone()
        .filter(|path| !path.as_os_str().is_empty())
        .unwrap_or_else(protocol::default_socket_path);
    let mut client = Client {
        link: Link {
            socket,
            connection: None,
        },
        json: cli.json,
        stdout: std::io::stdout().lock(),
    };
    let outcome = client.run(cli.command);
    // Whatever is still buffered must reach standard output before the exit code says
    // how things went; a reader that has gone away is not an error worth a message.
    let flushed = client.stdout.flush();
    match outcome {
        Ok(code) => match flushed {
            Err(error) if error.kind() != std::io::ErrorKind::BrokenPipe => {
                eprintln!("minderctl: writing to standard output: {error}");
                ExitCode::from(exit_code::REQUEST_FAILED)
            }
            _ => ExitCode::from(code),
        },
        Err(Stop::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            ExitCode::SUCCESS
        }
        Err(Stop::Output(error)) => {
            eprintln!("minderctl: writing to standard output: {error}");
            ExitCode::from(exit_code::REQUEST_FAILED)
        }
        Err(Stop::Failure(failure)) => {
            report(&failure);
            ExitCode::from(match failure {
                Failure::Connect { .. } => exit_code::CANNOT_CONNECT,
                Failure::Refused(_) | Failure::Broken(_) => exit_code::REQUEST_FAILED,
            })
        }
    }
}

/// Why a command stopped before its end.
enum Stop {
    /// The request failed; `report` says how.
    Failure(Failure),
    /// Standard output could not be written (a closed pipe ends minderctl quietly).
    Output(std::io::Error),
}

impl From<Failure> for Stop {
    fn from(failure: Failure) -> Stop {
        Stop::Failure(failure)
    }
}

impl From<std::io::Error> for Stop {
    fn from(error: std::io::Error) -> Stop {
        Stop::Output(error)
    }
}

/// Prints a failure on standard error, as `minderctl: <kind>: <message>` for minder's
/// refusals.
fn report(failure: &Failure) {
    match failure {
        Failure::Connect { path, error } => {
            eprintln!(
                "minderctl: cannot connect to {}: {}",
                path.display(),
                describe_io(error)
            );
        }
        Failure::Refused(error) => {
            eprintln!("minderctl: {}: {}", error.kind, error.message);
            for problem in &error.errors {
                eprintln!(
                    "  {}:{}:{}: {}",
                    problem.file, problem.line, problem.column, problem.message
                );
            }
        }
        Failure::Broken(what) => eprintln!("minderctl: {what}"),
    }
}

/// One run of minderctl: where it connects and how it prints.
struct Client {
    link: Link,
    json: bool,
    stdout: std::io::StdoutLock<'static>,
}

/// The connection to minder, opened by the first request of a run; every later request
/// of the run (`stop a b c`, the `status` before `logs`) reuses it.
struct Link {
    socket: PathBuf,
    connection: Option<Connection>,
}

impl Link {
    fn get(&mut self) -> Result<&mut Connection, Failure> {
        match &mut self.connection {
            Some(connection) => Ok(connection),
            none => Ok(none.insert(Connection::open(&self.socket)?)),
        }
    }
}

impl Client {
    /// Runs `command`; the exit code when it ran to its end.
    fn run(&mut self, command: Command) -> Result<u8, Stop> {
        match command {
            Command::Status { names } => self.status(names),
            Command::Start(names) => self.each_name("start", names.names, protocol::Command::Start),
            Command::Stop(names) => self.each_name("stop", names.names, protocol::Command::Stop),
            Command::Restart(names) => {
                self.each_name("restart", names.names, protocol::Command::Restart)
            }
            Command::Signal { name, signal } => {
                let asked = format!("signal {name} {}", signal_label(&signal));
                let result = self.call(protocol::Command::Signal(SignalArgs { name, signal }))?;
                self.print_done(&asked, result)?;
                Ok(exit_code::OK)
            }
            Command::Logs {
                names,
                lines,
                follow,
            } => self.logs(names, lines, follow.follow),
            Command::Events { last, follow } => self.events(last, follow.follow),
            Command::Reload { dry_run } => self.reload(dry_run),
            Command::Shutdown => {
                let result = self.call(protocol::Command::Shutdown)?;
                if self.json {
                    self.print_json(&result)?;
                } else {
                    writeln!(self.stdout, "minder is shutting down")?;
                }
                Ok(exit_code::OK)
            }
        }
    }

    fn call(&mut self, command: protocol::Command) -> Result<Value, Failure> {
        self.link.get()?.call(command)
    }

    fn status(&mut self, names: Vec<String>) -> Result<u8, Stop> {
        let result = self.call(protocol::Command::Status(StatusArgs { names }))?;
        if self.json {
            self.print_json(&result)?;
        } else {
            let status: StatusResult = decode("status", result)?;
            write!(self.stdout, "{}", render::status_table(&status))?;
        }
        Ok(exit_code::OK)
    }

    /// `start`, `stop`, `restart` of several names: one request each, in order. A name
    /// minder refuses is reported and the others still go; the exit code is 1 if any was
    /// refused. A broken connection ends it all.
    fn each_name(
        &mut self,
        verb: &str,
        names: Vec<String>,
        command: fn(NameArgs) -> protocol::Command,
    ) -> Result<u8, Stop> {
        let mut code = exit_code::OK;
        for name in names {
            let asked = format!("{verb} {name}");
            match self.call(command(NameArgs { name })) {
                Ok(result) => self.print_done(&asked, result)?,
                Err(failure @ Failure::Refused(_)) => {
                    report(&failure);
                    code = exit_code::REQUEST_FAILED;
                }
                Err(failure) => return Err(failure.into()),
            }
        }
        Ok(code)
    }

    fn print_done(&mut self, asked: &str, result: Value) -> Result<(), Stop> {
        if self.json {
            return self.print_json(&result);
        }
        let done: DoneResult = decode(asked, result)?;
        writeln!(self.stdout, "{}", render::done_line(asked, &done))?;
        Ok(())
    }

    fn logs(&mut self, names: Vec<String>, lines: u64, follow: bool) -> Result<u8, Stop> {
        // Which services the names cover decides the prefix and its width, before the
        // first line arrives; asking first also reports an unknown name plainly.
        let prefix = if self.json {
            None
        } else {
            let result = self.call(protocol::Command::Status(StatusArgs {
                names: names.clone(),
            }))?;
            let status: StatusResult = decode("status", result)?;
            let services: Vec<String> = status.services.into_iter().map(|s| s.name).collect();
            Some(render::LogPrefix::for_services(&services))
        };
        let command = protocol::Command::Logs(LogsArgs {
            names,
            lines: Some(lines),
            follow,
        });
        self.stream(command, follow, |stdout, item| match &prefix {
            None => print_json_line(stdout, &item),
            Some(prefix) => {
                let item: LogItem = decode("logs", item)?;
                writeln!(stdout, "{}", prefix.line(&item))?;
                Ok(())
            }
        })
    }

    fn events(&mut self, last: u64, follow: bool) -> Result<u8, Stop> {
        let json = self.json;
        let command = protocol::Command::Events(EventsArgs {
            follow,
            last: Some(last),
        });
        self.stream(command, follow, |stdout, item| {
            if json {
                print_json_line(stdout, &item)
            } else {
                let event: EventItem = decode("events", item)?;
                writeln!(stdout, "{}", render::event_line(&event))?;
                Ok(())
            }
        })
    }

    /// Runs a stream to its end, printing each item with `print`. With `follow`, Ctrl-C
    /// ends it quietly. The end marker decides the exit code: `too_slow` is a failure
    /// (lines were lost); `shutdown` ends a followed stream normally, with a note.
    fn stream(
        &mut self,
        command: protocol::Command,
        follow: bool,
        mut print: impl FnMut(&mut std::io::StdoutLock<'static>, Value) -> Result<(), Stop>,
    ) -> Result<u8, Stop> {
        let name = command.name();
        let connection = self.link.get()?;
        if follow {
            connection::interrupt::arm(connection.raw_fd());
        }
        let stdout = &mut self.stdout;
        let end = connection.stream(command, |item| print(stdout, item))?;
        match end? {
            StreamEnd::Interrupted => Ok(exit_code::OK),
            StreamEnd::Marker(reason) => match reason.as_str() {
                "complete" => Ok(exit_code::OK),
                "shutdown" => {
                    eprintln!("minderctl: minder is shutting down; {name} ended");
                    Ok(exit_code::OK)
                }
                "too_slow" => {
                    eprintln!(
                        "minderctl: minder ended {name}: this client read too slowly and \
                         missed some (too_slow)"
                    );
                    Ok(exit_code::REQUEST_FAILED)
                }
                other => {
                    eprintln!("minderctl: minder ended {name}: {other}");
                    Ok(exit_code::REQUEST_FAILED)
                }
            },
        }
    }

    fn reload(&mut self, dry_run: bool) -> Result<u8, Stop> {
        let result = self.call(protocol::Command::Reload(ReloadArgs { dry_run }))?;
        let report: ReloadResult = decode("reload", result.clone())?;
        if self.json {
            self.print_json(&result)?;
        } else {
            write!(self.stdout, "{}", render::reload_report(&report))?;
        }
        let failed = render::failed_changes(&report);
        if failed > 0 {
            self.stdout.flush()?;
            eprintln!(
                "minderctl: reload: {failed} of {} change(s) failed",
                report.changes.len()
            );
            return Ok(exit_code::REQUEST_FAILED);
        }
        Ok(exit_code::OK)
    }

    /// A result as one indented JSON document.
    fn print_json(&mut self, value: &Value) -> Result<(), Stop> {
        // A `Value` always serialises.
        let text = serde_json::to_string_pretty(value).unwrap_or_default();
        writeln!(self.stdout, "{text}")?;
        Ok(())
    }
}

/// A stream item as one line of JSON.
fn print_json_line(stdout: &mut impl Write, item: &Value) -> Result<(), Stop> {
    let text = serde_json::to_string(item).unwrap_or_default();
    writeln!(stdout, "{text}")?;
    Ok(())
}

/// A result or item in the shape `what` promises, or a failure naming what did not fit.
fn decode<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, Failure> {
    serde_json::from_value(value).map_err(|error| {
        Failure::Broken(format!(
            "minder's answer to {what} is not understood: {error}"
        ))
    })
}

/// `HUP` or `10`, as the user wrote it.
fn signal_label(signal: &protocol::SignalArg) -> String {
    match signal {
        protocol::SignalArg::Number(number) => number.to_string(),
        protocol::SignalArg::Name(name) => name.clone(),
    }
}
