//! Issue 16: rough edges of the command line. Each test states the rule it checks; a refusal
//! is one error line (and a hint where one helps), its documented exit code, and a directory
//! left as it was.

use super::*;

/// A directory with a server key (`server.key`, `server.pub`) and `f` ("hello\n").
fn with_server() -> (Dir, String) {
    let dir = Dir::new();
    let recipient = dir.new_key("server");
    dir.write("f", "hello\n");
    (dir, recipient)
}

/// Unseals `sealed` with `server.key` to standard output.
fn opened(dir: &Dir, sealed: &str) -> Vec<u8> {
    let run = dir.line(&format!("unseal {sealed} -k server.key -o -"));
    run.run().ok().stdout
}

#[test]
fn a_long_option_with_one_dash_is_refused_naming_its_two_dash_form() {
    let (dir, _) = with_server();
    // (command line, the option as typed, as meant)
    let cases = [
        ("seal f -to server.pub", "-to", "--to"),
        ("seal f -to=server.pub", "-to", "--to"),
        ("seal f --to server.pub -output x.age", "-output", "--output"),
        ("seal f --to server.pub -recipients-file x", "-recipients-file", "--recipients-file"),
        ("unseal f.age -key server.key", "-key", "--key"),
        ("unseal f.age -identity server.key", "-identity", "--identity"),
        ("seal-keygen -output new.key", "-output", "--output"),
        ("seal-keygen -client alice", "-client", "--client"),
    ];
    for (line, typed, meant) in cases {
        let program = line.split(' ').next().unwrap();
        let before = dir.listing();
        dir.line(line)
            .run()
            .fails(EXIT_USAGE)
            .says(program, &[&format!("{typed}:"), meant], None);
        assert_eq!(dir.listing(), before, "{line}");
    }
    // Short options run together are still short options, and after `--` a name is a name.
    let armored = dir.line("seal f --to server.pub -af -o f.armored").run().ok();
    assert!(armored.stderr.is_empty());
    assert_eq!(opened(&dir, "f.armored"), b"hello\n");
    dir.line("seal --to server.pub -- -to")
        .run()
        .fails(EXIT_IO)
        .says("seal", &["-to: no such file or directory"], None);
}
