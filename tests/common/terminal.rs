//! A pseudo-terminal opened in process, for what asks a person at a terminal: passphrase
//! prompts, which read the controlling terminal (`/dev/tty`), never standard input.
//!
//! The command runs in a session of its own with the terminal's far side as its controlling
//! terminal and as its standard input, output and error, as in a terminal window; the test
//! types at the near side, and reads there what the terminal showed.

use std::ffi::CStr;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use super::*;

/// Runs `cmd` on a fresh pseudo-terminal, with `typed` already typed at it (as a person
/// types ahead of a prompt). Its `stdout` is all the terminal showed: the prompts, the
/// command's output and errors, and the echo of what was typed before a prompt turned echo
/// off. Fails the test if the command still runs after 60 seconds (waiting for a line that
/// was never typed, say).
pub fn on_terminal(cmd: Cmd, typed: &str) -> Run {
    let Cmd {
        cmd: mut command, ..
    } = cmd;
    let what = format!("{command:?} on a terminal");
    let (mut near, far) = open_pty();
    near.write_all(typed.as_bytes()).unwrap();
    command
        .stdin(far.try_clone().unwrap())
        .stdout(far.try_clone().unwrap())
        .stderr(far);
    // SAFETY: between fork and exec the closure calls only setsid(2) and ioctl(2), which are
    // async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    // The command now holds the only descriptors of the far side: once it exits, reading
    // the near side ends (with EIO).
    drop(command);
    let reader = std::thread::spawn(move || {
        let mut shown = Vec::new();
        let mut buf = [0; 4096];
        loop {
            match near.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => shown.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) => panic!("read the terminal: {e}"),
            }
        }
        shown
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            let shown = reader.join().unwrap();
            let shown = String::from_utf8_lossy(&shown);
            panic!("{what}: still running after 60 s; the terminal showed:\n{shown}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status
            .code()
            .unwrap_or_else(|| panic!("{what} was killed: {status:?}")),
        stdout: reader.join().unwrap(),
        stderr: String::new(),
        what,
    }
}

/// A new pseudo-terminal of 80 columns and 24 rows: (the near side, which the test holds;
/// the far side, which the command gets). Neither becomes this process's controlling
/// terminal.
pub fn open_pty() -> (File, File) {
    let open = |path: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(path)
            .unwrap_or_else(|e| panic!("open {path}: {e}"))
    };
    let near = open("/dev/ptmx");
    let fd = near.as_raw_fd();
    let mut name = [0 as libc::c_char; 64];
    // SAFETY: `fd` is the open pseudo-terminal master; ptsname_r writes a NUL-terminated
    // name of at most `name.len()` bytes into `name`.
    let far_name = unsafe {
        assert_eq!(libc::grantpt(fd), 0, "grantpt");
        assert_eq!(libc::unlockpt(fd), 0, "unlockpt");
        assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
        CStr::from_ptr(name.as_ptr())
    };
    let far = open(far_name.to_str().expect("a terminal's name is ASCII"));
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one `winsize`, which lives until the call returns.
    assert_eq!(
        unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &size) },
        0,
        "TIOCSWINSZ"
    );
    (near, far)
}
