//! Single use of provisioner tokens (issue 6). A verified token is a [`TokenIdentity`]; whether
//! it was used before is a stored fact, recorded here as for nonces, so that a token is
//! accepted once across every replica.

use crate::provisioner::TokenIdentity;

use super::{Authority, Result};

impl Authority {
    /// Records the token behind `identity` as used: `true` the first time, `false` if it was
    /// used before, on any replica. The record is kept until the token's `exp`.
    pub async fn redeem_token(&self, identity: &TokenIdentity) -> Result<bool> {
        Ok(self
            .store
            .use_token(
                &identity.provisioner,
                &identity.token_id,
                identity.expires_at,
            )
            .await?)
    }

    /// Forgets used tokens that have expired: they are refused for their `exp` anyway.
    pub async fn prune_used_tokens(&self) -> Result<u64> {
        Ok(self.store.prune_used_tokens(self.now()).await?)
    }
}
