//! The control protocol's wire types: what a client sends over the control socket, what
//! minder answers, and the one decoder that turns a request line into a `Request`.
//!
//! One JSON object per line each way (docs/protocol.md is the reference a client is
//! written from). A request names a protocol version, an id the client picks and a
//! command with its arguments; every response line echoes the id. A reply is either one
//! result, one error (a kind and a message), or a stream: items and then an end marker.
//! This module owns the shapes and their validation only: no socket, no loop, no
//! supervisor. `decode_request` never panics, whatever bytes it is given (property-tested
//! below), and every way a line can be wrong is an error response naming what was wrong.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// The only protocol version there is. A request with another one is refused with
/// `unsupported_version`, so a client can tell an old daemon from a broken request.
pub const VERSION: u64 = 1;

/// The longest request line minder reads, without its `\n`. A longer one is answered
/// with `bad_request` and the connection is closed, since the rest of the line would
/// have to be read (and dropped) before the next request could be found.
pub const MAX_LINE: usize = 1024 * 1024;

/// The socket path used when the config leaves `control_socket` out, and by clients
/// that are not told one: `$MINDER_SOCKET` if set (and not empty); else
/// `/run/minder/control.sock` for root; else `$XDG_RUNTIME_DIR/minder/control.sock` when
/// that variable is set (an unprivileged minder cannot write to /run); else
/// `/run/minder/control.sock`.
pub fn default_socket_path() -> PathBuf {
    socket_path_from(
        std::env::var_os("MINDER_SOCKET"),
        nix::unistd::geteuid().is_root(),
        std::env::var_os("XDG_RUNTIME_DIR"),
    )
}

/// `default_socket_path` over its inputs, so every branch can be tested without
/// changing the test process's environment.
fn socket_path_from(
    minder_socket: Option<OsString>,
    is_root: bool,
    xdg_runtime_dir: Option<OsString>,
) -> PathBuf {
    if let Some(path) = minder_socket.filter(|path| !path.is_empty()) {
        return PathBuf::from(path);
    }
    let system = PathBuf::from("/run/minder/control.sock");
    if is_root {
        return system;
    }
    match xdg_runtime_dir.filter(|dir| !dir.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("minder").join("control.sock"),
        None => system,
    }
}

/// One request: its id (echoed in every response line) and what it asks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Request {
    pub v: u64,
    pub id: u64,
    #[serde(flatten)]
    pub command: Command,
}

impl Request {
    pub fn new(id: u64, command: Command) -> Request {
        Request {
            v: VERSION,
            id,
            command,
        }
    }

    /// The request as one line, `\n` included: what a client writes.
    pub fn to_line(&self) -> Vec<u8> {
        to_line(self)
    }
}

/// A command and its arguments. On the wire: `"cmd": "status", "args": {...}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case")]
pub enum Command {
    Status(StatusArgs),
    Start(NameArgs),
    Stop(NameArgs),
    Restart(NameArgs),
    Signal(SignalArgs),
    Logs(LogsArgs),
    Events(EventsArgs),
    Reload(ReloadArgs),
    Shutdown,
}

impl Command {
    /// The command's name on the wire.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status(_) => "status",
            Command::Start(_) => "start",
            Command::Stop(_) => "stop",
            Command::Restart(_) => "restart",
            Command::Signal(_) => "signal",
            Command::Logs(_) => "logs",
            Command::Events(_) => "events",
            Command::Reload(_) => "reload",
            Command::Shutdown => "shutdown",
        }
    }

    /// Whether the command only reads: the commands a member of `control_group` may
    /// send.
    pub fn is_read_only(&self) -> bool {
        match self {
            Command::Status(_) | Command::Logs(_) | Command::Events(_) => true,
            Command::Start(_)
            | Command::Stop(_)
            | Command::Restart(_)
            | Command::Signal(_)
            | Command::Reload(_)
            | Command::Shutdown => false,
        }
    }
}

/// `status`: the named nodes only (services, instances, all instances of a service, or
/// groups with everything under them), or the whole tree when `names` is empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusArgs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
}

/// `start`, `stop`, `restart`: one name (a service, an instance, all instances of a
/// service, or a group).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameArgs {
    pub name: String,
}

