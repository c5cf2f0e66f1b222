//! CA private keys at rest: PKCS#8 PEM, or encrypted with AES-256-GCM under an Argon2id key,
//! and atomic file writes (temp file, fsync, rename) for everything the issuer stores.
//!
//! # Encrypted key format
//! ```text
//! -----BEGIN MAYFLY ENCRYPTED PRIVATE KEY-----
//! {"version":1,"kdf":{"algorithm":"argon2id","argon2_version":19,"memory_kib":19456,
//!  "iterations":2,"parallelism":1,"salt":"<base64>"},
//!  "cipher":{"algorithm":"aes-256-gcm","nonce":"<base64>"},"ciphertext":"<base64>"}
//! -----END MAYFLY ENCRYPTED PRIVATE KEY-----
//! ```
//! The plaintext is the key's PKCS#8 DER; the ciphertext carries the 16-byte GCM tag at its
//! end. The KDF parameters are read back from the file, so they can be raised later without
//! breaking existing keys, and they are bound to the ciphertext as associated data, so editing
//! them makes decryption fail instead of silently deriving another key.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use rcgen::KeyPair;
use serde::{Deserialize, Serialize};

use super::IssuerError;

const BEGIN_ENCRYPTED: &str = "-----BEGIN MAYFLY ENCRYPTED PRIVATE KEY-----";
const END_ENCRYPTED: &str = "-----END MAYFLY ENCRYPTED PRIVATE KEY-----";

/// The format version written in every encrypted key file, so a later format can be told apart.
const FORMAT_VERSION: u32 = 1;

/// Argon2id parameters: the OWASP password-storage minimum (19 MiB, 2 passes, 1 lane), which is
/// also the argon2 crate's default. Keys are decrypted once at start-up, so the cost is paid
/// once per process.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_ITERATIONS: u32 = 2;
const ARGON2_PARALLELISM: u32 = 1;

/// Upper bounds for parameters read from a file, so a corrupt or hostile file cannot make
/// start-up allocate gigabytes or spin for hours (2 GiB, 64 passes, 16 lanes).
const MAX_MEMORY_KIB: u32 = 2 * 1024 * 1024;
const MAX_ITERATIONS: u32 = 64;
const MAX_PARALLELISM: u32 = 16;

/// 16 random bytes of salt: the size RFC 9106 §3.1 recommends.
const SALT_LEN: usize = 16;
/// AES-256 takes a 32-byte key.
const KEY_LEN: usize = 32;

/// File mode for private keys: owner read/write only.
pub(crate) const KEY_MODE: u32 = 0o600;
/// File mode for certificates: public material, world-readable.
pub(crate) const CERT_MODE: u32 = 0o644;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EncryptedKeyFile {
    version: u32,
    kdf: KdfParams,
    cipher: CipherParams,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfParams {
    algorithm: String,
    argon2_version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CipherParams {
    algorithm: String,
    nonce: String,
}

impl KdfParams {
    /// The associated data for GCM: every parameter that shapes the key, in a fixed text form.
    fn associated_data(&self, cipher: &CipherParams) -> String {
        format!(
            "mayfly-key-v{FORMAT_VERSION};{};v={};m={};t={};p={};salt={};{}",
            self.algorithm,
            self.argon2_version,
            self.memory_kib,
            self.iterations,
            self.parallelism,
            self.salt,
            cipher.algorithm,
        )
    }
}

/// Serialises `key` for disk: encrypted when `passphrase` is given, PKCS#8 PEM otherwise.
pub(crate) fn encode_key(key: &KeyPair, passphrase: Option<&str>) -> Result<String, IssuerError> {
    match passphrase {
        None => Ok(key.serialize_pem()),
        Some(passphrase) => encrypt(key.serialized_der(), passphrase),
    }
}

/// Reads and parses a key written by [`encode_key`].
pub(crate) fn read_key(path: &Path, passphrase: Option<&str>) -> Result<KeyPair, IssuerError> {
    let text = read_text(path)?;
    decode_key(path, &text, passphrase)
}

/// Parses a key file's text; `path` only names the file in errors.
pub(crate) fn decode_key(
    path: &Path,
    text: &str,
    passphrase: Option<&str>,
) -> Result<KeyPair, IssuerError> {
    if !text.trim_start().starts_with(BEGIN_ENCRYPTED) {
        return KeyPair::from_pem(text).map_err(|e| file_error(path, format!("not a key: {e}")));
    }
    let Some(passphrase) = passphrase else {
        return Err(IssuerError::PassphraseRequired(path.to_owned()));
    };
    let pkcs8 = decrypt(path, text, passphrase)?;
    KeyPair::try_from(pkcs8.as_slice())
        .map_err(|e| file_error(path, format!("decrypted key does not parse: {e}")))
}

fn encrypt(pkcs8_der: &[u8], passphrase: &str) -> Result<String, IssuerError> {
    let mut salt = [0u8; SALT_LEN];
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut salt)?;
    random(&mut nonce)?;
    let kdf = KdfParams {
        algorithm: "argon2id".to_owned(),
        argon2_version: argon2::Version::V0x13 as u32,
        memory_kib: ARGON2_MEMORY_KIB,
        iterations: ARGON2_ITERATIONS,
        parallelism: ARGON2_PARALLELISM,
        salt: BASE64.encode(salt),
    };
    let cipher = CipherParams {
        algorithm: "aes-256-gcm".to_owned(),
        nonce: BASE64.encode(nonce),
    };
    let key = derive_key(&kdf, &salt, passphrase)?;
    let mut in_out = pkcs8_der.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(kdf.associated_data(&cipher).as_bytes()),
        &mut in_out,
    )
    .map_err(|_| IssuerError::Crypto("AES-GCM encryption failed".to_owned()))?;
    let file = EncryptedKeyFile {
        version: FORMAT_VERSION,
        kdf,
        cipher,
        ciphertext: BASE64.encode(&in_out),
    };
    let json = serde_json::to_string_pretty(&file)
        .map_err(|e| IssuerError::Crypto(format!("cannot serialise the key file: {e}")))?;
    Ok(format!("{BEGIN_ENCRYPTED}\n{json}\n{END_ENCRYPTED}\n"))
}

