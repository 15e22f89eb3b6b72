//! The operations commands: `status`, `audit`, `dead-letters`, `replay`, `backfill`. Each works
//! through the ports of a [`crate::target::Target`], so the local store and a deployed stack
//! take the same code.
//!
//! Exit codes (the same for every command, and in `--help`): 0 done and nothing needs
//! attention; 1 the command failed, or what it reports needs attention (broken credentials,
//! open dead letters, a replay that did not resolve, a record with no trail); 2 usage (a bad
//! flag, an unknown connection, an ambiguous record).

pub(crate) mod audit;
pub(crate) mod backfill;
pub(crate) mod dead_letters;
pub(crate) mod output;
pub(crate) mod replay;
pub(crate) mod status;

use crate::target::TargetArgs;

/// A mistake in how the command was called (exit code 2), as opposed to a failure (1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// Something the command found that needs attention (exit code 1), already reported on stdout.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Attention(pub String);

/// What every operations command takes besides its own arguments.
#[derive(clap::Args)]
pub(crate) struct Common {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Print JSON (one document on stdout) instead of tables, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// The operations subcommands (flattened into the top-level command).
#[derive(clap::Subcommand)]
pub(crate) enum OpsCommand {
    /// Per connection: last event and sync, queue and DLQ depth, open dead letters, token
    /// expiry, poll cursor and broken credentials.
    #[command(after_help = status::AFTER_HELP)]
    Status(status::StatusArgs),
    /// The trail of one record, newest first, with what changed and why it failed; or, with
    /// --outcome and no record, every entry with that outcome by day.
    #[command(after_help = audit::AFTER_HELP)]
    Audit(audit::AuditArgs),
    /// List dead letters or show one.
    #[command(name = "dead-letters", after_help = dead_letters::AFTER_HELP)]
    DeadLetters(dead_letters::DeadLettersArgs),
    /// Send dead-lettered messages back to their queue and report what became of each.
    #[command(after_help = replay::AFTER_HELP)]
    Replay(replay::ReplayArgs),
    /// Enqueue a full (or --since) sync of a connection's source records.
    #[command(after_help = backfill::AFTER_HELP)]
    Backfill(backfill::BackfillArgs),
}

/// Runs one operations command; on failure prints the error and ends the process with its
/// exit code (the caller's handler knows only "failed", and usage errors end with 2).
pub(crate) async fn run(command: OpsCommand) -> anyhow::Result<()> {
    let result = match command {
        OpsCommand::Status(args) => status::run(args).await,
        OpsCommand::Audit(args) => audit::run(args).await,
        OpsCommand::DeadLetters(args) => dead_letters::run(args).await,
        OpsCommand::Replay(args) => replay::run(args).await,
        OpsCommand::Backfill(args) => backfill::run(args).await,
    };
    if let Err(err) = result {
        eprintln!("error: {err:#}");
        // Everything worth keeping has been printed and nothing runs in the background.
        std::process::exit(if err.is::<UsageError>() { 2 } else { 1 });
    }
    Ok(())
}
