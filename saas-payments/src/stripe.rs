//! The crate's only contact with Stripe: a thin gateway over async-stripe that speaks in the
//! crate's terms (cents, ids as strings, statuses as Stripe spells them) and sorts every
//! failure into "retry with the same idempotency key" or "retrying will not help".
//!
//! Requests are sent exactly once (no retries inside async-stripe: background jobs retry
//! with the same idempotency key), with a per-request timeout. The base URL comes from
//! configuration, so tests point it at a local fake (`crate::testing::FakeStripe`).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use saas_core::{ErrorKind, ServiceError, ServiceResult};
use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy, StripeError, StripeRequest};
use stripe_billing::Subscription;
use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems, CreateSubscriptionPaymentBehavior,
    RetrieveSubscription, UpdateSubscription,
};
use stripe_connect::account::{
    CreateAccount, CreateAccountCapabilities, CreateAccountCapabilitiesTransfers, CreateAccountType, RetrieveAccount,
};
use stripe_connect::account_link::{CreateAccountLink, CreateAccountLinkType};
use stripe_connect::transfer::{CreateTransfer, RetrieveTransfer};
use stripe_connect::{Account, Transfer};
use stripe_core::PaymentIntent;
use stripe_core::customer::CreateCustomer;
use stripe_core::payment_intent::{
    CancelPaymentIntent, CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods, RetrievePaymentIntent,
};
use stripe_core::refund::CreateRefund;
use stripe_types::Currency;

/// How long one request to Stripe may take before it counts as a transient failure.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The expansion that carries a new subscription's client secret (API 2025+: the first
/// invoice's `confirmation_secret`, no longer `latest_invoice.payment_intent`).
const SUBSCRIPTION_EXPAND: &str = "latest_invoice.confirmation_secret";

/// Stripe as the crate sees it; cheap to clone.
#[derive(Clone)]
pub struct StripeApi {
    client: Client,
    api_base: String,
}

impl fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret key.
        f.debug_struct("StripeApi").field("api_base", &self.api_base).finish_non_exhaustive()
    }
}

impl StripeApi {
    /// A client for the account of `secret_key` at `api_base` ("https://api.stripe.com", or
    /// "http://127.0.0.1:PORT" for a fake), with the [`DEFAULT_TIMEOUT`].
    pub fn new(secret_key: &str, api_base: &str) -> ServiceResult<Self> {
        Self::with_timeout(secret_key, api_base, DEFAULT_TIMEOUT)
    }

    /// Like [`StripeApi::new`] with another per-request timeout.
    pub fn with_timeout(secret_key: &str, api_base: &str, timeout: Duration) -> ServiceResult<Self> {
        let base = api_base.trim().trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) || base.contains('?') {
            return Err(misconfigured(format!("the Stripe API base must be an http(s) URL, got {base:?}")));
        }
        if secret_key.is_empty() {
            return Err(misconfigured("the Stripe secret key is empty"));
        }
        install_crypto_provider();
        let client = ClientBuilder::new(secret_key)
            .url(format!("{base}/"))
            .timeout(timeout)
            .request_strategy(RequestStrategy::Once)
            .build()
            .map_err(|err| misconfigured(format!("invalid Stripe client configuration: {err}")))?;
        Ok(Self { client, api_base: base.to_owned() })
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// Creates a PaymentIntent with automatic payment methods enabled.
    pub async fn create_payment_intent(
        &self,
        new: &NewPaymentIntent<'_>,
        idempotency_key: &str,
    ) -> Result<PaymentIntentInfo, StripeFailure> {
        let mut request = CreatePaymentIntent::new(new.amount_cents, currency(new.currency))
            .automatic_payment_methods(CreatePaymentIntentAutomaticPaymentMethods::new(true));
        if let Some(description) = new.description {
            request = request.description(description);
        }
        if let Some(group) = new.transfer_group {
            request = request.transfer_group(group);
        }
        if !new.metadata.is_empty() {
            request = request.metadata(metadata(&new.metadata));
        }
        let intent = request.customize().request_strategy(idempotent(idempotency_key)?).send(&self.client).await?;
        Ok(PaymentIntentInfo::from(intent))
    }

    /// The PaymentIntent `id` as Stripe has it now.
    pub async fn retrieve_payment_intent(&self, id: &str) -> Result<PaymentIntentInfo, StripeFailure> {
        let intent = RetrievePaymentIntent::new(id).send(&self.client).await?;
        Ok(PaymentIntentInfo::from(intent))
    }

