//! `state_file`: the services and groups an operator stopped (`minderctl stop`), kept
//! on disk so they stay stopped when minder itself is restarted.
//!
//! The file is JSON, `{"version":1,"held":["api","web.2"]}`: the names of the held
//! nodes, sorted. Reading happens once, at start, before the tree boots: a missing
//! file holds nothing, and a file that cannot be read or understood is a warning
//! naming the file and what is wrong, never a reason not to start (minder's job is to
//! run the tree; forgetting a hold is the lesser harm). Writing is atomic: a temporary
//! file in the same directory is written and fsynced, renamed over the state file,
//! and the directory is fsynced, so a crash leaves either the old file or the new one.
//! An fsync can take long (a busy or network disk), and the loop never blocks, so the
//! writes happen on a thread of their own (`Writer`), which only ever writes the
//! latest set it has been given: a burst of changes costs one write.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// The only format version this minder writes and reads.
const VERSION: u64 = 1;

/// The largest state file read: a name is at most a few hundred bytes and a tree has
/// at most 10 000 services, so anything larger is not a state file of minder's.
const LIMIT: u64 = 4 << 20;

/// How long minder, exiting, waits for the writer to finish its last write.
const LAST_WRITE_BOUND: Duration = Duration::from_secs(2);

/// What the state file says.
#[derive(Debug, PartialEq, Eq)]
pub enum Stored {
    /// No file there: nothing is held (the first start, or no stop ever made).
    Missing,
    /// The names held when it was written, as written.
    Held(Vec<String>),
}

/// Reads the state file at `path`. The error is a sentence naming the file and what
/// is wrong with it, for a warning.
pub fn read(path: &Path) -> Result<Stored, String> {
    let shown = crate::config::printable(&path.display().to_string()).into_owned();
    match path.try_exists() {
        Ok(false) => return Ok(Stored::Missing),
        Ok(true) => {}
        Err(error) => return Err(format!("state file {shown}: cannot read it: {error}")),
    }
    let bytes = crate::config::read_regular_file(path, LIMIT)
        .map_err(|error| format!("state file {shown}: cannot read it: {error}"))?;
    decode(&bytes)
        .map(Stored::Held)
        .map_err(|error| format!("state file {shown}: {error}"))
}

/// The held names in `bytes`, or what is wrong with them.
pub fn decode(bytes: &[u8]) -> Result<Vec<String>, String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|error| format!("not valid JSON ({error})"))?;
    let Some(object) = value.as_object() else {
        return Err("expected a JSON object {\"version\":1,\"held\":[...]}".to_string());
    };
    match object.get("version").and_then(serde_json::Value::as_u64) {
        Some(VERSION) => {}
        Some(other) => {
            return Err(format!(
                "version {other} is not one this minder knows (it knows version {VERSION})"
            ));
        }
        None => return Err("no \"version\" number".to_string()),
    }
    let Some(held) = object.get("held").and_then(serde_json::Value::as_array) else {
        return Err("no \"held\" list".to_string());
    };
    held.iter()
        .map(|name| {
            name.as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("\"held\" holds {name}, which is not a name"))
        })
        .collect()
}

/// The file's content for `held` (sorted by the caller), with a final newline.
pub fn encode(held: &[String]) -> Vec<u8> {
    let document = serde_json::json!({ "version": VERSION, "held": held });
    let mut bytes = document.to_string().into_bytes();
    bytes.push(b'\n');
    bytes
}

/// Writes `bytes` to `path` atomically: a temporary file beside it, fsync, rename,
/// fsync of the directory. Creates the directory (0755) if it is missing.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir)?;
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_string());
    let temporary = dir.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written?;
    File::open(&dir)?.sync_all()
}

/// One write the writer thread is asked for: the latest wins.
struct Request {
    path: PathBuf,
    held: Vec<String>,
}

