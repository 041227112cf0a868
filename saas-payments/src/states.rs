//! The state machines of payment objects. Each machine is an enum of states and an enum of
//! actions; `apply` gives the next state or a 409 `payments.invalid_transition` naming the
//! state and the action, so an event arriving out of order never moves an object backwards.

use serde::{Deserialize, Serialize};

use saas_core::{ServiceError, ServiceResult};

/// Defines a machine's state or action enum with its stored (snake_case) names.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value named `text`, if any.
            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> Result<Self, String> {
                Self::parse(&text).ok_or_else(|| format!("unknown {} {text:?}", stringify!($name)))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// 409 `payments.invalid_transition` for `action` on an object in state `from`.
fn invalid(object: &str, from: impl std::fmt::Display, action: impl std::fmt::Display) -> ServiceError {
    ServiceError::conflict("payments.invalid_transition", format!("A {object} in state {from} cannot {action}."))
        .with_detail("state", from.to_string())
        .with_detail("action", action.to_string())
}

named_enum!(
    /// Where a payment order is.
    OrderState {
        /// Created, not submitted.
        Draft => "draft",
        /// Submitted to Stripe, waiting for the payer.
        Pending => "pending",
        /// The payer confirmed; the charge is being made.
        Processing => "processing",
        /// The money was taken.
        Captured => "captured",
        /// Escrow: captured and held for the payee.
        Held => "held",
        /// Escrow: released to the payee; the payout follows.
        Released => "released",
        /// Done: the payee was paid (or, direct, the charge settled).
        Settled => "settled",
        /// The charge failed (may be retried).
        Failed => "failed",
        /// Cancelled before it was paid.
        Cancelled => "cancelled",
        /// Refunded in full.
        Refunded => "refunded",
        /// Refunded in part.
        PartiallyRefunded => "partially_refunded",
    }
);

named_enum!(
    /// What can happen to a payment order.
    OrderAction {
        /// draft → pending.
        Submit => "submit",
        /// pending → processing.
        Process => "process",
        /// processing → captured.
        Capture => "capture",
        /// captured → held (escrow).
        Hold => "hold",
        /// held → released (escrow).
        Release => "release",
        /// captured → settled (direct), released → settled (escrow, payout paid).
        Settle => "settle",
        /// processing → failed.
        Fail => "fail",
        /// failed → pending.
        Retry => "retry",
        /// draft or pending → cancelled.
        Cancel => "cancel",
        /// Refund of the whole remainder.
        RefundFull => "refund_full",
        /// Refund of part of it.
        RefundPartial => "refund_partial",
    }
);

impl OrderState {
    /// Whether money was taken and may be refunded from this state.
    pub fn is_refundable(self) -> bool {
        matches!(self, Self::Captured | Self::Held | Self::Released | Self::Settled | Self::PartiallyRefunded)
    }

    /// Whether nothing more can happen to the order.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Cancelled | Self::Refunded)
    }

    /// The state after `action`, or 409 `payments.invalid_transition`.
    pub fn apply(self, action: OrderAction) -> ServiceResult<OrderState> {
        use OrderAction as A;
        use OrderState as S;
        let next = match (self, action) {
            (S::Draft, A::Submit) => S::Pending,
            (S::Pending, A::Process) => S::Processing,
            (S::Processing, A::Capture) => S::Captured,
            (S::Captured, A::Hold) => S::Held,
            (S::Held, A::Release) => S::Released,
            (S::Captured | S::Released, A::Settle) => S::Settled,
            (S::Processing, A::Fail) => S::Failed,
            (S::Failed, A::Retry) => S::Pending,
            (S::Draft | S::Pending, A::Cancel) => S::Cancelled,
            (from, A::RefundFull) if from.is_refundable() => S::Refunded,
            (from, A::RefundPartial) if from.is_refundable() => S::PartiallyRefunded,
            (from, action) => return Err(invalid("payment order", from, action)),
        };
        Ok(next)
    }
}

named_enum!(
    /// Where a payout to a payee is.
    PayoutState {
        /// Created, not yet scheduled.
        Pending => "pending",
        /// Due at a set time.
        Scheduled => "scheduled",
        /// The transfer is being made.
        Processing => "processing",
        /// Paid out.
        Paid => "paid",
        /// The transfer failed (may be retried).
        Failed => "failed",
        /// Cancelled before it was made.
        Cancelled => "cancelled",
    }
);

named_enum!(
    /// What can happen to a payout.
    PayoutAction {
        /// pending → scheduled.
        Schedule => "schedule",
        /// pending or scheduled → processing.
        Process => "process",
        /// processing or scheduled → paid.
        Complete => "complete",
        /// processing or scheduled → failed.
        Fail => "fail",
        /// failed → pending.
        Retry => "retry",
        /// pending or scheduled → cancelled.
        Cancel => "cancel",
    }
);

