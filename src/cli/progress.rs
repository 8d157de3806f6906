//! A progress bar on standard error, for inputs large enough to take more than a moment.
//!
//! Shown only when standard error is a terminal, never with `--quiet`. The library reports
//! finished bytes through a callback (or the CLI counts what a stream reads); this module
//! only draws.

use std::fs::Metadata;
use std::io::{self, IsTerminal, Read};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Inputs smaller than this finish too fast for a bar to be worth drawing.
const MIN_BYTES: u64 = 64 << 20;

/// A progress bar, or nothing.
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar for `total` bytes (`None`: unknown, as for a pipe), labelled `label`.
    pub fn new(quiet: bool, total: Option<u64>, label: &str) -> Progress {
        let big_enough = total.is_none_or(|t| t >= MIN_BYTES);
        if quiet || !big_enough || !io::stderr().is_terminal() {
            return Progress(None);
        }
        let bar = match total {
            Some(total) => ProgressBar::new(total).with_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{msg} {spinner} {bytes} {bytes_per_sec}")
                    .expect("a valid template"),
            ),
        };
        bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(8));
        bar.enable_steady_tick(Duration::from_millis(125));
        bar.set_message(label.to_string());
        Progress(Some(bar))
    }

    /// A bar for reading the file `path`, whose size is known if it is a regular file.
    pub fn for_file(quiet: bool, meta: &Metadata, path: &Path) -> Progress {
        Progress::new(quiet, meta.is_file().then_some(meta.len()), &label(path))
    }

    /// Adds finished bytes; callable from any thread.
    pub fn add(&self, bytes: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(bytes);
        }
    }

    /// Wraps a reader so that every byte read counts as progress.
    pub fn reader<R: Read>(&self, inner: R) -> Counting<'_, R> {
        Counting {
            inner,
            progress: self,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// What to call a file on a progress bar: its name, without the folders, escaped.
pub fn label(path: &Path) -> String {
    let name = path.file_name().unwrap_or(path.as_os_str());
    crate::shown::path(Path::new(name))
}

/// A reader that reports what passes through it.
pub struct Counting<'a, R> {
    inner: R,
    progress: &'a Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add(n as u64);
        Ok(n)
    }
}