/// `signal`: a signal for the process groups of the services `name` stands for.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalArgs {
    pub name: String,
    pub signal: SignalArg,
}

/// A signal as the client wrote it: a name (`"HUP"`, `"SIGHUP"`, any case) or a number.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalArg {
    Number(i64),
    Name(String),
}

impl SignalArg {
    /// The signal's number, checked against minder's signal table (and the real-time
    /// range for numbers). Signal 0 is refused: it sends nothing.
    pub fn number(&self) -> Result<i32, String> {
        match self {
            SignalArg::Number(number) => {
                let unknown = || format!("no signal numbered {number}");
                let number = i32::try_from(*number).map_err(|_| unknown())?;
                let known = crate::signals::SIGNALS.iter().any(|(_, n)| *n == number);
                let realtime = (libc::SIGRTMIN()..=libc::SIGRTMAX()).contains(&number);
                if known || realtime {
                    Ok(number)
                } else {
                    Err(unknown())
                }
            }
            SignalArg::Name(name) => {
                let upper = name.to_ascii_uppercase();
                let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
                crate::signals::SIGNALS
                    .iter()
                    .find(|(known, _)| *known == bare)
                    .map(|(_, number)| *number)
                    .ok_or_else(|| format!("no signal named {name:?}"))
            }
        }
    }
}

/// `logs`: the last `lines` lines of each named service's output (default 100), then,
/// with `follow`, every new line until the client goes or minder stops.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsArgs {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<u64>,
    #[serde(default)]
    pub follow: bool,
}

/// `events`: the last `last` supervision events minder kept (default: all it kept),
/// then, with `follow`, every new one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsArgs {
    #[serde(default)]
    pub follow: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u64>,
}

/// `reload`: re-read the config file; with `dry_run`, only say what would change.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadArgs {
    #[serde(default)]
    pub dry_run: bool,
}

/// What went wrong, as a client can act on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The line is not a request: not JSON, not an object, a field missing or of the
    /// wrong type, bad arguments, or longer than `MAX_LINE`.
    BadRequest,
    /// `v` is not a version this minder speaks.
    UnsupportedVersion,
    /// `cmd` names no command.
    UnknownCommand,
    /// A name matches no service, instance or group.
    UnknownName,
    /// The peer may not do this (see docs/protocol.md, Authorisation).
    Forbidden,
    /// minder is shutting down and no longer starts anything.
    ShuttingDown,
    /// The new config is invalid: nothing changed; `errors` lists every problem.
    ReloadFailed,
    /// The command exists but this minder cannot do it (yet).
    Unsupported,
    /// A fault in minder itself.
    Internal,
    /// A kind this client does not know (a newer minder): the message still says what.
    #[serde(other)]
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ErrorKind::BadRequest => "bad_request",
            ErrorKind::UnsupportedVersion => "unsupported_version",
            ErrorKind::UnknownCommand => "unknown_command",
            ErrorKind::UnknownName => "unknown_name",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::ReloadFailed => "reload_failed",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Internal => "internal",
            ErrorKind::Other => "other",
        };
        f.write_str(text)
    }
}

/// An error: its kind, a message for people, and for `reload_failed` every problem
/// found in the new config.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ConfigProblem>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            errors: Vec::new(),
        }
    }
}

/// One problem in a config file, where it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfigProblem {
    pub file: String,
    pub line: u64,
    pub column: u64,
    pub message: String,
}

/// A request that could not be decoded, with the id to answer it under when the id
/// could be read (else the response's `id` is null).
#[derive(Clone, Debug, PartialEq)]
pub struct ErrorResponse {
    pub id: Option<u64>,
    pub error: Error,
}

impl ErrorResponse {
    pub fn into_response(self) -> Response {
        Response::error(self.id, self.error)
    }
}

/// One response line. `id` is the request's (null only for a line whose id could not be
/// read). On the wire it is `{"v":1,"id":N, ...}` with one of: `"ok":true,"result":{..}`,
/// `"ok":false,"error":{..}`, `"item":{..}`, `"end":true,"reason":".."`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(into = "WireResponse", try_from = "WireResponse")]
pub struct Response {
    pub id: Option<u64>,
    pub body: Body,
}

