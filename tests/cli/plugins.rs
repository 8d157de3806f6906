//! Plugins (issue 21): keys whose private half lives in a plugin program. The plugin here is
//! `examples/age-plugin-sealtest.rs`, built on the `age-plugin` crate (the reference
//! implementation of the protocol's other side) over a software key; the hostile ones are
//! the shell scripts of `testdata/plugins`.

use std::time::{Duration, Instant};

use crate::common::terminal::on_terminal;
use crate::common::*;

#[test]
fn a_file_sealed_to_a_plugin_recipient_opens_with_its_plugin_identity_only() {
    let dir = Dir::new();
    let recipient = plugin_key(&dir);
    dir.new_key("server");
    let plaintext = data(3 << 20, 21);
    dir.write("report", &plaintext);
    let log = dir.path("plugin.log");
    let log = log.to_str().unwrap();

    with_plugin(
        &dir,
        "seal report --to plugin.pub -o report.age",
        &[("SEALTEST_LOG", log)],
    )
    .run()
    .ok();
    // And to a literal recipient, beside a native key.
    let line = format!("seal report --to {recipient} --to server.pub -o both.age");
    with_plugin(&dir, &line, &[]).run().ok();
    let inspect = dir.line("unseal --inspect report.age").run().ok();
    assert!(
        inspect.stdout_string().contains("1. sealtest"),
        "{}",
        inspect.stdout_string()
    );

    let run = with_plugin(
        &dir,
        "unseal report.age -k plugin.key -o out",
        &[("SEALTEST_LOG", log)],
    )
    .run()
    .ok();
    assert!(dir.read("out") == plaintext, "{}", run.stderr);
    assert_eq!(
        dir.read_string("plugin.log"),
        "recipient-v1\nidentity-v1 1\n"
    );
    with_plugin(&dir, "unseal both.age -k server.key -o out2", &[])
        .run()
        .ok();
    with_plugin(&dir, "unseal both.age -k plugin.key -o out3", &[])
        .run()
        .ok();
    assert!(dir.read("out2") == plaintext && dir.read("out3") == plaintext);
    // A batch of files for the plugin, for the native key, and for both: one session
    // answers for all, and the native key opens the rest.
    dir.mkdir("mixed");
    for name in ["report.age", "both.age"] {
        std::fs::copy(dir.path(name), dir.path(format!("mixed/{name}"))).unwrap();
    }
    dir.write("native", b"native");
    dir.line("seal native --to server.pub -o mixed/native.age")
        .run()
        .ok();
    dir.remove("plugin.log");
    let line = "unseal mixed -k plugin.key -k server.key -o opened";
    let run = with_plugin(&dir, line, &[("SEALTEST_LOG", log)]).run().ok();
    assert!(run.stderr.contains("3 unsealed"), "{}", run.stderr);
    assert_eq!(dir.read_string("plugin.log"), "identity-v1 3\n");
    assert!(dir.read("opened/mixed/both") == plaintext);
    assert_eq!(dir.read("opened/mixed/native"), b"native");

    // Another key is not it; the plugin says nothing, and the file does not open.
    dir.new_key("other");
    let run = with_plugin(&dir, "unseal report.age -k other.key -o no", &[])
        .run()
        .fails(3);
    assert!(!dir.exists("no"), "{}", run.stderr);

    // The age crate opens what it sealed through... no plugin: the stanza is the plugin's
    // own, which no native key opens.
    let theirs = age_identity(&dir, "server.key");
    assert!(age::decrypt(&theirs, &dir.read("report.age")).is_err());
}

