//! The test plugin (`examples/age-plugin-sealtest.rs`) and the hostile ones
//! (`testdata/plugins`), for the plugin tests of both tiers.

use std::path::PathBuf;

use super::{bin, Cmd, Dir};

/// The directory of the test plugin, built by `cargo test` with the examples.
pub fn plugin_dir() -> PathBuf {
    let dir = bin("seal")
        .parent()
        .expect("the binaries' directory")
        .join("examples");
    assert!(
        dir.join("age-plugin-sealtest").is_file(),
        "{}: the test plugin is missing: `cargo test` builds it (or `cargo build --examples`)",
        dir.display()
    );
    dir
}

pub fn hostile_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/plugins")
}

/// `PATH` with `dir` first.
pub fn path_with(dir: &std::path::Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(&rest));
    std::env::join_paths(paths).unwrap()
}

/// Makes `plugin.key` (the identity) and `plugin.pub` (its recipient) with the plugin.
pub fn plugin_key(dir: &Dir) -> String {
    let run = dir
        .cmd(plugin_dir().join("age-plugin-sealtest"))
        .arg("--generate")
        .run()
        .ok();
    let text = run.stdout_string();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# recipient: "))
        .expect("a recipient line")
        .to_string();
    dir.write_private("plugin.key", &text);
    dir.write("plugin.pub", format!("{recipient}\n"));
    recipient
}

/// One of our binaries, with the test plugin on its `PATH` and `env` set.
pub fn with_plugin(dir: &Dir, line: &str, env: &[(&str, &str)]) -> Cmd {
    let mut cmd = dir.line(line);
    cmd.cmd.env("PATH", path_with(&plugin_dir()));
    for (name, value) in env {
        cmd.cmd.env(name, value);
    }
    cmd
}
