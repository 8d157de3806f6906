//! Round trips through `seal` and `unseal`, every size around the chunk edges, by way of
//! files, default names and pipes, with any thread count, mapped or streamed.

use crate::common::*;

/// Seals and unseals every size in [`SIZES`] by way of `io`, with extra flags for each side.
fn check_round_trips(io: Io, seal_flags: &[&str], unseal_flags: &[&str]) {
    let dir = Dir::new();
    dir.new_key("server");
    let to = [&["--to", "server.pub"], seal_flags].concat();
    let key = [&["--key", "server.key"], unseal_flags].concat();
    for (seed, &len) in SIZES.iter().enumerate() {
        let plaintext = data(len, seed as u64);
        let sealed = seal_via(&dir, io, &plaintext, &to);
        let opened = unseal_via(&dir, io, &sealed, &key);
        let how = format!("{io:?} {seal_flags:?} / {unseal_flags:?}");
        assert!(opened == plaintext, "{how}: {len} bytes did not round-trip");
    }
}

#[test]
fn round_trip_with_default_output_names() {
    check_round_trips(Io::DefaultNames, &[], &[]);
}

#[test]
fn round_trip_with_output_flag() {
    check_round_trips(Io::OutputFlag, &[], &[]);
}

#[test]
fn round_trip_through_stdin_and_stdout() {
    check_round_trips(Io::Pipes, &[], &[]);
}

#[test]
fn round_trip_through_dash_arguments() {
    check_round_trips(Io::Dashes, &[], &[]);
}

#[test]
fn round_trip_with_one_thread() {
    check_round_trips(Io::OutputFlag, &["--threads", "1"], &["--threads", "1"]);
}

#[test]
fn round_trip_with_three_threads() {
    check_round_trips(Io::OutputFlag, &["--threads", "3"], &["--threads", "3"]);
}

#[test]
fn round_trip_without_mmap() {
    check_round_trips(Io::DefaultNames, &["--no-mmap"], &["--no-mmap"]);
}

#[test]
fn the_streaming_and_mapped_paths_read_each_other() {
    check_round_trips(Io::OutputFlag, &["--no-mmap"], &["--threads", "3"]);
    check_round_trips(Io::OutputFlag, &["--threads", "3"], &["--no-mmap"]);
}
