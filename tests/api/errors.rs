//! Internal errors in the log (once, with the request id, the cause and where it was
//! raised) and unique-constraint violations mapped to client errors, on both backends.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use casapay::domain::DAY;
use casapay::error::ApiError;
use casapay::ids::Kind;
use casapay::service::accounts::DEMO_ACCOUNT_ID;
use casapay::store::{self, Scope};
use tracing_subscriber::layer::SubscriberExt;

use crate::support::{DEMO_KEY, DOCS_NOW, TestApp, refused_write};

/// What the server logs at error level, with the spans around each line, for every
/// test of this binary (they share the process): tests pick out their own lines by
/// request id.
pub(crate) fn error_log() -> Arc<Mutex<Vec<u8>>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let writer = {
            let log = log.clone();
            move || SharedWriter(log.clone())
        };
        use tracing_subscriber::Layer;
        // Spans at every level (the request span is at info), events at error only.
        let only_errors =
            tracing_subscriber::filter::filter_fn(|meta| meta.is_span() || *meta.level() == tracing::Level::ERROR);
        let layer = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(writer).with_filter(only_errors);
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("no other subscriber in the test binary");
        log
    })
    .clone()
}

struct SharedWriter(Arc<Mutex<Vec<u8>>>);

impl Write for SharedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_internal_error_is_logged_once_with_request_id_cause_and_location() {
    let log = error_log();
    let app = TestApp::start().await;
    // A row the store cannot read back: its metadata is not JSON.
    sqlx::query("UPDATE customers SET metadata = 'not json' WHERE id = 'cus_123456789'")
        .execute(&mut *app.store.acquire().await.unwrap())
        .await
        .unwrap();
    let r = app.get("/v1/customers/cus_123456789", DEMO_KEY).await;
    assert_eq!(r.status, 500, "{}", r.text);
    assert_eq!(r.body["error"]["type"], "api_error");
    assert!(!r.text.contains("not json") && !r.text.contains("decod"), "the cause stays out of the answer: {}", r.text);
    let request_id = r.headers["request-id"].to_str().unwrap().to_owned();

    let text = String::from_utf8(log.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(&request_id)).collect();
    assert_eq!(lines.len(), 1, "one error line for the request: {lines:#?}");
    let line = lines[0];
    assert!(line.contains("internal error"), "{line}");
    // The cause with its source: sqlx's decoding error and serde_json's reason.
    assert!(line.contains("error occurred while decoding") && line.contains("expected"), "{line}");
    // Where it was raised: the `?` in the service that read the row, not a line in core.
    assert!(line.contains("location=src/service/customers.rs:"), "{line}");
}

#[tokio::test]
async fn a_duplicate_claim_past_the_check_is_a_client_error_on_both_backends() {
    let app = TestApp::start().await;
    let (_, g) = app.demo_guarantee().await;
    app.clock.set(DOCS_NOW + 40 * DAY);
    let body = TestApp::claim_body(g["id"].as_str().unwrap(), "inv_1", DOCS_NOW + 30 * DAY);
    let first = app.post("/v1/claims", DEMO_KEY, body).await.ok();

    // The same invoice on the same guarantee, written past the service's own check:
    // only the unique index stands in the way.
    let scope = Scope { account_id: DEMO_ACCOUNT_ID.into(), livemode: false };
    let mut conn = app.store.acquire().await.unwrap();
    let mut twin = store::claims::get(&mut conn, &scope, first["id"].as_str().unwrap()).await.unwrap().unwrap();
    twin.id = Kind::Claim.new_id();
    drop(conn);
    // Inserts are deferred to the transaction's next flush on PostgreSQL; the error is the same.
    let mut tx = app.store.begin().await.unwrap();
    let written = store::claims::insert(&mut tx, &scope, &twin).await;
    let violation = refused_write(&mut tx, written).await;
    drop(tx);
    assert_eq!(store::violated_unique(&violation), Some(store::UniqueConstraint::ClaimPerInvoice), "{violation}");
    let err = ApiError::from(violation);
    assert_eq!(err.status(), 400);
    assert_eq!(err.code(), Some("duplicate_claim"));
    let ApiError::Client { param, .. } = &err else { panic!("a client error: {err:?}") };
    assert_eq!(param.as_deref(), Some("evidence[invoice_id]"));

    // Another unique violation (a primary key) is no client's doing: a 500.
    let mut other = twin.clone();
    other.evidence.invoice_id = "inv_2".into();
    let mut tx = app.store.begin().await.unwrap();
    store::claims::insert(&mut tx, &scope, &other).await.unwrap();
    tx.commit().await.unwrap();
    other.evidence.invoice_id = "inv_3".into();
    let mut tx = app.store.begin().await.unwrap();
    let written = store::claims::insert(&mut tx, &scope, &other).await;
    let taken = refused_write(&mut tx, written).await;
    assert_eq!(store::violated_unique(&taken), None, "{taken}");
    assert_eq!(ApiError::from(taken).status(), 500);
}
