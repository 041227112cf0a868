//! Key/value cache with expiry and windowed counters (for rate limits and locks).
//!
//! In memory when `REDIS_URL` is unset (one node); Redis otherwise (shared by every node).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{ServiceError, ServiceResult};

/// A shared cache. Keys are namespaced by the implementation (the Redis prefix).
#[async_trait]
pub trait Cache: Send + Sync + 'static {
    /// The value under `key`, if present and not expired.
    async fn get(&self, key: &str) -> ServiceResult<Option<Bytes>>;
    /// The values under `keys`, in their order (one round trip on Redis).
    async fn get_many(&self, keys: &[&str]) -> ServiceResult<Vec<Option<Bytes>>> {
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            values.push(self.get(key).await?);
        }
        Ok(values)
    }
    /// Stores `value` under `key`, expiring after `ttl` when given.
    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> ServiceResult<()>;
    /// Stores `value` only if `key` is absent; `true` when it was stored (a lock or claim).
    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Duration) -> ServiceResult<bool>;
    /// Removes `key`; `true` when it existed.
    async fn delete(&self, key: &str) -> ServiceResult<bool>;
    /// Increments the counter `key` in a fixed window of length `window` starting at its
    /// first increment; returns the count and the time left in the window.
    async fn increment(&self, key: &str, window: Duration) -> ServiceResult<(u64, Duration)>;
    /// Checks the cache answers.
    async fn ping(&self) -> ServiceResult<()>;
    /// `"memory"` or `"redis"`.
    fn backend_name(&self) -> &'static str;
}

#[derive(Debug)]
struct Entry {
    value: Bytes,
    counter: u64,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

/// The map and the size at which expired entries are next swept out.
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, Entry>,
    sweep_at: usize,
}

/// Entries held before the first sweep of expired ones.
const FIRST_SWEEP: usize = 4096;

/// A single-node cache in the process's memory.
#[derive(Debug, Default)]
pub struct MemoryCache {
    entries: Mutex<Entries>,
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn with_entries<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Sweeping when the map doubles keeps the cost amortised and the size within twice
        // the live entries.
        if entries.map.len() >= entries.sweep_at.max(FIRST_SWEEP) {
            entries.map.retain(|_, entry| entry.live(now));
            entries.sweep_at = (entries.map.len() * 2).max(FIRST_SWEEP);
        }
        f(&mut entries.map, now)
    }
}

#[async_trait]
impl Cache for MemoryCache {
    async fn get(&self, key: &str) -> ServiceResult<Option<Bytes>> {
        Ok(self.with_entries(|entries, now| entries.get(key).filter(|e| e.live(now)).map(|e| e.value.clone())))
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> ServiceResult<()> {
        self.with_entries(|entries, now| {
            entries.insert(key.to_owned(), Entry { value, counter: 0, expires_at: ttl.map(|t| now + t) });
        });
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Duration) -> ServiceResult<bool> {
        Ok(self.with_entries(|entries, now| {
            if entries.get(key).is_some_and(|e| e.live(now)) {
                return false;
            }
            entries.insert(key.to_owned(), Entry { value, counter: 0, expires_at: Some(now + ttl) });
            true
        }))
    }

    async fn delete(&self, key: &str) -> ServiceResult<bool> {
        Ok(self.with_entries(|entries, now| entries.remove(key).is_some_and(|e| e.live(now))))
    }

    async fn increment(&self, key: &str, window: Duration) -> ServiceResult<(u64, Duration)> {
        Ok(self.with_entries(|entries, now| {
            let entry = entries.entry(key.to_owned()).or_insert_with(|| Entry {
                value: Bytes::new(),
                counter: 0,
                expires_at: Some(now + window),
            });
            if !entry.live(now) {
                entry.counter = 0;
                entry.expires_at = Some(now + window);
            }
            entry.counter += 1;
            let left = entry.expires_at.map(|at| at.saturating_duration_since(now)).unwrap_or(window);
            (entry.counter, left)
        }))
    }

    async fn ping(&self) -> ServiceResult<()> {
        Ok(())
    }

    fn backend_name(&self) -> &'static str {
        "memory"
    }
}

/// A cache shared by every node through Redis.
#[derive(Clone)]
pub struct RedisCache {
    conn: redis::aio::ConnectionManager,
    prefix: String,
}

const INCREMENT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
";

