//! The claims engine's steps: automated review, review by hand (operators and test
//! helpers), payouts, and the guarantees' time-driven status changes. Each step is one
//! transaction for a batch of claims or guarantees at a time (payouts: a lease, the
//! rail calls outside any transaction, then one transaction recording the answers),
//! that locks what it changes in a fixed order (payouts, claims, then guarantees by
//! id), so steps running at once on several replicas never deadlock or act twice.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use futures_util::stream::{self, StreamExt};

use super::claims::claim_error;
use super::guarantees::guarantee_error;
use super::rail::{PayoutRail, RailOutcome};
use super::{Call, Outbox, found};
use crate::clock::Clock;
use crate::domain::claim::{ActionType, Actor, Claim, ClaimAction, DenialReason, OperatorDenialReason};
use crate::domain::customer::Customer;
use crate::domain::event::EventType;
use crate::domain::file::File;
use crate::domain::guarantee::Guarantee;
use crate::domain::payout::{Payout, PayoutStatus};
use crate::domain::policy::Policy;
use crate::domain::recovery::{Recovery, RecoveryAction};
use crate::domain::review::{self as rules, Decision, Period, ReviewInput, decide, max_payable};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::metrics::ReviewOutcome;
use crate::store::payouts::{LeasedPayout, Settlement};
use crate::store::{self, Conn, Scope, Store, Tx};

/// `period_used`: what the guarantee's other approved and paid claims due in the
/// claim's period claimed, read under the guarantee's lock.
fn review_input(claim: &Claim, g: &Guarantee, p: &Policy, period_used: i64) -> ReviewInput {
    ReviewInput {
        reason: claim.reason,
        amount: claim.amount,
        due_date: claim.evidence.due_date,
        start_date: g.start_date,
        end_date: g.end_date,
        waiting_period_days: p.waiting_period_days,
        coverage_amount: g.coverage_amount,
        coverage_percentage: p.coverage_percentage,
        deductible_amount: p.deductible_amount,
        remaining_coverage: g.remaining(),
        period_used,
    }
}

/// What the approved and paid claims of these claims' guarantees used of each claim's
/// period, keyed by guarantee and period. The guarantees must be locked already:
/// every approval holds its guarantee's lock, so the sums stay true until commit, as
/// `claims_reserved` does for the total coverage.
async fn period_usage(tx: &mut Tx, claims: &[&Claim]) -> ApiResult<HashMap<(String, Period), i64>> {
    let pairs: Vec<(&str, Period)> =
        claims.iter().map(|c| (c.guarantee.as_str(), Period::of(c.evidence.due_date))).collect();
    Ok(store::claims::period_usage(tx, &pairs).await?)
}

fn period_key(claim: &Claim) -> (String, Period) {
    (claim.guarantee.clone(), Period::of(claim.evidence.due_date))
}

/// The claim's guarantee (locked) and policy. Both exist: claims reference them.
async fn claim_terms(tx: &mut Tx, scope: &Scope, claim: &Claim) -> ApiResult<(Guarantee, Policy)> {
    let g = store::guarantees::get_for_update(tx, scope, &claim.guarantee)
        .await?
        .ok_or_else(|| ApiError::internal(format!("claim {} has no guarantee", claim.id)))?;
    let p = store::policies::get(tx, scope, &g.policy)
        .await?
        .ok_or_else(|| ApiError::internal(format!("guarantee {} has no policy", g.id)))?;
    Ok((g, p))
}

/// What a step changes, kept until its end and then written with one statement per
/// kind (per chunk of rows) in an order the foreign keys allow: new payouts, settled
/// payouts, guarantees, claims, then events and their deliveries. Each guarantee and
/// claim is written once, in the state it ended the step in. Every row it updates was
/// locked earlier in the same transaction.
#[derive(Default)]
struct StepWrites {
    new_payouts: Vec<(Scope, Payout)>,
    /// Payout id, lease token, new status, arrival date.
    settled_payouts: Vec<(String, i64, PayoutStatus, Option<i64>)>,
    guarantees: BTreeMap<String, Guarantee>,
    claims: BTreeMap<String, Claim>,
    /// The claims' audit trail, in the order the steps were taken.
    actions: Vec<(Scope, ClaimAction)>,
    /// Recoveries opened by paid claims.
    new_recoveries: Vec<(Scope, Recovery)>,
    /// Recoveries whose plan changed (installments missed), locked earlier.
    recoveries: BTreeMap<String, Recovery>,
    /// The recoveries' trail.
    recovery_actions: Vec<(Scope, RecoveryAction)>,
    outbox: Outbox,
}

impl StepWrites {
    fn guarantee(&mut self, g: &Guarantee) {
        self.guarantees.insert(g.id.clone(), g.clone());
    }

    fn claim(&mut self, c: &Claim) {
        self.claims.insert(c.id.clone(), c.clone());
    }

    #[allow(clippy::too_many_arguments)]
    fn action(
        &mut self,
        call: &Call,
        at: i64,
        c: &Claim,
        kind: ActionType,
        by: &Actor,
        message: Option<String>,
        amount: Option<i64>,
    ) {
        self.actions.push((call.scope.clone(), new_action(at, c, kind, by, message, amount)));
    }

