#![doc = include_str!("../README.md")]

pub mod idempotency;
pub mod mail;
pub mod money;
pub mod pagination;
pub mod rate_limit;
pub mod templates;

pub use mail::{Email, Mailer, mailer};
pub use money::{Currency, Money};
pub use pagination::{Page, PageParams};
pub use rate_limit::{ClientIp, RateLimit};
pub use templates::Templates;