impl RedisCache {
    /// Connects to `url`; every key is stored under `{prefix}cache:`.
    pub async fn connect(url: &str, prefix: &str) -> ServiceResult<Self> {
        let client = redis::Client::open(url).map_err(ServiceError::from)?;
        let conn = connection_manager(&client).await?;
        Ok(Self { conn, prefix: format!("{prefix}cache:") })
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

/// A reconnecting Redis connection with bounded timeouts, so a Redis outage turns into
/// 503s rather than hung requests.
pub async fn connection_manager(client: &redis::Client) -> ServiceResult<redis::aio::ConnectionManager> {
    let config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(2)))
        .set_number_of_retries(2);
    tokio::time::timeout(Duration::from_secs(5), client.get_connection_manager_with_config(config))
        .await
        .map_err(|_| ServiceError::unavailable("redis.unavailable", "Redis did not answer"))?
        .map_err(ServiceError::from)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl Cache for RedisCache {
    async fn get(&self, key: &str) -> ServiceResult<Option<Bytes>> {
        let mut conn = self.conn.clone();
        let value: Option<Vec<u8>> = redis::cmd("GET").arg(self.key(key)).query_async(&mut conn).await?;
        Ok(value.map(Bytes::from))
    }

    async fn get_many(&self, keys: &[&str]) -> ServiceResult<Vec<Option<Bytes>>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("MGET");
        for key in keys {
            cmd.arg(self.key(key));
        }
        let values: Vec<Option<Vec<u8>>> = cmd.query_async(&mut conn).await?;
        Ok(values.into_iter().map(|value| value.map(Bytes::from)).collect())
    }

    async fn set(&self, key: &str, value: Bytes, ttl: Option<Duration>) -> ServiceResult<()> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value.as_ref());
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        cmd.query_async::<()>(&mut conn).await?;
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: Bytes, ttl: Duration) -> ServiceResult<bool> {
        let mut conn = self.conn.clone();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key(key))
            .arg(value.as_ref())
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl))
            .query_async(&mut conn)
            .await?;
        Ok(set.is_some())
    }

    async fn delete(&self, key: &str) -> ServiceResult<bool> {
        let mut conn = self.conn.clone();
        let removed: i64 = redis::cmd("DEL").arg(self.key(key)).query_async(&mut conn).await?;
        Ok(removed > 0)
    }

    async fn increment(&self, key: &str, window: Duration) -> ServiceResult<(u64, Duration)> {
        let mut conn = self.conn.clone();
        let (count, ttl): (u64, i64) =
            redis::Script::new(INCREMENT_SCRIPT).key(self.key(key)).arg(millis(window)).invoke_async(&mut conn).await?;
        Ok((count, Duration::from_millis(ttl.max(0) as u64)))
    }

    async fn ping(&self) -> ServiceResult<()> {
        redis_ping(&self.conn).await
    }

    fn backend_name(&self) -> &'static str {
        "redis"
    }
}

/// `PING` on a Redis connection (health checks).
pub async fn redis_ping(conn: &redis::aio::ConnectionManager) -> ServiceResult<()> {
    let mut conn = conn.clone();
    redis::cmd("PING").query_async::<String>(&mut conn).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expired_entries_are_swept_as_the_map_grows() {
        let cache = MemoryCache::new();
        for i in 0..FIRST_SWEEP {
            cache.set(&format!("k{i}"), Bytes::new(), Some(Duration::from_millis(1))).await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        cache.set("fresh", Bytes::new(), None).await.unwrap();
        let size = cache.entries.lock().unwrap().map.len();
        assert!(size <= 2, "expired entries were swept, {size} left");
        assert!(cache.get("fresh").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn memory_cache_expires_and_counts_in_windows() {
        let cache = MemoryCache::new();
        cache.set("a", Bytes::from_static(b"1"), Some(Duration::from_millis(500))).await.unwrap();
        assert_eq!(cache.get("a").await.unwrap().unwrap(), "1");
        assert!(!cache.set_if_absent("a", Bytes::new(), Duration::from_secs(1)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(cache.get("a").await.unwrap().is_none());
        assert!(cache.set_if_absent("a", Bytes::new(), Duration::from_secs(1)).await.unwrap());

        assert_eq!(cache.increment("c", Duration::from_millis(500)).await.unwrap().0, 1);
        assert_eq!(cache.increment("c", Duration::from_millis(500)).await.unwrap().0, 2);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(cache.increment("c", Duration::from_millis(500)).await.unwrap().0, 1);
        assert!(cache.delete("c").await.unwrap());
    }
}