/// What a response line carries.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// The command succeeded; the shape of `result` depends on the command.
    Ok(Value),
    /// The command failed; nothing more follows for this id.
    Error(Error),
    /// One item of a stream (a log line, an event).
    Item(Value),
    /// The stream is over: `"complete"` (no follow: everything was sent), `"shutdown"`
    /// (minder is stopping), `"too_slow"` (the client did not read fast enough).
    End(String),
}

impl Response {
    pub fn ok(id: u64, result: impl Serialize) -> Response {
        let body = match serde_json::to_value(result) {
            Ok(value) => Body::Ok(value),
            Err(error) => Body::Error(Error::new(
                ErrorKind::Internal,
                format!("encoding the result: {error}"),
            )),
        };
        Response { id: Some(id), body }
    }

    pub fn error(id: Option<u64>, error: Error) -> Response {
        Response {
            id,
            body: Body::Error(error),
        }
    }

    pub fn item(id: u64, item: impl Serialize) -> Response {
        // Items are minder's own plain structs: encoding them cannot fail, but should a
        // future one fail the client still gets a line, not a silent gap.
        let value = serde_json::to_value(item)
            .unwrap_or_else(|error| Value::String(format!("encoding the item: {error}")));
        Response {
            id: Some(id),
            body: Body::Item(value),
        }
    }

    pub fn end(id: u64, reason: &str) -> Response {
        Response {
            id: Some(id),
            body: Body::End(reason.to_string()),
        }
    }

    /// The response as one line, `\n` included: what the server writes.
    pub fn to_line(&self) -> Vec<u8> {
        to_line(self)
    }

    /// Parses one response line (for clients).
    pub fn from_line(line: &[u8]) -> Result<Response, String> {
        serde_json::from_slice(line).map_err(|error| format!("not a response line: {error}"))
    }
}

/// The flat shape of a response on the wire; `Response` converts to and from it so that
/// a line always has exactly one of the four forms.
#[derive(Serialize, Deserialize)]
struct WireResponse {
    v: u64,
    id: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<Error>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    item: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    end: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<Response> for WireResponse {
    fn from(response: Response) -> WireResponse {
        let mut wire = WireResponse {
            v: VERSION,
            id: response.id,
            ok: None,
            result: None,
            error: None,
            item: None,
            end: None,
            reason: None,
        };
        match response.body {
            Body::Ok(result) => {
                wire.ok = Some(true);
                wire.result = Some(result);
            }
            Body::Error(error) => {
                wire.ok = Some(false);
                wire.error = Some(error);
            }
            Body::Item(item) => wire.item = Some(item),
            Body::End(reason) => {
                wire.end = Some(true);
                wire.reason = Some(reason);
            }
        }
        wire
    }
}

impl TryFrom<WireResponse> for Response {
    type Error = String;

