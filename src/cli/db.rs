//! `mailintake db`: the database itself, apart from any config. `db copy` moves an
//! installation between SQLite and PostgreSQL (see `store/copy.rs` for what is kept and
//! how); it reads no `collectors.toml`, since the one it would read may not exist yet on the
//! machine being moved to, or may already name the new database.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};

use crate::secret::Secret;
use crate::store::{self, CopyError, SslMode, StorageUrl};

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every table of one database into another (SQLite <-> PostgreSQL), ids kept
    Copy(CopyArgs),
}

/// `db copy`: two URLs in the `[storage] url` syntax. Passwords never go in a URL: for
/// PostgreSQL, libpq's `PGPASSWORD`, `PGPASSFILE` and `~/.pgpass` apply, or name a variable.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads no config. PostgreSQL passwords never go in the URL: libpq's \
PGPASSWORD, PGPASSFILE or ~/.pgpass apply, or --from-password-env / --to-password-env name a \
variable. The source is only read; the target is filled in one transaction; the rows copied \
are printed per table. Stop the daemons before copying."
)]
pub struct CopyArgs {
    /// The database copied from (only read): sqlite://PATH (relative to the current
    /// folder) or postgres://USER@HOST[:PORT]/DB
    #[arg(long, value_name = "URL")]
    from: String,
    /// The database copied into: migrated first (a SQLite file is created); refused if it
    /// holds any row, unless --force
    #[arg(long, value_name = "URL")]
    to: String,
    /// Delete what the target holds first (in the same transaction as the copy)
    #[arg(long)]
    force: bool,
    /// Environment variable holding the password of the --from PostgreSQL database
    #[arg(long, value_name = "VAR")]
    from_password_env: Option<String>,
    /// Environment variable holding the password of the --to PostgreSQL database
    #[arg(long, value_name = "VAR")]
    to_password_env: Option<String>,
    /// TLS for the PostgreSQL end(s), as `[storage] sslmode`: verify-if-offered (the
    /// certificate verified whenever the server speaks TLS), or libpq's disable, allow,
    /// prefer, require, verify-ca, verify-full
    #[arg(long, value_name = "MODE", value_parser = parse_sslmode, default_value = "verify-if-offered")]
    sslmode: SslMode,
    /// PEM file of the CAs that sign the PostgreSQL server's certificate (as `[storage]
    /// ca-file`)
    #[arg(long, value_name = "PATH")]
    ca_file: Option<std::path::PathBuf>,
}

fn parse_sslmode(text: &str) -> Result<SslMode, String> {
    SslMode::ALL
        .into_iter()
        .find(|mode| mode.as_str() == text)
        .ok_or_else(|| {
            let words: Vec<&str> = SslMode::ALL.iter().map(|mode| mode.as_str()).collect();
            format!("expected one of {}", words.join(", "))
        })
}

/// `--from`/`--to` parsed against the current folder, with the password variable and
/// TLS settings for PostgreSQL; `flag` names the option in errors.
fn storage_url(
    flag: &str,
    text: &str,
    password_env: Option<&String>,
    args: &CopyArgs,
) -> Result<StorageUrl> {
    let cwd = std::env::current_dir().context("the current folder")?;
    let mut url = StorageUrl::parse(text, &cwd).map_err(|e| anyhow!("--{flag}: {e}"))?;
    match (&mut url, password_env) {
        (StorageUrl::Postgres(pg), password) => {
            pg.sslmode = args.sslmode;
            pg.ca_file = args.ca_file.clone();
            pg.password = password.map(|var| Secret::Env(var.clone()));
        }
        (StorageUrl::Sqlite(_), Some(_)) => {
            bail!("--{flag}-password-env is for a PostgreSQL URL; --{flag} is SQLite")
        }
        (StorageUrl::Sqlite(_), None) => {}
    }
    Ok(url)
}

pub(super) fn run(command: &DbCommand) -> Result<()> {
    match command {
        DbCommand::Copy(args) => copy(args),
    }
}

fn copy(args: &CopyArgs) -> Result<()> {
    let from = storage_url("from", &args.from, args.from_password_env.as_ref(), args)?;
    let to = storage_url("to", &args.to, args.to_password_env.as_ref(), args)?;
    let copied = store::copy_database(&from, &to, args.force).map_err(|e| match e {
        CopyError::NotEmpty { .. } => anyhow!("{e}; use --force to replace its content"),
        other => anyhow::Error::new(other),
    })?;
    let width = copied.iter().map(|t| t.table.len()).max().unwrap_or(0);
    for table in &copied {
        println!("{:<width$}  {} rows", table.table, table.rows);
    }
    let total: u64 = copied.iter().map(|t| t.rows).sum();
    println!(
        "copied {total} rows in {} tables from {from} to {to}",
        copied.len()
    );
    Ok(())
}