impl PayoutState {
    /// The state after `action`, or 409 `payments.invalid_transition`.
    pub fn apply(self, action: PayoutAction) -> ServiceResult<PayoutState> {
        use PayoutAction as A;
        use PayoutState as S;
        let next = match (self, action) {
            (S::Pending, A::Schedule) => S::Scheduled,
            (S::Pending | S::Scheduled, A::Process) => S::Processing,
            (S::Processing | S::Scheduled, A::Complete) => S::Paid,
            (S::Processing | S::Scheduled, A::Fail) => S::Failed,
            (S::Failed, A::Retry) => S::Pending,
            (S::Pending | S::Scheduled, A::Cancel) => S::Cancelled,
            (from, action) => return Err(invalid("payout", from, action)),
        };
        Ok(next)
    }
}

named_enum!(
    /// Where a refund is.
    RefundState {
        /// Asked for.
        Requested => "requested",
        /// Sent to Stripe.
        Processing => "processing",
        /// Done.
        Completed => "completed",
        /// Stripe refused it.
        Failed => "failed",
    }
);

named_enum!(
    /// What can happen to a refund.
    RefundAction {
        /// requested → processing.
        Process => "process",
        /// processing → completed.
        Complete => "complete",
        /// processing → failed.
        Fail => "fail",
    }
);

impl RefundState {
    /// The state after `action`, or 409 `payments.invalid_transition`.
    pub fn apply(self, action: RefundAction) -> ServiceResult<RefundState> {
        use RefundAction as A;
        use RefundState as S;
        match (self, action) {
            (S::Requested, A::Process) => Ok(S::Processing),
            (S::Processing, A::Complete) => Ok(S::Completed),
            (S::Processing, A::Fail) => Ok(S::Failed),
            (from, action) => Err(invalid("refund", from, action)),
        }
    }
}

named_enum!(
    /// Where a subscription is.
    SubscriptionState {
        /// Created, first invoice not paid.
        Pending => "pending",
        /// Paid up.
        Active => "active",
        /// An invoice failed.
        PastDue => "past_due",
        /// Ended.
        Cancelled => "cancelled",
    }
);

named_enum!(
    /// What can happen to a subscription.
    SubscriptionAction {
        /// pending → active.
        Activate => "activate",
        /// active → past_due.
        MarkPastDue => "mark_past_due",
        /// past_due → active.
        Reactivate => "reactivate",
        /// active or past_due → cancelled.
        Cancel => "cancel",
    }
);

impl SubscriptionState {
    /// The state after `action`, or 409 `payments.invalid_transition`.
    pub fn apply(self, action: SubscriptionAction) -> ServiceResult<SubscriptionState> {
        use SubscriptionAction as A;
        use SubscriptionState as S;
        match (self, action) {
            (S::Pending, A::Activate) => Ok(S::Active),
            (S::Active, A::MarkPastDue) => Ok(S::PastDue),
            (S::PastDue, A::Reactivate) => Ok(S::Active),
            (S::Active | S::PastDue, A::Cancel) => Ok(S::Cancelled),
            (from, action) => Err(invalid("subscription", from, action)),
        }
    }
}

named_enum!(
    /// How far a payee's Stripe Connect account is.
    OnboardingStatus {
        /// No account yet.
        NotStarted => "not_started",
        /// Requirements outstanding.
        InProgress => "in_progress",
        /// Nothing due.
        Complete => "complete",
        /// Stripe disabled the account.
        Rejected => "rejected",
    }
);

impl OnboardingStatus {
    /// The status an `account.updated` event implies: a rejection (`rejected.*`, `listed`) →
    /// rejected; nothing currently or past due → complete; else in progress.
    pub fn from_requirements(disabled_reason: Option<&str>, currently_due: usize, past_due: usize) -> Self {
        // Stripe disables every new account with `requirements.past_due` until onboarding is
        // done; only a `rejected.*` reason (or `listed`) is a rejection.
        if disabled_reason.is_some_and(|reason| reason.starts_with("rejected") || reason == "listed") {
            Self::Rejected
        } else if currently_due == 0 && past_due == 0 {
            Self::Complete
        } else {
            Self::InProgress
        }
    }
}

