//! `dev --sandbox` in a CLI built without the `sandbox` feature: there are no sandboxes to run,
//! and the flag says so.

use std::path::Path;

use mlc::app::LiveClientsConfig;
use mlc::connections::ConnectionSet;
use mlc::ports::Secrets;

use super::Local;

/// No sandboxes: this type has no values.
pub(crate) enum DevSandboxes {}

impl DevSandboxes {
    pub(crate) async fn start(_: Option<&Path>) -> anyhow::Result<(ConnectionSet, String, Self)> {
        anyhow::bail!(
            "this ml-connector was built without the sandboxes; rebuild it with the `sandbox` \
             feature (on by default) to use --sandbox"
        )
    }

    pub(crate) async fn store_credentials(
        &self,
        _: &dyn Secrets,
        _: &ConnectionSet,
    ) -> anyhow::Result<()> {
        match *self {}
    }

    pub(crate) fn clients_config(&self) -> anyhow::Result<LiveClientsConfig> {
        match *self {}
    }

    pub(crate) async fn announce(
        &self,
        _: &Local,
        _: &ConnectionSet,
        _: &str,
    ) -> anyhow::Result<()> {
        match *self {}
    }
}