    async fn write(self, tx: &mut Tx) -> ApiResult<()> {
        let payouts: Vec<(&Scope, &Payout)> = self.new_payouts.iter().map(|(s, p)| (s, p)).collect();
        store::payouts::insert(tx, &payouts).await?;
        let settled: Vec<Settlement> = self
            .settled_payouts
            .iter()
            .map(|(id, token, status, arrival)| (id.as_str(), *token, *status, *arrival))
            .collect();
        written(
            store::payouts::settle(tx, &settled).await?,
            settled.len(),
            "payouts to settle (one was no longer pending under its lease)",
        )?;
        let guarantees: Vec<&Guarantee> = self.guarantees.values().collect();
        written(store::guarantees::update_locked(tx, &guarantees).await?, guarantees.len(), "guarantees")?;
        let claims: Vec<&Claim> = self.claims.values().collect();
        written(store::claims::update_locked(tx, &claims).await?, claims.len(), "claims")?;
        let opened: Vec<(&Scope, &Recovery)> = self.new_recoveries.iter().map(|(s, r)| (s, r)).collect();
        store::recoveries::insert(tx, &opened).await?;
        let recoveries: Vec<&Recovery> = self.recoveries.values().collect();
        written(store::recoveries::update_plans_locked(tx, &recoveries).await?, recoveries.len(), "recoveries")?;
        let trail: Vec<(&Scope, &RecoveryAction)> = self.recovery_actions.iter().map(|(s, a)| (s, a)).collect();
        store::recoveries::insert_actions(tx, &trail).await?;
        // Deferred: with the events, as one statement on PostgreSQL.
        let actions: Vec<(&Scope, &ClaimAction)> = self.actions.iter().map(|(s, a)| (s, a)).collect();
        store::claim_actions::insert(tx, &actions).await?;
        self.outbox.write(tx).await
    }
}

/// Fails the step (its transaction rolls back) unless every row it meant to write was.
fn written(rows: u64, expected: usize, what: &str) -> ApiResult<()> {
    if rows != expected as u64 {
        return Err(ApiError::internal(format!("{what}: wrote {rows} of {expected}")));
    }
    Ok(())
}

/// A step of a claim's review for its audit trail, taken at `at`: the claim's time
/// (its tenant's test clock, or the wall clock).
pub(crate) fn new_action(
    at: i64,
    c: &Claim,
    kind: ActionType,
    by: &Actor,
    message: Option<String>,
    amount: Option<i64>,
) -> ClaimAction {
    ClaimAction {
        id: Kind::ClaimAction.new_id(),
        claim: c.id.clone(),
        kind,
        actor: by.as_str().to_owned(),
        message,
        amount,
        livemode: c.livemode,
        created: at,
    }
}

/// Approves `amount` at object time `at`, reserves it on the guarantee and creates the
/// pending payout.
fn approve(
    w: &mut StepWrites,
    call: &Call,
    at: i64,
    claim: Claim,
    g: &mut Guarantee,
    amount: i64,
    by: &Actor,
) -> ApiResult<Claim> {
    let mut after = claim.clone();
    let payout = after.approve(at, amount, Kind::Payout.new_id(), by).map_err(claim_error)?;
    g.reserve(amount).map_err(guarantee_error)?;
    w.guarantee(g);
    w.new_payouts.push((call.scope.clone(), payout));
    w.claim(&after);
    w.action(call, at, &after, ActionType::Approved, by, None, Some(amount));
    w.outbox.record_update(call, EventType::ClaimApproved, &claim, &after)?;
    Ok(after)
}

fn deny(
    w: &mut StepWrites,
    call: &Call,
    at: i64,
    claim: Claim,
    reason: Option<DenialReason>,
    note: Option<String>,
    by: &Actor,
) -> ApiResult<Claim> {
    let mut after = claim.clone();
    let message = match (&reason, &note) {
        (Some(r), Some(n)) => Some(format!("{r}: {n}")),
        (Some(r), None) => Some(r.to_string()),
        (None, n) => n.clone(),
    };
    after.deny(at, reason, note, by).map_err(claim_error)?;
    w.claim(&after);
    w.action(call, at, &after, ActionType::Denied, by, message, None);
    w.outbox.record_update(call, EventType::ClaimDenied, &claim, &after)?;
    Ok(after)
}

/// What the `checked` action says of the rules' outcome.
fn checked_message(checks: &[rules::Check], decision: &Decision) -> String {
    match decision {
        Decision::Approve { amount } => format!("All {} rules pass; approved for {amount}.", checks.len()),
        Decision::Deny(reason) => {
            let why = checks.iter().find(|c| c.rule == reason.as_str()).map(|c| c.message.as_str()).unwrap_or("");
            format!("Denied: {reason}. {why}")
        }
        Decision::Operator => {
            format!("All {} rules pass; the reason needs a person: waiting for an operator.", checks.len())
        }
    }
}