#[test]
fn a_plugin_is_run_only_from_the_allow_list_when_one_is_given() {
    let dir = Dir::new();
    plugin_key(&dir);
    dir.write("f", b"allowed");
    let allowed = plugin_dir().join("age-plugin-sealtest");
    let line = format!("seal f --to plugin.pub --plugin {}", allowed.display());
    // Not on PATH: the allow-list finds it.
    dir.line(&line).run().ok();
    let line = format!(
        "unseal f.age -k plugin.key -o - --plugin {}",
        allowed.display()
    );
    assert_eq!(dir.line(&line).run().ok().stdout, b"allowed");
    // On PATH, but not in the list: not run.
    let elsewhere = format!(
        "unseal f.age -k plugin.key -o - --plugin {}",
        hostile_dir().join("age-plugin-quits").display()
    );
    let run = with_plugin(&dir, &elsewhere, &[]).run().fails(3);
    assert!(
        run.stderr
            .contains("age-plugin-sealtest is not among the plugins allowed"),
        "{}",
        run.stderr
    );
    // Not on PATH at all.
    let run = dir.line("unseal f.age -k plugin.key -o -").run().fails(3);
    assert!(
        run.stderr.contains("age-plugin-sealtest not found on PATH"),
        "{}",
        run.stderr
    );
    // A relative path, or a program not named age-plugin-NAME: refused before anything runs.
    for bad in ["age-plugin-sealtest", "/bin/sh"] {
        let line = format!("unseal f.age -k plugin.key -o - --plugin {bad}");
        let run = dir.line(&line).run().fails(2);
        assert!(
            run.stderr
                .contains("absolute path of an age-plugin-NAME program"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_pin_comes_from_a_file_on_a_server_and_is_asked_once_per_run() {
    let dir = Dir::new();
    plugin_key(&dir);
    dir.mkdir("in");
    for i in 0..3 {
        dir.write(format!("in/f{i}"), format!("file {i}"));
    }
    with_plugin(&dir, "seal -q in --to plugin.pub", &[])
        .run()
        .ok();
    dir.write_private("pin", "123456\n");
    let pin = [("SEALTEST_PIN", "123456")];
    let run = with_plugin(
        &dir,
        "unseal -q in -k plugin.key -o out --key-passphrase-file pin",
        &pin,
    )
    .run()
    .ok();
    assert_eq!(dir.read("out/in/f2"), b"file 2", "{}", run.stderr);
    // A wrong PIN: the plugin's error, per file; nothing written.
    dir.write_private("pin", "654321\n");
    let run = with_plugin(
        &dir,
        "unseal in/f0.age -k plugin.key -o wrong --key-passphrase-file pin",
        &pin,
    )
    .run()
    .fails(3);
    assert!(
        run.stderr.contains("plugin sealtest: wrong PIN"),
        "{}",
        run.stderr
    );
    assert!(!dir.exists("wrong"));
    // Typed on a terminal: asked once for the three files.
    let mut cmd = with_plugin(&dir, "unseal -q in -k plugin.key -o typed", &pin);
    cmd.cmd.env("SEALTEST_LOG", dir.path("typed.log"));
    let run = on_terminal(cmd, "123456\n").ok();
    let shown = run.stdout_string();
    assert_eq!(
        shown.matches("PIN for the sealtest key").count(),
        1,
        "{shown}"
    );
    assert_eq!(dir.read("typed/in/f1"), b"file 1");
    // One plugin session for the batch, which unwrapped the three file keys.
    assert_eq!(dir.read_string("typed.log"), "identity-v1 3\n");
    // No terminal and no PIN given: the request is refused with a line that says how.
    let run = with_plugin(&dir, "unseal in/f0.age -k plugin.key -o none", &pin)
        .run()
        .fails(3);
    assert!(
        run.stderr
            .contains("there is no terminal: give it with --key-passphrase-file"),
        "{}",
        run.stderr
    );
    assert!(!dir.exists("none"));
}

/// An identity file for the hostile plugin `name`, and a file sealed for it (to a native
/// key: the plugin is asked about its stanza anyway, and misbehaves).
fn hostile_setup(dir: &Dir, name: &str) {
    dir.new_key("server");
    dir.write("f", b"secret");
    dir.line("seal f --to server.pub").run().ok();
    let hrp = bech32::Hrp::parse(&format!("age-plugin-{name}-")).unwrap();
    let identity = bech32::encode::<bech32::Bech32>(hrp, &[7; 16]).unwrap();
    dir.write_private(format!("{name}.key"), identity.to_uppercase() + "\n");
}

#[test]
fn a_misbehaving_plugin_ends_with_one_clear_error_in_bounded_time_and_nothing_written() {
    for (name, says) in [
        ("hang", "plugin hang: sent nothing for 1 s: stopped"),
        (
            "quits",
            "plugin quits: exited before the end of the protocol",
        ),
        (
            "garbage",
            r#"plugin garbage: sent "hello there" where a stanza belongs"#,
        ),
        ("flood", "plugin flood: sent a line longer than 16384 bytes"),
        (
            "shortkey",
            "plugin shortkey: sent a file key of 8 bytes, not 16",
        ),
        ("asks", "plugin asks: no PIN"),
        ("chatty", "plugin chatty: sent more than 4100 stanzas"),
    ] {
        let dir = Dir::new();
        hostile_setup(&dir, name);
        let started = Instant::now();
        let line = format!("unseal f.age -k {name}.key -o out --plugin-timeout 1");
        let mut cmd = dir.line(&line);
        cmd.cmd.env("PATH", path_with(&hostile_dir()));
        let run = cmd.run().fails(3);
        assert!(run.stderr.contains(says), "{name}: {}", run.stderr);
        assert!(!dir.exists("out"), "{name}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{name}: {:?}",
            started.elapsed()
        );
        // The file itself still opens with the right key.
        dir.line("unseal f.age -k server.key -o ok").run().ok();
    }
    // A name that is a path: refused as a key, before any program runs.
    let dir = Dir::new();
    let hrp = bech32::Hrp::parse("age-plugin-../x-").unwrap();
    let identity = bech32::encode::<bech32::Bech32>(hrp, &[7; 16]).unwrap();
    dir.write_private("bad.key", identity.to_uppercase() + "\n");
    dir.write("f.age", b"age-encryption.org/v1\n");
    dir.line("unseal f.age -k bad.key -o out").run().fails(2);
}

#[test]
fn seal_seals_to_a_tag_recipient_without_a_plugin_and_inspect_names_its_stanza() {
    let dir = Dir::new();
    dir.write("f", b"for the hardware key");
    // The example recipient of the spec (C2SP age.md); PATH holds no plugin at all.
    let recipient = "age1tag1qt8lw0ual6avlwmwatk888yqnmdamm7xfd0wak53ut6elz5c4swx2yqdj4e";
    let mut seal = dir.line(&format!("seal f --to {recipient}"));
    seal.cmd.env("PATH", "/nonexistent");
    seal.run().ok();
    let run = dir.line("unseal --inspect f.age").run().ok();
    let text = run.stdout_string();
    assert!(
        text.contains("1. p256tag, recipient: a P-256 key in hardware"),
        "{text}"
    );
}

#[test]
fn a_plugin_that_reads_nothing_does_not_hold_a_batch_past_its_timeout() {
    let dir = Dir::new();
    hostile_setup(&dir, "deaf");
    // Enough files that their headers fill the pipe to the plugin.
    dir.mkdir("in");
    for i in 0..600 {
        dir.write(format!("in/f{i:03}"), b"x");
    }
    dir.line("seal -q in --to server.pub").run().ok();
    let started = Instant::now();
    let mut cmd = dir.line("unseal -q in -k deaf.key -o out --plugin-timeout 1");
    cmd.cmd.env("PATH", path_with(&hostile_dir()));
    let run = cmd.run().fails(7);
    assert!(
        run.stderr
            .contains("plugin deaf: read nothing of its input for 1 s: stopped"),
        "{}",
        &run.stderr[..run.stderr.len().min(2000)]
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(!dir.exists("out/in/f000"));
}
