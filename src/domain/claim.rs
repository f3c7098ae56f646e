//! Claims: a landlord's request to be paid for rent the tenant did not pay.

use super::metadata::Metadata;
use super::payout::{Payout, PayoutStatus};
use super::{Timestamp, wire_enum};

wire_enum! {
    ClaimStatus {
        Submitted = "submitted",
        UnderReview = "under_review",
        Approved = "approved",
        Denied = "denied",
        Paid = "paid",
    }
}

wire_enum! {
    ClaimReason {
        MissedPayment = "missed_payment",
        PartialPayment = "partial_payment",
        LeaseBreak = "lease_break",
        PropertyDamage = "property_damage",
    }
}

wire_enum! {
    /// Every reason a denied claim can show: the automated review's and the operators'.
    DenialReason {
        WaitingPeriod = "waiting_period",
        OutsideCoveragePeriod = "outside_coverage_period",
        CoverageExhausted = "coverage_exhausted",
        BelowDeductible = "below_deductible",
        PeriodLimitReached = "period_limit_reached",
        InsufficientEvidence = "insufficient_evidence",
        NotCovered = "not_covered",
        DuplicateClaim = "duplicate_claim",
        TenantPaid = "tenant_paid",
        FraudSuspected = "fraud_suspected",
        Other = "other",
    }
}

wire_enum! {
    /// The reasons the rules deny a claim for (SPEC section 2); the only ones the
    /// automated review can give.
    AutomatedDenialReason {
        WaitingPeriod = "waiting_period",
        OutsideCoveragePeriod = "outside_coverage_period",
        CoverageExhausted = "coverage_exhausted",
        BelowDeductible = "below_deductible",
        PeriodLimitReached = "period_limit_reached",
    }
}

wire_enum! {
    /// The reasons an operator (or a test helper) may deny a claim for (SPEC section 4):
    /// the automated four and the ones only a person can judge.
    OperatorDenialReason {
        WaitingPeriod = "waiting_period",
        OutsideCoveragePeriod = "outside_coverage_period",
        CoverageExhausted = "coverage_exhausted",
        BelowDeductible = "below_deductible",
        InsufficientEvidence = "insufficient_evidence",
        NotCovered = "not_covered",
        DuplicateClaim = "duplicate_claim",
        TenantPaid = "tenant_paid",
        FraudSuspected = "fraud_suspected",
        Other = "other",
    }
}

impl From<AutomatedDenialReason> for DenialReason {
    fn from(r: AutomatedDenialReason) -> Self {
        use AutomatedDenialReason as A;
        match r {
            A::WaitingPeriod => DenialReason::WaitingPeriod,
            A::OutsideCoveragePeriod => DenialReason::OutsideCoveragePeriod,
            A::CoverageExhausted => DenialReason::CoverageExhausted,
            A::BelowDeductible => DenialReason::BelowDeductible,
            A::PeriodLimitReached => DenialReason::PeriodLimitReached,
        }
    }
}

impl From<OperatorDenialReason> for DenialReason {
    fn from(r: OperatorDenialReason) -> Self {
        use OperatorDenialReason as O;
        match r {
            O::WaitingPeriod => DenialReason::WaitingPeriod,
            O::OutsideCoveragePeriod => DenialReason::OutsideCoveragePeriod,
            O::CoverageExhausted => DenialReason::CoverageExhausted,
            O::BelowDeductible => DenialReason::BelowDeductible,
            O::InsufficientEvidence => DenialReason::InsufficientEvidence,
            O::NotCovered => DenialReason::NotCovered,
            O::DuplicateClaim => DenialReason::DuplicateClaim,
            O::TenantPaid => DenialReason::TenantPaid,
            O::FraudSuspected => DenialReason::FraudSuspected,
            O::Other => DenialReason::Other,
        }
    }
}

impl OperatorDenialReason {
    /// `other` says nothing by itself: the operator must explain it in a note.
    pub fn requires_note(self) -> bool {
        self == OperatorDenialReason::Other
    }
}

