//! The console's pages. maud escapes every `(value)` it renders: what a platform
//! wrote (descriptions, metadata, names) is shown as text, never as markup.

use std::collections::HashMap;

use maud::{DOCTYPE, Markup, html};

use super::{QueueQuery, QueueRow, Session};
use crate::domain::DAY;
use crate::domain::claim::{ActionType, Awaiting, Claim, ClaimReason, ClaimStatus, OperatorDenialReason};
use crate::domain::recovery::{InstallmentStatus, Recovery, RecoveryAction, RecoveryStatus};
use crate::domain::review::{CheckResult, civil_from_days};
use crate::service::review::ReviewFile;

/// `2024-02-24 10:00 UTC`.
fn when(ts: i64) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(DAY));
    let secs = ts.rem_euclid(DAY);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", secs / 3600, secs % 3600 / 60)
}

fn day(ts: i64) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Currencies without minor units (ISO 4217 exponent 0) among those in use.
const ZERO_DECIMAL: [&str; 8] = ["bif", "clp", "jpy", "krw", "pyg", "vnd", "xaf", "xof"];

/// `1,200.00 EUR` from minor units.
pub fn money(amount: i64, currency: &str) -> String {
    let group = |n: i64| {
        let digits = n.abs().to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if n < 0 { format!("-{out}") } else { out }
    };
    let code = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency) {
        format!("{} {code}", group(amount))
    } else {
        let sign = if amount < 0 { "-" } else { "" };
        format!("{sign}{}.{:02} {code}", group(amount.abs() / 100), amount.abs() % 100)
    }
}

/// `820 bytes`, `12.4 KB`, `3.1 MB` (1 KB = 1,024 bytes).
fn file_size(bytes: i64) -> String {
    const KB: i64 = 1024;
    if bytes < KB {
        format!("{bytes} byte{}", if bytes == 1 { "" } else { "s" })
    } else if bytes < KB * KB {
        format!("{}.{} KB", bytes / KB, bytes % KB * 10 / KB)
    } else {
        format!("{}.{} MB", bytes / (KB * KB), bytes % (KB * KB) * 10 / (KB * KB))
    }
}

/// "due in 3 days", "overdue by 2 hours".
fn due_in(due_by: i64, now: i64) -> (bool, String) {
    let left = due_by - now;
    let span = |s: i64| {
        let s = s.abs();
        if s >= DAY {
            let d = s / DAY;
            format!("{d} day{}", if d == 1 { "" } else { "s" })
        } else {
            let h = (s / 3600).max(1);
            format!("{h} hour{}", if h == 1 { "" } else { "s" })
        }
    };
    if left < 0 { (true, format!("overdue by {}", span(left))) } else { (false, format!("due in {}", span(left))) }
}

fn reason_label(r: ClaimReason) -> &'static str {
    match r {
        ClaimReason::MissedPayment => "Missed payment",
        ClaimReason::PartialPayment => "Partial payment",
        ClaimReason::LeaseBreak => "Lease break",
        ClaimReason::PropertyDamage => "Property damage",
    }
}

/// What each rule checks, said positively (the rule is named by the denial it guards against).
fn rule_label(rule: &str) -> String {
    match rule {
        "waiting_period" => "Waiting period over".into(),
        "outside_coverage_period" => "Within the coverage period".into(),
        "coverage_exhausted" => "Coverage left".into(),
        "period_limit_reached" => "Month's cover left".into(),
        "below_deductible" => "Above the deductible".into(),
        other => other.replace('_', " "),
    }
}

fn awaiting_label(a: Awaiting) -> &'static str {
    match a {
        Awaiting::Operator => "Operator",
        Awaiting::SecondApproval => "Second approval",
        Awaiting::Evidence => "Evidence from platform",
    }
}

