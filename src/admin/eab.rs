//! EAB keys written straight to a store, for tests and fixtures that have no admin API at
//! hand; operators use `mayfly admin eab` (the API's `POST /admin/eab-keys`).

use anyhow::Context;
use time::OffsetDateTime;

use crate::authority::admin::new_eab_key;
use crate::storage::{EabKey, Store};

/// Creates and stores a new key bound to no provisioner.
pub async fn add(
    store: &dyn Store,
    label: &str,
    reusable: bool,
    now: OffsetDateTime,
) -> anyhow::Result<EabKey> {
    add_for(store, label, reusable, None, now).await
}

/// Creates and stores a new key whose accounts get the policy of `provisioner`.
pub async fn add_for(
    store: &dyn Store,
    label: &str,
    reusable: bool,
    provisioner: Option<&str>,
    now: OffsetDateTime,
) -> anyhow::Result<EabKey> {
    let key = new_eab_key(label, reusable, provisioner, now);
    store
        .insert_eab_key(&key)
        .await
        .context("storing the EAB key")?;
    Ok(key)
}
