//! Payload encryption: the [`Keyring`] (key id → AES-256-GCM key, one of
//! them active) and the envelope that replaces an encrypted job's args.
//!
//! Where it sits: `enqueue` seals the args of a job type marked encrypted
//! ([`JobOptions::encrypted`](crate::JobOptions::encrypted),
//! [`EnqueueOptions::encrypted`](crate::EnqueueOptions::encrypted)) with the
//! active key before the body is built, so Redis, its events and every
//! script only ever see ciphertext; the worker opens them
//! ([`JobRecord::decrypt_args`]) right before decoding, and the admin API
//! shows `encrypted (key <id>)` unless asked to reveal one job's args. It
//! touches no key and runs no command: it is pure computation.
//!
//! The envelope is a JSON string, so any language can detect it without the
//! keyring: `"spool:enc:v1:<key id>:<base64 of nonce ‖ ciphertext ‖ tag>"`,
//! standard base64 with padding, a random 96-bit nonce per seal, and the
//! associated data `spool:enc:v1:args\n<type>\n<id>`, which binds the
//! ciphertext to its job: moved to another job or type, it does not open.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::value::RawValue;

use crate::error::{Error, Result};
use crate::job::JobRecord;
use crate::wire::check_args_depth;

/// What an encrypted value starts with (inside its JSON string).
pub const ENVELOPE_PREFIX: &str = "spool:enc:";
/// The envelope version this build writes and reads.
const V1: &str = "spool:enc:v1:";
/// Bytes of the random nonce at the head of the sealed bytes.
const NONCE_BYTES: usize = 12;
/// Bytes of the authentication tag at their end.
const TAG_BYTES: usize = 16;
/// Longest key id, in bytes.
pub const KEY_ID_MAX_BYTES: usize = 64;
/// The environment variable the binaries (`spool`, `spool-dashboard`)
/// read a keyring from ([`Keyring::from_env`]).
pub const KEYRING_ENV: &str = "SPOOL_KEYRING";

/// What sealed bytes are bound to: args or a kept result.
#[derive(Debug, Clone, Copy)]
enum Purpose {
    Args,
    Result,
}

/// Why encrypted args (or a result) could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecryptError {
    /// The value starts like an envelope but is not one (another version,
    /// a bad key id, bad base64, too short, or plaintext that is not JSON).
    #[error("malformed encrypted envelope: {0}")]
    Malformed(String),
    /// The envelope names a key the keyring does not hold.
    #[error("key id '{key_id}' not in this keyring")]
    UnknownKey {
        /// The key id the envelope names.
        key_id: String,
    },
    /// The value is encrypted and no keyring is configured.
    #[error("key id '{key_id}' needed, but no keyring is configured (ClientBuilder::keyring or SPOOL_KEYRING)")]
    NoKeyring {
        /// The key id the envelope names.
        key_id: String,
    },
    /// The key exists but the tag does not verify.
    #[error("authentication failed with key id '{key_id}': wrong key or tampered data")]
    Authentication {
        /// The key id the envelope names.
        key_id: String,
    },
}

/// A parsed envelope: the key id and the sealed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The id of the key that sealed it.
    pub key_id: String,
    sealed: Vec<u8>,
}

impl Envelope {
    /// Reads an envelope from a JSON value's text (`args` or a result):
    /// `None` when the value is not an envelope at all (not a JSON string,
    /// or a string not starting with [`ENVELOPE_PREFIX`]); never panics on
    /// hostile input.
    ///
    /// # Errors
    /// [`DecryptError::Malformed`] for a value that starts like an
    /// envelope but is not a valid one.
    #[must_use]
    pub fn parse(json: &str) -> Option<std::result::Result<Self, DecryptError>> {
        let json = json.trim_start();
        let bytes = json.as_bytes();
        if bytes.first() != Some(&b'"') {
            return None;
        }
        // Fast path for plain string args: only a string whose first bytes
        // are the prefix (or hold an escape) needs decoding.
        let head = &bytes[1..bytes.len().min(1 + ENVELOPE_PREFIX.len())];
        if head != ENVELOPE_PREFIX.as_bytes() && !head.contains(&b'\\') {
            return None;
        }
        let text: String = serde_json::from_str(json).ok()?;
        let rest = text.strip_prefix(ENVELOPE_PREFIX)?;
        Some(Self::parse_after_prefix(rest))
    }