fn action_label(a: ActionType) -> &'static str {
    match a {
        ActionType::Submitted => "Submitted",
        ActionType::Checked => "Checked by the rules",
        ActionType::ApprovalRecorded => "First approval recorded",
        ActionType::Approved => "Approved",
        ActionType::Denied => "Denied",
        ActionType::EvidenceRequested => "Evidence requested",
        ActionType::EvidenceAdded => "Evidence added",
        ActionType::NoteAdded => "Internal note",
        ActionType::Paid => "Paid",
    }
}

/// The message after a form did what it asked.
pub fn done_message(done: &str) -> Option<&'static str> {
    Some(match done {
        "approved" => "Approved: the payout is on its way and the platform is told.",
        "approval_recorded" => "Your approval is recorded. A second operator must approve this claim (four eyes).",
        "denied" => "Denied: the platform is told.",
        "evidence_requested" => "Evidence requested: the platform is told, and the claim waits for its answer.",
        "note_added" => "Note added. Only operators see notes.",
        _ => return None,
    })
}

fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="same-origin";
                title { (title) " · CasaPay review" }
                link rel="stylesheet" href="/review/assets/console.css";
            }
            body {
                header.top {
                    a.brand href="/review" { span.logo { "C" } "CasaPay " span.muted { "claims review" } }
                    @if let Some(s) = session {
                        div.who {
                            span.operator title=(format!("Signed in until {}", when(s.expires_at))) { (s.operator.name) }
                            form.inline method="post" action="/review/sign-out" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main { (body) }
                footer.foot { "Reviewed within 5 business days. Session and forms protected; nothing here is cached." }
            }
        }
    }
}

pub fn message_page(title: &str, text: &str) -> Markup {
    layout(
        title,
        None,
        html! {
            section.card.narrow {
                h1 { (title) }
                p { (text) }
                p { a.button href="/review" { "Back to the queue" } }
            }
        },
    )
}

pub fn sign_in(csrf: &str, notice: Option<&str>, error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            section.card.narrow {
                h1 { "Sign in" }
                p.muted { "Claims staff sign in with their operator key. The key is checked once and never stored in the browser." }
                @if let Some(n) = notice { p.banner.info role="status" { (n) } }
                @if let Some(e) = error { p.banner.error role="alert" { (e) } }
                form method="post" action="/review/sign-in" autocomplete="off" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="key" { "Operator key" }
                    input #key type="password" name="key" required placeholder="opk_…" autocomplete="off" spellcheck="false";
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    )
}

fn selected(current: Option<&str>, value: &str) -> bool {
    current == Some(value)
}

