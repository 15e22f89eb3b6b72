//! [`Secrets`] over Secrets Manager, every name under one prefix (`SECRET_PREFIX`).

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use secrecy::{ExposeSecret, SecretString};

use super::error;
use crate::ports::{PortError, PortResult, Secrets};

const SERVICE: &str = "secretsmanager";
/// The stage of a secret's current version.
const CURRENT: &str = "AWSCURRENT";

/// The secrets port over Secrets Manager. Holds no secret values, so its `Debug` shows none.
#[derive(Debug, Clone)]
pub struct SecretsManagerSecrets {
    client: Client,
    prefix: String,
}

impl SecretsManagerSecrets {
    /// Secrets named `<prefix><name>`.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
        }
    }

    /// The Secrets Manager name of a secret.
    fn full_name(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    async fn put_value(&self, id: &str, value: &SecretString) -> Result<(), PutFailure> {
        let result = self
            .client
            .put_secret_value()
            .secret_id(id)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if error::error_code(&e) == Some("ResourceNotFoundException") => {
                Err(PutFailure::Missing)
            }
            Err(e) => Err(PutFailure::Port(error::backend(
                SERVICE,
                "PutSecretValue",
                id,
                &e,
            ))),
        }
    }
}

enum PutFailure {
    Missing,
    Port(PortError),
}

#[async_trait]
impl Secrets for SecretsManagerSecrets {
    async fn get(&self, name: &str) -> PortResult<Option<SecretString>> {
        let id = self.full_name(name);
        // The stage is named explicitly: it is what AWS reads by default, and an emulator's
        // default read can lag behind a stage move.
        let result = self
            .client
            .get_secret_value()
            .secret_id(&id)
            .version_stage(CURRENT)
            .send()
            .await;
        let out = match result {
            Ok(out) => out,
            Err(e) if error::error_code(&e) == Some("ResourceNotFoundException") => {
                return Ok(None);
            }
            Err(e) => return Err(error::backend(SERVICE, "GetSecretValue", &id, &e)),
        };
        if let Some(s) = out.secret_string() {
            return Ok(Some(SecretString::from(s.to_string())));
        }
        if let Some(b) = out.secret_binary() {
            return String::from_utf8(b.as_ref().to_vec())
                .map(|s| Some(SecretString::from(s)))
                // The value itself is never part of the error.
                .map_err(|_| PortError::corrupt("secret", format!("`{id}` is binary, not UTF-8")));
        }
        Err(PortError::corrupt("secret", format!("`{id}` has no value")))
    }

    async fn put(&self, name: &str, value: &SecretString) -> PortResult<()> {
        let id = self.full_name(name);
        match self.put_value(&id, value).await {
            Ok(()) => return Ok(()),
            Err(PutFailure::Port(e)) => return Err(e),
            Err(PutFailure::Missing) => {}
        }
        let created = self
            .client
            .create_secret()
            .name(&id)
            .secret_string(value.expose_secret())
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            // Someone created it between our two calls: store ours as the new version.
            Err(e) if error::error_code(&e) == Some("ResourceExistsException") => {
                match self.put_value(&id, value).await {
                    Ok(()) => Ok(()),
                    Err(PutFailure::Port(e)) => Err(e),
                    Err(PutFailure::Missing) => Err(PortError::NotFound {
                        what: "secret",
                        name: id,
                    }),
                }
            }
            Err(e) => Err(error::backend(SERVICE, "CreateSecret", &id, &e)),
        }
    }
}
