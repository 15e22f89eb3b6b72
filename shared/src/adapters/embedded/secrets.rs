//! The secrets port on SQLite, encrypted at rest with ChaCha20-Poly1305.
//!
//! Each write draws a fresh random 96-bit nonce and binds the secret's name as associated data,
//! so a ciphertext copied to another name does not decrypt. The 256-bit key lives outside the
//! database: in `<db>.key` beside it (mode 0600), or passed in by the caller.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rusqlite::{OptionalExtension, params};
use secrecy::zeroize::Zeroize;
use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox, SecretString};

use super::db::{EmbeddedDb, SERVICE, db_err, ms};
use crate::ports::{PortError, PortResult, Secrets};

/// Key length of ChaCha20-Poly1305.
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 12;

/// Secrets stored encrypted in an [`EmbeddedDb`]. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedSecrets {
    db: EmbeddedDb,
    // Zeroizes its copy of the key when dropped.
    cipher: Arc<ChaCha20Poly1305>,
}

impl EmbeddedSecrets {
    /// Secrets in `db` under the key in `<database file>.key` beside it, creating a random key
    /// file (mode 0600) on first use. An in-memory database uses the random key it
    /// drew when created, so its secrets last exactly as long as it does. Blocking file I/O: call
    /// it at start-up.
    pub fn open(db: &EmbeddedDb) -> PortResult<Self> {
        let key = match (db.path(), db.ephemeral_key()) {
            (Some(path), _) => load_or_create_key(&Self::key_path(path))?,
            (None, Some(key)) => SecretBox::new(Box::new(*key.expose_secret())),
            (None, None) => {
                return Err(PortError::backend(
                    SERVICE,
                    "database has neither a file nor an ephemeral key",
                ));
            }
        };
        Ok(Self::from_secret_key(db, &key))
    }

    /// Secrets in `db` under an explicit 32-byte key (e.g. one the operator keeps elsewhere).
    pub fn with_key(db: &EmbeddedDb, mut key: [u8; KEY_LEN]) -> Self {
        let boxed = SecretBox::new(Box::new(key));
        key.zeroize();
        Self::from_secret_key(db, &boxed)
    }

    /// Where [`Self::open`] keeps the key of the database at `db_path`: `<db_path>.key`.
    fn key_path(db_path: &Path) -> PathBuf {
        let mut name = db_path.as_os_str().to_owned();
        name.push(".key");
        PathBuf::from(name)
    }

    fn from_secret_key(db: &EmbeddedDb, key: &SecretBox<[u8; KEY_LEN]>) -> Self {
        let cipher = ChaCha20Poly1305::new(Key::from_slice(key.expose_secret()));
        Self {
            db: db.clone(),
            cipher: Arc::new(cipher),
        }
    }

    fn decrypt(&self, name: &str, nonce: &[u8], ciphertext: &[u8]) -> PortResult<SecretString> {
        let unreadable = || PortError::Corrupt {
            what: "secret",
            message: format!(
                "`{name}` cannot be decrypted: wrong key, or the stored value was altered"
            ),
        };
        if nonce.len() != NONCE_LEN {
            return Err(unreadable());
        }
        let mut plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| unreadable())?;
        // Copy into an exactly-sized String so the SecretString owns the only unzeroed copy.
        let value = std::str::from_utf8(&plain)
            .map(|s| SecretString::from(s.to_owned()))
            .map_err(|_| PortError::Corrupt {
                what: "secret",
                message: format!("`{name}` is not UTF-8 text"),
            });
        plain.zeroize();
        value
    }
}

