//! API user objects kept in each node's memory, so `GET user/` needs no database query.
//!
//! Every write of the accounts store that changes what the user object shows moves the
//! user's *version*, a random value in the shared cache (Redis when configured, so every
//! node sees it). A node serves its kept object only while the version it was read under
//! is still the current one: a change made on any node is seen by the next request on
//! every node. The version is read before the database, so an object read from a row
//! older than the version can only be kept under an older version, never the current one.
//!
//! Kept objects are dropped after [`MAX_AGE`] whatever the version says; that bounds how
//! long a change made behind the store's back (SQL run by hand, a lost cache write) shows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use saas_core::ServiceResult;
use saas_core::cache::Cache;
use uuid::Uuid;

use crate::models::User;

/// How long a kept object is served at most.
pub const MAX_AGE: Duration = Duration::from_secs(60);
/// How long a version lives in the shared cache; far longer than [`MAX_AGE`], so a version
/// that expires can never make an object kept before it current again.
const VERSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// Objects kept per node; the map is emptied when it is full (a miss costs one query).
const CAPACITY: usize = 10_000;

/// The users' versions in the shared cache.
#[derive(Clone)]
pub(crate) struct UserVersions {
    cache: Arc<dyn Cache>,
}

impl std::fmt::Debug for UserVersions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserVersions").field("cache", &self.cache.backend_name()).finish()
    }
}

/// The cache key of the user's version.
pub(crate) fn version_key(id: Uuid) -> String {
    format!("auth:user-version:{id}")
}

impl UserVersions {
    pub(crate) fn new(cache: Arc<dyn Cache>) -> Self {
        Self { cache }
    }

    /// The user's current version (`None` when it never changed or its entry expired).
    pub(crate) async fn current(&self, id: Uuid) -> ServiceResult<Option<Bytes>> {
        self.cache.get(&version_key(id)).await
    }

    /// Gives the user a new version; called after the change is committed. The change
    /// stands if the cache cannot be written: kept copies then show the old object for at
    /// most [`MAX_AGE`].
    pub(crate) async fn bump(&self, id: Uuid) {
        let version = Bytes::copy_from_slice(Uuid::new_v4().as_bytes());
        if let Err(err) = self.cache.set(&version_key(id), version, Some(VERSION_TTL)).await {
            tracing::warn!(user = %id, error = %err, "could not record a change of the user in the cache");
        }
    }
}

struct Kept {
    version: Option<Bytes>,
    user: User,
    at: Instant,
}

/// This node's kept user objects.
#[derive(Default)]
pub(crate) struct UserObjects {
    kept: Mutex<HashMap<Uuid, Kept>>,
}

impl UserObjects {
    /// The kept object of `id` if it was read under `version` less than [`MAX_AGE`] ago.
    pub(crate) fn get(&self, id: Uuid, version: &Option<Bytes>) -> Option<User> {
        let kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        kept.get(&id).filter(|k| &k.version == version && k.at.elapsed() < MAX_AGE).map(|k| k.user.clone())
    }

    /// Keeps `user`, read from the database after `version` was read.
    pub(crate) fn keep(&self, version: Option<Bytes>, user: &User) {
        let mut kept = self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.len() >= CAPACITY && !kept.contains_key(&user.id) {
            kept.clear();
        }
        kept.insert(user.id, Kept { version, user: user.clone(), at: Instant::now() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use saas_core::cache::MemoryCache;

    fn user(name: &str) -> User {
        User {
            id: Uuid::nil(),
            email: format!("{name}@example.com"),
            is_email_verified: false,
            is_active: true,
            date_joined: chrono::Utc::now(),
            profile_completed: false,
            full_name: String::new(),
            username: None,
            linked_providers: vec!["email".into()],
        }
    }

    #[tokio::test]
    async fn a_kept_object_is_served_only_under_the_version_it_was_read_under() {
        let versions = UserVersions::new(Arc::new(MemoryCache::new()));
        let objects = UserObjects::default();
        let id = Uuid::nil();
        let before = versions.current(id).await.unwrap();
        assert_eq!(before, None);
        objects.keep(before.clone(), &user("ann"));
        assert_eq!(objects.get(id, &before).unwrap().email, "ann@example.com");

        versions.bump(id).await;
        let after = versions.current(id).await.unwrap();
        assert!(after.is_some());
        assert_eq!(objects.get(id, &after), None, "a change hides the old object");
        objects.keep(after.clone(), &user("bob"));
        assert_eq!(objects.get(id, &after).unwrap().email, "bob@example.com");

        versions.bump(id).await;
        assert_ne!(versions.current(id).await.unwrap(), after, "every change is a new version");
    }
}