    /// Cancels the PaymentIntent `id` (refused by Stripe once it succeeded).
    pub async fn cancel_payment_intent(
        &self,
        id: &str,
        idempotency_key: &str,
    ) -> Result<PaymentIntentInfo, StripeFailure> {
        let intent = CancelPaymentIntent::new(id)
            .customize()
            .request_strategy(idempotent(idempotency_key)?)
            .send(&self.client)
            .await?;
        Ok(PaymentIntentInfo::from(intent))
    }

    /// Refunds `amount_cents` of the PaymentIntent `payment_intent`'s charge.
    pub async fn create_refund(
        &self,
        payment_intent: &str,
        amount_cents: i64,
        metadata_pairs: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<RefundInfo, StripeFailure> {
        let mut request = CreateRefund::new().payment_intent(payment_intent).amount(amount_cents);
        if !metadata_pairs.is_empty() {
            request = request.metadata(metadata(metadata_pairs));
        }
        let refund = request.customize().request_strategy(idempotent(idempotency_key)?).send(&self.client).await?;
        Ok(RefundInfo {
            id: refund.id.as_str().to_owned(),
            status: refund.status.unwrap_or_default(),
            amount_cents: refund.amount,
        })
    }

    /// Creates a Customer and returns its id (`cus_…`).
    pub async fn create_customer(
        &self,
        email: &str,
        metadata_pairs: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<String, StripeFailure> {
        let mut request = CreateCustomer::new().email(email);
        if !metadata_pairs.is_empty() {
            request = request.metadata(metadata(metadata_pairs));
        }
        let customer = request.customize().request_strategy(idempotent(idempotency_key)?).send(&self.client).await?;
        Ok(customer.id.as_str().to_owned())
    }

    /// Subscribes `customer` to `price_id` with `payment_behavior=default_incomplete`; the
    /// result's `client_secret` is the first invoice's confirmation secret (what the app's
    /// payment sheet confirms).
    pub async fn create_subscription(
        &self,
        customer: &str,
        price_id: &str,
        metadata_pairs: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<SubscriptionInfo, StripeFailure> {
        let mut request = CreateSubscription::new()
            .customer(customer)
            .items(vec![CreateSubscriptionItems { price: Some(price_id.to_owned()), ..CreateSubscriptionItems::new() }])
            .payment_behavior(CreateSubscriptionPaymentBehavior::DefaultIncomplete)
            .expand(vec![SUBSCRIPTION_EXPAND.to_owned()]);
        if !metadata_pairs.is_empty() {
            request = request.metadata(metadata(metadata_pairs));
        }
        let subscription =
            request.customize().request_strategy(idempotent(idempotency_key)?).send(&self.client).await?;
        Ok(SubscriptionInfo::from(subscription))
    }

    /// The subscription `id` as Stripe has it now (with the open invoice's client secret).
    pub async fn retrieve_subscription(&self, id: &str) -> Result<SubscriptionInfo, StripeFailure> {
        let request = RetrieveSubscription::new(id).expand(vec![SUBSCRIPTION_EXPAND.to_owned()]);
        let subscription = request.send(&self.client).await?;
        Ok(SubscriptionInfo::from(subscription))
    }

    /// Cancels the subscription `id`: at once (`DELETE /v1/subscriptions/{id}`), or at the end
    /// of the paid period (`cancel_at_period_end=true`).
    pub async fn cancel_subscription(
        &self,
        id: &str,
        immediately: bool,
        idempotency_key: &str,
    ) -> Result<SubscriptionInfo, StripeFailure> {
        let subscription = if immediately {
            CancelSubscription::new(id)
                .customize()
                .request_strategy(idempotent(idempotency_key)?)
                .send(&self.client)
                .await?
        } else {
            UpdateSubscription::new(id)
                .cancel_at_period_end(true)
                .customize()
                .request_strategy(idempotent(idempotency_key)?)
                .send(&self.client)
                .await?
        };
        Ok(SubscriptionInfo::from(subscription))
    }

    /// Creates an Express connected account for `email` with the `transfers` capability requested.
    pub async fn create_express_account(
        &self,
        email: &str,
        metadata_pairs: &[(&str, String)],
        idempotency_key: &str,
    ) -> Result<AccountInfo, StripeFailure> {
        let mut transfers = CreateAccountCapabilitiesTransfers::new();
        transfers.requested = Some(true);
        let mut capabilities = CreateAccountCapabilities::new();
        capabilities.transfers = Some(transfers);
        let mut request =
            CreateAccount::new().type_(CreateAccountType::Express).email(email).capabilities(capabilities);
        if !metadata_pairs.is_empty() {
            request = request.metadata(metadata(metadata_pairs));
        }
        let account = request.customize().request_strategy(idempotent(idempotency_key)?).send(&self.client).await?;
        Ok(AccountInfo::from(account))
    }

    /// The connected account `id` as Stripe has it now.
    pub async fn retrieve_account(&self, id: &str) -> Result<AccountInfo, StripeFailure> {
        let account = RetrieveAccount::new(id).send(&self.client).await?;
        Ok(AccountInfo::from(account))
    }

    /// A single-use onboarding link (`type=account_onboarding`) for `account`; returns its URL.
    pub async fn create_account_link(
        &self,
        account: &str,
        refresh_url: &str,
        return_url: &str,
    ) -> Result<String, StripeFailure> {
        let request = CreateAccountLink::new(account, CreateAccountLinkType::AccountOnboarding)
            .refresh_url(refresh_url)
            .return_url(return_url);
        let link = request.send(&self.client).await?;
        Ok(link.url)
    }

    /// Moves `amount_cents` from the platform's balance to a connected account.
    pub async fn create_transfer(
        &self,
        new: &NewTransfer<'_>,
        idempotency_key: &str,
    ) -> Result<TransferInfo, StripeFailure> {
        let mut request = CreateTransfer::new(currency(new.currency), new.destination).amount(new.amount_cents);
        if let Some(group) = new.transfer_group {
            request = request.transfer_group(group);
        }
        if !new.metadata.is_empty() {
            request = request.metadata(metadata(&new.metadata));
        }
        let transfer = request.customize().request_strategy(idempotent(idempotency_key)?).send(&self.client).await?;
        Ok(TransferInfo::from(transfer))
    }

    /// The transfer `id` as Stripe has it now.
    pub async fn retrieve_transfer(&self, id: &str) -> Result<TransferInfo, StripeFailure> {
        let transfer = RetrieveTransfer::new(id).send(&self.client).await?;
        Ok(TransferInfo::from(transfer))
    }
}

/// Sends with `idempotency_key` as the `Idempotency-Key` header, exactly once.
fn idempotent(idempotency_key: &str) -> Result<RequestStrategy, StripeFailure> {
    let key = IdempotencyKey::new(idempotency_key).map_err(|err| StripeFailure::Permanent {
        code: Some("invalid_idempotency_key".to_owned()),
        message: err.to_string(),
        status: 0,
    })?;
    Ok(RequestStrategy::Idempotent(key))
}

/// async-stripe's TLS connector asks rustls for the process-wide crypto provider; with more
/// than one provider compiled into the app (ring here, aws-lc-rs through reqwest) there is
/// none until someone installs one, so install ring unless the app already chose.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is then installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn misconfigured(message: impl Into<String>) -> ServiceError {
    ServiceError::new(ErrorKind::Internal, "payments.stripe_misconfigured", message)
}

fn currency(code: &str) -> Currency {
    match Currency::from_str(&code.to_ascii_lowercase()) {
        Ok(currency) => currency,
        Err(never) => match never {},
    }
}

fn metadata(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs.iter().map(|(key, value)| ((*key).to_owned(), value.clone())).collect()
}

/// What to charge: the input of [`StripeApi::create_payment_intent`].
#[derive(Debug, Clone)]
pub struct NewPaymentIntent<'a> {
    /// The amount in the currency's smallest unit.
    pub amount_cents: i64,
    /// ISO code, e.g. "usd" (any case).
    pub currency: &'a str,
    /// Shown in the Stripe dashboard.
    pub description: Option<&'a str>,
    /// Groups the charge with the transfers it funds (separate charges and transfers).
    pub transfer_group: Option<&'a str>,
    /// Stored on the PaymentIntent and echoed in its webhooks.
    pub metadata: Vec<(&'a str, String)>,
}

/// A PaymentIntent as the crate needs it.
#[derive(Debug, Clone)]
pub struct PaymentIntentInfo {
    /// `pi_…`.
    pub id: String,
    /// As Stripe spells it: "requires_payment_method", "succeeded", "canceled", …
    pub status: String,
    /// The amount asked for, in cents.
    pub amount_cents: i64,
    /// The amount collected so far, in cents.
    pub amount_received_cents: i64,
    /// Lowercase ISO code.
    pub currency: String,
    /// What the client confirms the payment with; never log it.
    pub client_secret: Option<String>,
    /// The latest charge (`ch_…`), once a payment was attempted.
    pub latest_charge: Option<String>,
}

impl From<PaymentIntent> for PaymentIntentInfo {
    fn from(intent: PaymentIntent) -> Self {
        Self {
            id: intent.id.as_str().to_owned(),
            status: intent.status.as_str().to_owned(),
            amount_cents: intent.amount,
            amount_received_cents: intent.amount_received,
            currency: intent.currency.to_string(),
            client_secret: intent.client_secret,
            latest_charge: intent.latest_charge.map(|charge| charge.id().as_str().to_owned()),
        }
    }
}

/// A refund as the crate needs it.
#[derive(Debug, Clone)]
pub struct RefundInfo {
    /// `re_…`.
    pub id: String,
    /// As Stripe spells it: "pending", "succeeded", "failed", "canceled", …
    pub status: String,
    /// The amount refunded, in cents.
    pub amount_cents: i64,
}

/// A subscription as the crate needs it.
#[derive(Debug, Clone)]
pub struct SubscriptionInfo {
    /// `sub_…`.
    pub id: String,
    /// As Stripe spells it: "incomplete", "active", "past_due", "canceled", …
    pub status: String,
    /// The customer (`cus_…`).
    pub customer: String,
    /// Whether it ends when the current period does.
    pub cancel_at_period_end: bool,
    /// End of the current period (unix seconds), from the first item: API 2025+ moved it there.
    pub current_period_end: Option<i64>,
    /// The open first invoice's confirmation secret, when Stripe returned it expanded.
    pub client_secret: Option<String>,
}

impl From<Subscription> for SubscriptionInfo {
    fn from(subscription: Subscription) -> Self {
        let current_period_end = subscription.items.data.first().map(|item| item.current_period_end);
        let client_secret = subscription
            .latest_invoice
            .as_ref()
            .and_then(|invoice| invoice.as_object())
            .and_then(|invoice| invoice.confirmation_secret.as_ref())
            .map(|secret| secret.client_secret.clone());
        Self {
            id: subscription.id.as_str().to_owned(),
            status: subscription.status.as_str().to_owned(),
            customer: subscription.customer.id().as_str().to_owned(),
            cancel_at_period_end: subscription.cancel_at_period_end,
            current_period_end,
            client_secret,
        }
    }
}

/// A connected account as the crate needs it.
#[derive(Debug, Clone)]
pub struct AccountInfo {
    /// `acct_…`.
    pub id: String,
    /// Whether it can take charges.
    pub charges_enabled: bool,
    /// Whether Stripe pays out to it.
    pub payouts_enabled: bool,
    /// Whether the owner finished onboarding.
    pub details_submitted: bool,
    /// Why the account is disabled, as Stripe spells it ("requirements.past_due", …).
    pub disabled_reason: Option<String>,
    /// Information due now.
    pub currently_due: Vec<String>,
    /// Information overdue (the account is disabled until it is provided).
    pub past_due: Vec<String>,
}

impl From<Account> for AccountInfo {
    fn from(account: Account) -> Self {
        let requirements = account.requirements;
        let (disabled_reason, currently_due, past_due) = match requirements {
            Some(r) => (
                r.disabled_reason.map(|reason| reason.as_str().to_owned()),
                r.currently_due.unwrap_or_default(),
                r.past_due.unwrap_or_default(),
            ),
            None => (None, Vec::new(), Vec::new()),
        };
        Self {
            id: account.id.as_str().to_owned(),
            charges_enabled: account.charges_enabled.unwrap_or(false),
            payouts_enabled: account.payouts_enabled.unwrap_or(false),
            details_submitted: account.details_submitted.unwrap_or(false),
            disabled_reason,
            currently_due,
            past_due,
        }
    }
}

/// What to pay out: the input of [`StripeApi::create_transfer`].
#[derive(Debug, Clone)]
pub struct NewTransfer<'a> {
    /// The amount in the currency's smallest unit.
    pub amount_cents: i64,
    /// ISO code, e.g. "usd" (any case).
    pub currency: &'a str,
    /// The connected account (`acct_…`).
    pub destination: &'a str,
    /// The group of the charge that funds it.
    pub transfer_group: Option<&'a str>,
    /// Stored on the transfer and echoed in its webhooks.
    pub metadata: Vec<(&'a str, String)>,
}

/// A transfer as the crate needs it.
#[derive(Debug, Clone)]
pub struct TransferInfo {
    /// `tr_…`.
    pub id: String,
    /// The amount, in cents.
    pub amount_cents: i64,
    /// Lowercase ISO code.
    pub currency: String,
    /// The connected account (`acct_…`).
    pub destination: String,
    /// Whether it was reversed in full.
    pub reversed: bool,
}

impl From<Transfer> for TransferInfo {
    fn from(transfer: Transfer) -> Self {
        Self {
            id: transfer.id.as_str().to_owned(),
            amount_cents: transfer.amount,
            currency: transfer.currency.to_string(),
            destination: transfer.destination.map(|account| account.id().as_str().to_owned()).unwrap_or_default(),
            reversed: transfer.reversed,
        }
    }
}

/// Why a Stripe call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StripeFailure {
    /// Worth retrying with the same idempotency key: network error, timeout, 429, 5xx,
    /// lock_timeout / idempotency conflicts in flight.
    #[error("Stripe is unavailable: {0}")]
    Transient(String),
    /// Retrying will not help (4xx with an error object): card declined, invalid request,
    /// no such account… `status` is 0 when no HTTP error status was involved (an answer that
    /// could not be read, a local misconfiguration).
    #[error("Stripe refused the request: {message}")]
    Permanent {
        /// Stripe's error code ("card_declined", "resource_missing", …), when it gave one.
        code: Option<String>,
        /// Stripe's human message.
        message: String,
        /// The HTTP status of the answer.
        status: u16,
    },
}

impl StripeFailure {
    /// Whether retrying with the same idempotency key may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }

