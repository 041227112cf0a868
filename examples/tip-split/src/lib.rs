//! A payment strategy of an app's own: a tip split between two payees.
//!
//! The order names its main payee in `payee_id` and the second in its metadata:
//! `{"split_with": "<user id>", "split_percent": 30}`. When the payment succeeds the
//! platform keeps its fee and the rest is split — `split_percent` of it (rounded down) to
//! the second payee, the remainder to the main one. A refund takes the money back from both
//! in the same proportion.
//!
//! ```no_run
//! # async fn run(config: saas_core::Config) -> saas_core::ServiceResult<()> {
//! let app = saas_core::SaasApp::builder(config)
//!     .module(saas_auth::AuthModule::default())
//!     .module(saas_payments::PaymentsModule::default().strategy(tip_split::TipSplit))
//!     .build()
//!     .await?;
//! # Ok(()) }
//! ```

use async_trait::async_trait;
use uuid::Uuid;

use saas_core::{ServiceError, ServiceResult};
use saas_payments::{Account, NewOrder, OnPaid, Order, PaymentStrategy, Policy, Posting};

/// The strategy, registered as `tip_split`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TipSplit;

/// The second payee and their percentage, read from an order's metadata.
fn split_of(metadata: &serde_json::Value) -> ServiceResult<(Uuid, i64)> {
    let with = metadata["split_with"]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| ServiceError::invalid_field("metadata", "split_with must be a user id."))?;
    let percent = metadata["split_percent"]
        .as_i64()
        .filter(|p| (1..=99).contains(p))
        .ok_or_else(|| ServiceError::invalid_field("metadata", "split_percent must be between 1 and 99."))?;
    Ok((with, percent))
}

/// `(main payee's share, second payee's share)` of `amount`.
fn shares(amount: i64, percent: i64) -> (i64, i64) {
    let second = amount * percent / 100;
    (amount - second, second)
}

#[async_trait]
impl PaymentStrategy for TipSplit {
    fn name(&self) -> &str {
        "tip_split"
    }

    fn validate(&self, order: &NewOrder) -> ServiceResult<()> {
        let (with, _) = split_of(&order.metadata)?;
        match order.payee_id {
            None => Err(ServiceError::invalid_field("payee_id", "A tip needs a payee.")),
            Some(payee) if payee == with || payee == order.payer_id || with == order.payer_id => {
                Err(ServiceError::invalid_field("metadata", "The payer and the two payees must be three people."))
            }
            Some(_) => Ok(()),
        }
    }

    fn on_paid(&self, order: &Order, _policy: &Policy) -> ServiceResult<OnPaid> {
        let payee = order.payee_id.ok_or_else(|| ServiceError::internal("tip without a payee"))?;
        let (with, percent) = split_of(&order.metadata())?;
        let currency = &order.currency;
        let (main, second) = shares(order.amount_cents - order.platform_fee_cents, percent);
        let key = |part: &str| format!("tip:{}:{part}", order.id);
        let mut postings = vec![Posting::new(
            Account::stripe(currency),
            Account::escrow(currency),
            order.amount_cents,
            key("received"),
        )];
        for (to, amount, part) in [
            (Account::revenue(currency), order.platform_fee_cents, "fee"),
            (Account::user(payee, currency), main, "payee"),
            (Account::user(with, currency), second, "split"),
        ] {
            if amount > 0 {
                postings.push(Posting::new(Account::escrow(currency), to, amount, key(part)));
            }
        }
        Ok(OnPaid::Settle(postings))
    }

    fn refund_takeback(&self, order: &Order, refund_id: Uuid, amount_cents: i64) -> Vec<Posting> {
        let (Some(payee), Ok((with, percent))) = (order.payee_id, split_of(&order.metadata())) else {
            return Vec::new();
        };
        let currency = &order.currency;
        let (main, second) = shares(amount_cents, percent);
        [(payee, main, "payee"), (with, second, "split")]
            .into_iter()
            .filter(|(_, amount, _)| *amount > 0)
            .map(|(user, amount, part)| {
                Posting::new(
                    Account::user(user, currency),
                    Account::escrow(currency),
                    amount,
                    format!("refund:{refund_id}:{part}"),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::shares;

    #[test]
    fn shares_split_down_and_add_up() {
        assert_eq!(shares(8500, 30), (5950, 2550));
        assert_eq!(shares(99, 30), (70, 29));
        assert_eq!(shares(1, 50), (1, 0));
    }
}
