//! The bytes clients see: one scripted run through every resource, every response
//! shape and every event type, with the response bodies, the event list and the
//! webhook bodies written out verbatim (ids and secrets renumbered, attempt latencies
//! zeroed) and compared with `tests/api/wire.golden`. A field renamed, reordered or
//! dropped in a response, a stored event or a webhook fails here. A change meant to
//! alter the wire rewrites the file with `CASAPAY_WIRE_BLESS=1` and shows in review.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::StatusCode;
use casapay::domain::payout::Payout;
use casapay::jobs::dispatcher::{Dispatcher, DispatcherConfig};
use casapay::jobs::engine::Engine;
use casapay::service::rail::{PayoutRail, RailFuture, RailOutcome};
use reqwest::Method;
use serde_json::{Value, json};

use crate::files::Part;
use crate::support::{DEMO_KEY, DOCS_NOW, LOOPBACK_EGRESS, TestApp, dispatcher_config, id};

const DAY: i64 = 86_400;
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/wire.golden");

/// Refuses every payout, for `payout.failed`.
struct RefusingRail;

impl PayoutRail for RefusingRail {
    fn pay<'a>(&'a self, _payout: &'a Payout, _now: i64) -> RailFuture<'a> {
        Box::pin(async { Ok(RailOutcome::Failed { reason: "account closed".into() }) })
    }
}

/// Records each webhook body as it arrived; `/fail` answers 500.
#[derive(Clone, Default)]
struct Hooks(Arc<Mutex<Vec<String>>>);