    /// Stripe's error code of a permanent failure.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Transient(_) => None,
            Self::Permanent { code, .. } => code.as_deref(),
        }
    }
}

/// Error codes that mean "another request holds the object or the key right now".
const TRANSIENT_CODES: &[&str] = &["lock_timeout", "idempotency_key_in_use", "rate_limit"];

/// async-stripe's message when an error answer was not Stripe's JSON error object (a proxy's
/// HTML page, a truncated body): the status is lost, so it counts as transient.
const UNREADABLE_ERROR_BODY: &str = "error deserializing Stripe error";

impl From<StripeError> for StripeFailure {
    fn from(err: StripeError) -> Self {
        match err {
            StripeError::Stripe(error, status) => {
                let code = error.code.as_ref().map(|code| code.as_str().to_owned());
                let message = error.message.clone().unwrap_or_else(|| error.type_.as_str().to_owned());
                let transient_code = code.as_deref().is_some_and(|code| TRANSIENT_CODES.contains(&code));
                if status == 429 || status >= 500 || transient_code {
                    Self::Transient(format!("HTTP {status}: {message}"))
                } else {
                    Self::Permanent { code, message, status }
                }
            }
            StripeError::ClientError(message) => Self::Transient(message),
            StripeError::Timeout => Self::Transient("the request timed out".to_owned()),
            StripeError::JSONDeserialize(message) if message == UNREADABLE_ERROR_BODY => {
                Self::Transient(format!("unreadable error answer: {message}"))
            }
            StripeError::JSONDeserialize(message) => Self::Permanent {
                code: Some("invalid_response".to_owned()),
                message: format!("Stripe's answer could not be read: {message}"),
                status: 0,
            },
            StripeError::ConfigError(message) => Self::Permanent { code: None, message, status: 0 },
        }
    }
}

impl From<StripeFailure> for ServiceError {
    fn from(failure: StripeFailure) -> Self {
        match failure {
            StripeFailure::Transient(_) => ServiceError::unavailable(
                "payments.stripe_unavailable",
                "The payment provider is unavailable; try again later.",
            ),
            // Stripe refusing our own key is the platform's problem, not the caller's; its
            // message would name the (masked) key.
            StripeFailure::Permanent { status: 401 | 403, .. } => ServiceError::unavailable(
                "payments.stripe_unavailable",
                "The payment provider refused the platform's credentials.",
            ),
            StripeFailure::Permanent { code, message, .. } => {
                let err = ServiceError::bad_request("payments.stripe_error", message);
                match code {
                    Some(code) => err.with_detail("stripe_code", code),
                    None => err,
                }
            }
        }
    }
}
