//! Password-based JWE (RFC 7516 compact serialisation, RFC 7518 §4.8 PBES2), the way step-ca
//! stores a JWK provisioner's private key: PBKDF2 derives a key-encryption key from the
//! password, AES Key Wrap (RFC 3394) wraps a random content-encryption key, and AES-GCM
//! encrypts the JWK.
//!
//! Everything runs on aws-lc-rs (`pbkdf2`, `key_wrap`, `aead`), the one crypto provider Mayfly
//! has (CRATES.md); no OpenSSL, no josekit. aws-lc-rs wraps keys with AES-128 and AES-256 only,
//! so A192KW (PBES2-HS384+A192KW, accepted when decrypting) is RFC 3394 §2.2.2 written out
//! over single AES-192 block operations.
//!
//! Encryption always uses PBES2-HS256+A128KW with A256GCM, as step-ca does. Decryption accepts
//! the three PBES2 algorithms and the three AES-GCM encryptions, nothing else (no `zip`, no
//! `crit`, no AES-CBC-HMAC).

use std::num::NonZeroU32;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{self, DecryptingKey, UnboundCipherKey};
use aws_lc_rs::key_wrap::{AES_128, AES_256, AesKek, KeyWrap as _};
use aws_lc_rs::pbkdf2;
use aws_lc_rs::rand::{SecureRandom as _, SystemRandom};
use serde_json::{Map, Value, json};

use super::{base64url, base64url_decode};

/// The PBKDF2 iteration count `encrypt` uses: OWASP's 2023 figure for PBKDF2-HMAC-SHA256,
/// and what step-ca uses for new keys.
pub const DEFAULT_ITERATIONS: u32 = 600_000;

/// Fewer iterations than this are refused: a key encrypted so cheaply is barely encrypted.
/// RFC 7518 §4.8.1.2 recommends at least 1000.
pub const MIN_ITERATIONS: u32 = 1_000;

/// More iterations than this are refused, so that a hostile JWE cannot keep us busy for
/// minutes (10 million PBKDF2-HMAC-SHA512 rounds take a few seconds).
pub const MAX_ITERATIONS: u32 = 10_000_000;

/// RFC 7518 §4.8.1.1: "A Salt Input value containing 8 or more octets MUST be used".
const MIN_SALT_LEN: usize = 8;

/// The salt input `encrypt` draws: 128 bits, as step-ca and jwcrypto do.
const SALT_LEN: usize = 16;

/// AES-GCM IVs are 96 bits (RFC 7518 §5.3).
const IV_LEN: usize = 12;

/// AES-GCM tags are 128 bits (RFC 7518 §5.3).
const TAG_LEN: usize = 16;

/// AES Key Wrap adds one 64-bit integrity block (RFC 3394 §2.2.1).
const KW_BLOCK: usize = 8;

/// RFC 3394 §2.2.3.1: the default initial value.
const KW_IV: [u8; KW_BLOCK] = [0xA6; KW_BLOCK];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JweError {
    /// Not a compact JWE, or one with a header we cannot use.
    #[error("{0}")]
    Malformed(String),
    /// An algorithm or a header parameter Mayfly does not implement.
    #[error("{0}")]
    Unsupported(String),
    /// The key unwrap failed its integrity check: a wrong password (or altered p2s/p2c).
    #[error("the password does not decrypt the key")]
    WrongPassword,
    /// The key unwrapped, but the content's tag does not verify: the JWE was altered.
    #[error("the JWE does not decrypt: its header, IV, ciphertext or tag was altered")]
    Altered,
}

/// `alg`: the PBES2 key-management algorithms of RFC 7518 §4.8.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pbes2 {
    Hs256A128Kw,
    Hs384A192Kw,
    Hs512A256Kw,
}

