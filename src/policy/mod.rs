//! Issuance policy that is pure computation: certificate lifetimes and claims, profiles
//! (draft-ietf-acme-profiles), and ACME Renewal Information windows (RFC 9773). Nothing here
//! reads a clock or touches storage; callers pass `now`.

pub mod fixups;
pub mod lifetime;
pub mod profile;
pub mod renewal;
pub mod validators;

pub use lifetime::{Bounds, Claims, PartialClaims, Validity, ValidityError, validity};
pub use profile::{ExtendedKeyUsage, IdentifierType, KeyUsage, Profile, Profiles, UnknownProfile};
pub use renewal::{
    CertId, CertIdError, Fraction, RenewalSettings, SuggestedWindow, retry_after, suggested_window,
};
