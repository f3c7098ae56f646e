//! The review console at `/review` (SPEC section 4): server-rendered HTML for the
//! claims staff, on the same services as the API.
//!
//! Security, in short:
//! - Sign-in with an operator key, POSTed in a form (never in a URL), into a session
//!   kept in the store (so every replica knows it, and sign-out or disabling the
//!   operator ends it at once); the browser holds a random token in an `HttpOnly`,
//!   `SameSite=Strict` cookie (`Secure` behind https), never the key.
//! - Every form carries the session's CSRF token (the sign-in form a token bound to a
//!   short-lived cookie), checked in constant time; a request whose `Origin` or
//!   `Sec-Fetch-Site` says it came from another site is refused as well.
//! - A strict `Content-Security-Policy` (nothing but this origin's stylesheet, no
//!   script at all), and maud escapes every value it renders, so what a platform wrote
//!   (descriptions, metadata, names, file names) shows as text.
//! - Evidence files are downloaded through the session, only among the files the
//!   claim names and in the claim's account and mode, always as attachments with the
//!   API's headers (never rendered as a page of this origin).

mod pages;

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::api::extract::RequestId;
use crate::app::AppState;
use crate::domain::claim::{Actor, Awaiting, ClaimReason, OperatorDenialReason};
use crate::domain::operator::Operator;
use crate::error::ApiError;
use crate::ids::{Kind, random_secret};
use crate::service::accounts::{self, Principal, hash_key};
use crate::service::review::{self, Reviewer, Verdict};
use crate::service::{Call, write};
use crate::store::claims::QueueFilters;
use crate::store::{self, Scope};

/// The session cookie: a random token whose hash names the stored session.
const SESSION_COOKIE: &str = "casapay_review";
/// The sign-in form's CSRF cookie, set when the form is shown.
const SIGN_IN_COOKIE: &str = "casapay_review_signin";
/// How long a sign-in form stays usable.
const SIGN_IN_FORM_SECONDS: i64 = 600;
/// Claims per queue page.
const QUEUE_PAGE: i64 = 25;

pub const STYLESHEET: &str = include_str!("console.css");

/// What every console answer carries: nothing from another origin, no script, no
/// framing, no sniffing, no referrer leaving the site.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/review", get(queue))
        .route("/review/", get(queue))
        .route("/review/sign-in", get(sign_in_form).post(sign_in))
        .route("/review/sign-out", post(sign_out))
        .route("/review/claims/{id}", get(claim_page))
        .route("/review/claims/{id}/{action}", post(claim_action))
        .route("/review/claims/{id}/files/{file_id}", get(evidence_file))
        .route("/review/assets/console.css", get(stylesheet))
        .layer(axum::middleware::map_response(security_headers))
}

async fn security_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    // A file's download keeps its own, stricter policy (`api::files::download`: a sandbox).
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    resp
}

async fn stylesheet() -> Response {
    let mut resp = STYLESHEET.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    resp
}

fn html(status: StatusCode, markup: maud::Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

fn see_other(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    // A bare status would be turned into the API's JSON error body: give it a type.
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    resp
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_owned())
    })
}

/// Whether the browser reached us over https: configured, or said by the proxy.
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.config.console.secure_cookie
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

fn set_cookie(resp: &mut Response, name: &str, value: &str, max_age: i64, secure: bool) {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!("{name}={value}; Path=/review; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// A request another site made the browser send: refused before anything else. Browsers
/// send `Sec-Fetch-Site` and `Origin` on form posts; a request without either (curl,
/// an old browser) still needs the cookie and the token.
fn cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return true;
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
            !origin_host.eq_ignore_ascii_case(host)
        }
        _ => false,
    }
}

/// A signed-in operator.
pub(crate) struct Session {
    pub operator: Operator,
    pub csrf: String,
    pub expires_at: i64,
}

async fn session(state: &AppState, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else { return Ok(None) };
    let (hash, now) = (hash_key(&token), state.clock.now());
    let found = state.store.run(async |conn| store::operators::find_session(conn, &hash, now).await).await?;
    Ok(found.map(|s| Session { operator: s.operator, csrf: s.csrf_token, expires_at: s.expires_at }))
}

