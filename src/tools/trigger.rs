//! `casapay trigger EVENT`: makes an event happen in test mode, as `stripe trigger`
//! does, by creating over the API the objects that produce it, and waiting for the
//! server to write it. Time-driven events run on a test clock of their own; events the
//! claims engine writes (a claim approved, denied or paid, a payout paid) are waited
//! for in the events list, within a deadline.
//!
//! Each event is one entry of [`FIXTURES`]: its name, a line for `--list`, the object
//! that `--param` goes to, and the function that sets it up. `--param key=value`
//! (bracket notation: `metadata[lease]=L1`, `evidence[due_date]=1708732800`) replaces
//! or adds one field of that object's create request, passed to the API as sent, so
//! the API's own validation answers a bad one.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::client::{ApiClient, CallError};
use crate::domain::DAY;

/// What `casapay trigger` was asked to do.
#[derive(Debug, Clone)]
pub struct TriggerOptions {
    pub event: String,
    /// `--param` fields, in the order given (the last of one key wins).
    pub params: Vec<(String, String)>,
    /// How long to wait for the server (the claims engine, a clock's advance).
    pub timeout: Duration,
    /// How often to look while waiting.
    pub poll: Duration,
}

/// The object an event is about, as its events name it: the event is the one of its
/// type whose `data.object[field]` is `id`.
struct Subject {
    field: &'static str,
    id: String,
}

type Made<'a> = Pin<Box<dyn Future<Output = Result<Subject, String>> + 'a>>;

/// One event `casapay trigger` can make happen.
pub struct Fixture {
    pub event: &'static str,
    /// The object whose create request `--param` changes.
    pub params_to: &'static str,
    /// One line for `--list`: what is created.
    pub description: &'static str,
    make: for<'a> fn(&'a mut Run) -> Made<'a>,
}

/// Every event `casapay trigger` can make happen, one entry each.
pub static FIXTURES: &[Fixture] = &[
    Fixture {
        event: "customer.created",
        params_to: "customer",
        description: "a customer (a tenant)",
        make: |run| Box::pin(customer_created(run)),
    },
    Fixture {
        event: "guarantee.created",
        params_to: "guarantee",
        description: "a customer, a policy and an active guarantee for a year",
        make: |run| Box::pin(guarantee_created(run)),
    },
    Fixture {
        event: "guarantee.activated",
        params_to: "guarantee",
        description: "a guarantee starting tomorrow on a test clock, and the clock advanced to its start_date",
        make: |run| Box::pin(guarantee_activated(run)),
    },
    Fixture {
        event: "guarantee.expired",
        params_to: "guarantee",
        description: "a 30-day guarantee on a test clock, and the clock advanced to its end_date",
        make: |run| Box::pin(guarantee_expired(run)),
    },
    Fixture {
        event: "claim.submitted",
        params_to: "claim",
        description: "an active guarantee and a claim for a missed payment (the engine then reviews it)",
        make: |run| Box::pin(claim(run, ClaimKind::Covered)),
    },
    Fixture {
        event: "claim.approved",
        params_to: "claim",
        description: "a claim for rent due within the coverage, approved by the claims engine",
        make: |run| Box::pin(claim(run, ClaimKind::Covered)),
    },
    Fixture {
        event: "claim.denied",
        params_to: "claim",
        description: "a claim for rent due within the policy's waiting period, denied by the claims engine",
        make: |run| Box::pin(claim(run, ClaimKind::InWaitingPeriod)),
    },
    Fixture {
        event: "claim.paid",
        params_to: "claim",
        description: "a claim approved by the claims engine and its payout paid",
        make: |run| Box::pin(claim(run, ClaimKind::Covered)),
    },
    Fixture {
        event: "payout.paid",
        params_to: "claim",
        description: "an approved claim's payout, paid",
        make: |run| Box::pin(naming_a_paid_claim(run)),
    },
    Fixture {
        event: "recovery.created",
        params_to: "claim",
        description: "a paid claim, and the recovery from the tenant of what was paid",
        make: |run| Box::pin(naming_a_paid_claim(run)),
    },
];

/// The fixture of `event`.
pub fn fixture(event: &str) -> Option<&'static Fixture> {
    FIXTURES.iter().find(|f| f.event == event)
}

/// What `casapay trigger --list` prints: one line per event.
pub fn list() -> String {
    let width = FIXTURES.iter().map(|f| f.event.len()).max().unwrap_or(0);
    FIXTURES.iter().map(|f| format!("{:width$}  {} (--param: the {})\n", f.event, f.description, f.params_to)).collect()
}

