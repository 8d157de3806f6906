//! Plugins for `seal` and `unseal` (`crate::keys::plugin`): which programs may run
//! (`--plugin`), how long each may take to answer (`--plugin-timeout`), and the user they
//! speak to: messages on standard error, questions on the terminal, a PIN from
//! `--key-passphrase-file` or `--key-passphrase-env` on an unattended server.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use zeroize::Zeroizing;

use super::failure::Failure;
use super::keyargs::PassphraseFlags;
use crate::keys::plugin::{Client, Ui};

/// The plugin flags.
#[derive(clap::Args, Debug, Clone)]
pub struct PluginFlags {
    /// Run only this plugin program (repeatable): an allow-list
    ///
    /// The path of an `age-plugin-NAME` program, for the keys of plugin NAME. When given,
    /// no other plugin runs and PATH is not searched; without it, plugins are found on PATH.
    #[arg(long = "plugin", value_name = "PATH", hide_short_help = true)]
    pub plugin: Vec<PathBuf>,

    /// Seconds a plugin may take to send each line before it is stopped
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 120.0,
        hide_short_help = true
    )]
    pub plugin_timeout: f64,
}

impl PluginFlags {
    /// The client that runs plugins for `program`, answering secret requests from
    /// `secrets` (a file or variable, else the terminal).
    pub fn client(
        &self,
        program: &'static str,
        secrets: &PassphraseFlags,
    ) -> Result<Client, Failure> {
        for path in &self.plugin {
            let named = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("age-plugin-"))
                .is_some_and(crate::keys::plugin::valid_name);
            if !path.is_absolute() || !named {
                return Err(Failure::usage(format!(
                    "--plugin {}: give the absolute path of an age-plugin-NAME program",
                    crate::shown::path(path)
                )));
            }
        }
        if !(self.plugin_timeout > 0.0 && self.plugin_timeout.is_finite()) {
            return Err(Failure::usage(
                "--plugin-timeout must be a positive number of seconds",
            ));
        }
        Ok(Client {
            allowed: (!self.plugin.is_empty()).then(|| self.plugin.clone()),
            timeout: Duration::from_secs_f64(self.plugin_timeout),
            ui: Arc::new(Prompter {
                program,
                secrets: secrets.clone(),
                asked: Mutex::default(),
            }),
        })
    }
}

/// The user, as plugins see them.
struct Prompter {
    program: &'static str,
    secrets: PassphraseFlags,
    /// Secrets given this run, by plugin and question: asked once, whatever the number of
    /// files.
    asked: Mutex<HashMap<(String, String), Zeroizing<String>>>,
}

impl Prompter {
    /// A line typed on the terminal after `prompt`; `None` without a terminal.
    fn ask(&self, prompt: &str) -> Option<String> {
        let tty = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
            .ok()?;
        let mut out = tty.try_clone().ok()?;
        write!(out, "{prompt}").ok()?;
        out.flush().ok()?;
        let mut line = String::new();
        BufReader::new(tty).read_line(&mut line).ok()?;
        Some(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

impl Ui for Prompter {
    fn message(&self, plugin: &str, text: &str) -> bool {
        // Escaped already: one line, whatever the plugin sent.
        let mut err = std::io::stderr().lock();
        writeln!(err, "{}: {plugin}: {text}", self.program).is_ok()
    }

    fn confirm(&self, plugin: &str, text: &str, yes: &str, no: Option<&str>) -> Option<bool> {
        let choices = match no {
            Some(no) => format!("[1: {yes}, 2: {no}]"),
            None => format!("[1: {yes}]"),
        };
        let answer = self.ask(&format!("{}: {plugin}: {text} {choices} ", self.program))?;
        match answer.trim() {
            "1" => Some(true),
            "2" if no.is_some() => Some(false),
            _ => None,
        }
    }

    fn request_public(&self, plugin: &str, text: &str) -> Option<String> {
        self.ask(&format!("{}: {plugin}: {text} ", self.program))
    }

    fn request_secret(&self, plugin: &str, text: &str) -> Option<Zeroizing<String>> {
        let key = (plugin.to_string(), text.to_string());
        let mut asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(secret) = asked.get(&key) {
            return Some(secret.clone());
        }
        let secret = match self.secrets.configured() {
            Some(Ok(secret)) => secret,
            Some(Err(e)) => {
                say!("{}: {plugin}: {e}", self.program);
                return None;
            }
            None if std::io::stderr().is_terminal() || std::io::stdin().is_terminal() => {
                let prompt = format!("{}: {plugin}: {text}: ", self.program);
                Zeroizing::new(rpassword::prompt_password(prompt).ok()?)
            }
            None => {
                say!(
                    "{}: {plugin}: asks for a secret, and there is no terminal: give it with --key-passphrase-file or --key-passphrase-env",
                    self.program
                );
                return None;
            }
        };
        asked.insert(key, secret.clone());
        Some(secret)
    }
}
