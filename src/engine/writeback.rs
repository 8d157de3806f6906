//! Write-behind: the kernel starts writing an output's finished bytes to the disk while the
//! rest is still being sealed or opened, so that the final `fdatasync` waits only for the
//! tail, and a group of small outputs goes to the disk in one stream of writes rather than
//! one file at a time (see `crate::file::commit`).
//!
//! On Linux this is `sync_file_range(SYNC_FILE_RANGE_WRITE)`: it queues the range's dirty
//! pages for writing and returns without waiting for them (it may wait for room in the
//! device's queue, which paces a writer faster than its disk). It promises nothing about
//! durability: only `fdatasync` does. On tmpfs, and elsewhere, it does nothing.

use std::fs::File;

/// Starts writing `len` bytes of `file` from `offset` to its disk, without waiting for them;
/// `len` 0: to the end of the file. A hint: a failure is ignored, since the `fdatasync`
/// that makes the output durable reports any real one.
pub(crate) fn start(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
            return;
        };
        // SAFETY: sync_file_range reads only its integer arguments, and the descriptor is
        // open for as long as `file` is borrowed; it touches no memory of this process.
        let _ = unsafe {
            libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
        };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn starting_writeback_leaves_the_bytes_and_ignores_what_cannot_be_written_back() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(&[7u8; 100_000]).unwrap();
        start(file.as_file(), 4096, 8192);
        start(file.as_file(), 0, 0);
        // Beyond the end, and past what an offset can say: no effect, no panic.
        start(file.as_file(), 1 << 40, 1);
        start(file.as_file(), u64::MAX, u64::MAX);
        file.as_file().sync_data().unwrap();
        assert_eq!(std::fs::read(file.path()).unwrap(), vec![7u8; 100_000]);
        // A pipe cannot be written back: ignored.
        let (_reader, writer) = std::io::pipe().unwrap();
        start(&File::from(std::os::fd::OwnedFd::from(writer)), 0, 0);
    }
}
