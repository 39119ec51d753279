//! `cnibench`: flags in, library out.

use clap::Parser;
use cnibench_coordinator::cli::{self, Cli};
use std::process::ExitCode;

fn main() -> ExitCode {
    let parsed = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(cli::EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli::main(parsed) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("cnibench: error: {:#}", f.error);
            ExitCode::from(f.code)
        }
    }
}
