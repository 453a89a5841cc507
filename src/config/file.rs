//! Reading a file a user named (the config file, a service's `env_file`) without ever
//! blocking or growing without bound: only a regular file is read, and only up to a
//! size limit.
//!
//! A path can name anything: a FIFO (whose `open` waits for a writer, and whose reads
//! wait for data), a device such as `/dev/zero` (endless) or a terminal, a directory, a
//! socket. minder reads such files on its supervision loop's thread, so one bad path
//! must cost a clear error, never a frozen loop or a heap that grows until the kernel
//! kills minder. The file is opened with `O_NONBLOCK` (an `open` of a FIFO or of a
//! device that would wait returns at once) and `O_NOCTTY` (a terminal never becomes
//! minder's controlling terminal), then checked with `fstat` on the open descriptor
//! (no window in which the path could be swapped for something else), then read with
//! the limit enforced on the bytes actually read, so a file that grows meanwhile is
//! still cut off. A regular file on a local file system does not block; one on a
//! network file system that stops answering can, which no flag prevents.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The largest config file `config::load` reads: far above any real tree (a tree of
/// 100 000 nested groups takes under 4 MiB), small enough that a wrong path cannot
/// make minder allocate without bound.
pub const CONFIG_LIMIT: u64 = 16 << 20;

/// The largest env file a service start reads (`process::env::read_env_file`).
pub const ENV_FILE_LIMIT: u64 = 1 << 20;

/// Reads the whole of the regular file at `path` if it holds at most `limit` bytes.
/// The error is a clause without the path (the caller says which file it was).
pub fn read_regular_file(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|error| error.to_string())?;
    let metadata = file.metadata().map_err(|error| error.to_string())?;
    let kind = metadata.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        return Err(format!(
            "it is {what}, not a regular file (only regular files are read)"
        ));
    }
    if metadata.len() > limit {
        return Err(too_large(limit));
    }
    read_at_most(file, limit)
}

/// The bytes of `file`, or an error once more than `limit` arrive.
fn read_at_most(file: File, limit: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| error.to_string())?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

fn too_large(limit: u64) -> String {
    let mut size = super::values::format_size(limit);
    if size.bytes().all(|byte| byte.is_ascii_digit()) {
        size.push_str(" bytes");
    }
    format!("it is larger than {size} (the most minder reads of it)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_is_read_whole_up_to_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").expect("write");
        assert_eq!(read_regular_file(&path, 10), Ok(b"0123456789".to_vec()));
        assert_eq!(
            read_regular_file(&path, 9),
            Err("it is larger than 9 bytes (the most minder reads of it)".to_string())
        );
    }

    #[test]
    fn anything_but_a_regular_file_is_refused_without_blocking() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        // Without O_NONBLOCK this open would wait for a writer forever.
        let refused = read_regular_file(&fifo, 100).expect_err("a FIFO is refused");
        assert!(refused.contains("a FIFO (named pipe)"), "{refused}");
        let refused = read_regular_file(Path::new("/dev/zero"), 100).expect_err("a device");
        assert!(refused.contains("a character device"), "{refused}");
        let refused = read_regular_file(dir.path(), 100).expect_err("a directory");
        assert!(refused.contains("a directory"), "{refused}");
        let missing = read_regular_file(&dir.path().join("none"), 100).expect_err("missing");
        assert!(missing.contains("No such file"), "{missing}");
    }

    #[test]
    fn a_file_that_grows_past_the_limit_while_read_is_cut_off() {
        // /proc files report a size of 0 and are read as far as they go: the limit
        // holds on what is read, not on what fstat said.
        let refused = read_at_most(
            File::open("/proc/self/maps").expect("open /proc/self/maps"),
            1,
        );
        assert_eq!(refused, Err(too_large(1)));
    }
}