    fn try_from(wire: WireResponse) -> Result<Response, String> {
        let body = match (wire.ok, wire.result, wire.error, wire.item, wire.end) {
            (Some(true), result, None, None, None) => Body::Ok(result.unwrap_or(Value::Null)),
            (Some(false), None, Some(error), None, None) => Body::Error(error),
            (None, None, None, Some(item), None) => Body::Item(item),
            (None, None, None, None, Some(true)) => Body::End(wire.reason.unwrap_or_default()),
            _ => {
                return Err(
                    "a response has exactly one of ok+result, ok+error, item, end".to_string(),
                );
            }
        };
        Ok(Response { id: wire.id, body })
    }
}

fn to_line(value: &impl Serialize) -> Vec<u8> {
    // Our types hold strings, numbers and `Value`s with string keys: serde_json cannot
    // fail on them. Should it ever, the peer still gets a well-formed error line.
    let mut line = serde_json::to_vec(value).unwrap_or_else(|error| {
        format!(
            r#"{{"v":{VERSION},"id":null,"ok":false,"error":{{"kind":"internal","message":"encoding a line: {error}"}}}}"#
        )
        .into_bytes()
    });
    line.push(b'\n');
    line
}

/// Decodes one request line (with or without its `\n`). Every failure is an error with
/// the request's id when it could be read: `bad_request`, `unsupported_version` or
/// `unknown_command`. Never panics.
pub fn decode_request(line: &[u8]) -> Result<Request, ErrorResponse> {
    let bad = |id, message: String| ErrorResponse {
        id,
        error: Error::new(ErrorKind::BadRequest, message),
    };
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.len() > MAX_LINE {
        return Err(bad(
            None,
            format!("request line longer than {MAX_LINE} bytes"),
        ));
    }
    // serde_json bounds its recursion (128 levels), so deeply nested input is an error,
    // not a stack overflow.
    let value: Value = serde_json::from_slice(line)
        .map_err(|error| bad(None, format!("request is not valid JSON: {error}")))?;
    let Value::Object(mut object) = value else {
        return Err(bad(None, "a request must be a JSON object".to_string()));
    };
    // The id first, so that every later error can be answered under it.
    let id = match object.remove("id") {
        Some(Value::Number(number)) => match number.as_u64() {
            Some(id) => id,
            None => {
                return Err(bad(
                    None,
                    format!("\"id\" must be an integer from 0 to 2^64-1, not {number}"),
                ));
            }
        },
        Some(other) => {
            return Err(bad(
                None,
                format!("\"id\" must be an integer, not {}", kind_of(&other)),
            ));
        }
        None => return Err(bad(None, "missing \"id\"".to_string())),
    };
    match object.remove("v") {
        Some(Value::Number(number)) if number.as_u64() == Some(VERSION) => {}
        Some(other) => {
            return Err(ErrorResponse {
                id: Some(id),
                error: Error::new(
                    ErrorKind::UnsupportedVersion,
                    format!(
                        "protocol version {other} is not supported; this minder speaks {VERSION}"
                    ),
                ),
            });
        }
        None => {
            return Err(bad(
                Some(id),
                "missing \"v\" (the protocol version, 1)".to_string(),
            ));
        }
    }
    let name = match object.remove("cmd") {
        Some(Value::String(name)) => name,
        Some(other) => {
            return Err(bad(
                Some(id),
                format!("\"cmd\" must be a string, not {}", kind_of(&other)),
            ));
        }
        None => return Err(bad(Some(id), "missing \"cmd\"".to_string())),
    };
    let args = match object.remove("args") {
        None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
        Some(args @ Value::Object(_)) => args,
        Some(other) => {
            return Err(bad(
                Some(id),
                format!("\"args\" must be an object, not {}", kind_of(&other)),
            ));
        }
    };
    if let Some(field) = object.keys().next() {
        return Err(bad(
            Some(id),
            format!("unknown field {field:?} in the request (expected v, id, cmd, args)"),
        ));
    }
    let command = decode_command(&name, args).map_err(|error| ErrorResponse {
        id: Some(id),
        error,
    })?;
    Ok(Request {
        v: VERSION,
        id,
        command,
    })
}

fn decode_command(name: &str, args: Value) -> Result<Command, Error> {
    fn parse<T: serde::de::DeserializeOwned>(name: &str, args: Value) -> Result<T, Error> {
        serde_json::from_value(args)
            .map_err(|error| Error::new(ErrorKind::BadRequest, format!("args of {name}: {error}")))
    }
    let bad =
        |message: String| Error::new(ErrorKind::BadRequest, format!("args of {name}: {message}"));
    let command = match name {
        "status" => Command::Status(parse(name, args)?),
        "start" => Command::Start(parse(name, args)?),
        "stop" => Command::Stop(parse(name, args)?),
        "restart" => Command::Restart(parse(name, args)?),
        "signal" => {
            let signal: SignalArgs = parse(name, args)?;
            signal.signal.number().map_err(bad)?;
            Command::Signal(signal)
        }
        "logs" => Command::Logs(parse(name, args)?),
        "events" => Command::Events(parse(name, args)?),
        "reload" => Command::Reload(parse(name, args)?),
        "shutdown" => {
            let _: ShutdownArgs = parse(name, args)?;
            Command::Shutdown
        }
        other => {
            return Err(Error::new(
                ErrorKind::UnknownCommand,
                format!(
                    "unknown command {other:?} (known: status, start, stop, restart, signal, logs, events, reload, shutdown)"
                ),
            ));
        }
    };
    match &command {
        Command::Start(NameArgs { name: target })
        | Command::Stop(NameArgs { name: target })
        | Command::Restart(NameArgs { name: target })
        | Command::Signal(SignalArgs { name: target, .. })
            if target.is_empty() =>
        {
            Err(bad("\"name\" is empty".to_string()))
        }
        Command::Status(StatusArgs { names }) | Command::Logs(LogsArgs { names, .. })
            if names.iter().any(String::is_empty) =>
        {
            Err(bad("\"names\" holds an empty name".to_string()))
        }
        _ => Ok(command),
    }
}

/// `shutdown` takes no arguments; an object with any is refused rather than ignored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShutdownArgs {}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---- Result and item shapes ----

/// The result of `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusResult {
    pub services: Vec<ServiceStatus>,
    pub groups: Vec<GroupStatus>,
    pub minder: MinderStatus,
}