/// Every allowed order transition as `(from, action, to)`, for documentation and staff screens.
pub fn order_transitions() -> Vec<(OrderState, OrderAction, OrderState)> {
    let mut rows = Vec::new();
    for from in OrderState::ALL {
        for action in OrderAction::ALL {
            if let Ok(to) = from.apply(*action) {
                rows.push((*from, *action, to));
            }
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The order table of the domain rules, row by row: everything else is refused.
    #[test]
    fn orders_move_exactly_as_the_domain_rules_say() {
        use OrderAction as A;
        use OrderState as S;
        let refundable = [S::Captured, S::Held, S::Released, S::Settled, S::PartiallyRefunded];
        let mut allowed = vec![
            (S::Draft, A::Submit, S::Pending),
            (S::Pending, A::Process, S::Processing),
            (S::Processing, A::Capture, S::Captured),
            (S::Captured, A::Hold, S::Held),
            (S::Held, A::Release, S::Released),
            (S::Captured, A::Settle, S::Settled),
            (S::Released, A::Settle, S::Settled),
            (S::Processing, A::Fail, S::Failed),
            (S::Failed, A::Retry, S::Pending),
            (S::Draft, A::Cancel, S::Cancelled),
            (S::Pending, A::Cancel, S::Cancelled),
        ];
        for from in refundable {
            allowed.push((from, A::RefundFull, S::Refunded));
            allowed.push((from, A::RefundPartial, S::PartiallyRefunded));
        }
        for from in S::ALL {
            for action in A::ALL {
                let expected = allowed.iter().find(|(f, a, _)| f == from && a == action).map(|(_, _, to)| *to);
                match (from.apply(*action), expected) {
                    (Ok(to), Some(want)) => assert_eq!(to, want, "{from} {action}"),
                    (Err(err), None) => {
                        assert_eq!(err.code(), "payments.invalid_transition");
                        assert_eq!(err.status().as_u16(), 409);
                        assert_eq!(err.details()["state"], from.as_str());
                        assert_eq!(err.details()["action"], action.as_str());
                    }
                    (got, want) => panic!("{from} {action}: got {got:?}, want {want:?}"),
                }
            }
        }
        assert_eq!(order_transitions().len(), allowed.len());
    }

    #[test]
    fn payouts_refunds_and_subscriptions_move_as_the_domain_rules_say() {
        use PayoutAction as PA;
        use PayoutState as P;
        let payouts = [
            (P::Pending, PA::Schedule, P::Scheduled),
            (P::Pending, PA::Process, P::Processing),
            (P::Scheduled, PA::Process, P::Processing),
            (P::Processing, PA::Complete, P::Paid),
            (P::Scheduled, PA::Complete, P::Paid),
            (P::Processing, PA::Fail, P::Failed),
            (P::Scheduled, PA::Fail, P::Failed),
            (P::Failed, PA::Retry, P::Pending),
            (P::Pending, PA::Cancel, P::Cancelled),
            (P::Scheduled, PA::Cancel, P::Cancelled),
        ];
        for from in P::ALL {
            for action in PA::ALL {
                let want = payouts.iter().find(|(f, a, _)| f == from && a == action).map(|(_, _, to)| *to);
                assert_eq!(from.apply(*action).ok(), want, "payout {from} {action}");
            }
        }
        assert!(P::Paid.apply(PA::Cancel).is_err(), "a paid payout is never cancelled");

        use RefundAction as RA;
        use RefundState as R;
        assert_eq!(R::Requested.apply(RA::Process).unwrap(), R::Processing);
        assert_eq!(R::Processing.apply(RA::Complete).unwrap(), R::Completed);
        assert_eq!(R::Processing.apply(RA::Fail).unwrap(), R::Failed);
        assert!(R::Requested.apply(RA::Complete).is_err());
        assert!(R::Completed.apply(RA::Fail).is_err());

        use SubscriptionAction as SA;
        use SubscriptionState as S;
        assert_eq!(S::Pending.apply(SA::Activate).unwrap(), S::Active);
        assert_eq!(S::Active.apply(SA::MarkPastDue).unwrap(), S::PastDue);
        assert_eq!(S::PastDue.apply(SA::Reactivate).unwrap(), S::Active);
        assert_eq!(S::PastDue.apply(SA::Cancel).unwrap(), S::Cancelled);
        assert!(S::Pending.apply(SA::Cancel).is_err());
        assert!(S::Cancelled.apply(SA::Activate).is_err(), "a cancelled subscription stays cancelled");
    }

    #[test]
    fn onboarding_status_follows_the_account_requirements() {
        assert_eq!(OnboardingStatus::from_requirements(Some("rejected.fraud"), 0, 0), OnboardingStatus::Rejected);
        assert_eq!(OnboardingStatus::from_requirements(None, 0, 0), OnboardingStatus::Complete);
        assert_eq!(OnboardingStatus::from_requirements(Some(""), 2, 0), OnboardingStatus::InProgress);
        assert_eq!(OnboardingStatus::from_requirements(None, 0, 1), OnboardingStatus::InProgress);
    }

    #[test]
    fn names_round_trip() {
        for state in OrderState::ALL {
            assert_eq!(OrderState::parse(state.as_str()), Some(*state));
            assert_eq!(serde_json::to_value(state).unwrap(), state.as_str());
        }
        assert_eq!(OrderState::parse("partially_refunded"), Some(OrderState::PartiallyRefunded));
        assert_eq!(OrderState::parse("nope"), None);
    }
}
