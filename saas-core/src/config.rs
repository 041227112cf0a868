//! Configuration from the environment (and `.env`), with the names and defaults of the
//! HTTP contract. Domain crates read their own settings through [`Config::var`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use crate::error::{ServiceError, ServiceResult};

/// The signing key used when `DEBUG=true` and no `SECRET_KEY` is set; refused otherwise.
pub const DEVELOPMENT_SECRET_KEY: &str = "insecure-development-key-do-not-use-in-production";

/// Settings of the platform; everything else stays readable by name in `vars`.
#[derive(Debug, Clone)]
pub struct Config {
    /// Development mode: verbose logs, a development secret key is allowed.
    pub debug: bool,
    /// Signing key for JWTs and tokens.
    pub secret_key: String,
    /// Where `serve` listens.
    pub bind_addr: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Redis for pub/sub, cache, rate limits and jobs; `None` keeps all of them in-process.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and channel this app uses, so apps can share a server.
    pub redis_prefix: String,
    /// Lifetime of access tokens.
    pub jwt_access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub jwt_refresh_ttl: Duration,
    /// Attempts per minute on credential endpoints, per client address and per account.
    pub auth_rate_limit_per_minute: u32,
    /// `console`, `file` or `smtp`.
    pub email_backend: String,
    /// SMTP server (`smtp://host:port`, `smtps://user:pass@host`).
    pub smtp_url: Option<String>,
    /// Folder of `.eml` files for the `file` backend.
    pub email_file_path: String,
    /// Sender of outgoing mail.
    pub default_from_email: String,
    /// Base of links in emails.
    pub frontend_url: String,
    /// Script the ReDoc page at `/` loads.
    pub redoc_js_url: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Longest time a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// Allowed CORS origins; empty allows any origin (without credentials).
    pub cors_allowed_origins: Vec<String>,
    /// Read the client address from `X-Forwarded-For` (behind one trusted reverse proxy).
    pub trust_proxy_headers: bool,
    /// How often job workers poll SQL storage for new jobs.
    pub job_poll_interval: Duration,
    /// Jobs run concurrently by one worker process.
    pub job_concurrency: usize,
    /// Connections of this process's database pool (`DATABASE_MAX_CONNECTIONS`; 8 on SQLite,
    /// 20 on PostgreSQL when unset). Every node, worker and scheduler has its own pool: keep
    /// their sum under PostgreSQL's `max_connections`.
    pub database_max_connections: Option<u32>,
    /// Every variable seen (environment over `.env`), for domain crates' own settings.
    vars: HashMap<String, String>,
}

impl Config {
    /// Reads `.env` (if present) and the process environment; the environment wins.
    pub fn from_env() -> ServiceResult<Self> {
        let mut vars: HashMap<String, String> = HashMap::new();
        if let Ok(iter) = dotenvy::dotenv_iter() {
            for (key, value) in iter.flatten() {
                vars.insert(key, value);
            }
        }
        vars.extend(std::env::vars());
        Self::from_vars(vars)
    }

    /// Builds the configuration from an explicit set of variables (tests, embedding).
    pub fn from_vars<I, K, V>(vars: I) -> ServiceResult<Self>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: HashMap<String, String> = vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
        let get = |name: &str| vars.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let debug = parse_bool(get("DEBUG").as_deref().unwrap_or("false"), "DEBUG")?;
        let secret_key = match get("SECRET_KEY") {
            Some(key) => key,
            None if debug => DEVELOPMENT_SECRET_KEY.to_owned(),
            None => {
                return Err(config_error(
                    "SECRET_KEY",
                    "SECRET_KEY must be set when DEBUG=false (set DEBUG=true for development)",
                ));
            }
        };
        if !debug && secret_key == DEVELOPMENT_SECRET_KEY {
            return Err(config_error("SECRET_KEY", "the development SECRET_KEY cannot be used with DEBUG=false"));
        }
        let parse = |name: &str, default: &str| -> String { get(name).unwrap_or_else(|| default.to_owned()) };
        let config = Self {
            debug,
            secret_key,
            bind_addr: parse_value(&parse("BIND_ADDR", "127.0.0.1:8080"), "BIND_ADDR")?,
            database_url: parse("DATABASE_URL", "sqlite://data/app.db"),
            redis_url: get("REDIS_URL"),
            redis_prefix: parse("REDIS_PREFIX", "saas:"),
            jwt_access_ttl: Duration::from_secs(parse_value(
                &parse("JWT_ACCESS_TTL_SECONDS", "900"),
                "JWT_ACCESS_TTL_SECONDS",
            )?),
            jwt_refresh_ttl: Duration::from_secs(parse_value(
                &parse("JWT_REFRESH_TTL_SECONDS", "1209600"),
                "JWT_REFRESH_TTL_SECONDS",
            )?),
            auth_rate_limit_per_minute: parse_value(
                &parse("AUTH_RATE_LIMIT_PER_MINUTE", "10"),
                "AUTH_RATE_LIMIT_PER_MINUTE",
            )?,
            email_backend: parse("EMAIL_BACKEND", "console").to_ascii_lowercase(),
            smtp_url: get("SMTP_URL"),
            email_file_path: parse("EMAIL_FILE_PATH", "data/emails"),
            default_from_email: parse("DEFAULT_FROM_EMAIL", "noreply@localhost"),
            frontend_url: parse("FRONTEND_URL", "http://localhost:3000").trim_end_matches('/').to_owned(),
            redoc_js_url: parse("REDOC_JS_URL", "https://cdn.redoc.ly/redoc/latest/bundles/redoc.standalone.js"),
            max_body_bytes: parse_value(&parse("MAX_BODY_BYTES", "2097152"), "MAX_BODY_BYTES")?,
            request_timeout: Duration::from_secs(parse_value(
                &parse("REQUEST_TIMEOUT_SECONDS", "30"),
                "REQUEST_TIMEOUT_SECONDS",
            )?),
            cors_allowed_origins: get("CORS_ALLOWED_ORIGINS")
                .map(|v| v.split(',').map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect())
                .unwrap_or_default(),
            trust_proxy_headers: parse_bool(
                get("TRUST_PROXY_HEADERS").as_deref().unwrap_or("false"),
                "TRUST_PROXY_HEADERS",
            )?,
            job_poll_interval: Duration::from_millis(parse_value(
                &parse("JOB_POLL_INTERVAL_MS", "500"),
                "JOB_POLL_INTERVAL_MS",
            )?),
            job_concurrency: parse_value(&parse("JOB_CONCURRENCY", "4"), "JOB_CONCURRENCY")?,
            database_max_connections: match get("DATABASE_MAX_CONNECTIONS") {
                Some(raw) => match parse_value::<u32>(&raw, "DATABASE_MAX_CONNECTIONS")? {
                    0 => {
                        return Err(config_error(
                            "DATABASE_MAX_CONNECTIONS",
                            "DATABASE_MAX_CONNECTIONS must be at least 1",
                        ));
                    }
                    n => Some(n),
                },
                None => None,
            },
            vars,
        };
        if !matches!(config.email_backend.as_str(), "console" | "file" | "smtp") {
            return Err(config_error("EMAIL_BACKEND", "EMAIL_BACKEND must be console, file or smtp"));
        }
        if !(config.database_url.starts_with("sqlite:") || config.database_url.starts_with("postgres")) {
            return Err(config_error("DATABASE_URL", "DATABASE_URL must start with sqlite:// or postgres://"));
        }
        Ok(config)
    }

    /// A variable by name (environment over `.env`), empty values treated as unset.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A variable parsed as `T`, or `default` when unset; a bad value is a configuration error.
    pub fn var_or<T: FromStr>(&self, name: &str, default: T) -> ServiceResult<T> {
        match self.var(name) {
            Some(raw) => parse_value(raw, name),
            None => Ok(default),
        }
    }

    /// Whether `DATABASE_URL` names PostgreSQL.
    pub fn is_postgres(&self) -> bool {
        self.database_url.starts_with("postgres")
    }
}

