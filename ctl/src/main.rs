//! emtunctl: control utility for emtun tunneled mode on em(4)/igb(4) ports.
#![deny(unsafe_code)]

mod app;
mod cli;
mod commands;
mod error;
mod format;
mod iface;
mod ports;
mod run;
mod runner;
mod sys;
mod watch;

#[cfg(test)]
mod tests;

use clap::Parser;
use std::io::{self, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Usage errors exit 2, --help/--version exit 0 (clap).
    let cli = cli::Cli::parse();
    let result = app::platform().and_then(|p| {
        let mut out = io::stdout().lock();
        app::dispatch(&p, cli.cmd, &mut out)?;
        out.flush()?;
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is_broken_pipe() => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("emtunctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
