//! Business-aware helpers of the SaaS SDK, shared by the domain crates and apps: money,
//! cursor pagination, rate limits, `Idempotency-Key` handling, mail and templates.

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
