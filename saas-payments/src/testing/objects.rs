//! The JSON shapes of the Stripe objects the fake serves: every field async-stripe's typed
//! models require (rc.10, API 2026-09-30), with realistic values for the optional ones.

use serde_json::{Map, Value, json};

/// The API version events carry: the one async-stripe 1.0.0-rc.10 is generated for.
pub(super) const API_VERSION: &str = "2026-09-30.endive";

/// Seconds in one billing interval.
pub(super) fn interval_secs(interval: &str) -> i64 {
    match interval {
        "day" => 86_400,
        "week" => 7 * 86_400,
        "year" => 365 * 86_400,
        _ => 30 * 86_400,
    }
}

/// A page of a list with everything on it.
pub(super) fn list(url: String, data: Vec<Value>) -> Value {
    let total = data.len();
    json!({ "object": "list", "data": data, "has_more": false, "total_count": total, "url": url })
}

/// Stripe's error envelope.
pub(super) fn error(kind: &str, code: Option<&str>, message: &str, param: Option<&str>) -> Value {
    json!({ "error": { "type": kind, "code": code, "message": message, "param": param } })
}

/// What [`payment_intent`] is built from.
pub(super) struct NewIntent<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub description: Option<&'a str>,
    pub transfer_group: Option<&'a str>,
    pub metadata: Map<String, Value>,
    pub automatic_payment_methods: bool,
    pub client_secret: String,
    pub created: i64,
}

pub(super) fn payment_intent(new: NewIntent<'_>) -> Value {
    let automatic = new.automatic_payment_methods.then(|| json!({ "allow_redirects": "always", "enabled": true }));
    json!({
        "id": new.id,
        "object": "payment_intent",
        "amount": new.amount,
        "amount_capturable": 0,
        "amount_details": { "tip": {} },
        "amount_received": 0,
        "application": null,
        "application_fee_amount": null,
        "automatic_payment_methods": automatic,
        "canceled_at": null,
        "cancellation_reason": null,
        "capture_method": "automatic_async",
        "client_secret": new.client_secret,
        "confirmation_method": "automatic",
        "created": new.created,
        "currency": new.currency,
        "customer": null,
        "description": new.description,
        "last_payment_error": null,
        "latest_charge": null,
        "livemode": false,
        "metadata": new.metadata,
        "next_action": null,
        "on_behalf_of": null,
        "payment_method": null,
        "payment_method_configuration_details": null,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "processing": null,
        "receipt_email": null,
        "review": null,
        "setup_future_usage": null,
        "shipping": null,
        "source": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": "requires_payment_method",
        "transfer_data": null,
        "transfer_group": new.transfer_group,
    })
}

/// A charge of `intent` (a PaymentIntent object), succeeded or declined.
pub(super) fn charge(id: &str, intent: &Value, succeeded: bool, created: i64, balance_transaction: &str) -> Value {
    let amount = intent["amount"].as_i64().unwrap_or(0);
    let outcome = if succeeded {
        json!({ "type": "authorized", "network_status": "approved_by_network", "reason": null,
                "risk_level": "normal", "seller_message": "Payment complete." })
    } else {
        json!({ "type": "issuer_declined", "network_status": "declined_by_network", "reason": "generic_decline",
                "risk_level": "normal", "seller_message": "The bank did not return any further details with this decline." })
    };
    json!({
        "id": id,
        "object": "charge",
        "amount": amount,
        "amount_captured": if succeeded { amount } else { 0 },
        "amount_refunded": 0,
        "application": null,
        "application_fee": null,
        "application_fee_amount": null,
        "balance_transaction": if succeeded { Value::from(balance_transaction) } else { Value::Null },
        "billing_details": { "address": null, "email": null, "name": null, "phone": null },
        "calculated_statement_descriptor": "SAAS FAKE",
        "captured": succeeded,
        "created": created,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": false,
        "failure_code": if succeeded { Value::Null } else { Value::from("card_declined") },
        "failure_message": if succeeded { Value::Null } else { Value::from("Your card was declined.") },
        "fraud_details": {},
        "livemode": false,
        "metadata": intent["metadata"],
        "on_behalf_of": null,
        "outcome": outcome,
        "paid": succeeded,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "receipt_email": null,
        "receipt_url": null,
        "refunded": false,
        "review": null,
        "source_transfer": null,
        "statement_descriptor": null,
        "statement_descriptor_suffix": null,
        "status": if succeeded { "succeeded" } else { "failed" },
        "transfer_data": null,
        "transfer_group": intent["transfer_group"],
    })
}

/// What [`refund`] is built from.
pub(super) struct NewRefund<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub intent: &'a Value,
    pub reason: Option<&'a str>,
    pub metadata: Map<String, Value>,
    pub created: i64,
}

pub(super) fn refund(new: NewRefund<'_>) -> Value {
    json!({
        "id": new.id,
        "object": "refund",
        "amount": new.amount,
        "balance_transaction": null,
        "charge": new.intent["latest_charge"],
        "created": new.created,
        "currency": new.intent["currency"],
        "destination_details": null,
        "metadata": new.metadata,
        "payment_intent": new.intent["id"],
        "reason": new.reason,
        "receipt_number": null,
        "source_transfer_reversal": null,
        "status": "pending",
        "transfer_reversal": null,
    })
}

