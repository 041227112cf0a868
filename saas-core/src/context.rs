//! The application context: everything a handler, job or service may need.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::cache::Cache;
use crate::config::Config;
use crate::db::Db;
use crate::jobs::JobQueue;
use crate::pubsub::PubSub;

/// Configuration, database, cache, pub/sub, job queue and app-provided services;
/// cloned cheaply (one `Arc` inside). It is the axum state of every router.
#[derive(Clone)]
pub struct AppContext {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    db: Db,
    cache: Arc<dyn Cache>,
    pubsub: Arc<dyn PubSub>,
    jobs: JobQueue,
    extensions: RwLock<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl AppContext {
    /// Assembles a context from its parts (the app builder and tests do this).
    pub fn new(config: Config, db: Db, cache: Arc<dyn Cache>, pubsub: Arc<dyn PubSub>, jobs: JobQueue) -> Self {
        Self { inner: Arc::new(Inner { config, db, cache, pubsub, jobs, extensions: RwLock::default() }) }
    }

    /// Connects everything `config` names and migrates `modules` (see [`crate::app::connect`]).
    pub async fn connect(config: Config, modules: &[&dyn crate::Module]) -> crate::ServiceResult<Self> {
        crate::app::connect(config, modules).await
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The database pool.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The cache (in memory or Redis).
    pub fn cache(&self) -> &Arc<dyn Cache> {
        &self.inner.cache
    }

    /// Pub/sub between tasks and nodes (in process or Redis).
    pub fn pubsub(&self) -> &Arc<dyn PubSub> {
        &self.inner.pubsub
    }

    /// The persistent job queue.
    pub fn jobs(&self) -> &JobQueue {
        &self.inner.jobs
    }

    /// Stores a service or value by its type, replacing any earlier one (e.g. an
    /// `Arc<dyn Mailer>` an app provides instead of the configured one).
    pub fn insert<T: Clone + Send + Sync + 'static>(&self, value: T) {
        let mut map = self.inner.extensions.write().unwrap_or_else(|e| e.into_inner());
        map.insert(TypeId::of::<T>(), Box::new(value));
    }

    /// The value of type `T` stored with [`insert`](Self::insert), if any.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        let map = self.inner.extensions.read().unwrap_or_else(|e| e.into_inner());
        map.get(&TypeId::of::<T>()).and_then(|boxed| boxed.downcast_ref::<T>()).cloned()
    }

    /// The stored `T`, or the one `init` builds (stored for next time).
    pub fn get_or_insert_with<T: Clone + Send + Sync + 'static>(&self, init: impl FnOnce(&AppContext) -> T) -> T {
        if let Some(value) = self.get::<T>() {
            return value;
        }
        let value = init(self);
        let mut map = self.inner.extensions.write().unwrap_or_else(|e| e.into_inner());
        map.entry(TypeId::of::<T>())
            .or_insert_with(|| Box::new(value))
            .downcast_ref::<T>()
            .cloned()
            .unwrap_or_else(|| unreachable!("the entry for a TypeId holds that type"))
    }
}

impl std::fmt::Debug for AppContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppContext")
            .field("database", &self.inner.db.backend_name())
            .field("cache", &self.inner.cache.backend_name())
            .field("pubsub", &self.inner.pubsub.backend_name())
            .finish()
    }
}
