//! Legal holds: records that retention must not delete and erasure must not touch.
//!
//! A hold covers a tenant, or one user of a tenant. Holds live in the store itself, beside the
//! data they protect, so every tool that changes the store sees the same holds:
//!
//! ```text
//! <root>/_holds/<id>.json           the hold (create-only: never rewritten)
//! <root>/_holds/<id>.removed.json   its removal: who, when, why (create-only)
//! ```
//!
//! Nothing is ever overwritten or deleted: lifting a hold adds a removal record, so the history
//! of holds stays readable (`hold list --all`). A hold on a user names that user in clear (a
//! legal hold must say whom it is about); it blocks erasure of that user while it is active.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::{PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::layout::HOLDS_DIR;
use crate::location::StoreLocation;

/// One legal hold, as stored in `_holds/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    /// Unique id (`hold-<UTC time>-<random>`).
    pub id: String,
    /// Tenant held.
    pub tenant: String,
    /// User held within the tenant; `None` holds the whole tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Why (matter, ticket).
    pub reason: String,
    /// Who placed it.
    pub by: String,
    /// When it was placed (RFC 3339).
    pub created_at: String,
    /// Its removal, if it was lifted (read from `<id>.removed.json`, not stored in the hold).
    #[serde(default, skip_serializing)]
    pub removed: Option<HoldRemoval>,
}

/// The lifting of a hold, as stored in `_holds/<id>.removed.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HoldRemoval {
    /// Id of the hold lifted.
    pub id: String,
    /// Why it was lifted.
    pub reason: String,
    /// Who lifted it.
    pub by: String,
    /// When (RFC 3339).
    pub removed_at: String,
}

impl Hold {
    /// Whether the hold is in force.
    pub fn is_active(&self) -> bool {
        self.removed.is_none()
    }

    /// `tenant=…` or `tenant=… user=…`.
    pub fn scope(&self) -> String {
        match &self.user {
            Some(u) => format!("tenant={} user={u}", self.tenant),
            None => format!("tenant={}", self.tenant),
        }
    }

    /// Whether a row of `tenant` with `user` is held.
    pub fn covers(&self, tenant: &str, user: Option<&str>) -> bool {
        self.is_active()
            && self.tenant == tenant
            && self.user.as_deref().is_none_or(|u| Some(u) == user)
    }

    /// The refusal error naming this hold.
    pub fn refusal(&self) -> Error {
        Error::LegalHold {
            hold_id: self.id.clone(),
            scope: self.scope(),
            by: self.by.clone(),
            reason: self.reason.clone(),
        }
    }
}

/// The holds in force, for checking rows quickly.
#[derive(Debug, Clone, Default)]
pub struct HoldSet {
    /// Active holds by tenant.
    by_tenant: BTreeMap<String, Vec<Hold>>,
}

impl HoldSet {
    /// The active holds among `holds`.
    pub fn new(holds: impl IntoIterator<Item = Hold>) -> Self {
        let mut by_tenant: BTreeMap<String, Vec<Hold>> = BTreeMap::new();
        for h in holds.into_iter().filter(Hold::is_active) {
            by_tenant.entry(h.tenant.clone()).or_default().push(h);
        }
        Self { by_tenant }
    }

    /// Reads the active holds of the store.
    pub async fn load(loc: &StoreLocation) -> Result<Self> {
        Ok(Self::new(list_holds(loc).await?))
    }

    /// The hold covering a whole tenant, if any.
    pub fn tenant_wide(&self, tenant: &str) -> Option<&Hold> {
        self.by_tenant
            .get(tenant)
            .and_then(|hs| hs.iter().find(|h| h.user.is_none()))
    }

    /// Whether any hold names a user of `tenant`.
    pub fn has_user_holds(&self, tenant: &str) -> bool {
        self.by_tenant
            .get(tenant)
            .is_some_and(|hs| hs.iter().any(|h| h.user.is_some()))
    }

    /// The hold covering a row of `tenant` with `user`, if any.
    pub fn covering(&self, tenant: &str, user: Option<&str>) -> Option<&Hold> {
        self.by_tenant
            .get(tenant)
            .and_then(|hs| hs.iter().find(|h| h.covers(tenant, user)))
    }

    /// A hold naming `user` in any tenant (or in `tenant` when given).
    pub fn on_user(&self, user: &str, tenant: Option<&str>) -> Option<&Hold> {
        self.by_tenant
            .iter()
            .filter(|(t, _)| tenant.is_none_or(|want| want == t.as_str()))
            .flat_map(|(_, hs)| hs)
            .find(|h| h.user.as_deref() == Some(user))
    }

    /// Number of active holds.
    pub fn len(&self) -> usize {
        self.by_tenant.values().map(Vec::len).sum()
    }

    /// Whether no hold is active.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn hold_key(id: &str) -> String {
    format!("{HOLDS_DIR}/{id}.json")
}

fn removal_key(id: &str) -> String {
    format!("{HOLDS_DIR}/{id}.removed.json")
}

