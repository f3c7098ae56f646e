//! `casapay trigger` as a subprocess against `casapay serve --demo` (a subprocess too,
//! with its claims engine running on the wall clock): each event is made to happen
//! over the API, and is then read back through the API.

use serde_json::Value;

use crate::support::{DEMO_KEY, TestDb};

/// A `casapay serve --demo` on a database of its own, stopped when dropped.
struct Server {
    base: String,
    child: std::process::Child,
    data: std::path::PathBuf,
    _db: TestDb,
}

impl Server {
    async fn start() -> Server {
        let db = TestDb::create().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let data = std::env::temp_dir().join(format!("casapay_trigger_{}", casapay::ids::random_secret(8)));
        let child = crate::integrator_tools::serve_on(&db, port, &data).await;
        Server { base: format!("http://127.0.0.1:{port}"), child, data, _db: db }
    }

    async fn get(&self, path: &str) -> Value {
        let r = reqwest::Client::new().get(format!("{}{path}", self.base)).bearer_auth(DEMO_KEY).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    /// `casapay trigger ARGS --api <this server> --api-key <the demo key>`.
    async fn trigger(&self, args: &[&str]) -> Triggered {
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(["--api".into(), self.base.clone(), "--api-key".into(), DEMO_KEY.into()]);
        run(all).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// What a `casapay trigger` run printed, and how it ended.
struct Triggered {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Triggered {
    /// The ids it printed, `object  id` a line.
    fn ids(&self) -> Vec<(String, String)> {
        self.stdout
            .lines()
            .map(|l| {
                let (object, id) = l.split_once("  ").unwrap_or_else(|| panic!("not `object  id`: {l:?}"));
                (object.to_owned(), id.to_owned())
            })
            .collect()
    }

    /// The id printed for `object` (the last one of it).
    fn id_of(&self, object: &str) -> String {
        let ids = self.ids();
        ids.iter().rev().find(|(o, _)| o == object).map(|(_, id)| id.clone()).unwrap_or_else(|| {
            panic!("no {object} printed:\n{}\n{}", self.stdout, self.stderr);
        })
    }

    fn expect_ok(self) -> Self {
        assert!(self.ok, "trigger failed:\n{}\n{}", self.stdout, self.stderr);
        self
    }
}

/// Runs the binary with `args`, off the test's runtime thread.
async fn run(args: Vec<String>) -> Triggered {
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_casapay"))
            .arg("trigger")
            .args(&args)
            .env_remove("CASAPAY_API_KEY")
            .env_remove("CASAPAY_API")
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run casapay trigger")
    })
    .await
    .unwrap();
    Triggered {
        ok: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The event a run produced, read through the API: of type `kind`, about `object`.
async fn event_of(server: &Server, run: &Triggered, kind: &str, object: &str) -> Value {
    let event = server.get(&format!("/v1/events/{}", run.id_of("event"))).await;
    assert_eq!(event["type"], kind, "{event}");
    assert_eq!(event["livemode"], false);
    assert_eq!(event["data"]["object"]["object"], object, "{event}");
    event
}

/// The events `--list` prints, first word of each line.
async fn listed() -> Vec<String> {
    let r = run(vec!["--list".into()]).await.expect_ok();
    r.stdout.lines().map(|l| l.split_whitespace().next().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn trigger_customer_created_with_params_and_its_refusals() {
    // Nothing to reach for these: no server runs.
    let events = listed().await;
    for wanted in [
        "customer.created",
        "guarantee.created",
        "guarantee.activated",
        "guarantee.expired",
        "claim.submitted",
        "claim.approved",
        "claim.denied",
        "claim.paid",
        "payout.paid",
    ] {
        assert!(events.iter().any(|e| e == wanted), "--list lacks {wanted}: {events:?}");
    }
    let list = run(vec!["--list".into()]).await.stdout;
    assert!(list.lines().all(|l| l.split_whitespace().count() > 2), "each event with a description:\n{list}");

    let nowhere = "http://127.0.0.1:9";
    let live = run(["customer.created", "--api", nowhere, "--api-key", "sk_live_abc"].map(String::from).to_vec()).await;
    assert!(!live.ok && live.stdout.is_empty());
    assert!(live.stderr.contains("live key") && live.stderr.contains("test mode"), "{}", live.stderr);
    let unknown = run(["invoice.paid", "--api", nowhere, "--api-key", DEMO_KEY].map(String::from).to_vec()).await;
    assert!(!unknown.ok && unknown.stdout.is_empty());
    assert!(unknown.stderr.contains("unknown event \"invoice.paid\""), "{}", unknown.stderr);
    assert!(unknown.stderr.contains("claim.approved") && unknown.stderr.contains("guarantee.expired"), "the list");

    let server = Server::start().await;
    let r = server
        .trigger(&["customer.created", "--param", "name=Ana Tenant", "--param", "metadata[lease]=L1"])
        .await
        .expect_ok();
    let ids = r.ids();
    assert_eq!(ids.len(), 2, "the customer and the event: {ids:?}");
    assert_eq!(ids[0].0, "customer");
    assert!(ids[0].1.starts_with("cus_") && ids[1].0 == "event" && ids[1].1.starts_with("evt_"), "{ids:?}");
    let event = event_of(&server, &r, "customer.created", "customer").await;
    assert_eq!(event["data"]["object"]["id"], ids[0].1.as_str());
    assert_eq!(event["data"]["object"]["name"], "Ana Tenant", "--param replaced the name");
    assert_eq!(event["data"]["object"]["metadata"]["lease"], "L1", "--param added metadata[lease]");
    let customer = server.get(&format!("/v1/customers/{}", ids[0].1)).await;
    assert_eq!(customer["metadata"]["lease"], "L1");

    // A param the API refuses: its message, and a failure.
    let bad = server.trigger(&["customer.created", "--param", "score=high"]).await;
    assert!(!bad.ok, "exit status: {}", bad.stdout);
    assert!(bad.stderr.contains("HTTP 400") && bad.stderr.contains("score"), "the API's message: {}", bad.stderr);
    assert!(!bad.stdout.contains("event"), "no event: {}", bad.stdout);
    let unknown_field = server.trigger(&["customer.created", "--param", "colour=blue"]).await;
    assert!(!unknown_field.ok);
    assert!(unknown_field.stderr.contains("colour"), "{}", unknown_field.stderr);
    let not_a_pair = server.trigger(&["customer.created", "--param", "amount"]).await;
    assert!(!not_a_pair.ok && not_a_pair.stderr.contains("KEY=VALUE"), "{}", not_a_pair.stderr);
}

#[tokio::test]
async fn trigger_guarantee_activated_and_expired_on_a_test_clock() {
    let server = Server::start().await;
    let r = server.trigger(&["guarantee.activated", "--param", "metadata[lease]=L2"]).await.expect_ok();
    let clock = r.id_of("test_helpers.test_clock");
    let event = event_of(&server, &r, "guarantee.activated", "guarantee").await;
    let guarantee = &event["data"]["object"];
    assert_eq!(guarantee["id"], r.id_of("guarantee").as_str());
    assert_eq!(guarantee["status"], "active");
    assert_eq!(guarantee["metadata"]["lease"], "L2");
    let clock = server.get(&format!("/v1/test_helpers/test_clocks/{clock}")).await;
    assert_eq!(clock["status"], "ready");
    assert_eq!(clock["frozen_time"], guarantee["start_date"], "advanced to the start date");
    let tenant = server.get(&format!("/v1/customers/{}", r.id_of("customer"))).await;
    assert_eq!(tenant["test_clock"], clock["id"]);

    let r = server.trigger(&["guarantee.expired", "--param", "coverage_amount=99900"]).await.expect_ok();
    let event = event_of(&server, &r, "guarantee.expired", "guarantee").await;
    let guarantee = &event["data"]["object"];
    assert_eq!(guarantee["id"], r.id_of("guarantee").as_str());
    assert_eq!(guarantee["status"], "expired");
    assert_eq!(guarantee["coverage_amount"], 99900);
    let clock = server.get(&format!("/v1/test_helpers/test_clocks/{}", r.id_of("test_helpers.test_clock"))).await;
    assert_eq!(clock["frozen_time"], guarantee["end_date"]);

    // A start date the clock has reached already can never activate.
    let past = server.trigger(&["guarantee.activated", "--param", "start_date=1700000000"]).await;
    assert!(!past.ok && past.stderr.contains("start_date"), "{}", past.stderr);
}

#[tokio::test]
async fn trigger_claims_approved_denied_and_paid_by_the_claims_engine() {
    let server = Server::start().await;
    let r = server
        .trigger(&["claim.approved", "--param", "amount=5000", "--param", "metadata[lease]=L3"])
        .await
        .expect_ok();
    let claim = &event_of(&server, &r, "claim.approved", "claim").await["data"]["object"];
    assert_eq!(claim["id"], r.id_of("claim").as_str());
    assert_eq!(claim["amount"], 5000, "--param replaced the amount");
    assert_eq!(claim["amount_approved"], 5000);
    assert_eq!(claim["metadata"]["lease"], "L3");

    let r = server.trigger(&["claim.denied", "--param", "evidence[invoice_id]=inv_42"]).await.expect_ok();
    let claim = &event_of(&server, &r, "claim.denied", "claim").await["data"]["object"];
    assert_eq!(claim["id"], r.id_of("claim").as_str());
    assert_eq!(claim["denial_reason"], "waiting_period");
    assert_eq!(claim["evidence"]["invoice_id"], "inv_42");

    let r = server.trigger(&["payout.paid", "--param", "amount=7000"]).await.expect_ok();
    let payout = &event_of(&server, &r, "payout.paid", "payout").await["data"]["object"];
    assert_eq!(payout["id"], r.id_of("payout").as_str());
    assert_eq!(payout["claim"], r.id_of("claim").as_str());
    assert_eq!(payout["status"], "paid");
    assert_eq!(payout["amount"], 7000, "the claim's amount, approved in full");
    let claim = server.get(&format!("/v1/claims/{}", r.id_of("claim"))).await;
    assert_eq!(claim["status"], "paid");
}

/// Every event `--list` names can be triggered, each producing its event about the
/// object it printed: an entry added to the table is tested here too.
#[tokio::test]
async fn every_listed_event_can_be_triggered() {
    let server = Server::start().await;
    for kind in listed().await {
        let r = server.trigger(&[&kind]).await.expect_ok();
        // customer.created is about a customer, payout.paid about a payout, ...
        let object = kind.split('.').next().unwrap();
        let event = event_of(&server, &r, &kind, object).await;
        assert_eq!(event["data"]["object"]["id"], r.id_of(object).as_str(), "{kind}");
    }
}