/// The page for an error of the store or the server: never its details.
fn failure(e: ApiError) -> Response {
    let status = e.status();
    // Logged once, in the request's span, as the API logs its errors.
    let _ = e.into_response();
    html(status, pages::message_page("Something went wrong", "The request could not be completed. Please try again."))
}

fn to_sign_in() -> Response {
    see_other("/review/sign-in?expired=1")
}

#[derive(Debug, Default, Deserialize)]
struct SignInQuery {
    expired: Option<String>,
    signed_out: Option<String>,
}

async fn sign_in_form(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<SignInQuery>) -> Response {
    let token = random_secret(32);
    let notice = if q.signed_out.is_some() {
        Some("You are signed out.")
    } else if q.expired.is_some() {
        Some("Please sign in: your session has ended or you have not signed in yet.")
    } else {
        None
    };
    let mut resp = html(StatusCode::OK, pages::sign_in(&token, notice, None));
    set_cookie(&mut resp, SIGN_IN_COOKIE, &token, SIGN_IN_FORM_SECONDS, secure(&state, &headers));
    resp
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    key: String,
    csrf: String,
}

fn refused() -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::message_page(
            "Request refused",
            "This form is out of date or was sent from another site, so nothing was changed. Go back, reload the page and try again.",
        ),
    )
}

async fn sign_in(State(state): State<AppState>, parts: Parts, body: Bytes) -> Response {
    let headers = &parts.headers;
    let connect = parts.extensions.get::<ConnectInfo<SocketAddr>>();
    let form: Option<SignInForm> = serde_urlencoded::from_bytes(&body).ok();
    let expected = cookie(headers, SIGN_IN_COOKIE);
    let (Some(form), Some(expected)) = (form, expected) else { return refused() };
    if cross_site(headers) || !same(&form.csrf, &expected) {
        return refused();
    }
    let client = connect.map(|c| c.0.ip());
    if let Some(ip) = client
        && state.auth_failures.blocked_for(ip).is_some()
    {
        return html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::sign_in(&expected, None, Some("Too many failed sign-ins from here: wait a minute and try again.")),
        );
    }
    let now = state.clock.now();
    let key = form.key.trim();
    let principal = match accounts::authenticate(&state.store, key, now).await {
        Ok(p) => p,
        Err(e) => return failure(e),
    };
    let Some(Principal::Operator { operator_id, .. }) = principal else {
        if let Some(ip) = client {
            state.auth_failures.fail(ip);
        }
        tracing::info!("console sign-in refused");
        return html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(&expected, None, Some("That key was not accepted. Use your operator key (opk_…).")),
        );
    };
    let token = random_secret(40);
    let csrf = random_secret(32);
    let expires_at = now + state.config.console.session_seconds;
    let hash = hash_key(&token);
    let created = state
        .store
        .run(async |conn| store::operators::insert_session(conn, &hash, &operator_id, &csrf, now, expires_at).await);
    if let Err(e) = created.await {
        return failure(e.into());
    }
    tracing::info!(operator = %operator_id, "console sign-in");
    let mut resp = see_other("/review");
    let secure = secure(&state, headers);
    set_cookie(&mut resp, SESSION_COOKIE, &token, state.config.console.session_seconds, secure);
    set_cookie(&mut resp, SIGN_IN_COOKIE, "", 0, secure);
    resp
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn sign_out(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let form: Option<CsrfForm> = serde_urlencoded::from_bytes(&body).ok();
    let current = match session(&state, &headers).await {
        Ok(s) => s,
        Err(e) => return failure(e),
    };
    let (Some(form), Some(current)) = (form, current) else { return to_sign_in() };
    if cross_site(&headers) || !same(&form.csrf, &current.csrf) {
        return refused();
    }
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        let (hash, now) = (hash_key(&token), state.clock.now());
        let ended = state.store.run(async |conn| store::operators::delete_session(conn, &hash, now).await);
        if let Err(e) = ended.await {
            return failure(e.into());
        }
    }
    tracing::info!(operator = %current.operator.id, "console sign-out");
    let mut resp = see_other("/review/sign-in?signed_out=1");
    set_cookie(&mut resp, SESSION_COOKIE, "", 0, secure(&state, &headers));
    resp
}

