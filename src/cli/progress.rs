//! A progress bar on standard error, for inputs large enough to take more than a moment.
//!
//! Shown only when standard error is a terminal, never with `--quiet`. The library reports
//! finished bytes through a callback (or the CLI counts what a stream reads); this module
//! only draws. Every bar, a batch's too, is made by [`bar`], so that a signal can clear them
//! all ([`clear_all`]) before its message.

use std::fs::Metadata;
use std::io::{self, IsTerminal};
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, WeakProgressBar};

/// The bars made so far; those dropped since no longer upgrade.
static BARS: Mutex<Vec<WeakProgressBar>> = Mutex::new(Vec::new());

/// A bar on standard error for `total` bytes (`None`: a spinner), drawn from `template`
/// eight times a second, and known to [`clear_all`].
pub fn bar(total: Option<u64>, template: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(template)
        .expect("a valid template")
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr_with_hz(8));
    bar.set_style(style);
    bar.enable_steady_tick(Duration::from_millis(125));
    let mut bars = BARS.lock().unwrap_or_else(|e| e.into_inner());
    bars.retain(|weak| weak.upgrade().is_some());
    bars.push(bar.downgrade());
    bar
}

/// Clears every bar still drawn and stops it drawing again: the signal handler calls this
/// before its message, which would otherwise be written after a bar, on the bar's line.
pub fn clear_all() {
    let bars = BARS.lock().unwrap_or_else(|e| e.into_inner());
    for bar in bars.iter().filter_map(WeakProgressBar::upgrade) {
        bar.finish_and_clear();
    }
}

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
        let template = match total {
            Some(_) => "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            None => "{msg} {spinner} {bytes} {bytes_per_sec}",
        };
        let bar = bar(total, template);
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