fn decrypt(path: &Path, text: &str, passphrase: &str) -> Result<Vec<u8>, IssuerError> {
    let bad = |message: &str| file_error(path, message.to_owned());
    let body = text
        .trim()
        .strip_prefix(BEGIN_ENCRYPTED)
        .and_then(|rest| rest.strip_suffix(END_ENCRYPTED))
        .ok_or_else(|| bad("the encrypted key block is not terminated"))?;
    let file: EncryptedKeyFile = serde_json::from_str(body)
        .map_err(|e| file_error(path, format!("the encrypted key is malformed: {e}")))?;
    if file.version != FORMAT_VERSION {
        return Err(bad("unknown encrypted key format version"));
    }
    if file.kdf.algorithm != "argon2id" || file.kdf.argon2_version != argon2::Version::V0x13 as u32
    {
        return Err(bad("unsupported key derivation (want argon2id v19)"));
    }
    if file.cipher.algorithm != "aes-256-gcm" {
        return Err(bad("unsupported cipher (want aes-256-gcm)"));
    }
    if file.kdf.memory_kib > MAX_MEMORY_KIB
        || file.kdf.iterations > MAX_ITERATIONS
        || file.kdf.parallelism > MAX_PARALLELISM
    {
        return Err(bad("the key derivation parameters are out of range"));
    }
    let salt = BASE64
        .decode(&file.kdf.salt)
        .map_err(|_| bad("the salt is not base64"))?;
    let nonce: [u8; NONCE_LEN] = BASE64
        .decode(&file.cipher.nonce)
        .ok()
        .and_then(|n| n.try_into().ok())
        .ok_or_else(|| bad("the nonce is not 12 bytes of base64"))?;
    let mut in_out = BASE64
        .decode(&file.ciphertext)
        .map_err(|_| bad("the ciphertext is not base64"))?;
    let key = derive_key(&file.kdf, &salt, passphrase)
        .map_err(|e| file_error(path, format!("cannot derive the key: {e}")))?;
    let plaintext = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(file.kdf.associated_data(&file.cipher).as_bytes()),
            &mut in_out,
        )
        .map_err(|_| IssuerError::WrongPassphrase(path.to_owned()))?;
    Ok(plaintext.to_vec())
}

fn derive_key(kdf: &KdfParams, salt: &[u8], passphrase: &str) -> Result<LessSafeKey, IssuerError> {
    let params = argon2::Params::new(
        kdf.memory_kib,
        kdf.iterations,
        kdf.parallelism,
        Some(KEY_LEN),
    )
    .map_err(|e| IssuerError::Crypto(format!("bad Argon2 parameters: {e}")))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = [0u8; KEY_LEN];
    argon
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| IssuerError::Crypto(format!("Argon2 failed: {e}")))?;
    let unbound = UnboundKey::new(&AES_256_GCM, &key)
        .map_err(|_| IssuerError::Crypto("bad AES key length".to_owned()))?;
    key.fill(0);
    Ok(LessSafeKey::new(unbound))
}