/// The queue's filters, as the page's form sends them.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct QueueQuery {
    pub reason: Option<String>,
    pub awaiting: Option<String>,
    pub overdue: Option<String>,
    pub account: Option<String>,
    pub after: Option<String>,
}

async fn queue(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<QueueQuery>) -> Response {
    let current = match session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_sign_in(),
        Err(e) => return failure(e),
    };
    let now = state.clock.now();
    let filters = QueueFilters {
        reason: q.reason.as_deref().and_then(ClaimReason::parse),
        account: q.account.as_deref().filter(|a| Kind::Account.matches(a)).map(str::to_owned),
        overdue: match q.overdue.as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        },
        awaiting: q.awaiting.as_deref().and_then(Awaiting::parse),
        now,
    };
    let after = q.after.as_deref().filter(|a| Kind::Claim.matches(a));
    let page = match review::queue(&state.store, &filters, QUEUE_PAGE, after).await {
        Ok(p) => p,
        // A cursor that left the queue (decided meanwhile): start again from the top.
        Err(ApiError::Client { .. }) => match review::queue(&state.store, &filters, QUEUE_PAGE, None).await {
            Ok(p) => p,
            Err(e) => return failure(e),
        },
        Err(e) => return failure(e),
    };
    let rows = match queue_rows(&state, page.data).await {
        Ok(r) => r,
        Err(e) => return failure(e),
    };
    let counts = match state.store.run(async |conn| store::claims::queue_counts(conn, now).await).await {
        Ok(c) => c,
        Err(e) => return failure(e.into()),
    };
    html(StatusCode::OK, pages::queue(&current, &q, &rows, page.has_more, &counts, now))
}

/// A queue row: the claim and its tenant's name.
pub(crate) struct QueueRow {
    pub scope: Scope,
    pub claim: crate::domain::claim::Claim,
    pub tenant: Option<String>,
}

async fn queue_rows(
    state: &AppState,
    claims: Vec<(Scope, crate::domain::claim::Claim)>,
) -> Result<Vec<QueueRow>, ApiError> {
    let ids: Vec<&str> = claims.iter().map(|(_, c)| c.id.as_str()).collect();
    let mut names = state.store.run(async |conn| store::claims::tenant_names(conn, &ids).await).await?;
    let rows = claims
        .into_iter()
        .map(|(scope, claim)| {
            let tenant = names.remove(&claim.id);
            QueueRow { scope, claim, tenant }
        })
        .collect();
    Ok(rows)
}

#[derive(Debug, Default, Deserialize)]
struct ClaimQuery {
    done: Option<String>,
}

async fn claim_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ClaimQuery>,
) -> Response {
    let current = match session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_sign_in(),
        Err(e) => return failure(e),
    };
    let notice = q.done.as_deref().and_then(pages::done_message);
    render_claim(&state, &current, &id, notice.map(|n| (false, n.to_owned())), StatusCode::OK).await
}

async fn render_claim(
    state: &AppState,
    current: &Session,
    id: &str,
    banner: Option<(bool, String)>,
    status: StatusCode,
) -> Response {
    if !Kind::Claim.matches(id) {
        return html(StatusCode::NOT_FOUND, pages::message_page("No such claim", "There is no claim with this id."));
    }
    let file = match review::review_file(&state.store, id).await {
        Ok(f) => f,
        Err(ApiError::Client { status: StatusCode::NOT_FOUND, .. }) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::message_page("No such claim", "There is no claim with this id."),
            );
        }
        Err(e) => return failure(e),
    };
    let names = match crate::service::operators::list(&state.store).await {
        Ok(all) => all.into_iter().map(|o| (o.id, o.name)).collect(),
        Err(e) => return failure(e),
    };
    // A paid claim's recovery and its trail, shown in a card of its own.
    let recovery = match crate::service::recoveries::for_claim(&state.store, &file.scope, id).await {
        Ok(Some(r)) => match crate::service::recoveries::trail(&state.store, &file.scope, &r.id).await {
            Ok(trail) => Some((r, trail)),
            Err(e) => return failure(e),
        },
        Ok(None) => None,
        Err(e) => return failure(e),
    };
    let view = pages::ClaimPage {
        session: current,
        file: &file,
        names: &names,
        banner,
        now: state.clock.now(),
        second_approval_amount: state.config.second_approval_amount,
        recovery: recovery.as_ref().map(|(r, trail)| (r, trail.as_slice())),
    };
    html(status, pages::claim(&view))
}