#[async_trait]
impl Secrets for EmbeddedSecrets {
    async fn get(&self, name: &str) -> PortResult<Option<SecretString>> {
        let key = name.to_string();
        let row: Option<(Vec<u8>, Vec<u8>)> = self
            .db
            .read(move |conn| {
                conn.query_row(
                    "SELECT nonce, ciphertext FROM secrets WHERE name = ?1",
                    [key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()
                .map_err(db_err)
            })
            .await?;
        // Decrypting a few hundred bytes is microseconds: no need to leave the runtime for it.
        row.map(|(nonce, ciphertext)| self.decrypt(name, &nonce, &ciphertext))
            .transpose()
    }

    async fn put(&self, name: &str, value: &SecretString) -> PortResult<()> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| PortError::backend(SERVICE, format!("no randomness for a nonce: {e}")))?;
        let ciphertext = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.expose_secret().as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| PortError::backend(SERVICE, format!("cannot encrypt secret `{name}`")))?;
        let name = name.to_string();
        let now = ms(self.db.now());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO secrets (name, nonce, ciphertext, updated_at_ms)
                     VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (name) DO UPDATE SET
                         nonce = excluded.nonce,
                         ciphertext = excluded.ciphertext,
                         updated_at_ms = excluded.updated_at_ms",
                    params![name, nonce.as_slice(), ciphertext, now],
                )
                .map_err(db_err)?;
                Ok(())
            })
            .await
    }
}

impl fmt::Debug for EmbeddedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmbeddedSecrets")
            .field("db", &self.db)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// A fresh random key from the operating system.
pub(super) fn random_key() -> PortResult<SecretBox<[u8; KEY_LEN]>> {
    let mut key = SecretBox::new(Box::new([0u8; KEY_LEN]));
    OsRng
        .try_fill_bytes(key.expose_secret_mut())
        .map_err(|e| PortError::backend(SERVICE, format!("no randomness for a key: {e}")))?;
    Ok(key)
}

/// Reads the key file, creating it first if there is none. Creation writes a private temporary
/// file and hard-links it into place, which fails if the name exists: when two processes race,
/// both end up reading the one complete key that won.
fn load_or_create_key(path: &Path) -> PortResult<SecretBox<[u8; KEY_LEN]>> {
    match read_key(path) {
        Err(KeyFileError::Io(e)) if e.kind() == io::ErrorKind::NotFound => {}
        other => return other.map_err(|e| e.into_port(path)),
    }
    let key = random_key()?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let tmp = PathBuf::from(tmp);
    let written =
        write_private(&tmp, key.expose_secret()).and_then(|()| match fs::hard_link(&tmp, path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        });
    // Best effort: a leftover temporary file holds a key that encrypts nothing.
    let _ = fs::remove_file(&tmp);
    written.map_err(|e| KeyFileError::Io(e).into_port(path))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        // Make the new name durable before any secret is encrypted under it.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| KeyFileError::Io(e).into_port(path))?;
    }
    read_key(path).map_err(|e| e.into_port(path))
}

fn write_private(path: &Path, key: &[u8; KEY_LEN]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(key)?;
    file.sync_all()
}

enum KeyFileError {
    Io(io::Error),
    Length(usize),
}

impl KeyFileError {
    fn into_port(self, path: &Path) -> PortError {
        match self {
            KeyFileError::Io(e) => {
                PortError::backend(SERVICE, format!("secrets key file {}: {e}", path.display()))
            }
            KeyFileError::Length(n) => PortError::corrupt(
                "secrets key file",
                format!(
                    "{} holds {n} bytes; a key is exactly {KEY_LEN}",
                    path.display()
                ),
            ),
        }
    }
}

fn read_key(path: &Path) -> Result<SecretBox<[u8; KEY_LEN]>, KeyFileError> {
    let file = File::open(path).map_err(KeyFileError::Io)?;
    let mode = file
        .metadata()
        .map_err(KeyFileError::Io)?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", mode & 0o777),
            "secrets key file is readable by other users; chmod 600 it"
        );
    }
    // One byte more than a key, to tell a long file from an exact one.
    let mut buf = SecretBox::new(Box::new([0u8; KEY_LEN + 1]));
    let mut read = 0;
    let mut limited = file.take(KEY_LEN as u64 + 1);
    loop {
        match limited.read(&mut buf.expose_secret_mut()[read..]) {
            Ok(0) => break,
            Ok(n) => read += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(KeyFileError::Io(e)),
        }
    }
    if read != KEY_LEN {
        return Err(KeyFileError::Length(read));
    }
    let mut key = SecretBox::new(Box::new([0u8; KEY_LEN]));
    key.expose_secret_mut()
        .copy_from_slice(&buf.expose_secret()[..KEY_LEN]);
    Ok(key)
}

#[cfg(test)]
mod tests;
