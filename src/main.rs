//! `warpd` binary: parse the command line, hand over to `warpd::cli`.
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = warpd::cli::Cli::parse();
    match warpd::cli::main_with(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("warpd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