/// An evidence file of a claim, for a signed-in operator: only one the claim names, read
/// in the claim's account and mode, with the API's download headers (an attachment,
/// its stored type, `nosniff`, a sandbox).
async fn evidence_file(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, file_id)): Path<(String, String)>,
) -> Response {
    let current = match session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_sign_in(),
        Err(e) => return failure(e),
    };
    let no_file = || {
        html(
            StatusCode::NOT_FOUND,
            pages::message_page("No such file", "This claim has no evidence file with this id."),
        )
    };
    if !Kind::Claim.matches(&id) || !Kind::File.matches(&file_id) {
        return no_file();
    }
    match review::evidence_file(&state.store, &id, &file_id).await {
        Ok((file, bytes)) => {
            tracing::info!(operator = %current.operator.id, claim = %id, file = %file_id, "console evidence download");
            crate::api::files::download(&file, bytes)
        }
        Err(ApiError::Client { status: StatusCode::NOT_FOUND, .. }) => no_file(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
struct ActionForm {
    csrf: String,
    amount: Option<String>,
    denial_reason: Option<String>,
    note: Option<String>,
    message: Option<String>,
}

/// What an action form asks for, checked as the API checks it.
enum Asked {
    Review(Verdict),
    Evidence(String),
    Note(String),
}

fn text(field: Option<String>, name: &str, what: &str) -> Result<String, String> {
    let value = field.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    match value {
        None => Err(format!("Please write {what}.")),
        Some(v) if v.chars().count() > 1_000 => Err(format!("The {name} is longer than 1,000 characters.")),
        Some(v) => Ok(v),
    }
}

fn parse_action(action: &str, form: ActionForm) -> Result<Asked, String> {
    match action {
        "approve" => {
            let amount = match form.amount.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
                None => None,
                Some(a) => match a.parse::<i64>() {
                    Ok(n) if (1..=99_999_999).contains(&n) => Some(n),
                    _ => return Err("The amount must be a whole number of minor units (cents), 1 or more.".into()),
                },
            };
            Ok(Asked::Review(Verdict::Approve { amount }))
        }
        "deny" => {
            let reason = form
                .denial_reason
                .as_deref()
                .and_then(OperatorDenialReason::parse)
                .ok_or("Please choose a denial reason.")?;
            let note = form.note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
            if note.as_ref().is_some_and(|n| n.chars().count() > 1_000) {
                return Err("The note is longer than 1,000 characters.".into());
            }
            if reason.requires_note() && note.is_none() {
                return Err("A denial for “other” needs a note that says why.".into());
            }
            Ok(Asked::Review(Verdict::Deny { reason: Some(reason), note }))
        }
        "request-evidence" => Ok(Asked::Evidence(text(form.message, "message", "what you need from the platform")?)),
        "notes" => Ok(Asked::Note(text(form.note, "note", "a note")?)),
        _ => Err("Unknown action.".into()),
    }
}

/// The refusal as an operator should read it.
fn refusal(e: &ApiError) -> String {
    match e.code() {
        Some("second_approval_required") => "You recorded the first approval already: a second, different operator \
            must approve this claim (four eyes)."
            .to_owned(),
        Some("amount_too_large") => format!("Amount too large: {e}"),
        Some("claim_not_under_review") => "This claim is already decided: nothing was changed.".to_owned(),
        _ => e.to_string(),
    }
}

async fn claim_action(
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let headers = &parts.headers;
    let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone());
    let current = match session(&state, headers).await {
        Ok(Some(s)) => s,
        // A cross-site post carries no cookie (SameSite=Strict): nothing to act for.
        Ok(None) if cross_site(headers) => return refused(),
        Ok(None) => return to_sign_in(),
        Err(e) => return failure(e),
    };
    let Ok(form) = serde_urlencoded::from_bytes::<ActionForm>(&body) else { return refused() };
    if cross_site(headers) || !same(&form.csrf, &current.csrf) {
        return refused();
    }
    if !Kind::Claim.matches(&id) {
        return html(StatusCode::NOT_FOUND, pages::message_page("No such claim", "There is no claim with this id."));
    }
    let asked = match parse_action(&action, form) {
        Ok(a) => a,
        Err(why) => return render_claim(&state, &current, &id, Some((true, why)), StatusCode::BAD_REQUEST).await,
    };
    let call = Call {
        scope: Scope { account_id: String::new(), livemode: false },
        now: state.clock.now(),
        request_id,
        idempotency_key: None,
        idempotency: None,
    };
    let by = Actor::Operator(current.operator.id.clone());
    let reviewer = Reviewer { actor: by.clone(), second_approval_amount: state.config.second_approval_amount };
    tracing::info!(operator = %current.operator.id, claim = %id, action = %action, "console review action");
    let done = match asked {
        Asked::Review(verdict) => {
            let deny = matches!(verdict, Verdict::Deny { .. });
            write(&state.store, async |tx| review::review_by_hand(tx, None, &call, &id, verdict, &reviewer).await)
                .await
                .map(|c| match (deny, c.status) {
                    (true, _) => "denied",
                    (false, crate::domain::claim::ClaimStatus::UnderReview) => "approval_recorded",
                    _ => "approved",
                })
        }
        Asked::Evidence(message) => {
            write(&state.store, async |tx| review::request_evidence(tx, &call, &id, message, &by).await)
                .await
                .map(|_| "evidence_requested")
        }
        Asked::Note(note) => write(&state.store, async |tx| review::add_note(tx, &call, &id, note, &by).await)
            .await
            .map(|_| "note_added"),
    };
    match done {
        Ok(done) => see_other(&format!("/review/claims/{id}?done={done}")),
        Err(e @ ApiError::Client { .. }) => {
            let why = refusal(&e);
            let status = e.status();
            render_claim(&state, &current, &id, Some((true, why)), status).await
        }
        Err(e) => failure(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_site_requests_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("review.example:8080"));
        assert!(!cross_site(&h), "no hints: the cookie and the token decide");
        h.insert(header::ORIGIN, HeaderValue::from_static("http://review.example:8080"));
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("http://evil.example"));
        assert!(cross_site(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(cross_site(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(cross_site(&h));
        h.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!cross_site(&h));
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; casapay_review=tok; b="));
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&h, "b"), None);
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn action_forms_are_checked_like_the_api() {
        let form = |amount: Option<&str>, reason: Option<&str>, note: Option<&str>| ActionForm {
            csrf: String::new(),
            amount: amount.map(str::to_owned),
            denial_reason: reason.map(str::to_owned),
            note: note.map(str::to_owned),
            message: None,
        };
        assert!(matches!(
            parse_action("approve", form(Some(""), None, None)),
            Ok(Asked::Review(Verdict::Approve { amount: None }))
        ));
        assert!(parse_action("approve", form(Some("-5"), None, None)).is_err());
        assert!(parse_action("deny", form(None, Some("other"), Some("  "))).is_err(), "other needs a note");
        assert!(parse_action("deny", form(None, Some("period_limit_reached"), None)).is_err(), "not a person's");
        assert!(parse_action("deny", form(None, Some("tenant_paid"), None)).is_ok());
        assert!(parse_action("notes", form(None, None, Some(&"é".repeat(1_001)))).is_err());
        assert!(parse_action("launch", form(None, None, None)).is_err());
    }
}
