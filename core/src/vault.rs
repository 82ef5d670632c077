//! The token vault: AES-256-GCM envelopes for every secret we store (platform tokens, app
//! secrets, AI keys, PKCE verifiers).
//!
//! Envelope layout (all authenticated):
//!
//! ```text
//! 0x01 | key-id length (1 byte) | key id (ASCII) | nonce (12 random bytes) | ciphertext + tag
//! ```
//!
//! The associated data binds a ciphertext to its place — table, column, tenant and row — so a
//! ciphertext copied into another row, column or agency fails to decrypt.
//!
//! Keys come from a key file (in production the systemd credential, `LoadCredential=`) or, for
//! development, from `AUTOSOCIAL_KEYS`. Both hold entries `id:BASE64` (32 bytes each), separated by
//! newlines or commas; the first entry is the current key and the others are kept to read what was
//! encrypted before a rotation.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use sqlx::{PgPool, Row};
use uuid::Uuid;
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VaultError {
    #[error("no keys given: expected entries `id:BASE64` of 32-byte keys, the first one current")]
    NoKeys,
    #[error("key entry {0}: expected `id:BASE64` with an id of 1-64 letters, digits, `-` or `_`")]
    BadEntry(usize),
    #[error("key `{0}`: expected standard base64 of exactly 32 bytes")]
    BadKey(String),
    #[error("key id `{0}` appears twice")]
    DuplicateId(String),
    #[error("cannot read key file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("ciphertext was made with key `{0}`, which is not loaded")]
    UnknownKey(String),
    #[error("ciphertext does not authenticate (wrong key, wrong place, or tampered)")]
    Authentication,
}

/// Where a ciphertext lives. Every field is bound into the GCM associated data.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    pub table: &'a str,
    pub column: &'a str,
    /// The tenant; `None` only for system-wide secrets.
    pub agency: Option<Uuid>,
    /// The row's identity (its id, or its natural key for tables keyed otherwise).
    pub row: &'a str,
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::{Hmac, Mac};
    let mut mac =
        <Hmac<sha2::Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

impl Aad<'_> {
    fn bytes(&self, header: &[u8]) -> Vec<u8> {
        let agency = self.agency.map(|a| a.to_string()).unwrap_or_default();
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(b"autosocial/v1\0");
        for part in [self.table, self.column, &agency, self.row] {
            out.extend_from_slice(&(part.len() as u32).to_be_bytes());
            out.extend_from_slice(part.as_bytes());
        }
        out.extend_from_slice(header);
        out
    }
}

struct Key {
    id: String,
    cipher: Aes256Gcm,
    /// HMAC-SHA256(key, "autosocial/mac/v1"): the root of derived MAC keys, so the raw key
    /// material is not kept beside the cipher.
    mac_root: Zeroizing<[u8; 32]>,
}

/// The loaded keys; the first is current. Debug never shows key material.
pub struct Vault {
    keys: Vec<Key>,
    by_id: HashMap<String, usize>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("Vault")
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Parse `id:BASE64` entries separated by newlines or commas; `#` starts a comment line.
    pub fn from_spec(spec: &str) -> Result<Vault, VaultError> {
        let mut keys = Vec::new();
        let mut by_id = HashMap::new();
        let entries = spec
            .split(['\n', ','])
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'));
        for (n, entry) in entries.enumerate() {
            let (id, b64) = entry.split_once(':').ok_or(VaultError::BadEntry(n + 1))?;
            let (id, b64) = (id.trim(), b64.trim());
            let id_ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !id_ok {
                return Err(VaultError::BadEntry(n + 1));
            }
            let raw = Zeroizing::new(
                STANDARD
                    .decode(b64)
                    .map_err(|_| VaultError::BadKey(id.to_owned()))?,
            );
            if raw.len() != 32 {
                return Err(VaultError::BadKey(id.to_owned()));
            }
            let cipher =
                Aes256Gcm::new_from_slice(&raw).map_err(|_| VaultError::BadKey(id.to_owned()))?;
            if by_id.insert(id.to_owned(), keys.len()).is_some() {
                return Err(VaultError::DuplicateId(id.to_owned()));
            }
            keys.push(Key {
                id: id.to_owned(),
                cipher,
                mac_root: Zeroizing::new(hmac_sha256(&raw, b"autosocial/mac/v1")),
            });
        }
        if keys.is_empty() {
            return Err(VaultError::NoKeys);
        }
        Ok(Vault { keys, by_id })
    }