/// Reviews up to `limit` of the oldest claims waiting for automation, all in one
/// transaction, so that a backlog costs one commit per batch rather than one per claim.
/// `clock`: `None` for the engine's share (claims on no test clock, reviewed at `now`,
/// and claims on ready clocks, at the clock's time), or one advancing clock's claims
/// (at its time, for [`super::test_clocks::advance_step`]). Returns how many were
/// reviewed (approved, denied, or handed to an operator).
pub async fn review_due(store: &Store, clock: Option<&str>, now: i64, limit: usize) -> ApiResult<usize> {
    let mut tx = store.begin().await?;
    let claims = store::claims::next_for_review(&mut tx, clock, limit).await?;
    if claims.is_empty() {
        return Ok(0);
    }
    let ids: Vec<&str> = claims.iter().map(|(_, c)| c.guarantee.as_str()).collect();
    let clock_times = store::test_clocks::times_of_guarantees(&mut tx, &ids).await?;
    // One statement locks every guarantee of the batch, in id order (so batches taken
    // by several replicas at once cannot deadlock), and one reads their policies.
    let ids: Vec<&str> = claims.iter().map(|(_, c)| c.guarantee.as_str()).collect();
    let mut guarantees = store::guarantees::lock_many(&mut tx, &ids).await?;
    let ids: Vec<&str> = guarantees.values().map(|(_, g)| g.policy.as_str()).collect();
    let policies = store::policies::get_many(&mut tx, &ids).await?;
    let batch: Vec<&Claim> = claims.iter().map(|(_, c)| c).collect();
    let mut used = period_usage(&mut tx, &batch).await?;
    // Claims in filing order: a guarantee's first claim is the first to draw on its
    // coverage, and a later one sees what it reserved.
    let reviewed = claims.len();
    let mut writes = StepWrites::default();
    for (scope, claim) in claims {
        let call = Call::job(scope, now);
        let g = match guarantees.get_mut(&claim.guarantee) {
            Some((s, g)) if *s == call.scope => g,
            _ => return Err(ApiError::internal(format!("claim {} has no guarantee", claim.id))),
        };
        let p = match policies.get(&g.policy) {
            Some((s, p)) if *s == call.scope => p,
            _ => return Err(ApiError::internal(format!("guarantee {} has no policy", g.id))),
        };
        let at = clock_times.get(&g.id).copied().unwrap_or(now);
        let period = period_key(&claim);
        let period_used = used.get(&period).copied().unwrap_or(0);
        let input = review_input(&claim, g, p, period_used);
        let decision = decide(&input);
        // The checks are part of the claim before its decision, so the decision's
        // event carries them.
        let mut claim = claim;
        claim.review.checks = rules::checks(&input);
        writes.action(
            &call,
            at,
            &claim,
            ActionType::Checked,
            &Actor::Automation,
            Some(checked_message(&claim.review.checks, &decision)),
            None,
        );
        match decision {
            Decision::Approve { amount } => {
                // The next claim of the batch for this month sees this one's claim.
                *used.entry(period).or_default() += claim.amount;
                approve(&mut writes, &call, at, claim, g, amount, &Actor::Automation)?;
                tx.count_on_commit(|m| m.claims_reviewed(ReviewOutcome::Approved));
            }
            Decision::Deny(reason) => {
                deny(&mut writes, &call, at, claim, Some(reason.into()), None, &Actor::Automation)?;
                tx.count_on_commit(|m| m.claims_reviewed(ReviewOutcome::Denied));
            }
            Decision::Operator => {
                let mut waiting = claim;
                waiting.hand_to_operator().map_err(claim_error)?;
                writes.claim(&waiting);
                tx.count_on_commit(|m| m.claims_reviewed(ReviewOutcome::Referred));
            }
        }
    }
    writes.write(&mut tx).await?;
    tx.commit().await?;
    Ok(reviewed)
}

/// A decision taken by hand.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Approve the computed maximum, or a lower `amount`.
    Approve { amount: Option<i64> },
    /// `note` is the operator's explanation (required with `other`; checked at the edge).
    Deny { reason: Option<OperatorDenialReason>, note: Option<String> },
}

/// Who reviews by hand, and the four-eyes threshold that applies to them.
#[derive(Debug, Clone)]
pub struct Reviewer {
    pub actor: Actor,
    /// Approvals of this amount or more need two different operators; 0: never. Only
    /// operators are held to it (a test helper forces an outcome).
    pub second_approval_amount: i64,
}

