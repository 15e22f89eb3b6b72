//! The vendor clients' configuration, built the same way by every command that runs them.

use mlc::app::LiveClientsConfig;
use mlc::config::FromEnv;

/// The clients' configuration from the environment ([`FromEnv::from_env`]), with
/// each API base given here in place of the environment's: a flag (or a sandbox's address)
/// wins.
pub(crate) fn clients_config(
    freshbooks_api: Option<&str>,
    mailchimp_api: Option<&str>,
    quickbooks_api: Option<&str>,
) -> anyhow::Result<LiveClientsConfig> {
    let mut config = LiveClientsConfig::from_env()?;
    if let Some(base) = freshbooks_api {
        config.freshbooks_api_base = base.to_string();
    }
    if let Some(base) = mailchimp_api {
        config.mailchimp.base_url = Some(base.to_string());
    }
    if let Some(base) = quickbooks_api {
        config.quickbooks_api_base = Some(base.to_string());
    }
    Ok(config)
}