    pub fn from_file(path: &Path) -> Result<Vault, VaultError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| VaultError::File {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?);
        Vault::from_spec(&text)
    }

    /// A new random key entry `id:BASE64`, for `autosocial-admin keys generate`.
    pub fn generate_entry(id: &str) -> String {
        let mut raw = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(raw.as_mut());
        format!("{id}:{}", STANDARD.encode(raw.as_ref()))
    }

    pub fn current_key_id(&self) -> &str {
        &self.keys[0].id
    }

    /// MAC keys for `purpose` (signed media URLs, …) derived from every loaded key, current
    /// first: sign with the first, accept any, so rotation does not break what was signed.
    pub fn mac_keys(&self, purpose: &str) -> Vec<Zeroizing<[u8; 32]>> {
        self.keys
            .iter()
            .map(|k| Zeroizing::new(hmac_sha256(k.mac_root.as_ref(), purpose.as_bytes())))
            .collect()
    }

    /// Encrypt under the current key with a fresh random nonce.
    pub fn encrypt(&self, plaintext: &[u8], aad: &Aad<'_>) -> Vec<u8> {
        let key = &self.keys[0];
        let mut header = Vec::with_capacity(2 + key.id.len());
        header.push(VERSION);
        header.push(key.id.len() as u8);
        header.extend_from_slice(key.id.as_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad.bytes(&header),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer cannot fail");
        let mut out = header;
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    pub fn encrypt_str(&self, plaintext: &str, aad: &Aad<'_>) -> Vec<u8> {
        self.encrypt(plaintext.as_bytes(), aad)
    }

    /// The id of the key a ciphertext was made with.
    pub fn key_id_of(blob: &[u8]) -> Result<&str, VaultError> {
        parse_header(blob).map(|(_, id)| id)
    }

    pub fn decrypt(&self, blob: &[u8], aad: &Aad<'_>) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (header_len, id) = parse_header(blob)?;
        let key = self
            .by_id
            .get(id)
            .map(|&i| &self.keys[i])
            .ok_or_else(|| VaultError::UnknownKey(id.to_owned()))?;
        let (header, rest) = blob.split_at(header_len);
        if rest.len() < NONCE_LEN + 16 {
            return Err(VaultError::Malformed);
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad.bytes(header),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Authentication)
    }

    pub fn decrypt_string(
        &self,
        blob: &[u8],
        aad: &Aad<'_>,
    ) -> Result<Zeroizing<String>, VaultError> {
        let bytes = self.decrypt(blob, aad)?;
        String::from_utf8(bytes.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Malformed)
    }
}

fn parse_header(blob: &[u8]) -> Result<(usize, &str), VaultError> {
    if blob.len() < 2 || blob[0] != VERSION {
        return Err(VaultError::Malformed);
    }
    let id_len = blob[1] as usize;
    let header_len = 2 + id_len;
    if id_len == 0 || blob.len() < header_len {
        return Err(VaultError::Malformed);
    }
    let id = std::str::from_utf8(&blob[2..header_len]).map_err(|_| VaultError::Malformed)?;
    Ok((header_len, id))
}

/// One group of encrypted columns that share a key-id column in a table.
///
/// These are static, trusted identifiers: the rotation SQL below is assembled from them only,
/// never from input.
pub struct EncryptedColumns {
    pub table: &'static str,
    /// SQL expression giving the row identity bound into the AAD (must match what writers use).
    pub row_expr: &'static str,
    /// SQL expression locating the row for the update.
    pub key_expr: &'static str,
    pub agency_column: &'static str,
    pub columns: &'static [&'static str],
    pub key_id_column: &'static str,
}

/// Every encrypted column in the schema. A new encrypted column must be listed here, or
/// `keys rotate` would leave it under an old key (a test checks the schema against this list).
pub const ENCRYPTED: &[EncryptedColumns] = &[
    EncryptedColumns {
        table: "social_accounts",
        row_expr: "id::text",
        key_expr: "id::text",
        agency_column: "agency_id",
        columns: &["access_token_ct", "refresh_token_ct"],
        key_id_column: "key_id",
    },
    EncryptedColumns {
        table: "platform_apps",
        row_expr: "platform",
        key_expr: "agency_id::text || '/' || platform",
        agency_column: "agency_id",
        columns: &["client_secret_ct"],
        key_id_column: "key_id",
    },
    EncryptedColumns {
        table: "agency_settings",
        row_expr: "agency_id::text",
        key_expr: "agency_id::text",
        agency_column: "agency_id",
        columns: &["ai_api_key_ct"],
        key_id_column: "ai_key_id",
    },
    EncryptedColumns {
        table: "agency_settings",
        row_expr: "agency_id::text",
        key_expr: "agency_id::text",
        agency_column: "agency_id",
        columns: &["replicate_token_ct"],
        key_id_column: "replicate_key_id",
    },
    EncryptedColumns {
        table: "webhook_secrets",
        row_expr: "id::text",
        key_expr: "id::text",
        agency_column: "agency_id",
        columns: &["secret_ct"],
        key_id_column: "key_id",
    },
    EncryptedColumns {
        table: "oauth_transactions",
        row_expr: "id::text",
        key_expr: "id::text",
        agency_column: "agency_id",
        columns: &["pkce_verifier_ct"],
        key_id_column: "key_id",
    },
];

