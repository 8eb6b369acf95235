//! `mailintake bench`: throughput and memory on a generated corpus.

/// Options of the benchmark.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Number of generated messages
    #[arg(long, default_value_t = 5000)]
    pub messages: usize,
}

/// Runs the benchmark.
pub fn run(_args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