pub fn queue(
    session: &Session,
    q: &QueueQuery,
    rows: &[QueueRow],
    has_more: bool,
    counts: &[(String, i64, i64)],
    now: i64,
) -> Markup {
    let total: i64 = counts.iter().map(|(_, n, _)| n).sum();
    let overdue: i64 = counts.iter().map(|(_, _, o)| o).sum();
    let count_of = |a: Awaiting| counts.iter().find(|(k, _, _)| k == a.as_str()).map_or(0, |(_, n, _)| *n);
    let next = rows.last().filter(|_| has_more).map(|r| {
        let mut params = vec![format!("after={}", r.claim.id)];
        for (k, v) in
            [("reason", &q.reason), ("awaiting", &q.awaiting), ("overdue", &q.overdue), ("account", &q.account)]
        {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                params.push(format!("{k}={}", url_word(v)));
            }
        }
        format!("/review?{}", params.join("&"))
    });
    layout(
        "Queue",
        Some(session),
        html! {
            section.summary {
                div.stat { span.num { (total) } span.label { "waiting for a person" } }
                div.stat.alert[overdue > 0] { span.num { (overdue) } span.label { "overdue" } }
                div.stat { span.num { (count_of(Awaiting::SecondApproval)) } span.label { "need a second approval" } }
                div.stat { span.num { (count_of(Awaiting::Evidence)) } span.label { "waiting for evidence" } }
            }
            form.filters method="get" action="/review" {
                label { "Reason"
                    select name="reason" {
                        option value="" { "Any" }
                        @for r in ClaimReason::ALL {
                            option value=(r.as_str()) selected[selected(q.reason.as_deref(), r.as_str())] { (reason_label(*r)) }
                        }
                    }
                }
                label { "Waiting for"
                    select name="awaiting" {
                        option value="" { "Anything" }
                        @for a in Awaiting::ALL {
                            option value=(a.as_str()) selected[selected(q.awaiting.as_deref(), a.as_str())] { (awaiting_label(*a)) }
                        }
                    }
                }
                label { "Deadline"
                    select name="overdue" {
                        option value="" { "Any" }
                        option value="true" selected[selected(q.overdue.as_deref(), "true")] { "Overdue" }
                        option value="false" selected[selected(q.overdue.as_deref(), "false")] { "Not yet due" }
                    }
                }
                label { "Account"
                    input type="text" name="account" placeholder="acct_…" value=(q.account.as_deref().unwrap_or("")) spellcheck="false";
                }
                button type="submit" { "Filter" }
                a.reset href="/review" { "Clear" }
            }
            @if rows.is_empty() {
                section.card.empty { p { "Nothing waits for a person here. " } p.muted { "Claims the rules decide never reach this queue." } }
            } @else {
                ol.queue {
                    @for row in rows {
                        @let c = &row.claim;
                        @let (late, due_text) = c.review.due_by.map(|d| due_in(d, now)).unwrap_or((false, "no deadline".into()));
                        li.row.overdue[late] {
                            a.rowlink href=(format!("/review/claims/{}", c.id)) {
                                div.main {
                                    span.tenant { (row.tenant.as_deref().unwrap_or("Unknown tenant")) }
                                    span.reason { (reason_label(c.reason)) }
                                }
                                div.amount { (money(c.amount, &c.currency)) }
                                div.meta {
                                    span.due.late[late] { (due_text) }
                                    @if let Some(a) = c.awaiting() {
                                        span.tag { (awaiting_label(a)) }
                                    }
                                    @if !row.scope.livemode { span.tag.test { "test mode" } }
                                    span.ids { (row.scope.account_id) " · " (c.id) }
                                }
                            }
                        }
                    }
                }
                @if let Some(next) = next {
                    p.more { a.button href=(next) { "Next page →" } }
                }
            }
        },
    )
}

/// A filter value for a link: alphanumerics and `_` pass, anything else is dropped
/// (the values are ids and wire names).
fn url_word(v: &str) -> String {
    v.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
}

pub struct ClaimPage<'a> {
    pub session: &'a Session,
    pub file: &'a ReviewFile,
    pub names: &'a HashMap<String, String>,
    /// (is an error, text)
    pub banner: Option<(bool, String)>,
    pub now: i64,
    pub second_approval_amount: i64,
    /// A paid claim's recovery and its trail, oldest first (see `recovery_card`).
    pub recovery: Option<(&'a Recovery, &'a [RecoveryAction])>,
}

fn actor_name(actor: &str, names: &HashMap<String, String>) -> String {
    match actor {
        "automation" => "Automated review".into(),
        "platform" => "Platform".into(),
        "test_helper" => "Test helper".into(),
        op => names.get(op).map_or_else(|| op.to_owned(), |n| format!("{n} ({op})")),
    }
}

fn status_class(s: ClaimStatus) -> &'static str {
    match s {
        ClaimStatus::Submitted | ClaimStatus::UnderReview => "pending",
        ClaimStatus::Approved | ClaimStatus::Paid => "good",
        ClaimStatus::Denied => "bad",
    }
}