    fn parse_after_prefix(rest: &str) -> std::result::Result<Self, DecryptError> {
        let malformed = |why: &str| DecryptError::Malformed(why.to_owned());
        let rest = rest
            .strip_prefix("v1:")
            .ok_or_else(|| malformed("unknown version (this build reads v1)"))?;
        let (key_id, b64) = rest
            .split_once(':')
            .ok_or_else(|| malformed("no ':' after the key id"))?;
        check_key_id(key_id).map_err(|_| malformed("invalid key id"))?;
        let sealed = STANDARD
            .decode(b64)
            .map_err(|e| DecryptError::Malformed(format!("bad base64: {e}")))?;
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return Err(malformed("shorter than a nonce and a tag"));
        }
        Ok(Self {
            key_id: key_id.to_owned(),
            sealed,
        })
    }
}

/// The key id of a value that is an envelope, read from its first bytes
/// (`"spool:enc:v1:<id>:`), for listings that hold only a record's prefix.
#[must_use]
pub fn envelope_key_id(json_prefix: &str) -> Option<&str> {
    let rest = json_prefix
        .trim_start()
        .strip_prefix('"')?
        .strip_prefix(V1)?;
    let (id, _) = rest.split_once(':')?;
    check_key_id(id).ok().map(|()| id)
}

fn check_key_id(id: &str) -> Result<()> {
    let ok = !id.is_empty()
        && id.len() <= KEY_ID_MAX_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "a key id is 1 to {KEY_ID_MAX_BYTES} bytes of [A-Za-z0-9_.-], got {:?}",
            crate::truncate_utf8(id, 80)
        )))
    }
}

/// Key ids and AES-256-GCM keys, one of them active: new seals use the
/// active key, every key opens what it sealed, so keys rotate by adding a
/// new active key and keeping the old ones until no job uses them.
///
/// Cheap to clone (shared). `Debug` prints the key ids, never the keys.
///
/// ```
/// use spool_client::Keyring;
/// // Rotation: k2 seals new jobs, k1 still opens the old ones.
/// let keyring = Keyring::new("k2", [2u8; 32])?.with_key("k1", [1u8; 32])?;
/// assert_eq!(keyring.active_key_id(), "k2");
/// // The same, as `SPOOL_KEYRING` holds it (the first key is active):
/// let text = format!("k2={},k1={}", Keyring::encode_key(&[2; 32]), Keyring::encode_key(&[1; 32]));
/// assert_eq!(Keyring::parse(&text)?.key_ids(), vec!["k1", "k2"]);
/// # Ok::<(), spool_client::Error>(())
/// ```
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<Inner>,
}

struct Inner {
    active: String,
    /// Ciphers with their key schedules expanded once.
    keys: BTreeMap<String, Aes256Gcm>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.inner.active)
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

impl Keyring {
    /// A keyring with one key, active.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a key id outside `[A-Za-z0-9_.-]{1,64}`.
    pub fn new(key_id: &str, key: [u8; 32]) -> Result<Self> {
        check_key_id(key_id)?;
        let mut keys = BTreeMap::new();
        keys.insert(key_id.to_owned(), Aes256Gcm::new(&key.into()));
        Ok(Self {
            inner: Arc::new(Inner {
                active: key_id.to_owned(),
                keys,
            }),
        })
    }

