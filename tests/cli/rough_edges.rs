//! Issue 16: rough edges of the command line. Each test states the rule it checks; a refusal
//! is one error line (and a hint where one helps), its documented exit code, and a directory
//! left as it was.

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use crate::common::*;

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
    // The message names the option as typed, and as meant.
    let refused = [
        ("seal f -to server.pub", &["-to:", "--to"][..]),
        ("seal f -to=server.pub", &["-to:", "--to"]),
        (
            "seal f --to server.pub -output x.age",
            &["-output:", "--output"],
        ),
        (
            "seal f --to server.pub -recipients-file x",
            &["-recipients-file:", "--recipients-file"],
        ),
        ("unseal f.age -key server.key", &["-key:", "--key"]),
        (
            "unseal f.age -identity server.key",
            &["-identity:", "--identity"],
        ),
        ("seal-keygen -output new.key", &["-output:", "--output"]),
        ("seal-keygen -client alice", &["-client:", "--client"]),
    ];
    let refused = refused.map(|(line, says)| (line, EXIT_USAGE, Says::Error(says)));
    refuses_all(&dir, &refused);
    // Short options run together are still short options, and after `--` a name is a name.
    let armored = dir
        .line("seal f --to server.pub -af -o f.armored")
        .run()
        .ok();
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
    let decrypt = Says::Hint(&["seal does not"], "to decrypt, use unseal");
    let encrypt = Says::Hint(&["unseal does not"], "to encrypt, use seal");
    refuses_all(
        &dir,
        &[
            ("seal -d f.age -o g", EXIT_USAGE, decrypt),
            ("seal --decrypt f.age -o g", EXIT_USAGE, decrypt),
            ("unseal -e f -k server.key -o g", EXIT_USAGE, encrypt),
        ],
    );
}

#[test]
fn help_is_short_on_both_flags_and_the_man_page_has_the_details() {
    use clap::CommandFactory;
    let dir = Dir::new();
    let commands = [
        (
            "seal",
            seal::__private::cli::seal::Args::command(),
            "SSHSIG",
        ),
        (
            "unseal",
            seal::__private::cli::unseal::Args::command(),
            "allowed signers",
        ),
        (
            "seal-keygen",
            seal::__private::cli::keygen::Args::command(),
            "allowed signers list",
        ),
    ];
    for (program, command, detail) in commands {
        let short = dir.bin(program).arg("-h").run().ok().stdout_string();
        let long = dir.bin(program).arg("--help").run().ok().stdout_string();
        assert_eq!(short, long, "{program}: -h and --help differ");
        let lines = short.lines().count();
        assert!(lines <= 45, "{program} --help: {lines} lines:\n{short}");
        assert!(
            short.contains("man "),
            "{program} --help points to the man page"
        );
        assert!(
            !short.contains(detail),
            "{program} --help: details stay in the man page"
        );

        let mut page = Vec::new();
        clap_mangen::Man::new(command).render(&mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains(detail), "{program}.1 has the details");
        assert!(page.contains("Examples"), "{program}.1 has the examples");
    }
}

#[test]
fn an_existing_directory_as_output_takes_the_file_under_its_usual_name() {
    let (dir, _) = with_server();
    fs::create_dir(dir.path("out")).unwrap();
    // As cp does: the output goes into the directory, named as it would be beside the input.
    dir.line("seal f --to server.pub -o out").run().ok();
    assert_eq!(opened(&dir, "out/f.age"), b"hello\n");
    fs::create_dir(dir.path("plain")).unwrap();
    dir.line("unseal out/f.age -k server.key -o plain")
        .run()
        .ok();
    assert_eq!(dir.read("plain/f"), b"hello\n");

    // A file already there is kept, as any output is; the message names it, not the directory.
    let before = dir.listing();
    dir.line("seal f --to server.pub -o out")
        .run()
        .fails(EXIT_IO)
        .says(
            "seal",
            &["out/f.age: output file already exists"],
            Some("--force"),
        );
    assert_eq!(dir.listing(), before);
    dir.line("seal f --to server.pub -o out --force").run().ok();

    // Standard input has no name to give the file.
    dir.line("seal --to server.pub -o out")
        .stdin("hello\n")
        .run()
        .fails(EXIT_USAGE)
        .says("seal", &["out: is a directory"], Some("-o out/NAME"));
    // Nor has a sealed file whose name does not end in .age.
    fs::copy(dir.path("out/f.age"), dir.path("sealed")).unwrap();
    dir.line("unseal sealed -k server.key -o plain")
        .run()
        .fails(EXIT_USAGE)
        .says(
            "unseal",
            &["sealed: does not end in .age"],
            Some("-o plain/NAME"),
        );
    assert_eq!(
        dir.listing().len(),
        before.len() + 1,
        "only sealed was added"
    );
}