pub(super) fn customer(
    id: &str,
    email: Option<&str>,
    name: Option<&str>,
    metadata: Map<String, Value>,
    created: i64,
) -> Value {
    json!({
        "id": id,
        "object": "customer",
        "address": null,
        "balance": 0,
        "created": created,
        "currency": null,
        "default_source": null,
        "delinquent": false,
        "description": null,
        "discount": null,
        "email": email,
        "invoice_prefix": id.trim_start_matches("cus_").chars().take(8).collect::<String>().to_uppercase(),
        "invoice_settings": { "custom_fields": null, "default_payment_method": null, "footer": null, "rendering_options": null },
        "livemode": false,
        "metadata": metadata,
        "name": name,
        "next_invoice_sequence": 1,
        "phone": null,
        "preferred_locales": [],
        "shipping": null,
        "tax_exempt": "none",
        "test_clock": null,
    })
}

pub(super) fn price(id: &str, unit_amount: i64, currency: &str, interval: &str, product: &str, created: i64) -> Value {
    json!({
        "id": id,
        "object": "price",
        "active": true,
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": null,
        "livemode": false,
        "lookup_key": null,
        "metadata": {},
        "nickname": null,
        "product": product,
        "recurring": { "interval": interval, "interval_count": 1, "meter": null, "trial_period_days": null, "usage_type": "licensed" },
        "tax_behavior": "unspecified",
        "tiers_mode": null,
        "transform_quantity": null,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount.to_string(),
    })
}

/// The legacy `plan` twin of a recurring `price`.
fn plan(price: &Value) -> Value {
    json!({
        "id": price["id"],
        "object": "plan",
        "active": true,
        "amount": price["unit_amount"],
        "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit",
        "created": price["created"],
        "currency": price["currency"],
        "interval": price["recurring"]["interval"],
        "interval_count": 1,
        "livemode": false,
        "metadata": {},
        "meter": null,
        "nickname": null,
        "product": price["product"],
        "tiers_mode": null,
        "transform_usage": null,
        "trial_period_days": null,
        "usage_type": "licensed",
    })
}

/// What [`subscription`] is built from.
pub(super) struct NewSubscription<'a> {
    pub id: &'a str,
    pub item_id: &'a str,
    pub customer: &'a str,
    pub price: &'a Value,
    pub metadata: Map<String, Value>,
    pub latest_invoice: &'a str,
    pub created: i64,
}

pub(super) fn subscription(new: NewSubscription<'_>) -> Value {
    let period_end = new.created + interval_secs(new.price["recurring"]["interval"].as_str().unwrap_or("month"));
    let item = json!({
        "id": new.item_id,
        "object": "subscription_item",
        "billing_thresholds": null,
        "created": new.created,
        "current_period_end": period_end,
        "current_period_start": new.created,
        "discounts": [],
        "metadata": {},
        "plan": plan(new.price),
        "price": new.price,
        "quantity": 1,
        "subscription": new.id,
        "tax_rates": [],
    });
    let head = json!({
        "id": new.id,
        "object": "subscription",
        "application": null,
        "application_fee_percent": null,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null },
        "billing_cycle_anchor": new.created,
        "billing_cycle_anchor_config": null,
        "billing_mode": { "type": "classic" },
        "billing_schedules": [],
        "billing_thresholds": null,
        "cancel_at": null,
        "cancel_at_period_end": false,
        "canceled_at": null,
        "cancellation_details": { "comment": null, "feedback": null, "reason": null },
        "collection_method": "charge_automatically",
        "created": new.created,
        "currency": new.price["currency"],
        "customer": new.customer,
        "days_until_due": null,
        "default_payment_method": null,
        "default_source": null,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
    });
    let rest = json!({
        "ended_at": null,
        "invoice_settings": { "account_tax_ids": null, "issuer": { "type": "self" } },
        "items": list(format!("/v1/subscription_items?subscription={}", new.id), vec![item]),
        "latest_invoice": new.latest_invoice,
        "livemode": false,
        "metadata": new.metadata,
        "next_pending_invoice_item_invoice": null,
        "on_behalf_of": null,
        "pause_collection": null,
        "payment_settings": { "payment_method_options": null, "payment_method_types": null, "save_default_payment_method": "off" },
        "pending_invoice_item_interval": null,
        "pending_setup_intent": null,
        "pending_update": null,
        "schedule": null,
        "start_date": new.created,
        "status": "incomplete",
        "test_clock": null,
        "transfer_data": null,
        "trial_end": null,
        "trial_settings": { "end_behavior": { "missing_payment_method": "create_invoice" } },
        "trial_start": null,
    });
    merged(head, rest)
}

/// `head` with the fields of `rest` (json! objects too large for one macro call).
fn merged(mut head: Value, rest: Value) -> Value {
    if let (Some(head), Value::Object(rest)) = (head.as_object_mut(), rest) {
        head.extend(rest);
    }
    head
}