/// Approves or denies a claim under review, for an operator (`scope` is `None`: any
/// account) or a platform's test helper (its own scope only).
///
/// Four eyes: an operator's approval at or above `second_approval_amount` on a claim
/// without one is recorded (`review.approvals`, `claim.review_updated`) and the claim
/// stays under review; once one is recorded, another operator's approval approves the
/// claim for the lower of the two amounts, and the same operator's is refused
/// (`second_approval_required`). The claim's row lock orders approvals at once.
pub async fn review_by_hand(
    tx: &mut Tx,
    scope: Option<&Scope>,
    request: &Call,
    claim_id: &str,
    verdict: Verdict,
    reviewer: &Reviewer,
) -> ApiResult<Claim> {
    let not_found = || ApiError::no_such(Kind::Claim.object(), claim_id, Some("id"));
    // The claim's clock first (its time, and no write while it advances), then the
    // claim: the order every writer locks them in.
    let scope = match scope {
        Some(s) => s.clone(),
        None => store::claims::scope_of(tx, claim_id).await?.ok_or_else(not_found)?,
    };
    let call = Call { scope, ..request.clone() };
    let at = super::test_clocks::time_for(tx, &call, store::test_clocks::Holder::Claim, claim_id).await?;
    let claim = store::claims::get_for_update(tx, &call.scope, claim_id).await?.ok_or_else(not_found)?;
    // Before the amount is judged: a decided claim answers that it is decided.
    claim.check_under_review().map_err(claim_error)?;
    let by = &reviewer.actor;
    let mut writes = StepWrites::default();
    let reviewed = match verdict {
        Verdict::Deny { reason, note } => {
            tx.count_on_commit(|m| m.claims_reviewed(ReviewOutcome::Denied));
            deny(&mut writes, &call, at, claim, reason.map(Into::into), note, by)?
        }
        Verdict::Approve { amount } => {
            let (mut g, p) = claim_terms(tx, &call.scope, &claim).await?;
            // Read after the guarantee's lock, as the engine does.
            let period_used = period_usage(tx, &[&claim]).await?.get(&period_key(&claim)).copied().unwrap_or(0);
            let input = review_input(&claim, &g, &p, period_used);
            let mut claim = claim;
            claim.review.checks = rules::checks(&input);
            let max = max_payable(&input).map_err(|reason| {
                ApiError::state(
                    "claim_not_approvable",
                    format!("This claim cannot be approved: the rules deny it ({reason})."),
                )
            })?;
            let mut amount = match amount {
                Some(a) if a > max => {
                    return Err(ApiError::invalid(
                        "amount_too_large",
                        "amount",
                        format!("The amount cannot exceed {max}, the most this claim can be paid."),
                    ));
                }
                Some(a) => a,
                None => max,
            };
            let four_eyes = reviewer.second_approval_amount > 0 && matches!(by, Actor::Operator(_));
            match (four_eyes, claim.review.approvals.first().cloned()) {
                (true, Some(first)) => {
                    if first.operator == by.as_str() {
                        return Err(second_approval_required());
                    }
                    amount = amount.min(first.amount);
                    tx.count_on_commit(|m| m.claims_reviewed(ReviewOutcome::Approved));
                    approve(&mut writes, &call, at, claim, &mut g, amount, by)?
                }
                (true, None) if amount >= reviewer.second_approval_amount => {
                    let before = claim.clone();
                    let mut after = claim;
                    after.record_approval(at, by.as_str(), amount).map_err(claim_error)?;
                    writes.claim(&after);
                    let message = format!(
                        "First approval of {amount}; a second operator must approve (four eyes at {}).",
                        reviewer.second_approval_amount
                    );
                    writes.action(&call, at, &after, ActionType::ApprovalRecorded, by, Some(message), Some(amount));
                    writes.outbox.record_update(&call, EventType::ClaimReviewUpdated, &before, &after)?;
                    after
                }
                _ => {
                    tx.count_on_commit(|m| m.claims_reviewed(ReviewOutcome::Approved));
                    approve(&mut writes, &call, at, claim, &mut g, amount, by)?
                }
            }
        }
    };
    writes.write(tx).await?;
    Ok(reviewed)
}

fn second_approval_required() -> ApiError {
    ApiError::invalid(
        "second_approval_required",
        "amount",
        "You recorded the first approval of this claim: a second, different operator must approve it.",
    )
}

/// The claim, locked, in `scope` (an operator's call gets its scope from `clocked_call`).
async fn claim_for_update(tx: &mut Tx, scope: &Scope, claim_id: &str) -> ApiResult<Claim> {
    store::claims::get_for_update(tx, scope, claim_id)
        .await?
        .ok_or_else(|| ApiError::no_such(Kind::Claim.object(), claim_id, Some("id")))
}

/// An operator's call on a claim of any account: its scope, and the claim's time (no
/// write while its tenant's test clock advances), read before the claim is locked, in
/// the order every writer takes them.
async fn clocked_call(tx: &mut Tx, request: &Call, claim_id: &str) -> ApiResult<(Call, i64)> {
    let scope = store::claims::scope_of(tx, claim_id)
        .await?
        .ok_or_else(|| ApiError::no_such(Kind::Claim.object(), claim_id, Some("id")))?;
    let call = Call { scope, ..request.clone() };
    let at = super::test_clocks::time_for(tx, &call, store::test_clocks::Holder::Claim, claim_id).await?;
    Ok((call, at))
}

/// An operator asks the platform for more evidence: `review.evidence_requested` is
/// set and `claim.evidence_requested` sent; the claim waits for the platform's answer.
pub async fn request_evidence(
    tx: &mut Tx,
    request: &Call,
    claim_id: &str,
    message: String,
    by: &Actor,
) -> ApiResult<Claim> {
    let (call, at) = clocked_call(tx, request, claim_id).await?;
    let before = claim_for_update(tx, &call.scope, claim_id).await?;
    let mut after = before.clone();
    after.request_evidence(message.clone()).map_err(claim_error)?;
    store::claims::update(tx, &call.scope, &after).await?;
    let action = new_action(at, &after, ActionType::EvidenceRequested, by, Some(message), None);
    store::claim_actions::insert(tx, &[(&call.scope, &action)]).await?;
    super::record_update(tx, &call, EventType::ClaimEvidenceRequested, &before, &after).await?;
    Ok(after)
}

/// An operator's internal note on a claim: an action of the audit trail, which only
/// operators read (no event: events go to the platform).
pub async fn add_note(tx: &mut Tx, request: &Call, claim_id: &str, note: String, by: &Actor) -> ApiResult<ClaimAction> {
    let (call, at) = clocked_call(tx, request, claim_id).await?;
    let claim = claim_for_update(tx, &call.scope, claim_id).await?;
    let action = new_action(at, &claim, ActionType::NoteAdded, by, Some(note), None);
    store::claim_actions::insert(tx, &[(&call.scope, &action)]).await?;
    Ok(action)
}

