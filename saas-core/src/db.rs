//! One database handle for SQLite (the embedded default) and PostgreSQL, chosen by URL,
//! and the per-module migrations both need.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

use crate::error::{ServiceError, ServiceResult};

/// A connection pool to the app's database. Cheap to clone.
///
/// Stores write each query once and run it on either pool with [`with_pool!`](crate::with_pool):
/// SQLite accepts PostgreSQL's `$1` placeholders, so one SQL text serves both.
#[derive(Clone, Debug)]
pub enum Db {
    /// The embedded database (WAL mode, foreign keys on).
    Sqlite(SqlitePool),
    /// The production database.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of a [`Db`]; the body is compiled
/// once per database, so it may use any sqlx API generic over the database.
///
/// ```no_run
/// use saas_core::reexports::sqlx;
/// # async fn count(db: &saas_core::Db) -> saas_core::ServiceResult<i64> {
/// let count: i64 =
///     saas_core::with_pool!(db, pool => sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(pool).await)?;
/// # Ok(count)
/// # }
/// ```
#[macro_export]
macro_rules! with_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}

impl Db {
    /// Opens a pool for `url` (`sqlite://path`, `sqlite::memory:`, or `postgres://…`);
    /// a SQLite file and its folder are created when missing.
    pub async fn connect(url: &str) -> ServiceResult<Self> {
        Self::connect_with(url, None).await
    }

    /// [`Db::connect`] with a pool of at most `max_connections` (8 on SQLite, 20 on
    /// PostgreSQL when `None`).
    pub async fn connect_with(url: &str, max_connections: Option<u32>) -> ServiceResult<Self> {
        if url.starts_with("sqlite:") {
            let options = sqlite_options(url)?;
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections.unwrap_or(8))
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .map_err(|err| connect_error(url, err))?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let mut options = PgConnectOptions::from_str(url).map_err(|err| connect_error(url, err))?;
            let env_mode = std::env::var("PGSSLMODE").ok();
            if plain_on_this_machine(url, options.get_host(), env_mode.as_deref()) {
                options = options.ssl_mode(PgSslMode::Disable);
            }
            let pool = PgPoolOptions::new()
                .max_connections(max_connections.unwrap_or(20))
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await
                .map_err(|err| connect_error(url, err))?;
            Ok(Db::Postgres(pool))
        } else {
            Err(ServiceError::new(
                crate::error::ErrorKind::Internal,
                "config.invalid",
                "DATABASE_URL must start with sqlite:// or postgres://",
            ))
        }
    }

    /// `"sqlite"` or `"postgres"`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Checks the database answers (`SELECT 1`).
    pub async fn ping(&self) -> ServiceResult<()> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Applies `migrations` for this database, tracked in a table of the module's own
    /// (`_saas_migrations_<module>`), so modules version their migrations independently.
    pub async fn migrate(&self, module: &str, migrations: Migrations) -> ServiceResult<()> {
        let table = format!("_saas_migrations_{}", module.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
        let result = match self {
            Db::Sqlite(pool) => match migrations.sqlite {
                Some(mut migrator) => {
                    migrator.dangerous_set_table_name(table);
                    migrator.run(pool).await
                }
                None => Ok(()),
            },
            Db::Postgres(pool) => match migrations.postgres {
                Some(mut migrator) => {
                    migrator.dangerous_set_table_name(table);
                    migrator.run(pool).await
                }
                None => Ok(()),
            },
        };
        result.map_err(|err| match err {
            sqlx::migrate::MigrateError::Execute(inner) => ServiceError::from(inner),
            other => ServiceError::internal(format!("migrations of module {module} failed: {other}")),
        })
    }

    /// Closes every connection of the pool.
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await)
    }
}

/// The migrations a module ships for each database (built with `sqlx::migrate!`).
#[derive(Debug, Default)]
pub struct Migrations {
    /// Migrations for SQLite (`migrations/sqlite`).
    pub sqlite: Option<Migrator>,
    /// Migrations for PostgreSQL (`migrations/postgres`).
    pub postgres: Option<Migrator>,
}

impl Migrations {
    /// A module without tables.
    pub fn none() -> Self {
        Self::default()
    }

    /// Both folders of a module.
    pub fn new(sqlite: Migrator, postgres: Migrator) -> Self {
        Self { sqlite: Some(sqlite), postgres: Some(postgres) }
    }
}

/// SQLite options of the app: file created (with its folder), WAL, foreign keys, busy timeout.
pub fn sqlite_options(url: &str) -> ServiceResult<SqliteConnectOptions> {
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|err| connect_error(url, err))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let file = options.get_filename();
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty())
        && !url.contains(":memory:")
    {
        std::fs::create_dir_all(parent)
            .map_err(|err| ServiceError::internal(format!("cannot create {}: {err}", parent.display())))?;
    }
    Ok(options)
}

/// Whether to reach PostgreSQL without TLS: when neither the URL nor `PGSSLMODE` names an
/// `sslmode` and the server is on this machine (a loopback address or a Unix socket). TLS
/// there protects nothing, yet it costs a handshake per new connection (most of a
/// PostgreSQL start-up) and encryption on every query; `sslmode=prefer`, the default,
/// would use it whenever the server offers it. An explicit mode is always obeyed.
fn plain_on_this_machine(url: &str, host: &str, env_mode: Option<&str>) -> bool {
    let query = url.split_once('?').map_or("", |(_, query)| query);
    let url_names_mode = query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .any(|key| key.eq_ignore_ascii_case("sslmode") || key.eq_ignore_ascii_case("ssl-mode"));
    if url_names_mode || env_mode.is_some_and(|mode| !mode.trim().is_empty()) {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn connect_error(url: &str, err: impl std::fmt::Display) -> ServiceError {
    let shown = redact_url(url);
    tracing::error!(url = %shown, error = %err, "cannot open the database");
    ServiceError::unavailable("database.unavailable", format!("cannot open the database at {shown}: {err}"))
}

/// The URL with any password replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            match creds.find(':') {
                Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{plain_on_this_machine, redact_url};

    #[test]
    fn postgres_on_this_machine_is_reached_without_tls_unless_a_mode_is_named() {
        for (url, host) in [
            ("postgres://u@127.0.0.1:5432/app", "127.0.0.1"),
            ("postgres://u@localhost/app", "localhost"),
            ("postgres://u@[::1]:5432/app", "[::1]"),
            ("postgres:///app?host=/run/postgresql", "/run/postgresql"),
        ] {
            assert!(plain_on_this_machine(url, host, None), "{url}");
        }
        for (url, host, env) in [
            ("postgres://u@db.internal:5432/app", "db.internal", None),
            ("postgres://u@10.0.0.5/app", "10.0.0.5", None),
            ("postgres://u@127.0.0.1/app?sslmode=require", "127.0.0.1", None),
            ("postgres://u@127.0.0.1/app?application_name=x&SSL-MODE=prefer", "127.0.0.1", None),
            ("postgres://u@127.0.0.1/app", "127.0.0.1", Some("verify-full")),
        ] {
            assert!(!plain_on_this_machine(url, host, env), "{url}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://data/app.db"), "sqlite://data/app.db");
    }
}