    /// This keyring plus an older key that only opens (the active key stays).
    ///
    /// # Errors
    /// As [`Keyring::new`]; also for an id already in the keyring.
    pub fn with_key(self, key_id: &str, key: [u8; 32]) -> Result<Self> {
        check_key_id(key_id)?;
        if self.inner.keys.contains_key(key_id) {
            return Err(Error::InvalidArgument(format!(
                "key id {key_id:?} is in the keyring twice"
            )));
        }
        let mut keys = self.inner.keys.clone();
        keys.insert(key_id.to_owned(), Aes256Gcm::new(&key.into()));
        Ok(Self {
            inner: Arc::new(Inner {
                active: self.inner.active.clone(),
                keys,
            }),
        })
    }

    /// Parses `id=<base64 key>[,id=<base64 key>…]` (standard base64 of 32
    /// bytes; spaces around entries ignored); the first key is active.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] naming the entry (never the key).
    pub fn parse(text: &str) -> Result<Self> {
        let mut ring: Option<Self> = None;
        for (n, entry) in text.split(',').map(str::trim).enumerate() {
            let bad = |why: &str| Error::InvalidArgument(format!("keyring entry {}: {why}", n + 1));
            let (id, b64) = entry
                .split_once('=')
                .ok_or_else(|| bad("expected id=<base64 key>"))?;
            let bytes = STANDARD
                .decode(b64.trim())
                .map_err(|_| bad("the key is not standard base64"))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| bad("the key is not 32 bytes"))?;
            let id = id.trim();
            ring = Some(match ring {
                None => Self::new(id, key)?,
                Some(r) => r.with_key(id, key)?,
            });
        }
        ring.ok_or_else(|| Error::InvalidArgument("empty keyring".to_owned()))
    }

    /// The keyring in `SPOOL_KEYRING` ([`KEYRING_ENV`]), `None` when the
    /// variable is unset or empty.
    ///
    /// # Errors
    /// As [`Keyring::parse`].
    pub fn from_env() -> Result<Option<Self>> {
        match std::env::var(KEYRING_ENV) {
            Ok(text) if !text.trim().is_empty() => Self::parse(&text).map(Some),
            _ => Ok(None),
        }
    }

    /// A key as [`Keyring::parse`] reads it (standard base64).
    #[must_use]
    pub fn encode_key(key: &[u8; 32]) -> String {
        STANDARD.encode(key)
    }

    /// A fresh random key (from the operating system's generator, through
    /// `rand`'s thread generator).
    #[must_use]
    pub fn generate_key() -> [u8; 32] {
        rand::random()
    }

    /// The id new seals use.
    #[must_use]
    pub fn active_key_id(&self) -> &str {
        &self.inner.active
    }

    /// Every key id, sorted.
    #[must_use]
    pub fn key_ids(&self) -> Vec<&str> {
        self.inner.keys.keys().map(String::as_str).collect()
    }

    /// Seals a job's args (JSON text) with the active key, bound to the
    /// job's type and id: the envelope, as a JSON string value.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if sealing fails (it does not for inputs
    /// under 64 GiB).
    pub fn encrypt_args(&self, job_type: &str, id: &str, args: &RawValue) -> Result<Box<RawValue>> {
        self.seal(Purpose::Args, job_type, id, args.get())
    }

    /// Seals a kept result the same way (bound to a different purpose, so
    /// a result cannot pass for args).
    ///
    /// # Errors
    /// As [`Keyring::encrypt_args`].
    pub fn encrypt_result(&self, job_type: &str, id: &str, json: &str) -> Result<Box<RawValue>> {
        self.seal(Purpose::Result, job_type, id, json)
    }

    /// Opens args sealed by [`Keyring::encrypt_args`].
    ///
    /// # Errors
    /// [`DecryptError`]: unknown key, failed authentication (wrong key,
    /// or ciphertext moved from another job), or plaintext that is not
    /// JSON (or nests deeper than [`MAX_ARGS_DEPTH`](crate::MAX_ARGS_DEPTH)).
    pub fn decrypt_args(
        &self,
        job_type: &str,
        id: &str,
        envelope: &Envelope,
    ) -> std::result::Result<Box<RawValue>, DecryptError> {
        open(Some(self), Purpose::Args, job_type, id, envelope)
    }

    /// Opens a result sealed by [`Keyring::encrypt_result`].
    ///
    /// # Errors
    /// As [`Keyring::decrypt_args`].
    pub fn decrypt_result(
        &self,
        job_type: &str,
        id: &str,
        envelope: &Envelope,
    ) -> std::result::Result<Box<RawValue>, DecryptError> {
        open(Some(self), Purpose::Result, job_type, id, envelope)
    }

    fn seal(
        &self,
        purpose: Purpose,
        job_type: &str,
        id: &str,
        json: &str,
    ) -> Result<Box<RawValue>> {
        let cipher = self
            .inner
            .keys
            .get(&self.inner.active)
            .ok_or_else(|| Error::InvalidArgument("the active key is missing".to_owned()))?;
        let nonce: [u8; NONCE_BYTES] = rand::random();
        let aad = associated_data(purpose, job_type, id);
        let payload = Payload {
            msg: json.as_bytes(),
            aad: &aad,
        };
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| Error::InvalidArgument("encryption failed".to_owned()))?;
        let mut bytes = Vec::with_capacity(NONCE_BYTES + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        // Key ids and base64 need no JSON escaping.
        let text = format!("\"{V1}{}:{}\"", self.inner.active, STANDARD.encode(bytes));
        RawValue::from_string(text).map_err(|e| Error::InvalidArgument(e.to_string()))
    }
}