/// Places a hold on `tenant` (or one `user` of it). `now` is RFC 3339 time of placement.
pub async fn add_hold(
    loc: &StoreLocation,
    tenant: &str,
    user: Option<&str>,
    reason: &str,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Hold> {
    if tenant.is_empty() || reason.trim().is_empty() || by.trim().is_empty() {
        return Err(Error::InvalidArgument(
            "a hold needs a tenant, a reason and who places it".into(),
        ));
    }
    let id = format!(
        "hold-{}-{}",
        now.format("%Y%m%dT%H%M%SZ"),
        crate::random_token()?
    );
    let hold = Hold {
        id: id.clone(),
        tenant: tenant.to_owned(),
        user: user.map(str::to_owned),
        reason: reason.to_owned(),
        by: by.to_owned(),
        created_at: now.to_rfc3339(),
        removed: None,
    };
    put_new(loc, &hold_key(&id), &hold).await?;
    tracing::info!(id, scope = hold.scope(), by, "legal hold placed");
    Ok(hold)
}

/// Lifts the active hold `id`, recording who, when and why.
pub async fn remove_hold(
    loc: &StoreLocation,
    id: &str,
    reason: &str,
    by: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Hold> {
    if reason.trim().is_empty() || by.trim().is_empty() {
        return Err(Error::InvalidArgument(
            "lifting a hold needs a reason and who lifts it".into(),
        ));
    }
    let mut hold = list_holds(loc)
        .await?
        .into_iter()
        .find(|h| h.id == id && h.is_active())
        .ok_or_else(|| Error::HoldNotFound(id.to_owned()))?;
    let removal = HoldRemoval {
        id: id.to_owned(),
        reason: reason.to_owned(),
        by: by.to_owned(),
        removed_at: now.to_rfc3339(),
    };
    match put_new(loc, &removal_key(id), &removal).await {
        Ok(()) => {}
        // Lifted by someone else in the meantime: it is not active any more.
        Err(Error::ObjectStore {
            source: object_store::Error::AlreadyExists { .. },
            ..
        }) => return Err(Error::HoldNotFound(id.to_owned())),
        Err(e) => return Err(e),
    }
    tracing::info!(id, scope = hold.scope(), by, "legal hold lifted");
    hold.removed = Some(removal);
    Ok(hold)
}

/// Every hold ever placed, lifted ones included (with their removal), oldest first.
pub async fn list_holds(loc: &StoreLocation) -> Result<Vec<Hold>> {
    let prefix = loc.path(HOLDS_DIR);
    let metas: Vec<_> = loc
        .store
        .list(Some(&prefix))
        .try_collect()
        .await
        .map_err(|e| Error::object("list", prefix.as_ref(), e))?;
    let mut holds = BTreeMap::new();
    let mut removals = Vec::new();
    for meta in metas {
        let name = meta.location.filename().unwrap_or_default().to_owned();
        let bytes = loc.get_object(&meta.location).await?;
        let bad = |e: serde_json::Error| Error::Manifest {
            key: meta.location.to_string(),
            reason: e.to_string(),
        };
        if name.ends_with(".removed.json") {
            removals.push(serde_json::from_slice::<HoldRemoval>(&bytes).map_err(bad)?);
        } else if name.ends_with(".json") {
            let h: Hold = serde_json::from_slice(&bytes).map_err(bad)?;
            holds.insert(h.id.clone(), h);
        }
    }
    for r in removals {
        if let Some(h) = holds.get_mut(&r.id) {
            h.removed = Some(r);
        }
    }
    let mut out: Vec<Hold> = holds.into_values().collect();
    out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(out)
}

async fn put_new<T: Serialize>(loc: &StoreLocation, key: &str, value: &T) -> Result<()> {
    let body = serde_json::to_vec_pretty(value).map_err(|e| Error::Manifest {
        key: key.to_owned(),
        reason: e.to_string(),
    })?;
    let opts = PutOptions {
        mode: PutMode::Create,
        ..Default::default()
    };
    loc.store
        .put_opts(&loc.path(key), PutPayload::from(body), opts)
        .await
        .map(|_| ())
        .map_err(|e| Error::object("put", key, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hold(id: &str, tenant: &str, user: Option<&str>) -> Hold {
        Hold {
            id: id.into(),
            tenant: tenant.into(),
            user: user.map(Into::into),
            reason: "r".into(),
            by: "b".into(),
            created_at: String::new(),
            removed: None,
        }
    }

    #[test]
    fn tenant_holds_cover_every_user_and_user_holds_only_theirs() {
        let mut lifted = hold("h3", "c", None);
        lifted.removed = Some(HoldRemoval {
            id: "h3".into(),
            reason: "done".into(),
            by: "b".into(),
            removed_at: String::new(),
        });
        let set = HoldSet::new([hold("h1", "a", None), hold("h2", "b", Some("u1")), lifted]);
        assert_eq!(set.len(), 2);
        assert_eq!(
            set.covering("a", Some("x")).map(|h| h.id.as_str()),
            Some("h1")
        );
        assert_eq!(set.covering("a", None).map(|h| h.id.as_str()), Some("h1"));
        assert_eq!(
            set.covering("b", Some("u1")).map(|h| h.id.as_str()),
            Some("h2")
        );
        assert!(set.covering("b", Some("u2")).is_none());
        assert!(set.covering("b", None).is_none());
        assert!(
            set.covering("c", None).is_none(),
            "a lifted hold holds nothing"
        );
        assert!(set.tenant_wide("a").is_some() && set.tenant_wide("b").is_none());
        assert!(set.has_user_holds("b") && !set.has_user_holds("a"));
        assert!(set.on_user("u1", None).is_some());
        assert!(set.on_user("u1", Some("a")).is_none());
    }
}