pub const DESCRIPTION_MAX_CHARS: usize = EvidenceDescription::MAX_CHARS;
/// The most an operator's note may hold.
pub const NOTE_MAX_CHARS: usize = ReviewNote::MAX_CHARS;
pub const INVOICE_ID_MAX_CHARS: usize = InvoiceId::MAX_CHARS;

super::input::bounded_text!(InvoiceId, 255, "The platform's id of the unpaid invoice.");
super::input::bounded_text!(EvidenceDescription, 1_000, "What happened, in the platform's words.");
super::input::bounded_text!(
    ReviewNote,
    1_000,
    "Why: required with `other`, optional otherwise. Shown as the claim's `review.note`."
);

super::input::bounded_text!(EvidenceRequestMessage, 1_000, "What the operator asks the platform for.");
super::input::bounded_text!(InternalNote, 1_000, "An internal note on the claim, which only operators read.");

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    pub invoice_id: String,
    pub due_date: Timestamp,
    pub description: Option<String>,
    /// Ids of evidence files (`file_`), in the order they were added; only ever added to.
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusTransitions {
    pub submitted_at: Option<Timestamp>,
    pub under_review_at: Option<Timestamp>,
    pub approved_at: Option<Timestamp>,
    pub denied_at: Option<Timestamp>,
    pub paid_at: Option<Timestamp>,
}

wire_enum! {
    /// What a claim under review waits for while a person must act (the queue's `awaiting`).
    Awaiting {
        Operator = "operator",
        SecondApproval = "second_approval",
        Evidence = "evidence",
    }
}

wire_enum! {
    /// The steps of a claim's review, as its audit trail records them.
    ActionType {
        Submitted = "submitted",
        Checked = "checked",
        ApprovalRecorded = "approval_recorded",
        Approved = "approved",
        Denied = "denied",
        EvidenceRequested = "evidence_requested",
        EvidenceAdded = "evidence_added",
        NoteAdded = "note_added",
        Paid = "paid",
    }
}

/// Who took a step: `automation`, `platform`, `test_helper` or an operator's `op_` id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Automation,
    Platform,
    TestHelper,
    Operator(String),
}

impl Actor {
    pub fn as_str(&self) -> &str {
        match self {
            Actor::Automation => "automation",
            Actor::Platform => "platform",
            Actor::TestHelper => "test_helper",
            Actor::Operator(id) => id,
        }
    }
}

/// An operator's approval recorded while a second one is needed (four eyes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    pub operator: String,
    pub amount: i64,
    pub created: Timestamp,
}

/// One step of a claim's review (`claim_action`, `act_`): the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimAction {
    pub id: String,
    pub claim: String,
    pub kind: ActionType,
    pub actor: String,
    pub message: Option<String>,
    pub amount: Option<i64>,
    pub livemode: bool,
    pub created: Timestamp,
}

impl ClaimAction {
    pub const OBJECT: &'static str = "claim_action";
}

/// How the claim is reviewed and was decided (SPEC section 4's `review`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimReview {
    /// The rules of the automated review with their figures, in order.
    pub checks: Vec<super::review::Check>,
    /// `automation`, an `op_` id or `test_helper`; `None` while undecided.
    pub decided_by: Option<String>,
    /// The review deadline: `submitted_at` plus 5 business days.
    pub due_by: Option<Timestamp>,
    /// Approvals recorded while a second operator's is needed.
    pub approvals: Vec<Approval>,
    /// The open request for evidence, if any.
    pub evidence_requested: Option<String>,
    /// The deciding operator's note (required with `denial_reason: other`), or null.
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub id: String,
    pub guarantee: String,
    pub amount: i64,
    pub amount_approved: Option<i64>,
    pub currency: String,
    pub status: ClaimStatus,
    pub reason: ClaimReason,
    pub evidence: Evidence,
    pub payout: Option<String>,
    pub denial_reason: Option<DenialReason>,
    pub reviewed_at: Option<Timestamp>,
    pub status_transitions: StatusTransitions,
    pub review: ClaimReview,
    /// Automated review passed it to an operator (not rendered).
    pub awaiting_operator: bool,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

