//! The committed files, kept up to date incrementally.
//!
//! [`Snapshot::load`] reads every commit on each call. A query engine refreshes before every
//! statement, so [`Manifests`] remembers which commit objects it has applied and on refresh
//! lists `_manifest/` and reads only the new ones: one LIST per query once warm. Applying
//! commits in any order gives the same live set ([`Snapshot::apply`] is order-independent for
//! removals, and file names are never reused), so applying the new commits after the old ones
//! is the same as replaying everything.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};
use genai_audit_store::StoreLocation;
use genai_audit_store::layout::MANIFEST_DIR;
use genai_audit_store::manifest::{Commit, Snapshot};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::error::{Error, Result};

/// Commits read concurrently on a refresh (the first one reads them all).
const CONCURRENT_GETS: usize = 16;

/// The store's commits applied so far.
#[derive(Debug, Default)]
pub(crate) struct Manifests {
    seen: HashSet<Path>,
    snapshot: Snapshot,
}

impl Manifests {
    /// The live files as of the last refresh.
    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Reads the commits written since the last refresh. Returns how many were applied.
    pub(crate) async fn refresh(&mut self, loc: &StoreLocation) -> Result<usize> {
        let prefix = loc.path(MANIFEST_DIR);
        let new: Vec<Path> = loc
            .store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .try_filter(|p| {
                futures::future::ready(p.as_ref().ends_with(".json") && !self.seen.contains(p))
            })
            .try_collect()
            .await
            .map_err(|e| Error::object("list", prefix.as_ref(), e))?;
        if new.is_empty() {
            return Ok(0);
        }
        let mut commits: Vec<(Path, Commit)> = futures::stream::iter(new)
            .map(|path| async move {
                let bytes = loc
                    .store
                    .get(&path)
                    .await
                    .map_err(|e| Error::object("get", path.as_ref(), e))?
                    .bytes()
                    .await
                    .map_err(|e| Error::object("get", path.as_ref(), e))?;
                let commit: Commit =
                    serde_json::from_slice(&bytes).map_err(|e| Error::Manifest {
                        key: path.to_string(),
                        reason: e.to_string(),
                    })?;
                Ok::<_, Error>((path, commit))
            })
            .buffer_unordered(CONCURRENT_GETS)
            .try_collect()
            .await?;
        commits.sort_by(|(_, a), (_, b)| {
            (&a.collector_id, a.commit).cmp(&(&b.collector_id, b.commit))
        });
        let applied = commits.len();
        for (path, commit) in commits {
            self.snapshot.apply(&commit);
            self.seen.insert(path);
        }
        tracing::debug!(
            commits = applied,
            files = self.snapshot.files.len(),
            "read new commits"
        );
        Ok(applied)
    }
}
