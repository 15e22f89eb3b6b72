use std::sync::Arc;

use super::*;
use crate::adapters::embedded::test_support::{TempDir, test_db};
use crate::ports::ManualClock;

const PLAIN: &str = "rt_live_4f9c2b7e-very-secret-refresh-token";

fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_string())
}

/// The stored (nonce, ciphertext) of a secret, straight from SQLite.
async fn raw(db: &EmbeddedDb, name: &str) -> (Vec<u8>, Vec<u8>) {
    let name = name.to_string();
    db.read(move |conn| {
        conn.query_row(
            "SELECT nonce, ciphertext FROM secrets WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db_err)
    })
    .await
    .unwrap()
}

async fn overwrite_raw(db: &EmbeddedDb, name: &str, nonce: Vec<u8>, ciphertext: Vec<u8>) {
    let name = name.to_string();
    db.write(move |tx| {
        tx.execute(
            "INSERT INTO secrets (name, nonce, ciphertext, updated_at_ms) VALUES (?1, ?2, ?3, 0)
             ON CONFLICT (name) DO UPDATE SET nonce = ?2, ciphertext = ?3",
            params![name, nonce, ciphertext],
        )
        .map_err(db_err)?;
        Ok(())
    })
    .await
    .unwrap();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn round_trips_and_is_encrypted_at_rest() {
    let (db, _) = test_db();
    let secrets = EmbeddedSecrets::open(&db).unwrap();
    assert!(secrets.get("credentials/fb").await.unwrap().is_none());
    secrets.put("credentials/fb", &secret(PLAIN)).await.unwrap();
    let got = secrets.get("credentials/fb").await.unwrap().unwrap();
    assert_eq!(got.expose_secret(), PLAIN);

    let (nonce, ciphertext) = raw(&db, "credentials/fb").await;
    assert_eq!(nonce.len(), NONCE_LEN);
    assert!(!contains(&ciphertext, PLAIN.as_bytes()));
    assert!(!contains(&ciphertext, b"very-secret"));

    // Same value again: a new nonce, so a new ciphertext.
    secrets.put("credentials/fb", &secret(PLAIN)).await.unwrap();
    let (nonce2, ciphertext2) = raw(&db, "credentials/fb").await;
    assert_ne!(nonce, nonce2);
    assert_ne!(ciphertext, ciphertext2);

    secrets
        .put("credentials/fb", &secret("rotated"))
        .await
        .unwrap();
    assert_eq!(
        secrets
            .get("credentials/fb")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "rotated"
    );
    // A second handle on the same in-memory database shares its key.
    let other = EmbeddedSecrets::open(&db).unwrap();
    assert!(other.get("credentials/fb").await.unwrap().is_some());
}

#[tokio::test]
async fn wrong_key_tampering_and_swapped_rows_fail_cleanly() {
    let (db, _) = test_db();
    let right = EmbeddedSecrets::with_key(&db, [7u8; KEY_LEN]);
    right
        .put("webhook/stripe/acct", &secret(PLAIN))
        .await
        .unwrap();
    right
        .put("webhook/hubspot/1", &secret("other"))
        .await
        .unwrap();

    let wrong = EmbeddedSecrets::with_key(&db, [8u8; KEY_LEN]);
    let err = wrong.get("webhook/stripe/acct").await.unwrap_err();
    assert!(
        matches!(err, PortError::Corrupt { what: "secret", .. }),
        "{err}"
    );
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains(PLAIN) && !shown.contains("very-secret"),
        "{shown}"
    );

    // One flipped bit in the ciphertext.
    let (nonce, mut ciphertext) = raw(&db, "webhook/stripe/acct").await;
    ciphertext[0] ^= 1;
    overwrite_raw(&db, "webhook/stripe/acct", nonce.clone(), ciphertext).await;
    assert!(matches!(
        right.get("webhook/stripe/acct").await,
        Err(PortError::Corrupt { .. })
    ));

    // A valid ciphertext moved to another name: the name is authenticated too.
    let (nonce, ciphertext) = raw(&db, "webhook/hubspot/1").await;
    overwrite_raw(&db, "webhook/stripe/acct", nonce, ciphertext).await;
    assert!(matches!(
        right.get("webhook/stripe/acct").await,
        Err(PortError::Corrupt { .. })
    ));

    // A truncated nonce is reported, not a panic.
    overwrite_raw(&db, "webhook/stripe/acct", vec![1, 2, 3], vec![0; 40]).await;
    assert!(matches!(
        right.get("webhook/stripe/acct").await,
        Err(PortError::Corrupt { .. })
    ));
    assert_eq!(
        right
            .get("webhook/hubspot/1")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        "other"
    );
}

#[test]
fn debug_never_shows_the_key() {
    let clock = Arc::new(ManualClock::at_unix(0));
    let db = EmbeddedDb::in_memory(clock).unwrap();
    let secrets = EmbeddedSecrets::with_key(&db, [0xAB; KEY_LEN]);
    let shown = format!("{secrets:?} {db:?}");
    assert!(shown.contains("[redacted]"), "{shown}");
    assert!(
        !shown.contains("171") && !shown.contains("ab, ") && !shown.contains("AB"),
        "{shown}"
    );
}

#[tokio::test]
async fn key_file_is_created_private_and_reused() {
    let dir = TempDir::new();
    let path = dir.path().join("state.db");
    let clock = Arc::new(ManualClock::at_unix(1_772_000_000));
    {
        let db = EmbeddedDb::open(&path, clock.clone()).unwrap();
        let secrets = EmbeddedSecrets::open(&db).unwrap();
        secrets
            .put("credentials/qbo", &secret(PLAIN))
            .await
            .unwrap();
    }
    let key_path = EmbeddedSecrets::key_path(&path);
    assert_eq!(key_path, dir.path().join("state.db.key"));
    let meta = fs::metadata(&key_path).unwrap();
    assert_eq!(meta.len(), KEY_LEN as u64);
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    // No temporary file left behind.
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.iter().any(|n| n.contains(".tmp-")), "{names:?}");

    // The database file holds no plaintext either.
    let db = EmbeddedDb::open(&path, clock.clone()).unwrap();
    let secrets = EmbeddedSecrets::open(&db).unwrap();
    assert_eq!(
        secrets
            .get("credentials/qbo")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        PLAIN
    );
    drop((secrets, db));
    for file in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = fs::read(dir.path().join(file)) {
            assert!(
                !contains(&bytes, PLAIN.as_bytes()),
                "{file} holds the plaintext"
            );
        }
    }

    // A replaced key file decrypts nothing, and a damaged one is refused.
    fs::write(&key_path, [1u8; KEY_LEN]).unwrap();
    let db = EmbeddedDb::open(&path, clock.clone()).unwrap();
    let secrets = EmbeddedSecrets::open(&db).unwrap();
    assert!(matches!(
        secrets.get("credentials/qbo").await,
        Err(PortError::Corrupt { .. })
    ));
    fs::write(&key_path, [1u8; KEY_LEN - 1]).unwrap();
    let err = EmbeddedSecrets::open(&db).unwrap_err();
    assert!(
        matches!(
            err,
            PortError::Corrupt {
                what: "secrets key file",
                ..
            }
        ),
        "{err}"
    );
    fs::write(&key_path, [1u8; KEY_LEN + 1]).unwrap();
    assert!(EmbeddedSecrets::open(&db).is_err());
}