/// A lifecycle step the claim's state does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClaimError {
    /// Approving, denying and handing to an operator need a claim under review.
    #[error("only a claim under review can be decided; this one is {0}")]
    NotUnderReview(ClaimStatus),
    /// Only an approved claim is paid.
    #[error("only an approved claim can be paid; this one is {0}")]
    NotApproved(ClaimStatus),
    /// An approval is for 1 up to the claimed amount.
    #[error("an approval of {amount} is outside 1..={claimed}, the claimed amount")]
    AmountOutOfRange { amount: i64, claimed: i64 },
    /// Four eyes: the operator who recorded the first approval cannot give the second.
    #[error("this operator approved the claim already; a second, different operator must approve it")]
    SecondApprovalRequired,
    /// Asking for evidence, or answering, needs a claim waiting for a person.
    #[error("the claim is not waiting for an operator")]
    NotAwaitingOperator,
}

impl Claim {
    pub const OBJECT: &'static str = "claim";

    /// Whether the claim can still be decided (approved, denied, or handed to an operator).
    pub fn check_under_review(&self) -> Result<(), ClaimError> {
        match self.status {
            ClaimStatus::UnderReview => Ok(()),
            other => Err(ClaimError::NotUnderReview(other)),
        }
    }

    /// Approves `amount` at `now` and returns the pending payout (`payout_id`) that
    /// will pay it. The amount's upper bound by the guarantee's rules is the review's
    /// (`review::max_payable`); this checks what holds for any claim.
    pub fn approve(
        &mut self,
        now: Timestamp,
        amount: i64,
        payout_id: String,
        by: &Actor,
    ) -> Result<Payout, ClaimError> {
        self.check_under_review()?;
        if !(1..=self.amount).contains(&amount) {
            return Err(ClaimError::AmountOutOfRange { amount, claimed: self.amount });
        }
        self.status = ClaimStatus::Approved;
        self.review.decided_by = Some(by.as_str().to_owned());
        self.review.evidence_requested = None;
        self.amount_approved = Some(amount);
        self.payout = Some(payout_id.clone());
        self.reviewed_at = Some(now);
        self.status_transitions.approved_at = Some(now);
        self.awaiting_operator = false;
        Ok(Payout {
            id: payout_id,
            amount,
            currency: self.currency.clone(),
            claim: self.id.clone(),
            guarantee: self.guarantee.clone(),
            status: PayoutStatus::Pending,
            arrival_date: None,
            livemode: self.livemode,
            created: now,
        })
    }

    /// Denies the claim at `now`; the reason is optional for the test helper, and the
    /// note is the operator's (checked at the edge: required with `other`).
    pub fn deny(
        &mut self,
        now: Timestamp,
        reason: Option<DenialReason>,
        note: Option<String>,
        by: &Actor,
    ) -> Result<(), ClaimError> {
        self.check_under_review()?;
        self.status = ClaimStatus::Denied;
        self.review.decided_by = Some(by.as_str().to_owned());
        self.review.evidence_requested = None;
        self.denial_reason = reason;
        self.review.note = note;
        self.reviewed_at = Some(now);
        self.status_transitions.denied_at = Some(now);
        self.awaiting_operator = false;
        Ok(())
    }

    /// Automated review could not decide: the claim waits for an operator, and the
    /// engine leaves it alone. It stays `under_review`.
    pub fn hand_to_operator(&mut self) -> Result<(), ClaimError> {
        self.check_under_review()?;
        self.awaiting_operator = true;
        Ok(())
    }

    /// What the claim waits for while a person must act, or `None` (with automation,
    /// or decided): the operators' queue holds exactly the claims with one.
    pub fn awaiting(&self) -> Option<Awaiting> {
        if self.status != ClaimStatus::UnderReview || !self.awaiting_operator {
            return None;
        }
        Some(if self.review.evidence_requested.is_some() {
            Awaiting::Evidence
        } else if !self.review.approvals.is_empty() {
            Awaiting::SecondApproval
        } else {
            Awaiting::Operator
        })
    }