/// What [`invoice`] is built from.
pub(super) struct NewInvoice<'a> {
    pub id: &'a str,
    pub line_id: &'a str,
    pub subscription: &'a Value,
    pub amount: i64,
    pub billing_reason: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    pub number: u64,
    pub created: i64,
}

/// An open invoice of `subscription` for `amount`.
pub(super) fn invoice(new: NewInvoice<'_>) -> Value {
    let subscription = new.subscription;
    let currency = subscription["currency"].clone();
    let line = json!({
        "id": new.line_id,
        "object": "line_item",
        "amount": new.amount,
        "currency": currency,
        "description": "1 × subscription",
        "discountable": true,
        "discounts": [],
        "invoice": new.id,
        "livemode": false,
        "metadata": subscription["metadata"],
        "period": { "end": new.period_end, "start": new.period_start },
        "quantity": 1,
        "subtotal": new.amount,
    });
    let customer = subscription["customer"].clone();
    json!({
        "id": new.id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "SaaS Fake Platform",
        "amount_due": new.amount,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": new.amount,
        "amount_shipping": 0,
        "attempt_count": 0,
        "attempted": false,
        "auto_advance": true,
        "automatic_tax": { "disabled_reason": null, "enabled": false, "liability": null, "provider": null, "status": null },
        "billing_reason": new.billing_reason,
        "collection_method": "charge_automatically",
        "confirmation_secret": null,
        "created": new.created,
        "currency": currency,
        "customer": customer,
        "default_tax_rates": [],
        "description": null,
        "discounts": [],
        "hosted_invoice_url": null,
        "issuer": { "type": "self" },
        "lines": list(format!("/v1/invoices/{}/lines", new.id), vec![line]),
        "livemode": false,
        "metadata": {},
        "number": format!("FAKE-{:04}", new.number),
        "parent": {
            "type": "subscription_details",
            "quote_details": null,
            "subscription_details": { "metadata": subscription["metadata"], "subscription": subscription["id"] },
        },
        "payment_settings": { "default_mandate": null, "payment_method_options": null, "payment_method_types": null },
        "period_end": new.period_end,
        "period_start": new.period_start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "starting_balance": 0,
        "status": "open",
        "status_transitions": { "finalized_at": new.created, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null },
        "subscription": subscription["id"],
        "subtotal": new.amount,
        "total": new.amount,
    })
}

pub(super) fn account(
    id: &str,
    kind: &str,
    email: Option<&str>,
    country: &str,
    capabilities: Map<String, Value>,
    metadata: Map<String, Value>,
    created: i64,
) -> Value {
    let due = ["business_type", "external_account", "tos_acceptance.date", "tos_acceptance.ip"];
    json!({
        "id": id,
        "object": "account",
        "business_profile": { "mcc": null, "name": null, "support_email": null, "url": null },
        "business_type": null,
        "capabilities": capabilities,
        "charges_enabled": false,
        "controller": { "fees": { "payer": "application" }, "is_controller": true, "losses": { "payments": "application" },
                        "requirement_collection": "stripe", "stripe_dashboard": { "type": "express" }, "type": "application" },
        "country": country,
        "created": created,
        "default_currency": "usd",
        "details_submitted": false,
        "email": email,
        "external_accounts": list(format!("/v1/accounts/{id}/external_accounts"), Vec::new()),
        "future_requirements": {
            "alternatives": [], "current_deadline": null, "currently_due": [], "disabled_reason": null,
            "errors": [], "eventually_due": [], "past_due": [], "pending_verification": [],
        },
        "livemode": false,
        "metadata": metadata,
        "payouts_enabled": false,
        "requirements": {
            "alternatives": [], "current_deadline": null, "currently_due": due, "disabled_reason": "requirements.past_due",
            "errors": [], "eventually_due": due, "past_due": due, "pending_verification": [],
        },
        "tos_acceptance": { "date": null, "ip": null, "user_agent": null },
        "type": kind,
    })
}

/// What [`transfer`] is built from.
pub(super) struct NewTransfer<'a> {
    pub id: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub destination: &'a str,
    pub destination_payment: &'a str,
    pub balance_transaction: &'a str,
    pub description: Option<&'a str>,
    pub transfer_group: Option<&'a str>,
    pub metadata: Map<String, Value>,
    pub created: i64,
}

pub(super) fn transfer(new: NewTransfer<'_>) -> Value {
    json!({
        "id": new.id,
        "object": "transfer",
        "amount": new.amount,
        "amount_reversed": 0,
        "balance_transaction": new.balance_transaction,
        "created": new.created,
        "currency": new.currency,
        "description": new.description,
        "destination": new.destination,
        "destination_payment": new.destination_payment,
        "livemode": false,
        "metadata": new.metadata,
        "reversals": list(format!("/v1/transfers/{}/reversals", new.id), Vec::new()),
        "reversed": false,
        "source_transaction": null,
        "source_type": "card",
        "transfer_group": new.transfer_group,
    })
}
