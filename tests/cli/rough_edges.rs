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

#[test]
fn age_mode_flags_are_accepted_or_point_to_the_other_tool() {
    let (dir, _) = with_server();
    // age -e and age -d: the direction each tool goes anyway.
    for flag in ["-e", "--encrypt"] {
        let line = format!("seal {flag} f --to server.pub -o f.age -f");
        dir.line(&line).run().ok();
        for flag in ["-d", "--decrypt"] {
            let line = format!("unseal {flag} -i server.key f.age -o -");
            assert_eq!(dir.line(&line).run().ok().stdout, b"hello\n");
        }
    }
    let before = dir.listing();
    for (line, hint) in [
        ("seal -d f.age -o g", "to decrypt, use unseal"),
        ("seal --decrypt f.age -o g", "to decrypt, use unseal"),
        ("unseal -e f -k server.key -o g", "to encrypt, use seal"),
    ] {
        let program = line.split(' ').next().unwrap();
        dir.line(line)
            .run()
            .fails(EXIT_USAGE)
            .says(program, &[&format!("{program} does not")], Some(hint));
        assert_eq!(dir.listing(), before, "{line}");
    }
}

#[test]
fn help_is_short_on_both_flags_and_the_man_page_has_the_details() {
    use clap::CommandFactory;
    let dir = Dir::new();
    let commands = [
        ("seal", seal::cli::seal::Args::command(), "SSHSIG"),
        ("unseal", seal::cli::unseal::Args::command(), "allowed signers"),
        ("seal-keygen", seal::cli::keygen::Args::command(), "allowed signers list"),
    ];
    for (program, command, detail) in commands {
        let short = dir.bin(program).arg("-h").run().ok().stdout_string();
        let long = dir.bin(program).arg("--help").run().ok().stdout_string();
        assert_eq!(short, long, "{program}: -h and --help differ");
        let lines = short.lines().count();
        assert!(lines <= 45, "{program} --help: {lines} lines:\n{short}");
        assert!(short.contains("man "), "{program} --help points to the man page");
        assert!(!short.contains(detail), "{program} --help: details stay in the man page");

        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains(detail), "{program}.1 has the details");
        assert!(page.contains("Examples"), "{program}.1 has the examples");
    }
}
