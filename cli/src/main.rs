//! `ml-connector`: the operator command — the demo and local mode (`dev`), onboarding (`connect`,
//! `ping`, `apply`), connections checking, the local secret store, and operations (`status`,
//! `audit`, `dead-letters`, `replay`, `backfill`) on the local store or a deployed stack.

mod clients;
#[cfg(feature = "sandbox")]
mod demo;
mod dev;
mod local_store;
mod onboarding;
mod ops;
mod target;
mod vendors;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use mlc::connections::ConnectionSet;
use secrecy::SecretString;

#[derive(Parser)]
#[command(name = "ml-connector", version, about = "Keep accounting and marketing tools in step", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch FreshBooks → Mailchimp work end to end on local sandboxes (under a minute).
    #[cfg(feature = "sandbox")]
    Demo(demo::DemoArgs),
    /// Run the whole pipeline locally: webhook routes, workers and the poller, over the embedded store.
    Dev(dev::DevArgs),
    /// Work with a connections file.
    #[command(subcommand)]
    Connections(ConnectionsCommand),
    /// Manage the local encrypted secret store (webhook secrets, credential sets).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    #[command(flatten)]
    Ops(ops::OpsCommand),
    /// Connect a vendor account: OAuth in a browser, or keys from a prompt / stdin.
    Connect(onboarding::connect::ConnectArgs),
    /// Check every credential set the connections use with a cheap vendor call.
    Ping(onboarding::ping::PingArgs),
    /// Apply a connections file: diff, store, register FreshBooks callbacks and set up
    /// Mailchimp list webhooks.
    Apply(onboarding::apply::ApplyArgs),
}

#[derive(Subcommand)]
enum ConnectionsCommand {
    /// Validate a connections file and list what it declares. A connection whose flow this
    /// build does not run is refused, and the error names the flows it runs.
    Check {
        /// The connections file (TOML).
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum SecretsCommand {
    /// Store a secret read from standard input (never from the command line), e.g.
    /// `ml-connector secrets put webhook/stripe/acct_1 < whsec.txt`.
    Put {
        /// Secret name, e.g. `webhook/quickbooks/app` or `credentials/freshbooks-acme`.
        name: String,
        #[command(flatten)]
        store: local_store::StoreArgs,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        #[cfg(feature = "sandbox")]
        Command::Demo(args) => demo::run(args).await,
        Command::Dev(args) => dev::run(args).await,
        Command::Ops(command) => ops::run(command).await,
        Command::Connect(args) => onboarding::connect::run(args).await,
        Command::Ping(args) => match onboarding::ping::run(args).await? {
            true => Ok(()),
            false => bail!("some credential sets do not work (see above)"),
        },
        Command::Apply(args) => match onboarding::apply::run(args).await? {
            true => Ok(()),
            false => bail!(
                "applied, but not everything the vendors need is set up: webhooks registered \
                 and verified, HubSpot properties and the invoice probe (see above)"
            ),
        },
        Command::Connections(ConnectionsCommand::Check { file }) => {
            let set = ConnectionSet::load(&file)?;
            println!(
                "{}: {} connection(s)",
                file.display(),
                set.connections.len()
            );
            for (name, c) in &set.connections {
                let state = if c.enabled { "" } else { " (disabled)" };
                println!(
                    "  {name}: {}/{} → {}{state}",
                    c.source.vendor,
                    c.source.account.as_deref().unwrap_or(""),
                    c.target.vendor
                );
            }
            println!("flows this build runs: {}", mlc::flows::Flow::list());
            Ok(())
        }
        Command::Secrets(SecretsCommand::Put { name, store }) => {
            let mut value = String::new();
            std::io::stdin()
                .read_to_string(&mut value)
                .context("reading the secret from standard input")?;
            let value = value.trim_end_matches(['\r', '\n']);
            if value.is_empty() {
                bail!(
                    "standard input was empty; pipe the secret in, e.g. `ml-connector secrets put {name} < file`"
                );
            }
            let (_, secrets) = store.open()?;
            mlc::ports::Secrets::put(&secrets, &name, &SecretString::from(value.to_string()))
                .await
                .with_context(|| format!("storing secret `{name}`"))?;
            println!("stored secret `{name}` in {}", store.db.display());
            Ok(())
        }
    }
}