impl Pbes2 {
    fn parse(alg: &str) -> Result<Pbes2, JweError> {
        match alg {
            "PBES2-HS256+A128KW" => Ok(Pbes2::Hs256A128Kw),
            "PBES2-HS384+A192KW" => Ok(Pbes2::Hs384A192Kw),
            "PBES2-HS512+A256KW" => Ok(Pbes2::Hs512A256Kw),
            other => Err(JweError::Unsupported(format!(
                "the JWE algorithm {other:?} is not supported; supported: PBES2-HS256+A128KW, \
                 PBES2-HS384+A192KW, PBES2-HS512+A256KW"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Pbes2::Hs256A128Kw => "PBES2-HS256+A128KW",
            Pbes2::Hs384A192Kw => "PBES2-HS384+A192KW",
            Pbes2::Hs512A256Kw => "PBES2-HS512+A256KW",
        }
    }

    fn prf(self) -> pbkdf2::Algorithm {
        match self {
            Pbes2::Hs256A128Kw => pbkdf2::PBKDF2_HMAC_SHA256,
            Pbes2::Hs384A192Kw => pbkdf2::PBKDF2_HMAC_SHA384,
            Pbes2::Hs512A256Kw => pbkdf2::PBKDF2_HMAC_SHA512,
        }
    }

    /// The key-encryption key length: the AES key size of the KW half.
    fn kek_len(self) -> usize {
        match self {
            Pbes2::Hs256A128Kw => 16,
            Pbes2::Hs384A192Kw => 24,
            Pbes2::Hs512A256Kw => 32,
        }
    }

    /// RFC 7518 §4.8.1.1: PBKDF2 with salt = UTF8(alg) || 0x00 || p2s.
    fn derive_kek(self, password: &[u8], salt_input: &[u8], iterations: NonZeroU32) -> Vec<u8> {
        let salt = [self.name().as_bytes(), &[0], salt_input].concat();
        let mut kek = vec![0; self.kek_len()];
        pbkdf2::derive(self.prf(), iterations, &salt, password, &mut kek);
        kek
    }

    /// RFC 3394 key unwrap with the derived key; a failed integrity check is a wrong password.
    fn unwrap_key(self, kek: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, JweError> {
        if wrapped.len() < 3 * KW_BLOCK || !wrapped.len().is_multiple_of(KW_BLOCK) {
            return Err(JweError::Malformed(format!(
                "the JWE encrypted key has {} bytes; AES Key Wrap gives a multiple of 8, at least 24",
                wrapped.len()
            )));
        }
        match self {
            Pbes2::Hs256A128Kw | Pbes2::Hs512A256Kw => {
                let cipher = if self == Pbes2::Hs256A128Kw {
                    &AES_128
                } else {
                    &AES_256
                };
                let kek = AesKek::new(cipher, kek).map_err(|_| JweError::WrongPassword)?;
                let mut out = vec![0; wrapped.len()];
                kek.unwrap(wrapped, &mut out)
                    .map(|plain| plain.to_vec())
                    .map_err(|_| JweError::WrongPassword)
            }
            Pbes2::Hs384A192Kw => aes192_unwrap(kek, wrapped),
        }
    }

    /// RFC 3394 key wrap with the derived key. `encrypt` uses A128KW only.
    fn wrap_key(self, kek: &[u8], key: &[u8]) -> Vec<u8> {
        assert_eq!(self, Pbes2::Hs256A128Kw, "Mayfly wraps with A128KW only");
        let kek = AesKek::new(&AES_128, kek).expect("the derived key has the KEK length");
        let mut out = vec![0; key.len() + KW_BLOCK];
        kek.wrap(key, &mut out)
            .expect("a 16 to 32 byte key wraps")
            .to_vec()
    }
}

/// `enc`: AES-GCM (RFC 7518 §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentEncryption {
    A128Gcm,
    A192Gcm,
    A256Gcm,
}

impl ContentEncryption {
    fn parse(enc: &str) -> Result<ContentEncryption, JweError> {
        match enc {
            "A128GCM" => Ok(ContentEncryption::A128Gcm),
            "A192GCM" => Ok(ContentEncryption::A192Gcm),
            "A256GCM" => Ok(ContentEncryption::A256Gcm),
            other => Err(JweError::Unsupported(format!(
                "the JWE content encryption {other:?} is not supported; supported: A128GCM, \
                 A192GCM, A256GCM"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ContentEncryption::A128Gcm => "A128GCM",
            ContentEncryption::A192Gcm => "A192GCM",
            ContentEncryption::A256Gcm => "A256GCM",
        }
    }

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            ContentEncryption::A128Gcm => &aead::AES_128_GCM,
            ContentEncryption::A192Gcm => &aead::AES_192_GCM,
            ContentEncryption::A256Gcm => &aead::AES_256_GCM,
        }
    }

    fn key_len(self) -> usize {
        self.algorithm().key_len()
    }
}

/// A compact PBES2 JWE, split and checked, not yet decrypted. `parse` checks everything that
/// can be checked without the password, so that start-up can refuse a broken `encrypted_key`.
#[derive(Clone, Debug)]
pub struct Pbes2Jwe {
    pub alg: Pbes2,
    pub enc: ContentEncryption,
    /// `cty`: `jwk+json` for a JWK provisioner's key.
    pub content_type: Option<String>,
    /// `p2c`.
    pub iterations: NonZeroU32,
    salt_input: Vec<u8>,
    /// The protected header as sent: the AAD is its ASCII (RFC 7516 §5.1 step 14).
    protected: String,
    encrypted_key: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

impl Pbes2Jwe {
    /// Splits `header.encrypted_key.iv.ciphertext.tag` and checks the header: a PBES2 `alg`, an
    /// AES-GCM `enc`, `p2s` of 8 bytes or more, `p2c` within [`MIN_ITERATIONS`] and
    /// [`MAX_ITERATIONS`], no `zip`, no `crit`.
    pub fn parse(compact: &str) -> Result<Pbes2Jwe, JweError> {
        let parts: Vec<&str> = compact.trim().split('.').collect();
        let [protected, encrypted_key, iv, ciphertext, tag] = parts[..] else {
            return Err(JweError::Malformed(format!(
                "a compact JWE has five base64url parts separated by dots, not {}",
                parts.len()
            )));
        };
        let decode = |what: &str, part: &str| {
            base64url_decode(part)
                .map_err(|_| JweError::Malformed(format!("the JWE {what} is not base64url")))
        };
        let header: Map<String, Value> =
            match serde_json::from_slice(&decode("protected header", protected)?) {
                Ok(Value::Object(header)) => header,
                _ => {
                    return Err(JweError::Malformed(
                        "the JWE protected header is not a JSON object".into(),
                    ));
                }
            };
        let string = |name: &str| match header.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(JweError::Malformed(format!(
                "the JWE header {name:?} is not a string"
            ))),
        };
        let alg = Pbes2::parse(&string("alg")?.unwrap_or_default())?;
        let enc = ContentEncryption::parse(&string("enc")?.unwrap_or_default())?;
        for unsupported in ["zip", "crit"] {
            if header.contains_key(unsupported) {
                return Err(JweError::Unsupported(format!(
                    "the JWE header has {unsupported:?}, which Mayfly does not support"
                )));
            }
        }
        let salt_input = decode(
            "p2s",
            &string("p2s")?
                .ok_or_else(|| JweError::Malformed("the JWE header has no p2s".into()))?,
        )?;
        if salt_input.len() < MIN_SALT_LEN {
            return Err(JweError::Malformed(format!(
                "the JWE p2s has {} bytes; RFC 7518 §4.8.1.1 requires {MIN_SALT_LEN} or more",
                salt_input.len()
            )));
        }
        let iterations = match header.get("p2c").and_then(Value::as_u64) {
            Some(n) if (u64::from(MIN_ITERATIONS)..=u64::from(MAX_ITERATIONS)).contains(&n) => {
                NonZeroU32::new(n as u32).expect("at least MIN_ITERATIONS")
            }
            Some(n) => {
                return Err(JweError::Unsupported(format!(
                    "the JWE p2c is {n}; {MIN_ITERATIONS} to {MAX_ITERATIONS} iterations are accepted"
                )));
            }
            None => {
                return Err(JweError::Malformed(
                    "the JWE header has no p2c (a positive integer)".into(),
                ));
            }
        };
        let iv = decode("IV", iv)?;
        if iv.len() != IV_LEN {
            return Err(JweError::Malformed(format!(
                "the JWE IV has {} bytes; AES-GCM uses {IV_LEN}",
                iv.len()
            )));
        }
        let tag = decode("tag", tag)?;
        if tag.len() != TAG_LEN {
            return Err(JweError::Malformed(format!(
                "the JWE tag has {} bytes; AES-GCM uses {TAG_LEN}",
                tag.len()
            )));
        }
        Ok(Pbes2Jwe {
            alg,
            enc,
            content_type: string("cty")?,
            iterations,
            salt_input,
            protected: protected.to_owned(),
            encrypted_key: decode("encrypted key", encrypted_key)?,
            iv,
            ciphertext: decode("ciphertext", ciphertext)?,
            tag,
        })
    }

    /// Derives the key-encryption key from `password`, unwraps the content key and decrypts.
    pub fn decrypt(&self, password: &[u8]) -> Result<Vec<u8>, JweError> {
        let kek = self
            .alg
            .derive_kek(password, &self.salt_input, self.iterations);
        let cek = self.alg.unwrap_key(&kek, &self.encrypted_key)?;
        if cek.len() != self.enc.key_len() {
            return Err(JweError::Malformed(format!(
                "the JWE content key has {} bytes; {} needs {}",
                cek.len(),
                self.enc.name(),
                self.enc.key_len()
            )));
        }
        let key = LessSafeKey::new(
            UnboundKey::new(self.enc.algorithm(), &cek).map_err(|_| JweError::Altered)?,
        );
        let nonce = Nonce::try_assume_unique_for_key(&self.iv).map_err(|_| JweError::Altered)?;
        let mut in_out = [&self.ciphertext[..], &self.tag].concat();
        let plaintext = key
            .open_in_place(nonce, Aad::from(self.protected.as_bytes()), &mut in_out)
            .map_err(|_| JweError::Altered)?;
        Ok(plaintext.to_vec())
    }
}

/// Decrypts a compact PBES2 JWE with `password`.
pub fn decrypt(compact: &str, password: &[u8]) -> Result<Vec<u8>, JweError> {
    Pbes2Jwe::parse(compact)?.decrypt(password)
}

/// Encrypts `plaintext` as step-ca does: PBES2-HS256+A128KW with `iterations` (use
/// [`DEFAULT_ITERATIONS`]), a random 16-byte `p2s`, A256GCM, and `cty` when given.
///
/// # Panics
/// If the system random number generator fails, or `iterations` is outside
/// [`MIN_ITERATIONS`]..=[`MAX_ITERATIONS`] (a programming error: `decrypt` would refuse it).
pub fn encrypt(
    plaintext: &[u8],
    password: &[u8],
    content_type: Option<&str>,
    iterations: u32,
) -> String {
    assert!(
        (MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations),
        "p2c {iterations} is outside the accepted range"
    );
    let alg = Pbes2::Hs256A128Kw;
    let enc = ContentEncryption::A256Gcm;
    let rng = SystemRandom::new();
    let random = |len: usize| {
        let mut bytes = vec![0; len];
        rng.fill(&mut bytes)
            .expect("the system random number generator failed");
        bytes
    };
    let salt_input = random(SALT_LEN);
    let cek = random(enc.key_len());
    let iv = random(IV_LEN);

    let mut header = json!({
        "alg": alg.name(),
        "enc": enc.name(),
        "p2c": iterations,
        "p2s": base64url(&salt_input),
    });
    if let Some(cty) = content_type {
        header["cty"] = json!(cty);
    }
    let protected = base64url(header.to_string().as_bytes());

    let iterations = NonZeroU32::new(iterations).expect("checked above");
    let kek = alg.derive_kek(password, &salt_input, iterations);
    let encrypted_key = alg.wrap_key(&kek, &cek);

    let key = LessSafeKey::new(UnboundKey::new(enc.algorithm(), &cek).expect("a fresh key"));
    let nonce = Nonce::try_assume_unique_for_key(&iv).expect("a 96-bit IV");
    let mut ciphertext = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::from(protected.as_bytes()), &mut ciphertext)
        .expect("AES-GCM encrypts a short plaintext");
    format!(
        "{protected}.{}.{}.{}.{}",
        base64url(&encrypted_key),
        base64url(&iv),
        base64url(&ciphertext),
        base64url(tag.as_ref())
    )
}

/// RFC 3394 §2.2.2 (index-based unwrap) with AES-192, which aws-lc-rs's `key_wrap` lacks. Each
/// step decrypts one 128-bit block `(A ^ t) || R[i]` with the key-encryption key.
fn aes192_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<Vec<u8>, JweError> {
    rfc3394_unwrap(&cipher::AES_192, kek, wrapped)
}

fn rfc3394_unwrap(
    algorithm: &'static cipher::Algorithm,
    kek: &[u8],
    wrapped: &[u8],
) -> Result<Vec<u8>, JweError> {
    let key = UnboundCipherKey::new(algorithm, kek)
        .and_then(DecryptingKey::ecb)
        .map_err(|_| JweError::WrongPassword)?;
    let n = wrapped.len() / KW_BLOCK - 1;
    let mut a: [u8; KW_BLOCK] = wrapped[..KW_BLOCK].try_into().expect("8 bytes");
    let mut r: Vec<[u8; KW_BLOCK]> = wrapped[KW_BLOCK..]
        .chunks_exact(KW_BLOCK)
        .map(|c| c.try_into().expect("8 bytes"))
        .collect();
    for j in (0..6).rev() {
        for i in (1..=n).rev() {
            let t = (n * j + i) as u64;
            let mut block = [0u8; 2 * KW_BLOCK];
            for (k, byte) in t.to_be_bytes().iter().enumerate() {
                block[k] = a[k] ^ byte;
            }
            block[KW_BLOCK..].copy_from_slice(&r[i - 1]);
            key.decrypt(&mut block, cipher::DecryptionContext::None)
                .map_err(|_| JweError::WrongPassword)?;
            a.copy_from_slice(&block[..KW_BLOCK]);
            r[i - 1].copy_from_slice(&block[KW_BLOCK..]);
        }
    }
    // The integrity check is on a value derived from the key, not a secret: a plain compare is
    // fine, but aws-lc-rs's constant-time one costs nothing.
    aws_lc_rs::constant_time::verify_slices_are_equal(&a, &KW_IV)
        .map_err(|_| JweError::WrongPassword)?;
    Ok(r.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_PASSWORD: &str = "Thus from my lips, by yours, my sin is purged.";

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// RFC 7517 Appendix C.2 and C.3 (the same values appear in RFC 7518's PBES2 examples):
    /// PBES2-HS256+A128KW, p2c 4096. The RFC's content encryption there is A128CBC-HS256,
    /// which Mayfly does not decrypt, so this checks the key management half: the derived
    /// key, the unwrapped content key, and the wrap back.
    #[test]
    fn rfc7517_appendix_c_key_management() {
        let salt_input = base64url_decode("2WCTcJZ1Rvd_CJuJripQ1w").expect("p2s");
        let iterations = NonZeroU32::new(4096).expect("non-zero");
        let kek = Pbes2::Hs256A128Kw.derive_kek(RFC_PASSWORD.as_bytes(), &salt_input, iterations);
        assert_eq!(
            kek,
            [
                110, 171, 169, 92, 129, 92, 109, 117, 233, 242, 116, 233, 170, 14, 24, 75
            ]
        );
        let cek: [u8; 32] = [
            111, 27, 25, 52, 66, 29, 20, 78, 92, 176, 56, 240, 65, 208, 82, 112, 161, 131, 36, 55,
            202, 236, 185, 172, 129, 23, 153, 194, 195, 48, 253, 182,
        ];
        let wrapped =
            base64url_decode("TrqXOwuNUfDV9VPTNbyGvEJ9JMjefAVn-TR1uIxR9p6hsRQh9Tk7BA").expect("ek");
        assert_eq!(
            Pbes2::Hs256A128Kw.unwrap_key(&kek, &wrapped),
            Ok(cek.to_vec())
        );
        assert_eq!(Pbes2::Hs256A128Kw.wrap_key(&kek, &cek), wrapped);
        // Another password derives another key, whose unwrap fails its integrity check.
        let other = Pbes2::Hs256A128Kw.derive_kek(b"not the password", &salt_input, iterations);
        assert_eq!(
            Pbes2::Hs256A128Kw.unwrap_key(&other, &wrapped),
            Err(JweError::WrongPassword)
        );
    }

    /// RFC 3394 §4.1 to §4.6, the AES-192 cases and a 128-bit one, through the hand-written
    /// unwrap (aws-lc-rs's `key_wrap` covers AES-128 and AES-256 itself).
    #[test]
    fn rfc3394_vectors_unwrap() {
        let cases = [
            (
                "4.1 128-bit data, 128-bit kek",
                &cipher::AES_128,
                "000102030405060708090A0B0C0D0E0F",
                "1FA68B0A8112B447AEF34BD8FB5A7B829D3E862371D2CFE5",
                "00112233445566778899AABBCCDDEEFF",
            ),
            (
                "4.2 128-bit data, 192-bit kek",
                &cipher::AES_192,
                "000102030405060708090A0B0C0D0E0F1011121314151617",
                "96778B25AE6CA435F92B5B97C050AED2468AB8A17AD84E5D",
                "00112233445566778899AABBCCDDEEFF",
            ),
            (
                "4.4 192-bit data, 192-bit kek",
                &cipher::AES_192,
                "000102030405060708090A0B0C0D0E0F1011121314151617",
                "031D33264E15D33268F24EC260743EDCE1C6C7DDEE725A936BA814915C6762D2",
                "00112233445566778899AABBCCDDEEFF0001020304050607",
            ),
        ];
        for (name, algorithm, kek, wrapped, key) in cases {
            assert_eq!(
                rfc3394_unwrap(algorithm, &hex(kek), &hex(wrapped)),
                Ok(hex(key)),
                "{name}"
            );
            let mut altered = hex(wrapped);
            altered[10] ^= 1;
            assert_eq!(
                rfc3394_unwrap(algorithm, &hex(kek), &altered),
                Err(JweError::WrongPassword),
                "{name} altered"
            );
        }
    }

    /// JWEs made by jwcrypto (testdata/jwe/make_fixtures.py), one per PBES2 algorithm and
    /// AES-GCM key size.
    #[test]
    fn jwcrypto_fixtures_decrypt() {
        let cases = [
            (
                "p256, PBES2-HS256+A128KW, A256GCM (step-ca's choice)",
                include_str!("../../testdata/jwe/p256-hs256-a256gcm.jwe"),
                include_str!("../../testdata/jwe/p256-hs256-a256gcm.jwk.json"),
                Pbes2::Hs256A128Kw,
                ContentEncryption::A256Gcm,
            ),
            (
                "ed25519, PBES2-HS384+A192KW, A192GCM",
                include_str!("../../testdata/jwe/ed25519-hs384-a192gcm.jwe"),
                include_str!("../../testdata/jwe/ed25519-hs384-a192gcm.jwk.json"),
                Pbes2::Hs384A192Kw,
                ContentEncryption::A192Gcm,
            ),
            (
                "rsa, PBES2-HS512+A256KW, A128GCM",
                include_str!("../../testdata/jwe/rsa2048-hs512-a128gcm.jwe"),
                include_str!("../../testdata/jwe/rsa2048-hs512-a128gcm.jwk.json"),
                Pbes2::Hs512A256Kw,
                ContentEncryption::A128Gcm,
            ),
        ];
        for (name, jwe, plaintext, alg, enc) in cases {
            let parsed = Pbes2Jwe::parse(jwe).expect(name);
            assert_eq!((parsed.alg, parsed.enc), (alg, enc), "{name}");
            assert_eq!(parsed.content_type.as_deref(), Some("jwk+json"), "{name}");
            let decrypted = parsed.decrypt(RFC_PASSWORD.as_bytes()).expect(name);
            assert_eq!(decrypted, plaintext.trim_end().as_bytes(), "{name}");
            assert_eq!(
                parsed.decrypt(b"Thus from my lips, by yours, my sin is purged"),
                Err(JweError::WrongPassword),
                "{name}: wrong password"
            );
        }
    }

    #[test]
    fn round_trip() {
        let jwe = encrypt(
            b"{\"kty\":\"EC\"}",
            b"hunter2",
            Some("jwk+json"),
            MIN_ITERATIONS,
        );
        let parsed = Pbes2Jwe::parse(&jwe).expect("parses");
        assert_eq!(parsed.alg, Pbes2::Hs256A128Kw);
        assert_eq!(parsed.enc, ContentEncryption::A256Gcm);
        assert_eq!(parsed.iterations.get(), MIN_ITERATIONS);
        assert_eq!(parsed.salt_input.len(), SALT_LEN);
        assert_eq!(parsed.content_type.as_deref(), Some("jwk+json"));
        assert_eq!(decrypt(&jwe, b"hunter2"), Ok(b"{\"kty\":\"EC\"}".to_vec()));
        assert_eq!(decrypt(&jwe, b"hunter3"), Err(JweError::WrongPassword));
        assert_eq!(
            JweError::WrongPassword.to_string(),
            "the password does not decrypt the key"
        );
        // Two encryptions of the same text differ (fresh salt, key and IV).
        assert_ne!(
            jwe,
            encrypt(b"{\"kty\":\"EC\"}", b"hunter2", None, MIN_ITERATIONS)
        );
    }

    #[test]
    fn altered_parts_do_not_decrypt() {
        let jwe = encrypt(b"secret key", b"pw", None, MIN_ITERATIONS);
        let flip = |index: usize| {
            let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
            let mut bytes = base64url_decode(&parts[index]).expect("base64url");
            bytes[0] ^= 1;
            parts[index] = base64url(&bytes);
            parts.join(".")
        };
        let cases = [
            ("encrypted key", 1, JweError::WrongPassword),
            ("iv", 2, JweError::Altered),
            ("ciphertext", 3, JweError::Altered),
            ("tag", 4, JweError::Altered),
        ];
        for (name, index, expected) in cases {
            assert_eq!(decrypt(&flip(index), b"pw"), Err(expected), "{name}");
        }
        // A re-encoded header (same members, other order) changes the AAD.
        let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
        let header: Value =
            serde_json::from_slice(&base64url_decode(&parts[0]).expect("b64")).expect("json");
        let reordered = format!(
            r#"{{"p2s":{},"p2c":{},"enc":{},"alg":{}}}"#,
            header["p2s"], header["p2c"], header["enc"], header["alg"]
        );
        parts[0] = base64url(reordered.as_bytes());
        assert_eq!(decrypt(&parts.join("."), b"pw"), Err(JweError::Altered));
    }

    #[test]
    fn headers_are_checked_before_any_work() {
        let good = encrypt(b"x", b"pw", None, MIN_ITERATIONS);
        let rest = good.split_once('.').expect("dots").1;
        let with = |header: Value| format!("{}.{rest}", base64url(header.to_string().as_bytes()));
        let p2s = base64url(&[7; 16]);
        let base = json!({"alg": "PBES2-HS256+A128KW", "enc": "A256GCM", "p2s": p2s, "p2c": 1000});
        let edit = |f: &dyn Fn(&mut Value)| {
            let mut h = base.clone();
            f(&mut h);
            with(h)
        };
        let cases: Vec<(&str, String, &str)> = vec![
            ("four parts", "a.b.c.d".into(), "five base64url parts"),
            (
                "header not base64url",
                format!("***.{rest}"),
                "not base64url",
            ),
            (
                "header not an object",
                with(json!([1])),
                "not a JSON object",
            ),
            (
                "direct key agreement",
                edit(&|h| h["alg"] = json!("dir")),
                "\"dir\" is not supported",
            ),
            ("no alg", edit(&|h| h["alg"] = Value::Null), "not a string"),
            (
                "rsa-oaep",
                edit(&|h| h["alg"] = json!("RSA-OAEP")),
                "\"RSA-OAEP\" is not supported",
            ),
            (
                "cbc-hmac content encryption",
                edit(&|h| h["enc"] = json!("A128CBC-HS256")),
                "\"A128CBC-HS256\" is not supported",
            ),
            ("zip", edit(&|h| h["zip"] = json!("DEF")), "\"zip\""),
            ("crit", edit(&|h| h["crit"] = json!(["x"])), "\"crit\""),
            (
                "no p2s",
                edit(&|h| {
                    h.as_object_mut().map(|o| o.remove("p2s"));
                }),
                "no p2s",
            ),
            (
                "short p2s",
                edit(&|h| h["p2s"] = json!(base64url(&[1; 7]))),
                "7 bytes",
            ),
            (
                "p2c too small",
                edit(&|h| h["p2c"] = json!(999)),
                "p2c is 999",
            ),
            (
                "p2c too large",
                edit(&|h| h["p2c"] = json!(10_000_001)),
                "p2c is 10000001",
            ),
            ("p2c negative", edit(&|h| h["p2c"] = json!(-1)), "no p2c"),
            (
                "p2c a string",
                edit(&|h| h["p2c"] = json!("4096")),
                "no p2c",
            ),
        ];
        for (name, jwe, fragment) in cases {
            match Pbes2Jwe::parse(&jwe) {
                Err(JweError::Malformed(m) | JweError::Unsupported(m)) => {
                    assert!(m.contains(fragment), "{name}: {m}")
                }
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