    /// Four eyes: records `operator`'s approval of `amount` as the first of two. A
    /// second approval by the same operator is refused; the caller approves the claim
    /// on a second operator's approval instead of recording it.
    pub fn record_approval(&mut self, now: Timestamp, operator: &str, amount: i64) -> Result<(), ClaimError> {
        self.check_under_review()?;
        if self.review.approvals.iter().any(|a| a.operator == operator) {
            return Err(ClaimError::SecondApprovalRequired);
        }
        if !(1..=self.amount).contains(&amount) {
            return Err(ClaimError::AmountOutOfRange { amount, claimed: self.amount });
        }
        self.review.approvals.push(Approval { operator: operator.to_owned(), amount, created: now });
        // An approval is also an answer to the question of who looks at it.
        self.awaiting_operator = true;
        Ok(())
    }

    /// An operator asks the platform for more evidence: the claim waits for it.
    pub fn request_evidence(&mut self, message: String) -> Result<(), ClaimError> {
        self.check_under_review()?;
        if !self.awaiting_operator {
            return Err(ClaimError::NotAwaitingOperator);
        }
        self.review.evidence_requested = Some(message);
        Ok(())
    }

    /// The platform adds evidence (a new description): an open request is answered.
    pub fn add_evidence(&mut self, description: Option<String>) -> Result<(), ClaimError> {
        self.check_under_review()?;
        if let Some(d) = description {
            self.evidence.description = Some(d);
        }
        self.review.evidence_requested = None;
        Ok(())
    }