#[test]
fn a_batch_output_must_be_a_directory_and_a_file_name_is_explained() {
    let (dir, _) = with_server();
    fs::create_dir(dir.path("in")).unwrap();
    dir.write("in/a", "a\n");
    let not_a_directory = Says::Hint(&["f: not a directory"], "-o DIRECTORY");
    refuses_all(
        &dir,
        &[
            // A missing output named NAME.age is meant as one file: a batch writes a tree
            // (and no single.age directory is made).
            (
                "seal in --to server.pub -o single.age",
                EXIT_USAGE,
                Says::Hint(
                    &["single.age: a batch writes into a directory"],
                    "tar c in | seal",
                ),
            ),
            // An existing file is no directory, for seal and unseal.
            ("seal in --to server.pub -o f", EXIT_USAGE, not_a_directory),
            ("unseal in -k server.key -o f", EXIT_USAGE, not_a_directory),
        ],
    );
    // An existing directory is one, whatever its name.
    fs::create_dir(dir.path("tree.age")).unwrap();
    dir.line("seal in --to server.pub -o tree.age").run().ok();
    assert_eq!(opened(&dir, "tree.age/in/a.age"), b"a\n");
}

#[test]
fn recipients_given_to_the_wrong_flag_get_a_hint_and_pasted_ones_are_accepted() {
    let (dir, recipient) = with_server();
    let before = dir.listing();
    dir.line("seal f -r server.pub")
        .run()
        .fails(EXIT_USAGE)
        .says(
            "seal",
            &["-r: server.pub is a file, not a recipient"],
            Some("-R server.pub"),
        );
    dir.bin("seal")
        .args(["f", "-R", &recipient])
        .run()
        .fails(EXIT_USAGE)
        .says(
            "seal",
            &["-R: this is a recipient, not a file"],
            Some("-r RECIPIENT"),
        );
    // Mixed case is not Bech32: refused.
    let mixed = format!("Age1{}", &recipient[4..]);
    dir.bin("seal")
        .args(["f", "-r", &mixed])
        .run()
        .fails(EXIT_USAGE)
        .says("seal", &["invalid recipient"], None);
    assert_eq!(dir.listing(), before);

    // Pasted with a space or line end around it, or in upper case (valid Bech32): accepted.
    let pasted = [
        format!("{recipient} "),
        format!(" {recipient}\n"),
        format!("{recipient}\r\n"),
        recipient.to_uppercase(),
    ];
    for value in &pasted {
        for flag in ["-r", "--to"] {
            let run = dir
                .bin("seal")
                .args(["f", flag, value, "-o", "f.age", "-f"]);
            assert!(run.run().ok().stderr.is_empty());
            assert_eq!(opened(&dir, "f.age"), b"hello\n", "{flag} {value:?}");
        }
    }
}

#[test]
fn sign_with_names_the_kind_of_key_it_was_given() {
    let dir = with_keys();
    dir.new_key("server");
    dir.write("f", "hello\n");
    // The message names the key file and what it is, and says what signs.
    let refused = [
        (
            "seal f --to server.pub --sign-with ed25519.pub",
            EXIT_USAGE,
            Says::Hint(
                &["ed25519.pub: this is a public key", "OpenSSH private key"],
                "the private key",
            ),
        ),
        (
            "seal f --to server.pub --sign-with server.pub",
            EXIT_USAGE,
            Says::Hint(
                &["server.pub: this is a public key", "OpenSSH private key"],
                "the private key",
            ),
        ),
        (
            "seal f --to server.pub --sign-with server.key",
            EXIT_USAGE,
            Says::Hint(
                &["server.key: this is an age identity", "OpenSSH private key"],
                "seal-keygen --client",
            ),
        ),
        (
            "seal f --to server.pub --sign-with pkcs1.pem",
            EXIT_USAGE,
            Says::Hint(
                &[
                    "pkcs1.pem: this is a PEM private key",
                    "OpenSSH private key",
                ],
                "seal-keygen --client",
            ),
        ),
    ];
    refuses_all(&dir, &refused);
    // An OpenSSH private key signs.
    dir.line("seal f --to server.pub --sign-with ed25519")
        .run()
        .ok();
    assert!(dir.path("f.age.sig").is_file());
}