/// Refuses what is not a test key before anything is sent: the objects a trigger
/// creates must never land in live mode.
pub fn check_key(key: &str) -> Result<(), String> {
    if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        return Err("refusing a live key: casapay trigger creates objects, and only in test mode; \
             use a test key (sk_test_...)"
            .into());
    }
    if !key.starts_with("sk_test_") {
        return Err("casapay trigger needs a platform's secret test key (sk_test_...)".into());
    }
    Ok(())
}

/// Makes `options.event` happen: prints each object it creates (`object  id`, one a
/// line) as it goes, then `event  evt_...`, and answers the event's id.
/// Nothing is sent for an unknown event or a key that is not a test key.
pub async fn trigger(api: &str, key: &str, options: TriggerOptions) -> Result<String, String> {
    let Some(fixture) = fixture(&options.event) else {
        return Err(format!(
            "unknown event \"{}\". casapay trigger can trigger:\n{}",
            options.event,
            list().trim_end()
        ));
    };
    check_key(key)?;
    let client = ApiClient::new(api, key)?;
    let mut run = Run {
        client,
        params: options.params,
        deadline: Instant::now() + options.timeout,
        timeout: options.timeout,
        poll: options.poll,
    };
    let subject = (fixture.make)(&mut run).await?;
    let event = run.wait_for_event(fixture.event, &subject).await?;
    // The payout a payout.paid is about is the engine's, not ours: shown too.
    if subject.field != "id" {
        let object = &event["data"]["object"];
        println!("{}  {}", object["object"].as_str().unwrap_or("object"), object["id"].as_str().unwrap_or("?"));
    }
    let id = event["id"].as_str().unwrap_or_default().to_owned();
    println!("event  {id}");
    Ok(id)
}

/// One trigger's state: the client, the params for the subject, and the deadline.
struct Run {
    client: ApiClient,
    params: Vec<(String, String)>,
    deadline: Instant,
    timeout: Duration,
    poll: Duration,
}

/// A form body in bracket notation.
type Form = Vec<(String, String)>;

fn form(fields: &[(&str, String)]) -> Form {
    fields.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

/// `base` with each param replacing the field of its key, or added; a key ending in
/// `[]` (a list's item) adds to it each time.
fn with_params(mut base: Form, params: &[(String, String)]) -> Form {
    for (key, value) in params {
        if !key.ends_with("[]") {
            base.retain(|(k, _)| k != key);
        }
        base.push((key.clone(), value.clone()));
    }
    base
}

/// The Unix time on this machine.
fn local_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn int(v: &Value, field: &str) -> Result<i64, String> {
    v[field].as_i64().ok_or_else(|| format!("the API's answer has no integer {field}: {v}"))
}

fn text<'v>(v: &'v Value, field: &str) -> Result<&'v str, String> {
    v[field].as_str().ok_or_else(|| format!("the API's answer has no {field}: {v}"))
}

impl Run {
    /// `POST path` with `form`; prints the new object's `object  id`.
    async fn create(&self, what: &str, path: &str, form: Form) -> Result<Value, String> {
        let created = self.client.post_form(path, &form).await.map_err(|e| refused(what, e))?;
        println!("{}  {}", created["object"].as_str().unwrap_or(what), text(&created, "id")?);
        Ok(created)
    }

    /// [`Run::create`] for the object the event is about: `--param` applies.
    async fn create_subject(&self, what: &str, path: &str, base: Form) -> Result<Value, String> {
        self.create(what, path, with_params(base, &self.params)).await
    }