/// Fills `buf` from the operating system's random generator.
pub(crate) fn random(buf: &mut [u8]) -> Result<(), IssuerError> {
    aws_lc_rs::rand::fill(buf)
        .map_err(|_| IssuerError::Crypto("the random generator failed".to_owned()))
}

/// Reads a UTF-8 file; every failure becomes `IssuerError::File` naming the path.
pub(crate) fn read_text(path: &Path) -> Result<String, IssuerError> {
    fs::read_to_string(path).map_err(|e| file_error(path, e.to_string()))
}

pub(crate) fn file_error(path: &Path, message: impl Into<String>) -> IssuerError {
    IssuerError::File {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Writes `contents` to `path` so that a reader sees either the old file or the whole new one:
/// a temporary file in the same directory (created with `mode`, so a key is never readable by
/// others even for a moment), fsync, rename over `path`, then fsync of the directory so the
/// rename itself survives a crash.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), IssuerError> {
    let dir = path
        .parent()
        .ok_or_else(|| file_error(path, "has no parent directory"))?;
    let mut suffix = [0u8; 8];
    random(&mut suffix)?;
    let file_name = path
        .file_name()
        .ok_or_else(|| file_error(path, "has no file name"))?
        .to_string_lossy();
    let tmp: PathBuf = dir.join(format!(
        ".{file_name}.tmp-{}",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let result = (|| -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have narrowed `mode` at creation; certificates must stay readable.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(file_error(path, format!("cannot write: {e}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_der(key: &KeyPair) -> Vec<u8> {
        key.serialized_der().to_vec()
    }

    #[test]
    fn plain_and_encrypted_round_trip() {
        let key = KeyPair::generate().unwrap();
        let path = Path::new("/nonexistent/k.key");
        for (name, write_with, read_with) in [
            ("plain, read without passphrase", None, None),
            ("plain, read with passphrase", None, Some("pw")),
            ("encrypted", Some("correct horse"), Some("correct horse")),
        ] {
            let text = encode_key(&key, write_with).unwrap();
            let back = decode_key(path, &text, read_with).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(key_der(&back), key_der(&key), "{name}");
            assert_eq!(
                text.contains("MAYFLY ENCRYPTED"),
                write_with.is_some(),
                "{name}"
            );
        }
    }

    #[test]
    fn encrypted_key_failures() {
        let key = KeyPair::generate().unwrap();
        let path = Path::new("/x/k.key");
        let text = encode_key(&key, Some("secret")).unwrap();
        let tampered_params = text.replace("\"iterations\": 2", "\"iterations\": 3");
        assert_ne!(tampered_params, text);
        type Check = fn(&IssuerError) -> bool;
        let cases: Vec<(&str, String, Option<&str>, Check)> = vec![
            ("no passphrase", text.clone(), None, |e| {
                matches!(e, IssuerError::PassphraseRequired(_))
            }),
            ("wrong passphrase", text.clone(), Some("nope"), |e| {
                matches!(e, IssuerError::WrongPassphrase(_))
            }),
            (
                "edited kdf parameters",
                tampered_params,
                Some("secret"),
                |e| matches!(e, IssuerError::WrongPassphrase(_)),
            ),
            (
                "truncated",
                text[..text.len() / 2].to_owned(),
                Some("secret"),
                |e| matches!(e, IssuerError::File { .. }),
            ),
            (
                "bad json",
                format!("{BEGIN_ENCRYPTED}\n{{nope\n{END_ENCRYPTED}\n"),
                Some("secret"),
                |e| matches!(e, IssuerError::File { .. }),
            ),
            ("garbage", "hello".to_owned(), Some("secret"), |e| {
                matches!(e, IssuerError::File { .. })
            }),
        ];
        for (name, text, passphrase, expected) in cases {
            let err = decode_key(path, &text, passphrase).err();
            assert!(err.as_ref().is_some_and(expected), "{name}: got {err:?}");
        }
    }

    #[test]
    fn atomic_write_sets_mode_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.key");
        write_atomic(&path, b"one", KEY_MODE).unwrap();
        write_atomic(&path, b"two", KEY_MODE).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, KEY_MODE);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