/// Runs `seal-keygen` with standard output a new file `name` of mode `mode`.
fn keygen_into_file(dir: &Dir, name: &str, mode: u32) -> Run {
    let file = fs::File::create(dir.path(name)).unwrap();
    dir.chmod(name, mode);
    let mut cmd = dir.bin("seal-keygen").cmd;
    let output = cmd.stdin(Stdio::null()).stdout(file).output().unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: output.stdout,
        stderr: String::from_utf8(output.stderr).unwrap(),
        what: format!("{cmd:?}"),
    }
}

#[test]
fn keygen_warns_when_its_secret_goes_to_a_file_others_can_read() {
    let dir = Dir::new();
    let run = keygen_into_file(&dir, "open.txt", 0o644).ok();
    let lines = run.stderr_lines();
    assert_eq!(lines.len(), 2, "{}", run.stderr);
    assert!(lines[0].starts_with("Public key: age1"), "{}", run.stderr);
    assert_eq!(
        lines[1],
        "seal-keygen: warning: standard output: writing a secret key to a file that group or \
others can read; run chmod 600 on it"
    );
    assert!(dir.read_string("open.txt").contains("AGE-SECRET-KEY-1"));

    let run = keygen_into_file(&dir, "closed.txt", 0o600).ok();
    assert_eq!(run.stderr_lines().len(), 1, "no warning: {}", run.stderr);
    assert!(dir.read_string("closed.txt").contains("AGE-SECRET-KEY-1"));
}

#[test]
fn client_names_are_plain_words_that_stay_in_the_working_directory() {
    let dir = Dir::new();
    fs::create_dir(dir.path("work")).unwrap();
    let keygen = || {
        let mut cmd = dir.bin("seal-keygen");
        cmd.cmd.current_dir(dir.path("work"));
        cmd
    };
    let absolute = dir.path("evil").display().to_string();
    let bad = [
        "../evil",
        "a/b",
        &absolute,
        ".hidden",
        "-x",
        "",
        "a b",
        "caf\u{e9}",
    ];
    let says = Says::Hint(
        &["cannot be a signer name"],
        "letters, digits, '.', '_', '-' and '@'",
    );
    each_row(bad.map(|bad| (format!("{bad:?}"), bad)), |bad| {
        let cmd = keygen().arg(format!("--client={bad}"));
        refuses(&dir, cmd, EXIT_USAGE, says);
    });
    for good in ["alice", "alice.smith@example.com", "build_bot-2"] {
        let run = keygen().args(["--client", good]).run().ok();
        let line = run.stdout_string();
        assert!(line.starts_with(&format!("{good} namespaces=\"seal\" ssh-ed25519 ")));
        assert!(dir.path(format!("work/{good}.key")).is_file());
    }
}