    /// `GET path` while waiting: `None` for trouble that passes (429, 5xx, the server
    /// restarting), which the deadline bounds.
    async fn poll(&self, path: &str) -> Result<Option<Value>, String> {
        match self.client.get_text(path).await {
            Ok(text) => {
                serde_json::from_str(&text).map(Some).map_err(|e| format!("GET {path}: the answer is not JSON: {e}"))
            }
            Err(e) if e.is_transient() => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// A tenant, on `clock` if given, with a score that every policy here admits.
    async fn customer(&self, clock: Option<&str>) -> Result<Value, String> {
        let mut fields = vec![("name", "Trigger tenant".to_owned()), ("score", "80".to_owned())];
        if let Some(clock) = clock {
            fields.push(("test_clock", clock.to_owned()));
        }
        self.create("customer", "/v1/customers", form(&fields)).await
    }

    /// A policy: full coverage for 12 months, after `waiting_period_days`, no deductible.
    async fn policy(&self, waiting_period_days: i64) -> Result<Value, String> {
        let fields = [
            ("name", "Trigger policy".to_owned()),
            ("coverage_percentage", "100".to_owned()),
            ("max_coverage_months", "12".to_owned()),
            ("waiting_period_days", waiting_period_days.to_string()),
        ];
        self.create("guarantee_policy", "/v1/guarantee_policies", form(&fields)).await
    }

    /// A guarantee of 1,500.00 EUR a month for `tenant` on `policy`, from `start` to
    /// `end`; the subject of the event when `subject`.
    async fn guarantee(
        &self,
        policy: &Value,
        tenant: &Value,
        start: i64,
        end: i64,
        subject: bool,
    ) -> Result<Value, String> {
        let fields = form(&[
            ("policy", text(policy, "id")?.to_owned()),
            ("tenant", text(tenant, "id")?.to_owned()),
            ("coverage_amount", "150000".to_owned()),
            ("currency", "eur".to_owned()),
            ("start_date", start.to_string()),
            ("end_date", end.to_string()),
        ]);
        if subject {
            self.create_subject("guarantee", "/v1/guarantees", fields).await
        } else {
            self.create("guarantee", "/v1/guarantees", fields).await
        }
    }

    /// A test clock at this machine's time.
    async fn clock(&self) -> Result<Value, String> {
        let fields = [("frozen_time", local_now().to_string()), ("name", "casapay trigger".to_owned())];
        self.create("test_clock", "/v1/test_helpers/test_clocks", form(&fields)).await
    }

    /// Advances `clock` to `to` and waits until it is `ready` again.
    async fn advance(&self, clock: &Value, to: i64) -> Result<(), String> {
        let id = text(clock, "id")?;
        let path = format!("/v1/test_helpers/test_clocks/{id}");
        self.client
            .post_form(&format!("{path}/advance"), &form(&[("frozen_time", to.to_string())]))
            .await
            .map_err(|e| refused("test clock advance", e))?;
        eprintln!("Advancing {id} to {to} ...");
        loop {
            if let Some(clock) = self.poll(&path).await? {
                match clock["status"].as_str() {
                    Some("ready") => return Ok(()),
                    Some("internal_failure") => return Err(format!("the test clock {id} failed to advance")),
                    _ => {}
                }
            }
            self.sleep_or_give_up(&format!(
                "the test clock {id} is still advancing after {} s: is the server's claims engine running \
                 (not --no-engine)?",
                self.timeout.as_secs()
            ))
            .await?;
        }
    }

    /// The event of `kind` about `subject`, once the server has written it.
    async fn wait_for_event(&self, kind: &str, subject: &Subject) -> Result<Value, String> {
        let path = format!("/v1/events?type={kind}&limit=100");
        let mut said = false;
        loop {
            let page = self.poll(&path).await?;
            let found = page
                .as_ref()
                .and_then(|p| p["data"].as_array())
                .and_then(|events| events.iter().find(|e| e["data"]["object"][subject.field] == subject.id.as_str()));
            if let Some(event) = found {
                return Ok(event.clone());
            }
            if !said {
                eprintln!("Waiting for {kind} ...");
                said = true;
            }
            self.sleep_or_give_up(&format!(
                "no {kind} event for {} within {} s: is the server's claims engine running (not --no-engine)?",
                subject.id,
                self.timeout.as_secs()
            ))
            .await?;
        }
    }

    async fn sleep_or_give_up(&self, why: &str) -> Result<(), String> {
        if Instant::now() >= self.deadline {
            return Err(why.to_owned());
        }
        tokio::time::sleep(self.poll).await;
        Ok(())
    }
}

/// The API's refusal as the user reads it: what was being created, and its message.
fn refused(what: &str, e: CallError) -> String {
    match e {
        CallError::Refused { status, message, .. } if (400..500).contains(&status) => {
            format!("the API refused the {what} (HTTP {status}): {message}")
        }
        e => e.to_string(),
    }
}

fn subject(field: &'static str, object: &Value) -> Result<Subject, String> {
    Ok(Subject { field, id: text(object, "id")?.to_owned() })
}

async fn customer_created(run: &mut Run) -> Result<Subject, String> {
    let fields = form(&[("name", "Trigger tenant".to_owned()), ("score", "80".to_owned())]);
    let customer = run.create_subject("customer", "/v1/customers", fields).await?;
    subject("id", &customer)
}

async fn guarantee_created(run: &mut Run) -> Result<Subject, String> {
    let tenant = run.customer(None).await?;
    // The server's time, as it stamped the customer.
    let now = int(&tenant, "created")?;
    let policy = run.policy(0).await?;
    let guarantee = run.guarantee(&policy, &tenant, now, now + 365 * DAY, true).await?;
    subject("id", &guarantee)
}

async fn guarantee_activated(run: &mut Run) -> Result<Subject, String> {
    let clock = run.clock().await?;
    let now = int(&clock, "frozen_time")?;
    let tenant = run.customer(Some(text(&clock, "id")?)).await?;
    let policy = run.policy(0).await?;
    let guarantee = run.guarantee(&policy, &tenant, now + DAY, now + 366 * DAY, true).await?;
    if guarantee["status"] != "pending" {
        return Err(format!(
            "the guarantee {} is {} already: guarantee.activated needs a start_date after the clock's time ({now})",
            text(&guarantee, "id")?,
            guarantee["status"]
        ));
    }
    run.advance(&clock, int(&guarantee, "start_date")?).await?;
    subject("id", &guarantee)
}

async fn guarantee_expired(run: &mut Run) -> Result<Subject, String> {
    let clock = run.clock().await?;
    let now = int(&clock, "frozen_time")?;
    let tenant = run.customer(Some(text(&clock, "id")?)).await?;
    let policy = run.policy(0).await?;
    let guarantee = run.guarantee(&policy, &tenant, now, now + 30 * DAY, true).await?;
    run.advance(&clock, int(&guarantee, "end_date")?).await?;
    subject("id", &guarantee)
}

/// How a claim fares in the claims engine's review (`domain::review::decide`).
#[derive(Clone, Copy)]
enum ClaimKind {
    /// A missed payment due within the coverage and under the month's
    /// `coverage_amount`: approved, then paid.
    Covered,
    /// Due before the policy's 60-day waiting period ends: denied (`waiting_period`).
    InWaitingPeriod,
}

/// A guarantee that started 30 days ago and a claim on it for a missed payment due
/// yesterday (no test clock: the engine reviews it on the wall clock within a poll).
async fn claim_on_new_guarantee(run: &Run, kind: ClaimKind) -> Result<Value, String> {
    let tenant = run.customer(None).await?;
    let now = int(&tenant, "created")?;
    let waiting_period_days = match kind {
        ClaimKind::Covered => 0,
        ClaimKind::InWaitingPeriod => 60,
    };
    let policy = run.policy(waiting_period_days).await?;
    let start = now - 30 * DAY;
    let guarantee = run.guarantee(&policy, &tenant, start, start + 365 * DAY, false).await?;
    let fields = form(&[
        ("guarantee", text(&guarantee, "id")?.to_owned()),
        ("amount", "150000".to_owned()),
        ("currency", "eur".to_owned()),
        ("reason", "missed_payment".to_owned()),
        ("evidence[invoice_id]", format!("inv_trigger_{now}")),
        ("evidence[due_date]", (now - DAY).to_string()),
        ("evidence[description]", "Rent unpaid (casapay trigger)".to_owned()),
    ]);
    run.create_subject("claim", "/v1/claims", fields).await
}

async fn claim(run: &mut Run, kind: ClaimKind) -> Result<Subject, String> {
    let claim = claim_on_new_guarantee(run, kind).await?;
    subject("id", &claim)
}

/// A paid claim, for the objects the engine makes of it (its payout, its recovery),
/// whose events name the claim.
async fn naming_a_paid_claim(run: &mut Run) -> Result<Subject, String> {
    let claim = claim_on_new_guarantee(run, ClaimKind::Covered).await?;
    subject("claim", &claim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_replace_fields_or_add_them() {
        let base = form(&[("name", "A".into()), ("score", "80".into())]);
        let params: Form = form(&[
            ("score", "10".into()),
            ("metadata[lease]", "L1".into()),
            ("evidence[files][]", "file_1".into()),
            ("evidence[files][]", "file_2".into()),
            ("metadata[lease]", "L2".into()),
        ]);
        assert_eq!(
            with_params(base, &params),
            form(&[
                ("name", "A".into()),
                ("score", "10".into()),
                ("evidence[files][]", "file_1".into()),
                ("evidence[files][]", "file_2".into()),
                ("metadata[lease]", "L2".into()),
            ])
        );
    }

    #[test]
    fn every_event_has_one_fixture_and_a_line_in_the_list() {
        let listed = list();
        for (i, f) in FIXTURES.iter().enumerate() {
            assert!(FIXTURES[..i].iter().all(|g| g.event != f.event), "{} twice", f.event);
            assert!(crate::domain::event::EventType::parse(f.event).is_some(), "{} is no event type", f.event);
            assert!(listed.lines().any(|l| l.starts_with(&format!("{}  ", f.event))), "{listed}");
        }
    }

    #[test]
    fn live_keys_are_refused() {
        assert!(check_key("sk_live_abc").unwrap_err().contains("live key"));
        assert!(check_key("opk_abc").is_err());
        assert!(check_key("sk_test_abc").is_ok());
    }
}