/// One page of the operators' queue.
pub async fn queue(
    store: &Store,
    filters: &store::claims::QueueFilters,
    limit: i64,
    starting_after: Option<&str>,
) -> ApiResult<store::Page<(Scope, Claim)>> {
    store
        .run(async |conn| {
            let after = match starting_after {
                Some(id) => Some(
                    store::claims::queue_position(conn, id)
                        .await?
                        .ok_or_else(|| ApiError::no_such(Kind::Claim.object(), id, Some("starting_after")))?,
                ),
                None => None,
            };
            Ok(store::claims::review_queue(conn, filters, limit, after).await?)
        })
        .await
}

/// Everything an operator looks at to decide a claim.
#[derive(Debug, Clone)]
pub struct ReviewFile {
    pub scope: Scope,
    pub claim: Claim,
    pub guarantee: Guarantee,
    pub policy: Policy,
    pub tenant: Option<Customer>,
    pub payout: Option<Payout>,
    /// The evidence files, in the order the claim names them.
    pub files: Vec<File>,
    /// The audit trail, oldest first, notes included.
    pub actions: Vec<ClaimAction>,
    /// The most the claim can be paid now, or why it cannot (only while under review).
    pub max_payable: Option<Result<i64, crate::domain::claim::AutomatedDenialReason>>,
}

/// A claim of any account with what deciding it needs.
pub async fn review_file(store: &Store, claim_id: &str) -> ApiResult<ReviewFile> {
    store.run(async |conn| review_file_on(conn, claim_id).await).await
}

async fn review_file_on(conn: &mut Conn, claim_id: &str) -> ApiResult<ReviewFile> {
    let (scope, claim) = store::claims::get_any(conn, claim_id)
        .await?
        .ok_or_else(|| ApiError::no_such(Kind::Claim.object(), claim_id, Some("id")))?;
    let guarantee = store::guarantees::get(conn, &scope, &claim.guarantee)
        .await?
        .ok_or_else(|| ApiError::internal(format!("claim {} has no guarantee", claim.id)))?;
    let policy = store::policies::get(conn, &scope, &guarantee.policy)
        .await?
        .ok_or_else(|| ApiError::internal(format!("guarantee {} has no policy", guarantee.id)))?;
    let tenant = store::customers::get(conn, &scope, &guarantee.tenant).await?;
    let payout = match &claim.payout {
        Some(id) => store::payouts::get(conn, &scope, id).await?,
        None => None,
    };
    let mut files = Vec::with_capacity(claim.evidence.files.len());
    for id in &claim.evidence.files {
        // In the claim's scope: a claim names files of its own account and mode only.
        let file = store::files::get(conn, &scope, id)
            .await?
            .ok_or_else(|| ApiError::internal(format!("claim {} names a missing file {id}", claim.id)))?;
        files.push(file);
    }
    let actions = store::claim_actions::for_claim(conn, &scope, &claim.id).await?;
    let max = if claim.check_under_review().is_ok() {
        let pairs = [(claim.guarantee.as_str(), Period::of(claim.evidence.due_date))];
        let used = store::claims::period_usage(conn, &pairs).await?;
        let period_used = used.get(&period_key(&claim)).copied().unwrap_or(0);
        Some(max_payable(&review_input(&claim, &guarantee, &policy, period_used)))
    } else {
        None
    };
    Ok(ReviewFile { scope, claim, guarantee, policy, tenant, payout, files, actions, max_payable: max })
}

/// An evidence file of a claim of any account, and its bytes, for an operator (the
/// console's download): found only among the files the claim names, and read in the
/// claim's account and mode.
pub async fn evidence_file(store: &Store, claim_id: &str, file_id: &str) -> ApiResult<(File, Vec<u8>)> {
    store
        .run(async |conn| {
            let (scope, claim) = store::claims::get_any(conn, claim_id)
                .await?
                .ok_or_else(|| ApiError::no_such(Kind::Claim.object(), claim_id, Some("id")))?;
            if !claim.evidence.files.iter().any(|f| f == file_id) {
                return Err(ApiError::no_such(Kind::File.object(), file_id, Some("id")));
            }
            super::files::contents_in(conn, &scope, file_id).await
        })
        .await
}

/// How the engine leases and sends payouts.
#[derive(Debug, Clone)]
pub struct PayoutConfig {
    /// How long a step holds the payouts it leased, in clock seconds. Longer than
    /// `rail_timeout`, so that a step still alive records its answers before another
    /// replica may take the payouts over.
    pub lease_seconds: i64,
    /// How long a step waits for the rail, all its calls together; a payout with no
    /// answer by then is given back and sent again at the next step.
    pub rail_timeout: Duration,
    /// The most rail calls one step has in flight at once.
    pub rail_concurrency: usize,
}

impl Default for PayoutConfig {
    fn default() -> Self {
        PayoutConfig { lease_seconds: 60, rail_timeout: Duration::from_secs(30), rail_concurrency: 16 }
    }
}