#[test]
fn inspect_calls_the_signer_stanza_what_it_is() {
    let (dir, _) = with_server();
    dir.line("seal-keygen --client alice").run().ok();
    dir.line("seal f --to server.pub --sign-with alice.key")
        .run()
        .ok();
    let fingerprint = dir.line("seal-keygen --fingerprint alice.pub").run().ok();
    let fingerprint = fingerprint.stdout_string();
    let fingerprint = fingerprint.split(' ').nth(1).unwrap();

    let run = dir.line("unseal --inspect f.age -k server.key").run().ok();
    let text = run.stdout_string();
    let signer = format!(
        "  2. seal-signer: not a recipient; it names the file's signer, {fingerprint} \
(unseal --allowed-signers checks it)\n"
    );
    assert!(text.contains(&signer), "{text}");
    assert!(text.contains("  1. X25519, recipient: "), "{text}");
    assert!(text.contains("     opens with: server.key\n"), "{text}");
    assert!(!text.contains("none of the keys given"), "{text}");

    let run = dir
        .line("unseal --inspect f.age -k server.key --json")
        .run()
        .ok();
    let json: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let stanza = &json["stanzas"][1];
    assert_eq!(stanza["type"], "seal-signer");
    assert_eq!(stanza["recipient"], serde_json::Value::Null);
    assert_eq!(stanza["signer"], fingerprint);
    assert!(stanza.get("opens_with").is_none(), "{stanza}");
    assert_eq!(
        json["stanzas"][0]["opens_with"],
        serde_json::json!(["server.key"])
    );
}

// ---------------------------------------------------------------------------------------------
// Ctrl-C with a progress bar on the terminal: the bar is cleared before the message.

/// The lines a terminal shows after `output`: text, carriage returns, line feeds, and the
/// erase and cursor sequences a progress bar uses (others are dropped).
fn screen(output: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(output);
    let mut lines: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col) = (0usize, 0usize);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => col = 0,
            '\n' => {
                row += 1;
                if lines.len() <= row {
                    lines.push(Vec::new());
                }
            }
            '\x1b' if chars.peek() == Some(&'[') => {
                chars.next();
                let mut param = String::new();
                let end = loop {
                    match chars.next() {
                        Some(c) if c.is_ascii_digit() || c == ';' || c == '?' => param.push(c),
                        other => break other,
                    }
                };
                let n = param.parse::<usize>().unwrap_or(0);
                let line = &mut lines[row];
                match end {
                    Some('K') if n == 2 => line.clear(),
                    Some('K') | Some('J') => line.truncate(col),
                    Some('A') => row = row.saturating_sub(n.max(1)),
                    Some('G') => col = n.saturating_sub(1),
                    _ => {}
                }
            }
            c if !c.is_control() => {
                let line = &mut lines[row];
                while line.len() < col {
                    line.push(' ');
                }
                match line.get_mut(col) {
                    Some(at) => *at = c,
                    None => line.push(c),
                }
                col += 1;
            }
            _ => {}
        }
    }
    lines.into_iter().map(|l| l.into_iter().collect()).collect()
}

#[test]
fn ctrl_c_clears_the_progress_bar_before_its_message() {
    let (dir, _) = with_server();
    let (mut main, terminal) = terminal::open_pty();
    // Standard input is a pipe, of unknown size: a spinner is drawn from the start.
    let mut cmd = dir.line("seal --to server.pub -o out.age").cmd;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(terminal)
        .spawn()
        .unwrap();
    drop(cmd);
    let stdin = child.stdin.take();
    let (drawn, first_drawn) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        // Reading fails (EIO) once the child, the last holder of the terminal side, exits.
        while let Ok(n @ 1..) = std::io::Read::read(&mut main, &mut buf) {
            seen.extend_from_slice(&buf[..n]);
            let _ = drawn.send(());
        }
        seen
    });
    // The spinner is drawn once the output file is made and the handler is in place.
    let wait = first_drawn.recv_timeout(Duration::from_secs(30));
    wait.expect("seal drew nothing on the terminal");
    std::thread::sleep(Duration::from_millis(200));
    send_signal(&child, "INT");
    let status = child.wait().unwrap();
    drop(stdin);
    let output = reader.join().unwrap();
    assert_eq!(status.code(), Some(EXIT_INTERRUPTED));
    let shown = String::from_utf8_lossy(&output);
    assert!(
        shown.contains("standard input"),
        "a spinner was drawn: {shown:?}"
    );
    let message = "seal: error: interrupted; no partial output was left behind";
    let screen = screen(&output);
    let line = screen.iter().find(|l| l.contains(message));
    let line = line.unwrap_or_else(|| panic!("no message on {screen:?}"));
    assert_eq!(
        line.trim_end(),
        message,
        "the bar is cleared first: {shown:?}"
    );
    assert!(
        !screen.iter().any(|l| l.contains("standard input")),
        "{screen:?}"
    );
}
