//! The `mailintake` binary: logging set-up and the command line.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

// Decoding allocates many small strings and JSON values; mimalloc cut that cost markedly
// in the benchmark compared with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Logs go to stderr so `--json` output on stdout stays machine-readable.
    let filter =
        EnvFilter::try_from_env("MAILINTAKE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    quiet_broken_pipe();
    let cli = mailintake::cli::Cli::parse();
    match mailintake::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `mailintake records list | head` closes stdout early; print macros then panic with
/// "Broken pipe". Exit quietly with the shell's SIGPIPE status instead (resetting the SIGPIPE
/// disposition would need `unsafe`, which this crate forbids).
fn quiet_broken_pipe() {
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
}