/// Sends up to `limit` of the oldest pending payouts through the rail, the way the
/// dispatcher sends deliveries: a short transaction leases them, the rail is called
/// outside any transaction (so a slow rail holds no lock, and on SQLite not the one
/// writer every API request waits for), and a second transaction records the answers
/// of the payouts whose lease still holds. A crash between the two leaves the lease to
/// run out; the payout is then leased again and sent again under the same id, which
/// the rail must treat as the same payout (see [`PayoutRail`]). A payout the rail has
/// no answer for yet is given back for the next step without holding back the others.
/// Returns how many were settled.
///
/// `test_clock`: `None` for the engine's share (payouts on no test clock, and on ready
/// clocks), or one advancing clock's payouts. The rail and the records see each
/// payout's object time: the wall clock's, or its test clock's `frozen_time`.
pub async fn pay_due(
    store: &Store,
    test_clock: Option<&str>,
    rail: &dyn PayoutRail,
    clock: &dyn Clock,
    limit: usize,
    config: &PayoutConfig,
) -> ApiResult<usize> {
    let leased = lease_payouts_on(store, test_clock, clock.now(), limit, config.lease_seconds).await?;
    if leased.is_empty() {
        return Ok(0);
    }
    let times = {
        let ids: Vec<&str> = leased.iter().map(|l| l.payout.guarantee.as_str()).collect();
        store.run(async |conn| store::test_clocks::times_of_guarantees(conn, &ids).await).await?
    };
    let answers = call_rail(rail, &leased, &times, clock.now(), config).await;
    settle_payouts(store, clock.now(), leased.into_iter().zip(answers).collect()).await
}

/// Leases up to `limit` of the oldest pending payouts of the engine's share no live
/// lease holds, until `now + lease_seconds`, in a transaction of its own.
pub async fn lease_payouts(store: &Store, now: i64, limit: usize, lease_seconds: i64) -> ApiResult<Vec<LeasedPayout>> {
    lease_payouts_on(store, None, now, limit, lease_seconds).await
}

/// `lease_payouts`, of the engine's share (`None`) or of one test clock.
pub async fn lease_payouts_on(
    store: &Store,
    test_clock: Option<&str>,
    now: i64,
    limit: usize,
    lease_seconds: i64,
) -> ApiResult<Vec<LeasedPayout>> {
    let mut tx = store.begin().await?;
    let leased = store::payouts::lease_due(&mut tx, test_clock, now, now + lease_seconds, limit).await?;
    tx.commit().await?;
    Ok(leased)
}

/// The rail's answer for each leased payout, in order: `None` when it has none yet,
/// or none within the timeout. No transaction is open meanwhile.
async fn call_rail(
    rail: &dyn PayoutRail,
    leased: &[LeasedPayout],
    clock_times: &HashMap<String, i64>,
    now: i64,
    config: &PayoutConfig,
) -> Vec<Option<RailOutcome>> {
    let deadline = tokio::time::Instant::now() + config.rail_timeout;
    // The calls are made (not yet started) before they are streamed: a stream mapping
    // through a closure that returns a borrowing future is one rustc cannot prove
    // `Send` for the engine's spawned loop.
    let calls: Vec<_> = leased
        .iter()
        .map(|l| {
            let at = clock_times.get(&l.payout.guarantee).copied().unwrap_or(now);
            call_once(rail, &l.payout, at, deadline, config.rail_timeout)
        })
        .collect();
    stream::iter(calls).buffered(config.rail_concurrency.max(1)).collect().await
}

