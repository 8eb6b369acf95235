//! The `mailintake` binary: logging set-up and the command line.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, fmt};

// Decoding allocates many small strings and JSON values; mimalloc cut that cost markedly
// in the benchmark compared with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Logs go to stderr so `--json` output on stdout stays machine-readable.
    let filter =
        EnvFilter::try_from_env("MAILINTAKE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter.and(filter_fn(|event| !is_wire_trace(event.target())))),
        )
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

/// Whether a log target traces the IMAP protocol as it is written and read: async-imap logs
/// every command it encodes (`LOGIN "user" "password"`, or the base64 of `AUTHENTICATE`) and
/// every response it decodes (whole messages). The README promises passwords are never
/// logged, so these are dropped whatever `MAILINTAKE_LOG` asks for: a separate filter, since
/// a more specific `MAILINTAKE_LOG` directive would override an `=off` directive added to it.
fn is_wire_trace(target: &str) -> bool {
    target == "async_imap" || target.starts_with("async_imap::")
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