/// What a rotation did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RotationReport {
    pub rows: u64,
    pub ciphertexts: u64,
}

/// Re-encrypt every stored secret not yet under the current key, `batch` rows per transaction.
///
/// Safe while workers run: each batch locks its rows (`FOR UPDATE SKIP LOCKED`), so a writer
/// that holds a row (a token refresh) is never overwritten and the row is picked up by a later
/// pass; readers keep working throughout because every old key stays loaded until the operator
/// removes it after the rotation finished.
pub async fn rotate(pool: &PgPool, vault: &Vault, batch: i64) -> anyhow::Result<RotationReport> {
    let mut report = RotationReport::default();
    let current = vault.current_key_id();
    for group in ENCRYPTED {
        let mut waits = 0;
        loop {
            let cols = group.columns.join(", ");
            let select = format!(
                "SELECT {key} AS k, {row} AS r, {agency} AS a, {cols} FROM {table} \
                 WHERE {kid} IS NOT NULL AND {kid} <> $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                key = group.key_expr,
                row = group.row_expr,
                agency = group.agency_column,
                table = group.table,
                kid = group.key_id_column,
            );
            let mut tx = pool.begin().await?;
            let rows = sqlx::query(&select)
                .bind(current)
                .bind(batch)
                .fetch_all(&mut *tx)
                .await?;
            if rows.is_empty() {
                tx.commit().await?;
                // Rows skipped because another transaction held them: look again until none is left.
                let left: i64 = sqlx::query_scalar(&format!(
                    "SELECT count(*) FROM {} WHERE {kid} IS NOT NULL AND {kid} <> $1",
                    group.table,
                    kid = group.key_id_column
                ))
                .bind(current)
                .fetch_one(pool)
                .await?;
                if left == 0 {
                    break;
                }
                waits += 1;
                if waits > 200 {
                    anyhow::bail!(
                        "{left} row(s) of {} are still under an old key: held by long transactions, or written \
                         by a process that still runs with the old key file; restart every process with the \
                         new keys and run `keys rotate` again",
                        group.table
                    );
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            for row in &rows {
                let key: String = row.try_get("k")?;
                let row_id: String = row.try_get("r")?;
                let agency: Uuid = row.try_get("a")?;
                let mut sets = Vec::new();
                let mut values: Vec<Option<Vec<u8>>> = Vec::new();
                for (i, col) in group.columns.iter().enumerate() {
                    let blob: Option<Vec<u8>> = row.try_get(3 + i)?;
                    let aad = Aad {
                        table: group.table,
                        column: col,
                        agency: Some(agency),
                        row: &row_id,
                    };
                    let fresh = match blob {
                        Some(b) => {
                            let plain = vault.decrypt(&b, &aad).map_err(|e| {
                                anyhow::anyhow!("{}.{col} row {row_id}: {e}", group.table)
                            })?;
                            report.ciphertexts += 1;
                            Some(vault.encrypt(&plain, &aad))
                        }
                        None => None,
                    };
                    sets.push(format!("{col} = ${}", i + 3));
                    values.push(fresh);
                }
                let update = format!(
                    "UPDATE {table} SET {sets}, {kid} = $1 WHERE {key} = $2",
                    table = group.table,
                    sets = sets.join(", "),
                    kid = group.key_id_column,
                    key = group.key_expr,
                );
                let mut q = sqlx::query(&update).bind(current).bind(&key);
                for v in values {
                    q = q.bind(v);
                }
                q.execute(&mut *tx).await?;
                report.rows += 1;
            }
            tx.commit().await?;
            tracing::info!(
                table = group.table,
                rows = rows.len(),
                "re-encrypted a batch under the current key"
            );
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(ids: &[&str]) -> String {
        ids.iter()
            .map(|id| Vault::generate_entry(id))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn aad(row: &str) -> Aad<'_> {
        Aad {
            table: "social_accounts",
            column: "access_token_ct",
            agency: Some(Uuid::nil()),
            row,
        }
    }

    #[test]
    fn round_trip_uses_a_fresh_nonce_each_time() {
        let v = Vault::from_spec(&spec(&["k1"])).unwrap();
        let a = v.encrypt(b"token-123", &aad("r1"));
        let b = v.encrypt(b"token-123", &aad("r1"));
        assert_ne!(a, b, "same plaintext must not give the same ciphertext");
        assert_eq!(&*v.decrypt(&a, &aad("r1")).unwrap(), b"token-123");
        assert_eq!(Vault::key_id_of(&a).unwrap(), "k1");
        assert!(!a.windows(9).any(|w| w == b"token-123"));
    }

    #[test]
    fn any_flipped_bit_is_detected() {
        let v = Vault::from_spec(&spec(&["k1"])).unwrap();
        let blob = v.encrypt(b"secret", &aad("r1"));
        for i in 0..blob.len() {
            let mut t = blob.clone();
            t[i] ^= 0x01;
            assert!(
                v.decrypt(&t, &aad("r1")).is_err(),
                "bit flip at byte {i} went unnoticed"
            );
        }
        assert!(v.decrypt(&blob[..blob.len() - 1], &aad("r1")).is_err());
    }

    #[test]
    fn wrong_key_fails() {
        let a = Vault::from_spec("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
        let b = Vault::from_spec(&spec(&["k1"])).unwrap();
        let blob = a.encrypt(b"secret", &aad("r1"));
        assert_eq!(
            b.decrypt(&blob, &aad("r1")),
            Err(VaultError::Authentication)
        );
        let c = Vault::from_spec(&spec(&["k2"])).unwrap();
        assert_eq!(
            c.decrypt(&blob, &aad("r1")),
            Err(VaultError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn ciphertext_is_bound_to_its_row_column_and_tenant() {
        let v = Vault::from_spec(&spec(&["k1"])).unwrap();
        let blob = v.encrypt(b"secret", &aad("r1"));
        assert_eq!(
            v.decrypt(&blob, &aad("r2")),
            Err(VaultError::Authentication)
        );
        let other_column = Aad {
            column: "refresh_token_ct",
            ..aad("r1")
        };
        assert_eq!(
            v.decrypt(&blob, &other_column),
            Err(VaultError::Authentication)
        );
        let other_tenant = Aad {
            agency: Some(Uuid::max()),
            ..aad("r1")
        };
        assert_eq!(
            v.decrypt(&blob, &other_tenant),
            Err(VaultError::Authentication)
        );
        let other_table = Aad {
            table: "platform_apps",
            ..aad("r1")
        };
        assert_eq!(
            v.decrypt(&blob, &other_table),
            Err(VaultError::Authentication)
        );
    }

    #[test]
    fn old_keys_still_decrypt_after_a_new_current_key() {
        let k1 = Vault::generate_entry("k1");
        let old = Vault::from_spec(&k1).unwrap();
        let blob = old.encrypt(b"secret", &aad("r1"));
        let new = Vault::from_spec(&format!("{}\n{k1}", Vault::generate_entry("k2"))).unwrap();
        assert_eq!(new.current_key_id(), "k2");
        assert_eq!(&*new.decrypt(&blob, &aad("r1")).unwrap(), b"secret");
        assert_eq!(
            Vault::key_id_of(&new.encrypt(b"x", &aad("r1"))).unwrap(),
            "k2"
        );
    }

    #[test]
    fn bad_key_specs_are_refused_with_a_reason() {
        assert_eq!(Vault::from_spec("").unwrap_err(), VaultError::NoKeys);
        assert_eq!(
            Vault::from_spec("# only a comment\n").unwrap_err(),
            VaultError::NoKeys
        );
        assert_eq!(
            Vault::from_spec("nocolon").unwrap_err(),
            VaultError::BadEntry(1)
        );
        assert_eq!(
            Vault::from_spec("k1:c2hvcnQ=").unwrap_err(),
            VaultError::BadKey("k1".into())
        );
        let e = Vault::generate_entry("k1");
        assert_eq!(
            Vault::from_spec(&format!("{e},{e}")).unwrap_err(),
            VaultError::DuplicateId("k1".into())
        );
        assert!(
            !format!("{:?}", Vault::from_spec(&e).unwrap()).contains(e.split(':').nth(1).unwrap())
        );
    }
}
