//! Writes man pages and shell completions for the three binaries, from their clap definitions.
//!
//! ```text
//! cargo run --example gen-docs -- OUTDIR
//! ```
//!
//! OUTDIR gets `man/seal.1`, `man/unseal.1`, `man/seal-keygen.1`, and completions for bash,
//! zsh, fish, elvish and PowerShell under `completions/`.

use std::path::{Path, PathBuf};

use clap::CommandFactory;
use clap_complete::Shell;

fn main() -> std::io::Result<()> {
    let out = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .unwrap_or_else(|| "target/docs".into()),
    );
    let commands = [
        seal::__private::cli::seal::Args::command(),
        seal::__private::cli::unseal::Args::command(),
        seal::__private::cli::keygen::Args::command(),
    ];
    for mut command in commands {
        let name = command.get_name().to_string();
        write_man_page(&command, &out.join("man"))?;
        let dir = out.join("completions");
        std::fs::create_dir_all(&dir)?;
        for shell in [
            Shell::Bash,
            Shell::Zsh,
            Shell::Fish,
            Shell::Elvish,
            Shell::PowerShell,
        ] {
            clap_complete::generate_to(shell, &mut command, &name, &dir)?;
        }
    }
    println!("wrote man pages and completions under {}", out.display());
    Ok(())
}

fn write_man_page(command: &clap::Command, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone()).render(&mut page)?;
    std::fs::write(dir.join(format!("{}.1", command.get_name())), page)
}