/// One payout's rail call, cut off at `deadline`.
async fn call_once(
    rail: &dyn PayoutRail,
    payout: &Payout,
    now: i64,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Option<RailOutcome> {
    // Queued behind slow calls past the deadline: not started, sent at the next step.
    if tokio::time::Instant::now() >= deadline {
        return None;
    }
    match tokio::time::timeout_at(deadline, rail.pay(payout, now)).await {
        Ok(Ok(outcome)) => Some(outcome),
        Ok(Err(e)) => {
            tracing::warn!(payout = %payout.id, error = %e, "payout rail has no answer yet; sent again later");
            None
        }
        Err(_) => {
            let timeout_ms = timeout.as_millis() as u64;
            tracing::warn!(payout = %payout.id, timeout_ms, "payout rail did not answer in time; sent again later");
            None
        }
    }
}

/// Records the rail's answers for leased payouts in one transaction: each payout still
/// pending under its lease token is settled (with its claim, guarantee and events);
/// one whose lease was taken over since is left to its new holder; one without an
/// answer is given back. Returns how many were settled.
pub async fn settle_payouts(
    store: &Store,
    now: i64,
    answers: Vec<(LeasedPayout, Option<RailOutcome>)>,
) -> ApiResult<usize> {
    let mut tx = store.begin().await?;
    // The payouts first, then their claims and guarantees, each kind in one statement
    // and in id order, as every engine step locks them.
    let leases: Vec<(&str, i64)> = answers.iter().map(|(l, _)| (l.payout.id.as_str(), l.token)).collect();
    let held: HashSet<String> = store::payouts::lock_leased(&mut tx, &leases).await?.into_iter().collect();
    let (mut answered, mut unanswered) = (Vec::with_capacity(answers.len()), Vec::new());
    for (leased, outcome) in answers {
        if !held.contains(&leased.payout.id) {
            tracing::warn!(payout = %leased.payout.id, "payout lease lost before the rail's answer was recorded; answer dropped");
            continue;
        }
        match outcome {
            Some(outcome) => answered.push((leased, outcome)),
            None => unanswered.push(leased),
        }
    }
    let give_back: Vec<(&str, i64)> = unanswered.iter().map(|l| (l.payout.id.as_str(), l.token)).collect();
    store::payouts::release(&mut tx, &give_back).await?;
    let ids: Vec<&str> = answered.iter().map(|(l, _)| l.payout.claim.as_str()).collect();
    let mut claims = store::claims::lock_many(&mut tx, &ids).await?;
    let ids: Vec<&str> = answered.iter().map(|(l, _)| l.payout.guarantee.as_str()).collect();
    let mut guarantees = store::guarantees::lock_many(&mut tx, &ids).await?;
    let clock_times = store::test_clocks::times_of_guarantees(&mut tx, &ids).await?;
    let settled = answered.len();
    let mut writes = StepWrites::default();
    for (LeasedPayout { scope, payout, token }, outcome) in answered {
        let call = Call::job(scope, now);
        let claim = match claims.remove(&payout.claim) {
            Some((s, c)) if s == call.scope => c,
            _ => return Err(ApiError::internal(format!("payout {} has no claim", payout.id))),
        };
        let g = match guarantees.get_mut(&payout.guarantee) {
            Some((s, g)) if *s == call.scope => g,
            _ => return Err(ApiError::internal(format!("payout {} has no guarantee", payout.id))),
        };
        let at = clock_times.get(&payout.guarantee).copied().unwrap_or(now);
        settle(&mut writes, &call, at, payout, token, outcome, claim, g)?;
    }
    writes.write(&mut tx).await?;
    tx.commit().await?;
    Ok(settled)
}

/// Records the rail's answer for a payout locked under its lease `token`: its claim,
/// the guarantee's reserved and paid amounts, and the events.
#[allow(clippy::too_many_arguments)]
fn settle(
    w: &mut StepWrites,
    call: &Call,
    at: i64,
    payout: Payout,
    token: i64,
    outcome: RailOutcome,
    claim: Claim,
    g: &mut Guarantee,
) -> ApiResult<()> {
    let now = at;
    let (status, arrival_date) = match &outcome {
        RailOutcome::Paid { arrival_date } => (PayoutStatus::Paid, Some(*arrival_date)),
        RailOutcome::Failed { .. } => (PayoutStatus::Failed, None),
    };
    w.settled_payouts.push((payout.id.clone(), token, status, arrival_date));
    let settled = Payout { status, arrival_date, ..payout.clone() };
    let g_before = g.clone();
    let claimed = g.settle_payout(payout.amount, status == PayoutStatus::Paid);
    match outcome {
        RailOutcome::Paid { .. } => {
            let mut paid = claim.clone();
            paid.mark_paid(now).map_err(claim_error)?;
            w.claim(&paid);
            w.action(call, now, &paid, ActionType::Paid, &Actor::Automation, None, Some(payout.amount));
            w.outbox.record(call, EventType::PayoutPaid, &settled)?;
            w.outbox.record_update(call, EventType::ClaimPaid, &claim, &paid)?;
            // The tenant now owes what was paid: the recovery opens with the payment.
            let recovery = super::recoveries::open(now, &paid, g, &settled);
            let opened = super::recoveries::new_action(
                now,
                &recovery,
                crate::domain::recovery::RecoveryActionType::Opened,
                &Actor::Automation,
                Some(payout.amount),
                None,
                Some(format!("Opened for the payout {} of claim {}.", payout.id, paid.id)),
            );
            w.recovery_actions.push((call.scope.clone(), opened));
            w.outbox.record(call, EventType::RecoveryCreated, &recovery)?;
            w.new_recoveries.push((call.scope.clone(), recovery));
        }
        RailOutcome::Failed { reason } => {
            tracing::warn!(payout = %payout.id, %reason, "payout failed; coverage released");
            w.outbox.record(call, EventType::PayoutFailed, &settled)?;
        }
    }
    if claimed {
        w.outbox.record_update(call, EventType::GuaranteeClaimed, &g_before, g)?;
    }
    w.guarantee(g);
    Ok(())
}

/// Activates guarantees whose start has come and expires those whose end has passed,
/// up to `limit` of them. Returns how many changed.
pub async fn transition_guarantees(store: &Store, now: i64, limit: i64) -> ApiResult<usize> {
    let mut tx = store.begin().await?;
    let due = store::guarantees::due_for_transition(&mut tx, now, limit).await?;
    let count = due.len();
    let mut writes = StepWrites::default();
    for (scope, g) in due {
        let call = Call::job(scope, now);
        let mut current = g;
        // In this order, so a guarantee whose whole term passed unseen activates and
        // expires in one step. A step refused is one not due yet.
        let mut next = current.clone();
        if next.activate(now).is_ok() {
            writes.outbox.record_update(&call, EventType::GuaranteeActivated, &current, &next)?;
            current = next.clone();
        }
        if next.expire(now).is_ok() {
            writes.outbox.record_update(&call, EventType::GuaranteeExpired, &current, &next)?;
            current = next;
        }
        writes.guarantee(&current);
    }
    writes.write(&mut tx).await?;
    tx.commit().await?;
    Ok(count)
}

/// Marks `missed` the installments of recoveries on no test clock that are past their
/// due date at `now` and not paid in full, up to `limit` recoveries, each installment
/// once, with `recovery.installment_missed`. Returns how many recoveries changed.
pub async fn miss_due_installments(store: &Store, now: i64, limit: i64) -> ApiResult<usize> {
    if !store.run(async |conn| store::recoveries::any_due_wall(conn, now).await).await? {
        return Ok(0);
    }
    let mut tx = store.begin().await?;
    let due = store::recoveries::due_wall(&mut tx, now, limit).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let count = due.len();
    let mut writes = StepWrites::default();
    for (scope, mut r) in due {
        let call = Call::job(scope, now);
        let actions = super::recoveries::miss_installments(&mut writes.outbox, &call, &mut r, now)?;
        writes.recovery_actions.extend(actions.into_iter().map(|a| (call.scope.clone(), a)));
        writes.recoveries.insert(r.id.clone(), r);
    }
    writes.write(&mut tx).await?;
    tx.commit().await?;
    Ok(count)
}

/// Applies a test clock's guarantee activations and expirations, and its recoveries'
/// missed installments, that fall due by `until`, in date order, each at its own date
/// (so a guarantee that starts and ends within one advance sends `guarantee.activated`,
/// then `guarantee.expired`), up to `limit` of each kind per transaction. A batch stops
/// at the earliest date past which any list may have more, so batches follow each
/// other in time. Returns how many changes it made (0: none left by `until`).
pub async fn advance_guarantees(
    store: &Store,
    scope: &Scope,
    clock_id: &str,
    until: i64,
    now: i64,
    limit: usize,
) -> ApiResult<usize> {
    let limit = limit.max(1);
    let mut tx = store.begin().await?;
    let (pending, active) = store::guarantees::clock_due(&mut tx, clock_id, until, limit as i64).await?;
    // Recoveries with an installment due before `until`: it is missed the second after.
    let owing = store::recoveries::clock_due(&mut tx, clock_id, until, limit as i64).await?;
    // Past `cut`, a list that came back full may hold rows it did not return.
    let last = |list: &[Guarantee], date: fn(&Guarantee) -> i64| {
        if list.len() >= limit { list.last().map(date) } else { None }
    };
    let last_owing = if owing.len() >= limit { owing.last().and_then(Recovery::next_due_date) } else { None };
    let cut = [last(&pending, |g| g.start_date), last(&active, |g| g.end_date), last_owing]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(until);
    // (date, 0 activate / 1 expire / 2 installments missed, guarantee or recovery id)
    let mut steps: Vec<(i64, u8, String)> = Vec::new();
    let mut current: BTreeMap<String, Guarantee> = BTreeMap::new();
    for g in pending {
        if g.start_date <= cut {
            steps.push((g.start_date, 0, g.id.clone()));
            if g.end_date <= cut {
                steps.push((g.end_date, 1, g.id.clone()));
            }
            current.insert(g.id.clone(), g);
        }
    }
    for g in active {
        if g.end_date <= cut {
            steps.push((g.end_date, 1, g.id.clone()));
            current.insert(g.id.clone(), g);
        }
    }
    let mut owing: BTreeMap<String, Recovery> = owing.into_iter().map(|r| (r.id.clone(), r)).collect();
    for r in owing.values() {
        let Some(plan) = &r.plan else { continue };
        let mut dates: Vec<i64> = plan
            .schedule
            .iter()
            .filter(|i| i.status == crate::domain::recovery::InstallmentStatus::Pending)
            .map(|i| i.due_date)
            .filter(|d| *d < until && *d <= cut)
            .collect();
        dates.dedup();
        steps.extend(dates.into_iter().map(|d| (d, 2, r.id.clone())));
    }
    steps.sort();
    let call = Call::job(scope.clone(), now);
    let mut writes = StepWrites::default();
    let mut changed = 0;
    for (at, step, id) in steps {
        if step == 2 {
            let Some(r) = owing.get_mut(&id) else { continue };
            // Missed the second after its due date, the time the engine would see it.
            let actions = super::recoveries::miss_installments(&mut writes.outbox, &call, r, at + 1)?;
            changed += actions.len();
            writes.recovery_actions.extend(actions.into_iter().map(|a| (call.scope.clone(), a)));
            continue;
        }
        let Some(g) = current.get_mut(&id) else { continue };
        let before = g.clone();
        let (done, kind) = match step {
            0 => (g.activate(at).is_ok(), EventType::GuaranteeActivated),
            _ => (g.expire(at).is_ok(), EventType::GuaranteeExpired),
        };
        if done {
            writes.outbox.record_update(&call, kind, &before, g)?;
            changed += 1;
        }
    }
    for g in current.values() {
        writes.guarantee(g);
    }
    writes.recoveries.extend(owing);
    writes.write(&mut tx).await?;
    tx.commit().await?;
    Ok(changed)
}

/// Reads a payout in the caller's scope.
pub async fn retrieve_payout(store: &Store, call: &Call, id: &str) -> ApiResult<Payout> {
    found(&crate::resource::PAYOUT, id, store.run(async |conn| store::payouts::get(conn, &call.scope, id).await).await?)
}

pub async fn list_payouts(
    store: &Store,
    call: &Call,
    page: &store::PageRequest,
    filters: store::payouts::PayoutFilters,
) -> ApiResult<store::Page<Payout>> {
    store
        .run(async |conn| {
            super::check_cursors(conn, call, &crate::resource::PAYOUT, page).await?;
            Ok(store::payouts::list(conn, &call.scope, page, filters).await?)
        })
        .await
}
