//! The double-entry ledger on a real database: postings and balances, idempotency keys,
//! overdrafts undoing a batch, immutable entries, racing postings — on SQLite, or
//! PostgreSQL with SAAS_TEST_DATABASE_URL.

use saas_core::testing::{TestApp, TestDatabase};
use saas_core::with_pool;
use saas_payments::{Account, Ledger, PaymentsModule, Posting};
use uuid::Uuid;

async fn ledger(db: &TestDatabase) -> (TestApp, Ledger) {
    let app = TestApp::builder().module(PaymentsModule::default()).background(false, false).start(db).await;
    let ledger = Ledger::new(app.context().db().clone());
    (app, ledger)
}

/// The postings of a direct payment of 100.00 with a 15 % fee and a payee.
fn direct_paid(order: Uuid, payee: Uuid) -> Vec<Posting> {
    vec![
        Posting::new(Account::stripe("usd"), Account::escrow("usd"), 10_000, format!("payment:{order}:received")),
        Posting::new(Account::escrow("usd"), Account::revenue("usd"), 1_500, format!("payment:{order}:fee")),
        Posting::new(Account::escrow("usd"), Account::user(payee, "usd"), 8_500, format!("payment:{order}:payee")),
    ]
}

#[tokio::test]
async fn postings_move_balances_and_the_ledger_stays_balanced() {
    let db = TestDatabase::create().await;
    let (_app, ledger) = ledger(&db).await;
    let (order, payee) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(ledger.post(&direct_paid(order, payee)).await.unwrap(), vec![true, true, true]);
    assert_eq!(ledger.balance(&Account::stripe("usd")).await.unwrap(), -10_000);
    assert_eq!(ledger.balance(&Account::escrow("usd")).await.unwrap(), 0);
    assert_eq!(ledger.balance(&Account::revenue("usd")).await.unwrap(), 1_500);
    assert_eq!(ledger.balance(&Account::user(payee, "usd")).await.unwrap(), 8_500);
    assert_eq!(ledger.user_balances(payee).await.unwrap(), vec![("usd".to_owned(), 8_500)]);
    assert_eq!(ledger.totals().await.unwrap(), vec![("usd".to_owned(), 0)]);
    assert_eq!(ledger.balance(&Account::user(Uuid::new_v4(), "usd")).await.unwrap(), 0, "no entries, no balance");

    // Recording the same movements again changes nothing.
    assert_eq!(ledger.post(&direct_paid(order, payee)).await.unwrap(), vec![false, false, false]);
    assert_eq!(ledger.balance(&Account::user(payee, "usd")).await.unwrap(), 8_500);
    assert_eq!(ledger.entry_count().await.unwrap(), 3);
}

#[tokio::test]
async fn an_overdraft_is_refused_and_undoes_the_whole_batch() {
    let db = TestDatabase::create().await;
    let (_app, ledger) = ledger(&db).await;
    let payee = Uuid::new_v4();
    let batch = [
        Posting::new(Account::stripe("eur"), Account::escrow("eur"), 1_000, "in"),
        Posting::new(Account::escrow("eur"), Account::user(payee, "eur"), 1_001, "too much"),
    ];
    let err = ledger.post(&batch).await.unwrap_err();
    assert_eq!(err.code(), "payments.insufficient_funds");
    assert_eq!(err.status().as_u16(), 409);
    assert_eq!(ledger.entry_count().await.unwrap(), 0, "the first posting was undone too");
    assert_eq!(ledger.balance(&Account::escrow("eur")).await.unwrap(), 0);
    // Within the funds it goes through.
    ledger.post(&batch[..1]).await.unwrap();
    ledger.post(&[Posting::new(Account::escrow("eur"), Account::user(payee, "eur"), 1_000, "all")]).await.unwrap();
    assert_eq!(ledger.balance(&Account::user(payee, "eur")).await.unwrap(), 1_000);
}

#[tokio::test]
async fn malformed_postings_are_refused() {
    let db = TestDatabase::create().await;
    let (_app, ledger) = ledger(&db).await;
    for bad in [
        Posting::new(Account::stripe("usd"), Account::escrow("usd"), 0, "zero"),
        Posting::new(Account::stripe("usd"), Account::escrow("usd"), -5, "negative"),
        Posting::new(Account::stripe("usd"), Account::escrow("eur"), 5, "two currencies"),
        Posting::new(Account::escrow("usd"), Account::escrow("usd"), 5, "one account"),
        Posting::new(Account::stripe("usd"), Account::escrow("usd"), 5, " "),
    ] {
        assert_eq!(ledger.post(&[bad]).await.unwrap_err().code(), "validation.failed");
    }
    assert_eq!(ledger.entry_count().await.unwrap(), 0);
}

