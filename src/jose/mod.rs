//! JOSE for ACME (RFC 8555 §6.2, RFC 7515, RFC 7517, RFC 7638): flattened JWS parsing and
//! verification with aws-lc-rs, JWKs and their thumbprints, key authorizations, and a signer
//! that tests and tools use to play an ACME client.
//!
//! - [`jwk`]: the [`Jwk`] type, its checks, its RFC 7638 thumbprint and signature verification.
//! - [`spki`]: the JWK of a DER SubjectPublicKeyInfo (to compare CSR keys with account keys).
//! - [`jws`]: [`ParsedJws::parse`], the flattened JSON serialisation with the ACME rules.
//! - [`signer`]: [`SigningKey`] and [`sign_jws`], the client side.
//! - [`jwt`]: compact JWTs: provisioner one-time tokens and OIDC ID tokens.
//! - [`eab`]: External Account Binding (RFC 8555 §7.3.4), HS256/HS384/HS512.
//! - [`jwe`]: password-based compact JWE (PBES2, AES-GCM), how a JWK provisioner's private key
//!   is stored; `private_jwk` reads and writes private keys as JWKs
//!   ([`SigningKey::from_private_jwk`], [`SigningKey::private_jwk`]).

pub mod eab;
pub mod jwe;
mod jwk;
mod jws;
pub mod jwt;
mod private_jwk;
mod signer;
mod spki;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub use eab::{MacAlgorithm, ParsedEab};
pub use jwk::Jwk;
pub use jws::{KeyOrKeyId, ParsedJws, ProtectedHeader};
pub use jwt::{JwtHeader, UnverifiedJwt, sign_jwt};
pub use signer::{KeyRef, SigningKey, sign_jws, sign_jws_raw};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JoseError {
    /// Maps to `malformed`.
    #[error("{0}")]
    Malformed(String),
    /// Maps to `badSignatureAlgorithm`.
    #[error("{0}")]
    BadAlgorithm(String),
    /// Maps to `badPublicKey`.
    #[error("{0}")]
    BadKey(String),
    /// The signature did not verify. Maps to `malformed`.
    #[error("the JWS signature does not verify")]
    BadSignature,
}

/// The algorithms Mayfly accepts (RFC 8555 §6.2: no `none`, no MAC).
pub const ALGORITHMS: [&str; 4] = ["ES256", "ES384", "RS256", "EdDSA"];

/// RFC 8555 §8.1: `token || '.' || base64url(thumbprint(accountKey))`.
pub fn key_authorization(token: &str, account_key: &Jwk) -> String {
    format!("{token}.{}", account_key.thumbprint())
}

/// base64url without padding (RFC 7515 §2), the only encoding JOSE uses.
pub fn base64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Strict base64url decoding: no padding, no other alphabet, no stray trailing bits.
fn base64url_decode(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    URL_SAFE_NO_PAD.decode(text)
}

/// `"ES256, ES384, RS256, EdDSA"`, for error messages.
fn supported_algorithms() -> String {
    ALGORITHMS.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_authorization_is_token_dot_thumbprint() {
        // RFC 7638 §3.1 key; RFC 8555 §8.1 format.
        let key: Jwk = serde_json::from_value(jwk::tests::rfc7638_key()).expect("valid JWK");
        assert_eq!(
            key_authorization("evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA", &key),
            "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn base64url_decoding_is_strict() {
        let cases: [(&str, &str, bool); 5] = [
            ("plain", "aGk", true),
            ("padding", "aGk=", false),
            ("standard alphabet", "+/8", false),
            ("url alphabet", "-_8", true),
            ("non-canonical trailing bits", "aGl", false),
        ];
        for (name, input, ok) in cases {
            assert_eq!(base64url_decode(input).is_ok(), ok, "{name}");
        }
    }
}