impl Hooks {
    async fn start(&self) -> String {
        let ok = self.clone();
        let failing = self.clone();
        let app = axum::Router::new()
            .route(
                "/ok",
                axum::routing::post(move |body: Bytes| async move {
                    ok.0.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                    StatusCode::OK
                }),
            )
            .route(
                "/fail",
                axum::routing::post(move |body: Bytes| async move {
                    failing.0.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
                    StatusCode::INTERNAL_SERVER_ERROR
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }
}

/// The run so far, as text, with every generated id and secret replaced by the same
/// placeholder wherever it appears (numbered in order of first appearance).
#[derive(Default)]
struct Transcript {
    out: String,
    /// The receiver's address, which changes from run to run.
    receiver: String,
    names: HashMap<String, String>,
    counts: HashMap<String, usize>,
}

/// Prefixes of generated ids: 24 base62 characters follow.
const ID_PREFIXES: &[&str] =
    &["acct_", "cus_", "gpol_", "grt_", "clm_", "po_", "evt_", "we_", "wha_", "req_", "file_", "op_", "act_", "rec_"];

impl Transcript {
    fn entry(&mut self, label: &str, body: &str) {
        let label = self.normalise(label);
        let body = self.normalise(&body.replace(&self.receiver, "http://receiver"));
        self.out.push_str(&format!("### {label}\n{body}\n"));
    }

    fn placeholder(&mut self, prefix: &str, token: &str) -> String {
        if let Some(name) = self.names.get(token) {
            return name.clone();
        }
        let n = self.counts.entry(prefix.to_owned()).or_default();
        *n += 1;
        let name = format!("{prefix}{n}");
        self.names.insert(token.to_owned(), name.clone());
        name
    }

    fn normalise(&mut self, text: &str) -> String {
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        'scan: while i < bytes.len() {
            let boundary = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
            if boundary {
                for prefix in ID_PREFIXES {
                    let end = i + prefix.len() + 24;
                    if text[i..].starts_with(prefix)
                        && end <= bytes.len()
                        && bytes[i + prefix.len()..end].iter().all(u8::is_ascii_alphanumeric)
                        && bytes.get(end).is_none_or(|b| !b.is_ascii_alphanumeric())
                    {
                        out.push_str(&self.placeholder(prefix, &text[i..end]));
                        i = end;
                        continue 'scan;
                    }
                }
                if text[i..].starts_with("whsec_") {
                    let len = bytes[i + 6..]
                        .iter()
                        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
                        .count();
                    let end = i + 6 + len;
                    out.push_str(&self.placeholder("whsec_", &text[i..end]));
                    i = end;
                    continue 'scan;
                }
                // How long an attempt took is the machine's, not the wire's.
                if text[i..].starts_with("\"latency_ms\":") {
                    let start = i + "\"latency_ms\":".len();
                    let digits = bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
                    out.push_str("\"latency_ms\":0");
                    i = start + digits;
                    continue 'scan;
                }
            }
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }
}

struct Run {
    app: TestApp,
    dispatcher: Dispatcher,
    t: Transcript,
}

impl Run {
    /// Sends a request and records its answer, which must be a 200.
    async fn call(&mut self, method: Method, path: &str, key: &str, body: Option<Value>) -> Value {
        let r = self.app.send(method.clone(), path, Some(key), body).await;
        assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
        self.t.entry(&format!("{method} {path}"), &r.text);
        r.body
    }

    async fn post(&mut self, path: &str, body: Value) -> Value {
        self.call(Method::POST, path, DEMO_KEY, Some(body)).await
    }

    async fn get(&mut self, path: &str) -> Value {
        self.call(Method::GET, path, DEMO_KEY, None).await
    }

    /// Lets a second pass by: every write after it sorts after it.
    fn tick(&self) {
        self.app.clock.advance(1);
    }

    /// Sends every due webhook delivery, one at a time (so the attempts log has one order).
    async fn deliver(&self) {
        while self.dispatcher.run_once().await.expect("dispatcher step") > 0 {}
    }
}

#[tokio::test]
async fn responses_events_and_webhooks_keep_their_bytes() {
    let app = TestApp::start().await;
    let config = DispatcherConfig { max_in_flight: 1, per_endpoint: 1, ..dispatcher_config(LOOPBACK_EGRESS) };
    let dispatcher = Dispatcher::new(app.store.clone(), app.clock.clone(), config);
    let hooks = Hooks::default();
    let base = hooks.start().await;
    let mut run = Run { app, dispatcher, t: Transcript { receiver: base.clone(), ..Transcript::default() } };

    // Webhook endpoints: the secret shows on create and rotate only.
    let we = run
        .post(
            "/v1/webhook_endpoints",
            json!({"url": format!("{base}/ok"), "enabled_events": ["*"], "description": "All of it",
                   "metadata": {"team": "ops"}}),
        )
        .await;
    let we_path = format!("/v1/webhook_endpoints/{}", id(&we));
    run.tick();
    run.get(&we_path).await;
    run.post(&we_path, json!({"description": "", "metadata": {"team": "", "env": "test"}})).await;
    run.post(&format!("{we_path}/rotate_secret"), json!({})).await;
    run.tick();
    let failing = run
        .post("/v1/webhook_endpoints", json!({"url": format!("{base}/fail"), "enabled_events": ["customer.created"]}))
        .await;
    run.get("/v1/webhook_endpoints").await;

    // Customers, in test and live mode.
    run.tick();
    let cus = run
        .post(
            "/v1/customers",
            json!({"name": "Jenny Rosen", "email": "jenny@example.com", "score": 75, "metadata": {"unit": "4B"}}),
        )
        .await;
    let cus_path = format!("/v1/customers/{}", id(&cus));
    run.get(&cus_path).await;
    run.tick();
    run.post(&cus_path, json!({"email": "", "score": 90, "metadata": {"unit": "", "floor": "4"}})).await;
    run.get("/v1/customers/cus_123456789").await;
    run.get("/v1/customers?limit=100").await;
    let acct = run.app.new_account().await;
    run.tick();
    run.call(Method::POST, "/v1/customers", &acct.live_key, Some(json!({"name": "Live tenant"}))).await;
    run.call(Method::GET, "/v1/events", &acct.live_key, None).await;
    // An idempotent create, and its replay.
    run.tick();
    for _ in 0..2 {
        let r = run
            .app
            .client
            .post(run.app.url("/v1/customers"))
            .bearer_auth(DEMO_KEY)
            .header("idempotency-key", "wire-golden-1")
            .json(&json!({"name": "Once"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        run.t.entry("POST /v1/customers (Idempotency-Key)", &text);
    }

    // Policies.
    run.tick();
    let standard = run
        .post(
            "/v1/guarantee_policies",
            json!({"name": "Standard", "coverage_percentage": 100, "max_coverage_months": 12,
                   "waiting_period_days": 0, "eligible_score_minimum": 60, "metadata": {"tier": "std"}}),
        )
        .await;
    run.tick();
    let one_month = run
        .post(
            "/v1/guarantee_policies",
            json!({"name": "One month", "coverage_percentage": 100, "max_coverage_months": 1,
                   "waiting_period_days": 0, "deductible_amount": 0}),
        )
        .await;
    let pol_path = format!("/v1/guarantee_policies/{}", id(&one_month));
    run.get(&pol_path).await;
    run.tick();
    run.post(&pol_path, json!({"name": "One month (old)", "metadata": {"note": "kept"}})).await;
    run.get("/v1/guarantee_policies").await;

    // Guarantees: active, pending (activated then expired by the clock), cancelled,
    // and one whose coverage a single claim uses up.
    let g = |policy: &Value, tenant: &str, amount: i64, start: i64, end: i64| {
        json!({"policy": id(policy), "tenant": tenant, "coverage_amount": amount, "currency": "eur",
               "start_date": start, "end_date": end})
    };
    run.tick();
    let mut body = g(&standard, "cus_123456789", 120_000, DOCS_NOW, DOCS_NOW + 365 * DAY);
    body["metadata"] = json!({"property_id": "prop_456"});
    let main = run.post("/v1/guarantees", body).await;
    let main_path = format!("/v1/guarantees/{}", id(&main));
    run.get(&main_path).await;
    run.get(&format!("{main_path}?expand[]=policy&expand[]=tenant")).await;
    run.tick();
    run.post(&main_path, json!({"end_date": DOCS_NOW + 400 * DAY, "metadata": {"lease_id": "lease_789"}})).await;
    run.tick();
    let pending =
        run.post("/v1/guarantees", g(&standard, &id(&cus), 50_000, DOCS_NOW + 2 * DAY, DOCS_NOW + 4 * DAY)).await;
    run.tick();
    let doomed = run.post("/v1/guarantees", g(&standard, &id(&cus), 50_000, DOCS_NOW, DOCS_NOW + 90 * DAY)).await;
    run.tick();
    run.post(&format!("/v1/guarantees/{}/cancel", id(&doomed)), json!({})).await;
    run.tick();
    let small = run.post("/v1/guarantees", g(&one_month, "cus_123456789", 20_000, DOCS_NOW, DOCS_NOW + 90 * DAY)).await;
    run.tick();
    // Claims decided by hand go on a guarantee of their own: the automated review's
    // month on `main` is used up by its first claim.
    let side = run.post("/v1/guarantees", g(&standard, &id(&cus), 120_000, DOCS_NOW, DOCS_NOW + 90 * DAY)).await;
    run.get("/v1/guarantees?expand[]=data.policy").await;

    // Claims. First one approved by hand whose payout the rail refuses.
    run.app.clock.set(DOCS_NOW + DAY);
    let claim = |g: &Value, invoice: &str, amount: i64, reason: &str| {
        json!({"guarantee": id(g), "amount": amount, "currency": "eur", "reason": reason,
               "evidence": {"invoice_id": invoice, "due_date": DOCS_NOW + DAY / 2, "description": "Rent unpaid"}})
    };
    // Files: an upload (multipart), read back and listed; the first claim names it.
    let doc = crate::files::pdf(64);
    let parts =
        [Part::File("file", Some("lease.pdf"), "application/pdf", &doc), Part::Text("purpose", "claim_evidence")];
    let upload = crate::files::multipart("wire-boundary", &parts);
    let r = run
        .app
        .raw(Method::POST, "/v1/files", Some(DEMO_KEY), Some("multipart/form-data; boundary=wire-boundary"), upload)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    run.t.entry("POST /v1/files", &r.text);
    let file = r.body;
    run.get(&format!("/v1/files/{}", id(&file))).await;
    run.get("/v1/files?purpose=claim_evidence").await;
    let mut body = claim(&side, "inv_refused", 10_000, "lease_break");
    body["evidence"]["files"] = json!([id(&file)]);
    let refused = run.post("/v1/claims", body).await;
    run.post(&format!("/v1/test_helpers/claims/{}/approve", id(&refused)), json!({"amount": 9_000})).await;
    let refusing = Engine::new(
        run.app.store.clone(),
        run.app.clock.clone(),
        Arc::new(RefusingRail),
        crate::support::engine_config(20, 10, 1),
    );
    refusing.run_until_idle().await.expect("engine step");
    run.get(&format!("/v1/claims/{}", id(&refused))).await;

    // Then the automated review (approved and paid; denied), an
    // operator's approval and denial, the test helpers', and the claim that uses up
    // a guarantee.
    run.tick();
    let paid = run.post("/v1/claims", claim(&main, "inv_paid", 120_000, "missed_payment")).await;
    run.tick();
    let mut body = claim(&small, "inv_small", 500, "missed_payment");
    body["metadata"] = json!({"ref": "x1"});
    run.post("/v1/claims", body).await;
    run.tick();
    let used_up = run.post("/v1/claims", claim(&small, "inv_all", 30_000, "partial_payment")).await;
    run.tick();
    // Denied: `main`'s month is used up by `paid`.
    run.post("/v1/claims", claim(&main, "inv_again", 1_000, "missed_payment")).await;
    run.tick();
    let by_op = run.post("/v1/claims", claim(&side, "inv_op", 80_000, "property_damage")).await;
    run.tick();
    let denied_op = run.post("/v1/claims", claim(&side, "inv_op_deny", 80_000, "lease_break")).await;
    run.tick();
    let helper_denied = run.post("/v1/claims", claim(&side, "inv_helper", 10_000, "lease_break")).await;
    run.app.settle().await;
    let op = run.app.operator_key().await;
    run.tick();
    run.call(Method::POST, &format!("/v1/claims/{}/approve", id(&by_op)), &op, Some(json!({"amount": 50_000}))).await;
    run.tick();
    run.call(
        Method::POST,
        &format!("/v1/claims/{}/deny", id(&denied_op)),
        &op,
        Some(json!({"denial_reason": "other", "note": "Lease ended by agreement."})),
    )
    .await;
    run.tick();
    run.post(&format!("/v1/test_helpers/claims/{}/deny", id(&helper_denied)), json!({"denial_reason": "tenant_paid"}))
        .await;
    run.app.settle().await;
    let paid_path = format!("/v1/claims/{}", id(&paid));
    run.get(&paid_path).await;
    run.get(&format!("{paid_path}?expand[]=guarantee.policy&expand[]=guarantee.tenant&expand[]=payout")).await;
    run.tick();
    run.post(&paid_path, json!({"metadata": {"case": "A-1"}})).await;
    run.get(&format!("/v1/claims/{}", id(&used_up))).await;
    run.get("/v1/claims?limit=100").await;
    run.get(&format!("/v1/claims?guarantee={}&expand[]=data.payout", id(&main))).await;
    run.get(&format!("/v1/guarantees/{}", id(&small))).await;
    run.get(&main_path).await;

    // Payouts.
    let payouts = run.get("/v1/payouts?limit=100").await;
    let po = payouts["data"][0]["id"].as_str().unwrap().to_owned();
    run.get(&format!("/v1/payouts/{po}")).await;
    run.get(&format!("/v1/payouts/{po}?expand[]=claim.guarantee&expand[]=guarantee")).await;
    run.get(&format!("/v1/payouts?claim={}&expand[]=data.claim", id(&paid))).await;

    // Recoveries: the paid claim's, planned and paid into.
    let recs = run.get(&format!("/v1/recoveries?claim={}", id(&paid))).await;
    let rec = recs["data"][0]["id"].as_str().unwrap().to_owned();
    run.tick();
    run.post(&format!("/v1/recoveries/{rec}/plan"), json!({"installments": 3, "first_due_date": DOCS_NOW + 40 * DAY}))
        .await;
    run.tick();
    run.post(&format!("/v1/recoveries/{rec}/payments"), json!({"amount": 1_000, "reference": "SEPA-1"})).await;
    run.get(&format!("/v1/recoveries/{rec}?expand[]=claim&expand[]=guarantee")).await;

    // The clock: the pending guarantee activates, then expires.
    run.app.clock.set(DOCS_NOW + 2 * DAY);
    run.app.settle().await;
    run.app.clock.set(DOCS_NOW + 4 * DAY);
    run.app.settle().await;
    run.get(&format!("/v1/guarantees/{}", id(&pending))).await;

    // Webhooks: delivered, resent, and an endpoint that fails for five days is disabled.
    run.deliver().await;
    let events = run.get("/v1/events?type=claim.paid").await;
    let evt = events["data"][0]["id"].as_str().unwrap().to_owned();
    run.get(&format!("/v1/events/{evt}")).await;
    run.post(&format!("/v1/events/{evt}/resend"), json!({"webhook_endpoint": id(&we)})).await;
    run.deliver().await;
    run.app.clock.advance(5 * DAY);
    run.tick();
    run.post("/v1/customers", json!({"name": "Late"})).await;
    run.deliver().await;
    run.get(&format!("/v1/webhook_endpoints/{}", id(&failing))).await;
    run.get(&format!("/v1/webhook_endpoints/{}/attempts?limit=100", id(&we))).await;
    run.get(&format!("/v1/webhook_endpoints/{}/attempts?limit=3", id(&failing))).await;
    run.tick();
    run.call(Method::DELETE, &format!("/v1/webhook_endpoints/{}", id(&failing)), DEMO_KEY, None).await;

    // Every event, page by page.
    let mut path = "/v1/events?limit=100".to_owned();
    loop {
        let page = run.get(&path).await;
        let Some(last) = page["data"].as_array().and_then(|d| d.last()).filter(|_| page["has_more"] == true) else {
            break;
        };
        path = format!("/v1/events?limit=100&starting_after={}", id(last));
    }

    // The webhook bodies, in the order they arrived.
    let bodies = hooks.0.lock().unwrap().clone();
    assert!(bodies.len() > 20, "{} webhooks", bodies.len());
    for body in &bodies {
        run.t.entry("webhook", body);
    }

    let got = std::mem::take(&mut run.t.out);
    if std::env::var_os("CASAPAY_WIRE_BLESS").is_some() {
        std::fs::write(GOLDEN, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(GOLDEN).expect("tests/api/wire.golden (write it with CASAPAY_WIRE_BLESS=1)");
    if got != want {
        // The first difference, with some context on each side.
        let at = got.bytes().zip(want.bytes()).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        let window = |s: &str| {
            let (mut start, mut end) = (at.saturating_sub(120).min(s.len()), (at + 120).min(s.len()));
            while !s.is_char_boundary(start) {
                start -= 1;
            }
            while !s.is_char_boundary(end) {
                end += 1;
            }
            s[start..end].to_owned()
        };
        let line = want[..at.min(want.len())].lines().count();
        panic!("the wire changed at line {line}:\n  want: ...{}...\n  got:  ...{}...", window(&want), window(&got));
    }
}
