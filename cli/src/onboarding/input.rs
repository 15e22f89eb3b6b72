//! Reading secrets: from a prompt with echo off when standard input is a terminal, else from
//! standard input (a pipe or a file). Never from the command line, where they would end up in
//! shell history and `ps`.

use std::io::{BufRead, IsTerminal, Read, Write};

use anyhow::{Context, bail};
use secrecy::SecretString;

/// Whether standard input is a terminal (prompts possible).
pub(crate) fn interactive() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads everything on standard input (not a terminal): one secret, surrounding whitespace
/// removed. Empty input is an error naming `what`.
pub(crate) fn read_stdin(what: &str) -> anyhow::Result<SecretString> {
    let mut value = String::new();
    std::io::stdin()
        .read_to_string(&mut value)
        .with_context(|| format!("reading the {what} from standard input"))?;
    let value = value.trim();
    if value.is_empty() {
        bail!("standard input was empty; pipe the {what} in");
    }
    Ok(SecretString::from(value.to_string()))
}

/// One secret: prompted for with echo off on a terminal, else all of standard input.
pub(crate) fn secret(what: &str) -> anyhow::Result<SecretString> {
    if !interactive() {
        return read_stdin(what);
    }
    eprint!("{what}: ");
    std::io::stderr().flush().ok();
    let line = {
        let _echo = EchoOff::new();
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("reading the {what}"))?;
        line
    };
    eprintln!();
    let line = line.trim();
    if line.is_empty() {
        bail!("no {what} entered");
    }
    Ok(SecretString::from(line.to_string()))
}

/// One line (not secret): prompted for on a terminal, else the next line of standard input.
pub(crate) fn line(what: &str) -> anyhow::Result<String> {
    if interactive() {
        eprint!("{what}: ");
        std::io::stderr().flush().ok();
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("reading: {what}"))?;
    let line = line.trim();
    if line.is_empty() {
        bail!("nothing entered for: {what}");
    }
    Ok(line.to_string())
}

/// One secret on one line: prompted for with echo off on a terminal, else the next line of
/// standard input (so more input can follow it).
pub(crate) fn secret_line(what: &str) -> anyhow::Result<SecretString> {
    if interactive() {
        return secret(what);
    }
    line(what).map(SecretString::from)
}

/// A yes/no question on the terminal; anything but `y`/`yes` is no.
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the answer")?;
    Ok(matches!(
        line.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Turns terminal echo off while alive (Unix); elsewhere the prompt echoes.
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    #[cfg(unix)]
    fn new() -> Self {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios they fill in; a failure
        // (not a terminal) leaves echo as it was.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Self { saved: None };
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return Self { saved: None };
            }
            Self { saved: Some(saved) }
        }
    }

    #[cfg(not(unix))]
    fn new() -> Self {
        Self {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, saved);
            }
        }
    }
}
