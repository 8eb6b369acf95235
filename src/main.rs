//! The `mailintake` binary: logging set-up and the command line.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::{FilterExt, filter_fn};
use tracing_subscriber::prelude::*;
use tracing_subscriber::{EnvFilter, Layer, Registry, fmt};

// Decoding allocates many small strings and JSON values; mimalloc cut that cost markedly
// in the benchmark compared with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    small_pages_only();
    init_logging();
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

/// Turns transparent huge pages off for this process, before it allocates much.
///
/// mimalloc asks the kernel for huge pages (`MADV_HUGEPAGE`), and each one touched counts
/// 2 MiB in full: a 5,000-message drain peaked at 67 MiB with them and at 43 MiB without,
/// in the same time (`cargo bench --bench imap`). A kernel without the switch changes
/// nothing, so a failure is ignored.
fn small_pages_only() {
    let _ = rustix::thread::disable_transparent_huge_pages(true);
}

/// Logs go to stderr so `--json` output on stdout stays machine-readable: plain lines, or
/// with `MAILINTAKE_LOG_FORMAT=json` one JSON object per line (for journald or Loki), each
/// with the time, level, target, message and the event's fields.
fn init_logging() {
    let filter = || {
        let level =
            EnvFilter::try_from_env("MAILINTAKE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
        level.and(filter_fn(|event| !is_wire_trace(event.target())))
    };
    let format = std::env::var("MAILINTAKE_LOG_FORMAT").unwrap_or_default();
    let layer: Box<dyn Layer<Registry> + Send + Sync> = if format.eq_ignore_ascii_case("json") {
        fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    } else {
        fmt::layer()
            .with_writer(std::io::stderr)
            .with_filter(filter())
            .boxed()
    };
    tracing_subscriber::registry().with(layer).init();
    if !matches!(format.to_ascii_lowercase().as_str(), "" | "json" | "text") {
        tracing::warn!(
            value = %format,
            "MAILINTAKE_LOG_FORMAT is `json` or `text`; logging as text"
        );
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