#[tokio::test]
async fn entries_are_never_updated_or_deleted() {
    let db = TestDatabase::create().await;
    let (app, ledger) = ledger(&db).await;
    ledger.post(&[Posting::new(Account::stripe("usd"), Account::escrow("usd"), 500, "in")]).await.unwrap();
    let updated = with_pool!(app.context().db(), pool =>
        sqlx::query("UPDATE payments_ledger_entries SET amount_cents = 1").execute(pool).await.map(|_| ()));
    assert!(updated.is_err(), "an update is refused by the database");
    let deleted = with_pool!(app.context().db(), pool =>
        sqlx::query("DELETE FROM payments_ledger_entries").execute(pool).await.map(|_| ()));
    assert!(deleted.is_err(), "a delete is refused by the database");
    assert_eq!(ledger.entry_count().await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_postings_never_double_credit_or_overdraw() {
    let db = TestDatabase::create().await;
    let (_app, ledger) = ledger(&db).await;
    let payee = Uuid::new_v4();
    // Twenty racing recordings of one movement: it happens once.
    let same = (0..20).map(|_| {
        let ledger = ledger.clone();
        async move {
            ledger.post(&[Posting::new(Account::stripe("usd"), Account::user(payee, "usd"), 1_000, "release:1")]).await
        }
    });
    let results = futures::future::join_all(same).await;
    let recorded = results.iter().filter(|r| matches!(r, Ok(v) if v == &vec![true])).count();
    assert_eq!(recorded, 1, "{results:?}");
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(ledger.balance(&Account::user(payee, "usd")).await.unwrap(), 1_000);

    // Twenty racing withdrawals of 100 from a balance of 1,000: ten succeed, none overdraws.
    let withdrawals = (0..20).map(|n| {
        let ledger = ledger.clone();
        async move {
            ledger
                .post(&[Posting::new(Account::user(payee, "usd"), Account::stripe("usd"), 100, format!("payout:{n}"))])
                .await
        }
    });
    let results = futures::future::join_all(withdrawals).await;
    let paid = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(paid, 10, "{results:?}");
    assert!(results.iter().filter_map(|r| r.as_ref().err()).all(|e| e.code() == "payments.insufficient_funds"));
    assert_eq!(ledger.balance(&Account::user(payee, "usd")).await.unwrap(), 0);
    assert_eq!(ledger.totals().await.unwrap(), vec![("usd".to_owned(), 0)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_platform_account_spread_over_shards_keeps_every_cent_under_racing_credits_and_debits() {
    let db = TestDatabase::create().await;
    let (_app, ledger) = ledger(&db).await;
    let escrow = Account::escrow("usd");
    // Forty racing payments into escrow, then forty racing withdrawals of 100 interleaved with
    // twenty more payments of 100: escrow holds what came in minus what went out, never less
    // than zero, and the ledger stays balanced.
    let payments = (0..40).map(|n| {
        let ledger = ledger.clone();
        async move {
            ledger.post(&[Posting::new(Account::stripe("usd"), Account::escrow("usd"), 100, format!("in:{n}"))]).await
        }
    });
    assert!(futures::future::join_all(payments).await.iter().all(Result::is_ok));
    assert_eq!(ledger.balance(&escrow).await.unwrap(), 4_000);

    let mixed = (0..60).map(|n| {
        let ledger = ledger.clone();
        async move {
            let posting = if n % 3 == 0 {
                Posting::new(Account::stripe("usd"), Account::escrow("usd"), 100, format!("more:{n}"))
            } else {
                Posting::new(Account::escrow("usd"), Account::revenue("usd"), 100, format!("out:{n}"))
            };
            (n % 3 == 0, ledger.post(&[posting]).await)
        }
    });
    let results = futures::future::join_all(mixed).await;
    let credited = results.iter().filter(|(credit, r)| *credit && r.is_ok()).count() as i64;
    let debited = results.iter().filter(|(credit, r)| !*credit && r.is_ok()).count() as i64;
    assert_eq!(
        credited,
        20,
        "credits always succeed: {:?}",
        results.iter().filter_map(|(_, r)| r.as_ref().err()).collect::<Vec<_>>()
    );
    assert_eq!(debited, 40, "4,000 held and 2,000 more: every withdrawal of 100 fits");
    assert!(results.iter().all(|(_, r)| r.as_ref().err().is_none_or(|e| e.code() == "payments.insufficient_funds")));
    assert_eq!(ledger.balance(&escrow).await.unwrap(), 4_000 + 2_000 - 4_000);
    assert_eq!(ledger.balance(&Account::revenue("usd")).await.unwrap(), 4_000);
    assert_eq!(ledger.balance(&Account::stripe("usd")).await.unwrap(), -6_000);

    // The rest leaves to the cent, and not one cent more.
    let last = [Posting::new(Account::escrow("usd"), Account::revenue("usd"), 2_000, "out:all")];
    ledger.post(&last).await.expect("the whole remainder");
    let over = [Posting::new(Account::escrow("usd"), Account::revenue("usd"), 1, "out:one-more")];
    assert_eq!(ledger.post(&over).await.unwrap_err().code(), "payments.insufficient_funds");
    assert_eq!(ledger.balance(&escrow).await.unwrap(), 0);
    assert_eq!(ledger.totals().await.unwrap(), vec![("usd".to_owned(), 0)]);
}