fn parse_bool(raw: &str, name: &str) -> ServiceResult<bool> {
    match raw.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(config_error(name, &format!("{name} must be true or false"))),
    }
}

fn parse_value<T: FromStr>(raw: &str, name: &str) -> ServiceResult<T> {
    raw.trim().parse().map_err(|_| config_error(name, &format!("{name} has an invalid value: {raw:?}")))
}

fn config_error(name: &str, message: &str) -> ServiceError {
    ServiceError::new(crate::error::ErrorKind::Internal, "config.invalid", message).with_detail("variable", name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_contract() {
        let config = Config::from_vars([("DEBUG", "true")]).unwrap();
        assert_eq!(config.database_url, "sqlite://data/app.db");
        assert_eq!(config.bind_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(config.jwt_access_ttl, Duration::from_secs(900));
        assert_eq!(config.jwt_refresh_ttl, Duration::from_secs(1_209_600));
        assert_eq!(config.auth_rate_limit_per_minute, 10);
        assert_eq!(config.email_backend, "console");
        assert_eq!(config.frontend_url, "http://localhost:3000");
        assert!(config.redis_url.is_none());
    }

    #[test]
    fn the_pool_size_is_set_or_refused() {
        assert_eq!(Config::from_vars([("DEBUG", "true")]).unwrap().database_max_connections, None);
        let config = Config::from_vars([("DEBUG", "true"), ("DATABASE_MAX_CONNECTIONS", "12")]).unwrap();
        assert_eq!(config.database_max_connections, Some(12));
        for bad in ["0", "-1", "many"] {
            let err = Config::from_vars([("DEBUG", "true"), ("DATABASE_MAX_CONNECTIONS", bad)]).unwrap_err();
            assert!(err.message().contains("DATABASE_MAX_CONNECTIONS"), "{bad}: {}", err.message());
        }
    }

    #[test]
    fn production_requires_a_secret_key() {
        let err = Config::from_vars(Vec::<(String, String)>::new()).unwrap_err();
        assert_eq!(err.code(), "config.invalid");
        assert!(err.message().contains("SECRET_KEY"));
        let err = Config::from_vars([("SECRET_KEY", DEVELOPMENT_SECRET_KEY)]).unwrap_err();
        assert!(err.message().contains("development"));
        let ok = Config::from_vars([("SECRET_KEY", "s3cret-value")]).unwrap();
        assert!(!ok.debug);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = Config::from_vars([("DEBUG", "true"), ("JWT_ACCESS_TTL_SECONDS", "soon")]).unwrap_err();
        assert_eq!(err.details()["variable"], "JWT_ACCESS_TTL_SECONDS");
        let proxied = Config::from_vars([("DEBUG", "1"), ("TRUST_PROXY_HEADERS", "yes")]).unwrap();
        assert!(proxied.debug && proxied.trust_proxy_headers);
        assert!(Config::from_vars([("DEBUG", "true"), ("TRUST_PROXY_HEADERS", "maybe")]).is_err());
        let cfg = Config::from_vars([("DEBUG", "true"), ("PLATFORM_FEE_PERCENT", "12")]).unwrap();
        assert_eq!(cfg.var_or("PLATFORM_FEE_PERCENT", 15u32).unwrap(), 12);
        assert_eq!(cfg.var_or("ESCROW_DEFAULT_HOLD_DURATION_DAYS", 42u32).unwrap(), 42);
    }
}