    /// The claim's payout was paid at `now`.
    pub fn mark_paid(&mut self, now: Timestamp) -> Result<(), ClaimError> {
        if self.status != ClaimStatus::Approved {
            return Err(ClaimError::NotApproved(self.status));
        }
        self.status = ClaimStatus::Paid;
        self.status_transitions.paid_at = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = 1_708_819_200;

    fn claim(status: ClaimStatus) -> Claim {
        Claim {
            id: "clm_1".into(),
            guarantee: "grt_1".into(),
            amount: 120_000,
            amount_approved: None,
            currency: "eur".into(),
            status,
            reason: ClaimReason::MissedPayment,
            evidence: Evidence { invoice_id: "inv_1".into(), due_date: NOW - 86_400, description: None, files: vec![] },
            payout: None,
            denial_reason: None,
            reviewed_at: None,
            status_transitions: StatusTransitions {
                submitted_at: Some(NOW - 10),
                under_review_at: Some(NOW - 10),
                ..StatusTransitions::default()
            },
            review: ClaimReview::default(),
            awaiting_operator: false,
            metadata: Metadata::new(),
            livemode: true,
            created: NOW - 10,
        }
    }

    const NOT_UNDER_REVIEW: [ClaimStatus; 4] =
        [ClaimStatus::Submitted, ClaimStatus::Approved, ClaimStatus::Denied, ClaimStatus::Paid];

    #[test]
    fn approving_sets_the_amount_and_returns_the_pending_payout() {
        let mut c = Claim { awaiting_operator: true, ..claim(ClaimStatus::UnderReview) };
        let payout = c.approve(NOW, 50_000, "po_1".into(), &Actor::Automation).unwrap();
        assert_eq!(c.status, ClaimStatus::Approved);
        assert_eq!((c.amount_approved, c.payout.as_deref()), (Some(50_000), Some("po_1")));
        assert_eq!((c.reviewed_at, c.status_transitions.approved_at), (Some(NOW), Some(NOW)));
        assert!(!c.awaiting_operator, "an operator's approval ends the wait");
        assert_eq!((payout.id.as_str(), payout.amount, payout.status), ("po_1", 50_000, PayoutStatus::Pending));
        assert_eq!(
            (payout.claim.as_str(), payout.guarantee.as_str(), payout.currency.as_str()),
            ("clm_1", "grt_1", "eur")
        );
        assert_eq!((payout.arrival_date, payout.livemode, payout.created), (None, true, NOW));
    }

    #[test]
    fn only_a_claim_under_review_is_approved_for_1_up_to_its_amount() {
        for status in NOT_UNDER_REVIEW {
            let mut c = claim(status);
            assert_eq!(
                c.approve(NOW, 1_000, "po_1".into(), &Actor::Automation).unwrap_err(),
                ClaimError::NotUnderReview(status)
            );
            assert_eq!(c, claim(status), "a refused step changes nothing");
        }
        for amount in [0, -1, 120_001] {
            let mut c = claim(ClaimStatus::UnderReview);
            let err = c.approve(NOW, amount, "po_1".into(), &Actor::Automation).unwrap_err();
            assert_eq!(err, ClaimError::AmountOutOfRange { amount, claimed: 120_000 });
            assert_eq!(c, claim(ClaimStatus::UnderReview));
        }
        assert!(
            claim(ClaimStatus::UnderReview).approve(NOW, 120_000, "po_1".into(), &Actor::Automation).is_ok(),
            "the whole amount"
        );
    }

    #[test]
    fn denying_records_the_reason_and_note() {
        let mut c = Claim { awaiting_operator: true, ..claim(ClaimStatus::UnderReview) };
        c.deny(
            NOW,
            Some(DenialReason::Other),
            Some("Lease ended by agreement.".into()),
            &Actor::Operator("op_1".into()),
        )
        .unwrap();
        assert_eq!(c.review.decided_by.as_deref(), Some("op_1"));
        assert_eq!((c.status, c.denial_reason), (ClaimStatus::Denied, Some(DenialReason::Other)));
        assert_eq!(c.review.note.as_deref(), Some("Lease ended by agreement."));
        assert_eq!((c.reviewed_at, c.status_transitions.denied_at), (Some(NOW), Some(NOW)));
        assert!(!c.awaiting_operator);
        assert_eq!((c.amount_approved, c.payout.as_deref()), (None, None));

        let mut helper = claim(ClaimStatus::UnderReview);
        helper.deny(NOW, None, None, &Actor::TestHelper).unwrap();
        assert_eq!(helper.review.decided_by.as_deref(), Some("test_helper"));
        assert_eq!((helper.status, helper.denial_reason), (ClaimStatus::Denied, None), "the reason is optional");

        for status in NOT_UNDER_REVIEW {
            let mut c = claim(status);
            assert_eq!(
                c.deny(NOW, Some(DenialReason::TenantPaid), None, &Actor::Automation),
                Err(ClaimError::NotUnderReview(status))
            );
            assert_eq!(c, claim(status));
        }
    }

    #[test]
    fn a_claim_under_review_can_wait_for_an_operator() {
        let mut c = claim(ClaimStatus::UnderReview);
        c.hand_to_operator().unwrap();
        assert!(c.awaiting_operator);
        assert_eq!(c.status, ClaimStatus::UnderReview, "still under review, by a person now");
        for status in NOT_UNDER_REVIEW {
            let mut c = claim(status);
            assert_eq!(c.hand_to_operator(), Err(ClaimError::NotUnderReview(status)));
            assert!(!c.awaiting_operator);
        }
    }

    #[test]
    fn only_an_approved_claim_is_paid() {
        let mut c = claim(ClaimStatus::UnderReview);
        c.approve(NOW, 1_000, "po_1".into(), &Actor::Automation).unwrap();
        c.mark_paid(NOW + 5).unwrap();
        assert_eq!((c.status, c.status_transitions.paid_at), (ClaimStatus::Paid, Some(NOW + 5)));
        assert_eq!(c.status_transitions.approved_at, Some(NOW), "earlier steps keep their times");
        for status in [ClaimStatus::Submitted, ClaimStatus::UnderReview, ClaimStatus::Denied, ClaimStatus::Paid] {
            let mut c = claim(status);
            assert_eq!(c.mark_paid(NOW), Err(ClaimError::NotApproved(status)));
            assert_eq!(c, claim(status));
        }
    }

    #[test]
    fn wire_names() {
        assert_eq!(ClaimStatus::UnderReview.as_str(), "under_review");
        assert_eq!(ClaimReason::parse("lease_break"), Some(ClaimReason::LeaseBreak));
        assert_eq!(ClaimReason::parse("other"), None);
        assert_eq!(serde_json::to_value(DenialReason::BelowDeductible).unwrap(), serde_json::json!("below_deductible"));
    }

    #[test]
    fn denial_reasons_keep_their_wire_names_across_the_three_lists() {
        for r in AutomatedDenialReason::ALL {
            assert_eq!(DenialReason::from(*r).as_str(), r.as_str());
        }
        for r in OperatorDenialReason::ALL {
            assert_eq!(DenialReason::from(*r).as_str(), r.as_str());
        }
        // Every reason a claim can show comes from one list or the other.
        for r in DenialReason::ALL {
            let known =
                AutomatedDenialReason::parse(r.as_str()).is_some() || OperatorDenialReason::parse(r.as_str()).is_some();
            assert!(known, "{r}");
        }
    }

    #[test]
    fn operator_reasons_are_the_specs() {
        assert_eq!(
            OperatorDenialReason::names(),
            "waiting_period, outside_coverage_period, coverage_exhausted, below_deductible, insufficient_evidence, \
             not_covered, duplicate_claim, tenant_paid, fraud_suspected, other"
        );
        assert_eq!(OperatorDenialReason::parse("period_limit_reached"), None, "the rules' own, not a person's");
        assert_eq!(AutomatedDenialReason::parse("insufficient_evidence"), None);
        assert!(OperatorDenialReason::Other.requires_note());
        assert!(!OperatorDenialReason::FraudSuspected.requires_note());
    }

    #[test]
    fn four_eyes_records_one_approval_per_operator() {
        let mut c = Claim { awaiting_operator: true, ..claim(ClaimStatus::UnderReview) };
        assert_eq!(c.awaiting(), Some(Awaiting::Operator));
        c.record_approval(NOW, "op_a", 100_000).unwrap();
        assert_eq!(c.review.approvals, vec![Approval { operator: "op_a".into(), amount: 100_000, created: NOW }]);
        assert_eq!((c.status, c.awaiting()), (ClaimStatus::UnderReview, Some(Awaiting::SecondApproval)));
        assert_eq!(c.record_approval(NOW, "op_a", 90_000), Err(ClaimError::SecondApprovalRequired));
        assert_eq!(c.review.approvals.len(), 1, "a refused approval records nothing");
        assert_eq!(
            c.record_approval(NOW, "op_b", 120_001),
            Err(ClaimError::AmountOutOfRange { amount: 120_001, claimed: 120_000 })
        );
        c.approve(NOW, 90_000, "po_1".into(), &Actor::Operator("op_b".into())).unwrap();
        assert_eq!((c.review.decided_by.as_deref(), c.awaiting()), (Some("op_b"), None));
    }

    #[test]
    fn evidence_requests_wait_for_the_platform() {
        let mut c = claim(ClaimStatus::UnderReview);
        assert_eq!(c.request_evidence("Photos?".into()), Err(ClaimError::NotAwaitingOperator), "automation has it");
        assert_eq!(c.awaiting(), None);
        c.awaiting_operator = true;
        c.request_evidence("Photos of the damage, please.".into()).unwrap();
        assert_eq!(c.awaiting(), Some(Awaiting::Evidence));
        c.add_evidence(Some("Photos attached.".into())).unwrap();
        assert_eq!(
            (c.review.evidence_requested.as_deref(), c.evidence.description.as_deref()),
            (None, Some("Photos attached."))
        );
        assert_eq!(c.awaiting(), Some(Awaiting::Operator));
        for status in NOT_UNDER_REVIEW {
            let mut c = Claim { awaiting_operator: true, ..claim(status) };
            assert_eq!(c.request_evidence("x".into()), Err(ClaimError::NotUnderReview(status)));
            assert_eq!(c.add_evidence(None), Err(ClaimError::NotUnderReview(status)));
            assert_eq!(c.awaiting(), None);
        }
    }
}