/// One service (or instance) in `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub name: String,
    /// The group it is a child of (`root` at the top).
    pub group: String,
    /// Always `"service"` (groups are listed apart); kept so a row says what it is.
    pub kind: String,
    /// waiting, starting, started (running, not yet ready), running, backoff, stopping,
    /// stopped (held by an operator), done.
    pub state: String,
    pub pid: Option<i32>,
    /// Seconds since its current process started; null when none runs.
    pub uptime_seconds: Option<f64>,
    /// Starts after the first.
    pub restarts: u64,
    pub last_exit: Option<LastExit>,
    pub last_check: Option<LastCheck>,
    /// Why it was last restarted, or why it is stopped.
    pub reason: Option<String>,
    /// While it is stopping: for how long, and when it will be killed.
    pub stopping: Option<StoppingStatus>,
}

/// How a process ended: `{"code": N}` or `{"signal": "TERM"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastExit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The signal's name without `SIG`, or its number for one without a name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
}

/// The latest ready or health probe result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LastCheck {
    /// `ready` or `health`.
    pub kind: String,
    pub passed: bool,
    /// Why it failed; empty when it passed.
    pub detail: String,
    pub seconds_ago: f64,
}

/// A stopping service: how long it has been stopping and how long until SIGKILL (null
/// when no kill is scheduled).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoppingStatus {
    pub since_seconds: f64,
    pub kill_in_seconds: Option<f64>,
}

/// One group in `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStatus {
    pub name: String,
    /// Null for the root.
    pub parent: Option<String>,
    pub strategy: String,
    pub restarts_in_period: u64,
    pub intensity: u32,
    pub period_seconds: f64,
    /// up, failing, down, ending, done; `held` when an operator stopped it.
    pub state: String,
}

/// minder itself in `status`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MinderStatus {
    pub pid: u32,
    pub version: String,
    pub uptime_seconds: f64,
    /// running, or stopping once a shutdown has begun.
    pub phase: String,
}

/// The result of `start`, `stop`, `restart`, `signal` and `shutdown`: the services and
/// groups the command acted on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoneResult {
    pub done: bool,
    pub affected: Vec<String>,
}

/// One line of a service's output in a `logs` stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogItem {
    pub service: String,
    /// `stdout` or `stderr`; null for lines replayed from the in-memory tail, which
    /// keeps both streams together in order.
    pub stream: Option<String>,
    /// The line without its `\n`; bytes that are not UTF-8 are replaced by U+FFFD.
    pub line: String,
    /// When minder read it (RFC 3339, UTC); null for replayed lines.
    pub time: Option<String>,
}

/// One supervision event in an `events` stream. Fields that do not apply to an event
/// are left out.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventItem {
    /// RFC 3339, UTC.
    pub time: String,
    /// started, ready, exited, restart_scheduled, escalated, check_failed, stopped,
    /// start_failed, shutdown, reload, ...
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The result of `reload`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReloadResult {
    pub dry_run: bool,
    pub changes: Vec<ReloadChange>,
}

/// One change a reload plans or made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReloadChange {
    pub name: String,
    /// `service` or `group`.
    pub kind: String,
    /// start, stop, restart, move, update.
    pub action: String,
    /// The config keys that caused it, e.g. `service.api.command`.
    pub keys: Vec<String>,
    /// planned (dry run), ready, stopped, or `failed: <why>`.
    pub outcome: String,
}

#[cfg(test)]
mod tests;