fn associated_data(purpose: Purpose, job_type: &str, id: &str) -> Vec<u8> {
    let what = match purpose {
        Purpose::Args => "args",
        Purpose::Result => "result",
    };
    format!("{V1}{what}\n{job_type}\n{id}").into_bytes()
}

fn open(
    keyring: Option<&Keyring>,
    purpose: Purpose,
    job_type: &str,
    id: &str,
    envelope: &Envelope,
) -> std::result::Result<Box<RawValue>, DecryptError> {
    let key_id = envelope.key_id.clone();
    let cipher = match keyring {
        None => return Err(DecryptError::NoKeyring { key_id }),
        Some(k) => k
            .inner
            .keys
            .get(&envelope.key_id)
            .ok_or(DecryptError::UnknownKey { key_id })?,
    };
    let (nonce, sealed) = envelope.sealed.split_at(NONCE_BYTES);
    let aad = associated_data(purpose, job_type, id);
    let plain = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| DecryptError::Authentication {
            key_id: envelope.key_id.clone(),
        })?;
    let text = String::from_utf8(plain)
        .map_err(|_| DecryptError::Malformed("plaintext is not UTF-8".to_owned()))?;
    check_args_depth(text.as_bytes())
        .map_err(|_| DecryptError::Malformed("plaintext nests too deep".to_owned()))?;
    RawValue::from_string(text)
        .map_err(|_| DecryptError::Malformed("plaintext is not JSON".to_owned()))
}

impl JobRecord {
    /// The key id when this record's args are an envelope.
    #[must_use]
    pub fn encrypted_key_id(&self) -> Option<String> {
        Some(Envelope::parse(self.args.get())?.ok()?.key_id)
    }

    /// Replaces encrypted args by their plaintext (the worker does this
    /// right before decoding): `Ok(false)` for args that are not an
    /// envelope (nothing to do), `Ok(true)` once opened.
    ///
    /// # Errors
    /// [`DecryptError`] for a malformed envelope, a key id not in
    /// `keyring` (or no keyring) and failed authentication; the record is
    /// left unchanged.
    pub fn decrypt_args(
        &mut self,
        keyring: Option<&Keyring>,
    ) -> std::result::Result<bool, DecryptError> {
        let Some(envelope) = Envelope::parse(self.args.get()) else {
            return Ok(false);
        };
        self.args = open(
            keyring,
            Purpose::Args,
            &self.job_type,
            self.id.as_str(),
            &envelope?,
        )?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
