//! Report lines as JSON, written by hand: strings escaped so that no name an uploader chose
//! can break a line or drive a terminal, paths kept exact, times in UTC.

use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::SystemTime;

use base64::Engine as _;

/// `,"key":"path"`: the path as UTF-8 (invalid bytes replaced by U+FFFD); a path that is
/// not UTF-8 also gets `,"key_base64":"..."` with its exact bytes.
pub(crate) fn json_path(line: &mut String, key: &str, path: Option<&Path>) {
    let _ = write!(line, ",\"{key}\":");
    let Some(path) = path else {
        line.push_str("null");
        return;
    };
    json_string(line, &path.to_string_lossy());
    if path.to_str().is_none() {
        let bytes = path.as_os_str().as_bytes();
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        let _ = write!(line, ",\"{key}_base64\":\"{encoded}\"");
    }
}

/// A JSON string literal.
pub(crate) fn json_string(line: &mut String, text: &str) {
    line.push('"');
    for c in text.chars() {
        match c {
            '"' => line.push_str("\\\""),
            '\\' => line.push_str("\\\\"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            '\t' => line.push_str("\\t"),
            // C0 controls, and DEL and C1 controls too, so that no terminal showing the
            // report acts on them; the parsed string is the same.
            c if c.is_control() => {
                let _ = write!(line, "\\u{:04x}", c as u32);
            }
            c => line.push(c),
        }
    }
    line.push('"');
}

/// `time` as RFC 3339 in UTC, to the microsecond: `2026-12-07T08:15:00.123456Z`.
pub(crate) fn time(time: SystemTime) -> String {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = since.as_secs();
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Days since 1970-01-01 to a civil date (proleptic Gregorian), by 400-year eras.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60,
        since.subsec_micros()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_to_the_microsecond() {
        let at = |secs: u64, ms: u64| {
            time(SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(secs * 1000 + ms))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 (a leap day), and the last millisecond of 2026.
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.007000Z");
        assert_eq!(at(1_798_761_599, 999), "2026-12-31T23:59:59.999000Z");
    }

    #[test]
    fn json_strings_escape_quotes_backslashes_and_controls() {
        let mut line = String::new();
        json_string(&mut line, "a\"b\\c\nd\u{1}é\u{1b}\u{7f}\u{9b}");
        assert_eq!(line, r#""a\"b\\c\nd\u0001é\u001b\u007f\u009b""#);
    }

    #[test]
    fn a_path_that_is_not_utf8_keeps_its_bytes_in_base64() {
        use std::os::unix::ffi::OsStrExt;
        let path = Path::new(std::ffi::OsStr::from_bytes(b"in/\xff.txt"));
        let mut line = String::new();
        json_path(&mut line, "path", Some(path));
        assert_eq!(
            line,
            ",\"path\":\"in/\u{fffd}.txt\",\"path_base64\":\"aW4v/y50eHQ=\""
        );
    }
}
