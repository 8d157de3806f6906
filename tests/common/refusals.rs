//! Refusals as tables: command lines and files that must be refused, each row with its
//! documented exit code and a piece of its one error line, run by one loop that reports
//! every failing row by name rather than stopping at the first.
//!
//! A refusal leaves the directory exactly as it was: no output, no `.seal-partial`
//! temporary file.

use std::fmt::Display;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use super::*;

/// Runs `check` on every row of a table, `(name, row)`, and then fails once if any row
/// failed, naming each (its own panic message is printed as it happens). A table must have
/// a row.
pub fn each_row<N: Display, R>(rows: impl IntoIterator<Item = (N, R)>, mut check: impl FnMut(R)) {
    let (mut count, mut failed) = (0, Vec::new());
    for (name, row) in rows {
        count += 1;
        if catch_unwind(AssertUnwindSafe(|| check(row))).is_err() {
            failed.push(name.to_string());
        }
    }
    assert!(count > 0, "an empty table");
    assert!(
        failed.is_empty(),
        "{} of {count} rows failed:\n  {}",
        failed.len(),
        failed.join("\n  ")
    );
}

/// What a refused command prints on standard error.
#[derive(Clone, Copy, Debug)]
pub enum Says<'a> {
    /// One `program: error: ...` line with each of these in it, and nothing else.
    Error(&'a [&'a str]),
    /// That line, then one `program: hint: ...` line with the second in it.
    Hint(&'a [&'a str], &'a str),
    /// Some line (among others) with each of these in it.
    Mentions(&'a [&'a str]),
    /// The argument parser's usage message (several lines), with this in it; nothing on
    /// standard output.
    Usage(&'a str),
}

/// Runs `cmd` and checks that it is refused: exit `code`, standard error as `says`, and the
/// directory left as it was.
pub fn refuses(dir: &Dir, cmd: Cmd, code: i32, says: Says) -> Run {
    let program = Path::new(cmd.cmd.get_program()).file_name().unwrap();
    let program = program.to_str().unwrap().to_string();
    let before = dir.listing();
    let run = cmd.run().fails(code);
    let run = match says {
        Says::Error(needles) => run.says(&program, needles, None),
        Says::Hint(needles, hint) => run.says(&program, needles, Some(hint)),
        Says::Mentions(needles) => {
            run.mentions(needles);
            run
        }
        Says::Usage(needle) => {
            let what = &run.what;
            assert!(run.stderr.contains(needle), "{what}: {}", run.stderr);
            assert!(run.stdout.is_empty(), "{what}: wrote to standard output");
            run
        }
    };
    assert_eq!(dir.listing(), before, "{}: the directory changed", run.what);
    run
}

/// [`refuses`] for each row of a table of command lines (split at whitespace): (command
/// line, exit code, what it says).
pub fn refuses_all(dir: &Dir, rows: &[(&str, i32, Says)]) {
    let rows = rows
        .iter()
        .map(|&(line, code, says)| (line, (line, code, says)));
    each_row(rows, |(line, code, says)| {
        refuses(dir, dir.line(line), code, says);
    });
}

/// A file that `unseal` must refuse: what was done to it (the row's name), its bytes, the
/// key flags it is tried with, the exit code, and a piece of the error line.
#[derive(Clone)]
pub struct BadFile {
    pub what: String,
    pub bytes: Vec<u8>,
    pub keys: Vec<String>,
    pub code: i32,
    pub says: String,
}

/// Rows of [`BadFile`]s tried with the same `keys` and refused the same way: `(code,
/// piece of the error line)`; each case is (what was done to the file, its bytes).
pub fn bad_files<W: Into<String>>(
    keys: &[&str],
    (code, says): (i32, &str),
    cases: impl IntoIterator<Item = (W, Vec<u8>)>,
) -> Vec<BadFile> {
    let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    let row = |(what, bytes): (W, Vec<u8>)| BadFile {
        what: what.into(),
        bytes,
        keys: keys.clone(),
        code,
        says: says.to_string(),
    };
    cases.into_iter().map(row).collect()
}

/// How `unseal` reads the file it must refuse.
#[derive(Clone, Copy, Debug)]
enum Read {
    /// A file argument, memory-mapped, opened on every core; default output name.
    Mapped,
    /// A file argument with `--no-mmap` (the streaming path); default output name.
    Streamed,
    /// Standard input, with `-o`.
    Stdin,
}

/// Runs `unseal` on each file of `rows`, read each way (mapped, streamed, standard input),
/// and checks that it exits with the row's code and one error line that names the input
/// and contains the row's piece, leaving the directory as it was. A row is named by what
/// was done to its file and how it was read.
pub fn unseal_refuses(dir: &Dir, rows: &[BadFile]) {
    let rows = rows.iter().flat_map(|row| {
        [Read::Mapped, Read::Streamed, Read::Stdin]
            .map(|read| (format!("{} ({read:?})", row.what), (row, read)))
    });
    each_row(rows, |(row, read)| {
        dir.write("input.age", &row.bytes);
        let cmd = dir.bin("unseal").args(&row.keys);
        let (cmd, name) = match read {
            Read::Mapped => (cmd.arg("input.age"), "input.age"),
            Read::Streamed => (cmd.args(["input.age", "--no-mmap"]), "input.age"),
            Read::Stdin => (
                cmd.args(["-o", "output"]).stdin(row.bytes.clone()),
                "standard input",
            ),
        };
        let needles = [&format!("error: {name}: "), row.says.as_str()];
        refuses(dir, cmd, row.code, Says::Error(&needles));
        dir.remove("input.age");
    });
}