/// The thread that writes the state file, so an fsync never stalls the loop.
///
/// Created by the loop when `state_file` is set (or first set by a reload), held by
/// it, and given every new held set with `save`, which never waits. The thread takes
/// whatever has queued up and writes only the newest, logging a warning when a write
/// fails (the next change tries again). Dropping the `Writer` ends the thread after
/// its last write; `finish` does the same and waits for it, bounded.
pub struct Writer {
    requests: Option<mpsc::Sender<Request>>,
    /// Closed by the thread when it ends (after its last write).
    done: mpsc::Receiver<()>,
}

impl Writer {
    pub fn start() -> std::io::Result<Writer> {
        let (requests, queue) = mpsc::channel::<Request>();
        let (finished, done) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("minder-state".into())
            .spawn(move || {
                // Held until the thread returns; dropping it tells `finish`.
                let _finished = finished;
                while let Ok(mut request) = queue.recv() {
                    while let Ok(newer) = queue.try_recv() {
                        request = newer;
                    }
                    if let Err(error) =
                        write_atomically(&request.path, &encode(&request.held))
                    {
                        tracing::warn!(
                            "state file {}: cannot write it: {error}; services stopped by hand may start again when minder restarts",
                            crate::config::printable(&request.path.display().to_string())
                        );
                    }
                }
            })?;
        Ok(Writer {
            requests: Some(requests),
            done,
        })
    }

    /// Queue `held` to be written to `path`; returns at once.
    pub fn save(&self, path: &Path, held: Vec<String>) {
        if let Some(requests) = &self.requests {
            let _ = requests.send(Request {
                path: path.to_path_buf(),
                held,
            });
        }
    }

    /// Let the last write finish, waiting at most `LAST_WRITE_BOUND` (a disk that
    /// does not answer must not hold minder's exit).
    pub fn finish(&mut self) {
        self.requests = None;
        let _ = self.done.recv_timeout(LAST_WRITE_BOUND);
    }
}

#[cfg(test)]
mod tests {
    use super::{Stored, Writer, decode, encode, read, write_atomically};

    #[test]
    fn encode_and_decode_agree() {
        let held = vec!["api".to_string(), "web.2".to_string()];
        let bytes = encode(&held);
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            "{\"version\":1,\"held\":[\"api\",\"web.2\"]}\n"
        );
        assert_eq!(decode(&bytes), Ok(held));
    }

    #[test]
    fn bad_content_says_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"{\"version\":1,\"held\":[\"a\"", "not valid JSON"),
            (b"[1]", "expected a JSON object"),
            (b"{\"held\":[]}", "no \"version\""),
            (b"{\"version\":2,\"held\":[]}", "version 2 is not one"),
            (b"{\"version\":1}", "no \"held\" list"),
            (
                b"{\"version\":1,\"held\":[3]}",
                "holds 3, which is not a name",
            ),
            (b"\xff\xfe", "not valid JSON"),
        ];
        for (bytes, expected) in cases {
            let error = decode(bytes).expect_err("bad content was accepted");
            assert!(error.contains(expected), "{error:?} lacks {expected:?}");
        }
    }

    #[test]
    fn a_missing_file_holds_nothing_and_a_directory_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert_eq!(read(&dir.path().join("absent.json")), Ok(Stored::Missing));
        let error = read(dir.path()).expect_err("a directory was read");
        assert!(error.contains("directory"), "{error}");
        assert!(error.contains(&dir.path().display().to_string()), "{error}");
    }

    #[test]
    fn writes_replace_the_file_and_leave_no_temporary_behind() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub").join("state.json");
        write_atomically(&path, &encode(&["a".to_string()])).expect("first write");
        write_atomically(&path, &encode(&["b".to_string()])).expect("second write");
        assert_eq!(read(&path), Ok(Stored::Held(vec!["b".to_string()])));
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["state.json"]);
    }

    #[test]
    fn the_writer_thread_writes_the_latest_set() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("state.json");
        let mut writer = Writer::start().expect("writer thread");
        for count in 0..50 {
            let held = (0..count).map(|i| format!("s{i}")).collect();
            writer.save(&path, held);
        }
        writer.finish();
        let expected: Vec<String> = (0..49).map(|i| format!("s{i}")).collect();
        assert_eq!(read(&path), Ok(Stored::Held(expected)));
    }
}
