//! The `{{ name }}` payment strategy of the app; orders choose it with
//! `"strategy_type": "{{ name }}"`. As generated, the payer pays one payee at once: the
//! platform keeps its fee (`PLATFORM_FEE_PERCENT`) and the payee is credited the rest. Change
//! [`on_paid`](PaymentStrategy::on_paid) (and `refund_takeback`) to move the money the way the
//! app needs; its test is `tests/api/{{ name }}_strategy.rs`.

use async_trait::async_trait;

use saas_core::{ServiceError, ServiceResult};
use saas_payments::{Account, NewOrder, OnPaid, Order, PaymentStrategy, Policy, Posting};

/// The `{{ name }}` strategy.
#[derive(Debug, Default, Clone, Copy)]
pub struct {{ Name }};

#[async_trait]
impl PaymentStrategy for {{ Name }} {
    fn name(&self) -> &str {
        "{{ name }}"
    }

    fn validate(&self, order: &NewOrder) -> ServiceResult<()> {
        match order.payee_id {
            None => Err(ServiceError::invalid_field("payee_id", "This payment needs a payee.")),
            Some(payee) if payee == order.payer_id => {
                Err(ServiceError::invalid_field("payee_id", "The payer cannot be the payee."))
            }
            Some(_) => Ok(()),
        }
    }

    fn on_paid(&self, order: &Order, _policy: &Policy) -> ServiceResult<OnPaid> {
        let payee = order.payee_id.ok_or_else(|| ServiceError::internal("a {{ name }} order without a payee"))?;
        let currency = &order.currency;
        let key = |part: &str| format!("{{ name }}:{}:{part}", order.id);
        let payee_share = order.amount_cents - order.platform_fee_cents;
        let mut postings =
            vec![Posting::new(Account::stripe(currency), Account::escrow(currency), order.amount_cents, key("received"))];
        for (to, amount, part) in [
            (Account::revenue(currency), order.platform_fee_cents, "fee"),
            (Account::user(payee, currency), payee_share, "payee"),
        ] {
            if amount > 0 {
                postings.push(Posting::new(Account::escrow(currency), to, amount, key(part)));
            }
        }
        Ok(OnPaid::Settle(postings))
    }
}