pub fn claim(p: &ClaimPage) -> Markup {
    let f = p.file;
    let c: &Claim = &f.claim;
    let g = &f.guarantee;
    let cur = c.currency.as_str();
    let used = g.claims_paid + g.claims_reserved;
    let under_review = c.status == ClaimStatus::UnderReview;
    let max = f.max_payable;
    let mine_first = c.review.approvals.iter().any(|a| a.operator == p.session.operator.id);
    let (late, due_text) = c.review.due_by.map(|d| due_in(d, p.now)).unwrap_or((false, "no deadline".into()));
    layout(
        &format!("Claim {}", c.id),
        Some(p.session),
        html! {
            p.back { a href="/review" { "← Queue" } }
            section.card.head {
                div.title {
                    h1 { (reason_label(c.reason)) " · " (money(c.amount, cur)) }
                    span.status.(status_class(c.status)) { (c.status.as_str().replace('_', " ")) }
                }
                p.muted { (c.id) " · account " (f.scope.account_id) @if !f.scope.livemode { " · test mode" } }
                @if under_review {
                    p.due.late[late] { "Review " (due_text) " (by " (c.review.due_by.map(when).unwrap_or_default()) ")" }
                }
                @if let Some(a) = c.awaiting() { p { span.tag { "Waiting for: " (awaiting_label(a)) } } }
            }
            @if let Some((error, text)) = &p.banner {
                p.banner.error[*error].ok[!*error] role=(if *error { "alert" } else { "status" }) { (text) }
            }
            div.grid {
                section.card {
                    h2 { "Evidence" }
                    dl {
                        dt { "Invoice" } dd { (c.evidence.invoice_id) }
                        dt { "Rent due" } dd { (day(c.evidence.due_date)) }
                        dt { "Filed" } dd { (c.status_transitions.submitted_at.map(when).unwrap_or_default()) }
                        dt { "Description" }
                        dd.prose { (c.evidence.description.as_deref().unwrap_or("None given.")) }
                    }
                    @if let Some(asked) = &c.review.evidence_requested {
                        p.banner.info { "Asked the platform: " q { (asked) } }
                    }
                    h3 { "Metadata" }
                    @if c.metadata.is_empty() {
                        p.muted { "None." }
                    } @else {
                        table.kv {
                            @for (k, v) in c.metadata.iter() {
                                tr { th scope="row" { (k) } td { (v) } }
                            }
                        }
                    }
                    h3 { "Files" }
                    @if f.files.is_empty() {
                        p.muted { "No files attached." }
                    } @else {
                        ul.files {
                            @for file in &f.files {
                                li {
                                    a.file href=(format!("/review/claims/{}/files/{}", c.id, file.id)) download {
                                        span.kind { (file.file_type.as_str().to_ascii_uppercase()) }
                                        span.name { (file.filename) }
                                    }
                                    span.size { (file_size(file.size)) " · " (when(file.created)) }
                                }
                            }
                        }
                    }
                }
                section.card {
                    h2 { "Coverage" }
                    @let pct = if g.total_coverage > 0 { (used * 100 / g.total_coverage).clamp(0, 100) } else { 100 };
                    div.meter role="img" aria-label=(format!("{pct}% of the coverage used")) {
                        div.fill.(format!("w{}", pct / 5 * 5)) {}
                    }
                    dl {
                        dt { "Used" } dd { (money(used, cur)) " (paid " (money(g.claims_paid, cur)) ", approved " (money(g.claims_reserved, cur)) ")" }
                        dt { "Left" } dd { strong { (money(g.remaining(), cur)) } " of " (money(g.total_coverage, cur)) }
                        dt { "Per month" } dd { (money(g.coverage_amount, cur)) }
                        dt { "Guarantee" } dd { (g.id) " · " (g.status.as_str()) ", " (day(g.start_date)) " to " (day(g.end_date)) }
                        @if let Some(t) = &f.tenant {
                            dt { "Tenant" } dd { (t.name.as_deref().unwrap_or(&t.id)) @if let Some(e) = &t.email { " · " (e) } @if let Some(s) = t.score { " · score " (s) } }
                        }
                    }
                    h3 { "Policy terms" }
                    dl {
                        dt { "Policy" } dd { (f.policy.name) }
                        dt { "Covers" } dd { (f.policy.coverage_percentage) "% for up to " (f.policy.max_coverage_months) " months" }
                        dt { "Waiting period" } dd { (f.policy.waiting_period_days) " days" }
                        dt { "Deductible" } dd { (money(f.policy.deductible_amount, cur)) }
                        dt { "Minimum score" } dd { (f.policy.eligible_score_minimum) }
                    }
                }
            }
            section.card {
                h2 { "Checks" }
                ul.checks {
                    @for check in &c.review.checks {
                        @let class = match check.result { CheckResult::Pass => "pass", CheckResult::Fail => "fail", CheckResult::Skipped => "skipped" };
                        li.(class) {
                            span.badge { (check.result.as_str()) }
                            span.rule { (rule_label(&check.rule)) }
                            span.msg { (check.message) }
                        }
                    }
                }
                dl {
                    @if let Some(by) = &c.review.decided_by { dt { "Decided by" } dd { (actor_name(by, p.names)) } }
                    @if let Some(amount) = c.amount_approved { dt { "Approved" } dd { (money(amount, cur)) } }
                    @if let Some(reason) = c.denial_reason { dt { "Denial reason" } dd { (reason.as_str()) } }
                    @if let Some(note) = &c.review.note { dt { "Decision note" } dd.prose { (note) } }
                    @for a in &c.review.approvals {
                        dt { "First approval" } dd { (money(a.amount, cur)) " by " (actor_name(&a.operator, p.names)) ", " (when(a.created)) }
                    }
                }
            }
            @if let Some((r, trail)) = p.recovery { (recovery_card(r, trail, p.names)) }
            @if under_review {
                section.card.decide {
                    h2 { "Decide" }
                    div.grid {
                        form.action method="post" action=(format!("/review/claims/{}/approve", c.id)) {
                            h3 { "Approve" }
                            @match max {
                                Some(Ok(max)) => {
                                    label for="amount" { "Amount in minor units (at most " (max) " = " (money(max, cur)) ")" }
                                    input #amount type="number" name="amount" min="1" max=(max) value=(max) inputmode="numeric";
                                    @if mine_first {
                                        p.hint.warn { "You gave the first approval: a second operator must approve." }
                                    } @else if !c.review.approvals.is_empty() {
                                        p.hint { "Second approval: the lower of the two amounts stands." }
                                    } @else if p.second_approval_amount > 0 {
                                        p.hint { "From " (money(p.second_approval_amount, cur)) " two operators must approve." }
                                    }
                                }
                                Some(Err(reason)) => { p.hint.warn { "The rules deny this claim now (" (reason.as_str()) "): it cannot be approved." } }
                                None => {}
                            }
                            input type="hidden" name="csrf" value=(p.session.csrf);
                            button.primary type="submit" { "Approve" }
                        }
                        form.action method="post" action=(format!("/review/claims/{}/deny", c.id)) {
                            h3 { "Deny" }
                            label for="denial_reason" { "Reason" }
                            select #denial_reason name="denial_reason" required {
                                option value="" { "Choose…" }
                                @for r in OperatorDenialReason::ALL { option value=(r.as_str()) { (r.as_str().replace('_', " ")) } }
                            }
                            label for="deny_note" { "Note (required for “other”)" }
                            textarea #deny_note name="note" maxlength="1000" rows="3" {}
                            input type="hidden" name="csrf" value=(p.session.csrf);
                            button.danger type="submit" { "Deny" }
                        }
                        @if c.awaiting_operator {
                            form.action method="post" action=(format!("/review/claims/{}/request-evidence", c.id)) {
                                h3 { "Request evidence" }
                                label for="message" { "What the platform should send" }
                                textarea #message name="message" maxlength="1000" rows="3" required {}
                                input type="hidden" name="csrf" value=(p.session.csrf);
                                button type="submit" { "Request evidence" }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Audit trail" }
                ol.trail {
                    @for a in &f.actions {
                        li.(a.kind.as_str()) {
                            div.line {
                                span.what { (action_label(a.kind)) }
                                @if let Some(amount) = a.amount { span.amt { (money(amount, cur)) } }
                                span.by { (actor_name(&a.actor, p.names)) }
                                time { (when(a.created)) }
                            }
                            @if let Some(m) = &a.message { p.prose { (m) } }
                        }
                    }
                }
                form.action method="post" action=(format!("/review/claims/{}/notes", c.id)) {
                    label for="note" { "Internal note (operators only)" }
                    textarea #note name="note" maxlength="1000" rows="2" required {}
                    input type="hidden" name="csrf" value=(p.session.csrf);
                    button type="submit" { "Add note" }
                }
            }
        },
    )
}

// Recoveries (SPEC section 6) ---------------------------------------------------

/// What a paid claim's tenant owes back: status, figures, the plan's schedule, and who
/// planned, recorded payments or wrote off.
fn recovery_card(r: &Recovery, trail: &[RecoveryAction], names: &HashMap<String, String>) -> Markup {
    let cur = r.currency.as_str();
    let class = match r.status {
        RecoveryStatus::Open | RecoveryStatus::InPlan => "pending",
        RecoveryStatus::Recovered => "good",
        RecoveryStatus::WrittenOff => "bad",
    };
    html! {
        section.card.recovery {
            div.title {
                h2 { "Recovery" }
                span.status.(class) { (r.status.as_str().replace('_', " ")) }
            }
            dl {
                dt { "Recovery" } dd { (r.id) }
                dt { "Owed" } dd { (money(r.amount, cur)) }
                dt { "Recovered" } dd { (money(r.amount_recovered, cur)) }
                dt { "Remaining" } dd { strong { (money(r.remaining(), cur)) } }
                @if let Some(why) = &r.written_off_reason { dt { "Written off" } dd.prose { (why) } }
            }
            @if let Some(plan) = &r.plan {
                h3 { "Plan: " (plan.installments) " monthly installments" }
                table.schedule {
                    thead { tr { th scope="col" { "Due" } th scope="col" { "Amount" } th scope="col" { "Paid" } th scope="col" { "Status" } } }
                    tbody {
                        @for i in &plan.schedule {
                            @let class = match i.status { InstallmentStatus::Pending => "pending", InstallmentStatus::Paid => "good", InstallmentStatus::Missed => "bad" };
                            tr {
                                td { (day(i.due_date)) }
                                td { (money(i.amount, cur)) }
                                td { (money(i.amount_paid, cur)) }
                                td { span.status.(class) { (i.status.as_str()) } }
                            }
                        }
                    }
                }
            } @else {
                p.muted { "No repayment plan yet." }
            }
            h3 { "Recovery trail" }
            ol.trail {
                @for a in trail {
                    li {
                        div.line {
                            span.what { (a.kind.as_str().replace('_', " ")) }
                            @if let Some(amount) = a.amount { span.amt { (money(amount, cur)) } }
                            span.by { (actor_name(&a.actor, names)) }
                            time { (when(a.created)) }
                        }
                        @if let Some(m) = &a.message { p.prose { (m) } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_times_read_well() {
        assert_eq!(money(120_000, "eur"), "1,200.00 EUR");
        assert_eq!(money(5, "usd"), "0.05 USD");
        assert_eq!(money(99_999_999, "gbp"), "999,999.99 GBP");
        assert_eq!(money(1_500, "jpy"), "1,500 JPY");
        assert_eq!(when(1_708_732_800 + 3_660), "2024-02-24 01:01 UTC");
        assert_eq!(due_in(100 + 3 * DAY, 100), (false, "due in 3 days".into()));
        assert_eq!(due_in(100, 100 + 7_200), (true, "overdue by 2 hours".into()));
        assert_eq!(file_size(1), "1 byte");
        assert_eq!(file_size(820), "820 bytes");
        assert_eq!(file_size(12_700), "12.4 KB");
        assert_eq!(file_size(10 * 1024 * 1024 - 1), "9.9 MB");
    }

    #[test]
    fn platform_values_are_escaped() {
        let page = message_page("<script>alert(1)</script>", "a & b \"c\"");
        let s = page.into_string();
        assert!(!s.contains("<script>alert"), "{s}");
        assert!(s.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(s.contains("a &amp; b &quot;c&quot;"));
    }
}
