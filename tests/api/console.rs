//! The review console over plain HTTP: sessions, CSRF, headers and escaping. The
//! browser check (scripts/check-console) drives the same pages in Chromium.

use casapay::clock::Clock;
use casapay::service::operators;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::support::{DEMO_KEY, DOCS_NOW, TestApp, id};

const DAY: i64 = 86_400;

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// The value of cookie `name` set by a response, with its attributes.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set: &str) -> String {
    set.split(';').next().unwrap().split_once('=').unwrap().1.to_owned()
}

/// The first form's CSRF token on a page.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_owned()
}

struct Console {
    base: String,
    http: reqwest::Client,
    cookie: String,
    csrf: String,
}

impl Console {
    async fn sign_in(app: &TestApp, key: &str) -> Console {
        let http = client();
        let form = http.get(app.url("/review/sign-in")).send().await.unwrap();
        let pre = cookie_value(&set_cookie(form.headers(), "casapay_review_signin").expect("sign-in cookie"));
        let token = csrf(&form.text().await.unwrap());
        let r = http
            .post(app.url("/review/sign-in"))
            .header("cookie", format!("casapay_review_signin={pre}"))
            .form(&[("key", key), ("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let set = set_cookie(r.headers(), "casapay_review").expect("session cookie");
        let cookie = format!("casapay_review={}", cookie_value(&set));
        let page = http.get(app.url("/review")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let csrf = csrf(&page.text().await.unwrap());
        Console { base: app.base.clone(), http, cookie, csrf }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).header("cookie", &self.cookie).send().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).header("cookie", &self.cookie).form(form);
        for (k, v) in headers {
            req = req.header(*k, HeaderValue::from_str(v).unwrap());
        }
        req.send().await.unwrap()
    }
}

async fn waiting_claim(app: &TestApp, metadata: serde_json::Value) -> String {
    let grt = app.claimable_demo_guarantee().await;
    let mut body = TestApp::claim_body(&grt, "inv_console", DOCS_NOW + 30 * DAY);
    body["reason"] = json!("property_damage");
    body["amount"] = json!(50_000);
    body["metadata"] = metadata;
    let c = app.post("/v1/claims", DEMO_KEY, body).await.ok();
    app.settle().await;
    id(&c)
}

#[tokio::test]
async fn sign_in_makes_a_strict_http_only_session_and_wrong_keys_are_refused() {
    let app = TestApp::start().await;
    let alice = operators::create(&app.store, "Alice", None, app.clock.now()).await.unwrap();
    let http = client();
    let r = http.get(app.url("/review")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/review/sign-in"));

    let form = http.get(app.url("/review/sign-in")).send().await.unwrap();
    let csp = form.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(form.headers()["x-frame-options"], "DENY");
    let pre = set_cookie(form.headers(), "casapay_review_signin").unwrap();
    assert!(pre.contains("HttpOnly") && pre.contains("SameSite=Strict") && !pre.contains("Secure"), "{pre}");
    let (pre, token) = (cookie_value(&pre), csrf(&form.text().await.unwrap()));
    let sign_in = |key: &'static str, token: String, cookie: Option<String>, proto: Option<&'static str>| {
        let mut req = http.post(app.url("/review/sign-in")).form(&[("key", key.to_owned()), ("csrf", token)]);
        if let Some(c) = cookie {
            req = req.header("cookie", format!("casapay_review_signin={c}"));
        }
        if let Some(p) = proto {
            req = req.header("x-forwarded-proto", p);
        }
        req.send()
    };
    let key: &'static str = Box::leak(alice.key.clone().into_boxed_str());
    // Wrong key, platform key: 401, no session. No sign-in cookie or a wrong token: 403.
    assert_eq!(sign_in("opk_wrong", token.clone(), Some(pre.clone()), None).await.unwrap().status(), 401);
    let r = sign_in(DEMO_KEY, token.clone(), Some(pre.clone()), None).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(set_cookie(r.headers(), "casapay_review").is_none());
    assert_eq!(sign_in(key, token.clone(), None, None).await.unwrap().status(), 403);
    assert_eq!(sign_in(key, "forged".into(), Some(pre.clone()), None).await.unwrap().status(), 403);
    // The right key: a session cookie that is not the key, Secure behind https.
    let r = sign_in(key, token.clone(), Some(pre.clone()), Some("https")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = set_cookie(r.headers(), "casapay_review").unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict") && session.contains("Secure"));
    assert!(session.contains("Path=/review") && session.contains("Max-Age=28800"), "{session}");
    assert!(!session.contains(key) && !r.headers()["location"].to_str().unwrap().contains("opk_"));
}

#[tokio::test]
async fn sessions_expire_end_at_sign_out_and_with_their_operator() {
    let app = TestApp::start().await;
    let alice = operators::create(&app.store, "Alice", None, app.clock.now()).await.unwrap();
    let console = Console::sign_in(&app, &alice.key).await;
    assert_eq!(console.get("/review").await.status(), 200);
    // Eight hours later the session is over.
    app.clock.advance(8 * 3600);
    assert_eq!(console.get("/review").await.status(), StatusCode::SEE_OTHER);

    let console = Console::sign_in(&app, &alice.key).await;
    let r = console.post("/review/sign-out", &[("csrf", &console.csrf)], &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(console.get("/review").await.status(), StatusCode::SEE_OTHER, "ended on the server");

    let console = Console::sign_in(&app, &alice.key).await;
    operators::disable(&app.store, &alice.id, app.clock.now()).await.unwrap();
    assert_eq!(console.get("/review").await.status(), StatusCode::SEE_OTHER, "a disabled operator is signed out");
}

#[tokio::test]
async fn forms_need_the_session_and_its_token_and_platform_text_is_escaped() {
    let app = TestApp::start().await;
    let claim = waiting_claim(&app, json!({"note": "<script>alert(1)</script>", "who": "O'Brien & \"Sons\""})).await;
    let alice = operators::create(&app.store, "Alice", None, app.clock.now()).await.unwrap();
    let console = Console::sign_in(&app, &alice.key).await;
    let page = console.get(&format!("/review/claims/{claim}")).await.text().await.unwrap();
    assert!(!page.contains("<script>alert(1)</script>"), "markup from a platform is not markup");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("O'Brien &amp; &quot;Sons&quot;"));
    assert!(!page.contains("<script"), "the console has no script at all");

    let deny = format!("/review/claims/{claim}/deny");
    let form = [("csrf", console.csrf.as_str()), ("denial_reason", "tenant_paid")];
    // No cookie (what a cross-site form post sends with SameSite=Strict).
    let r = client().post(app.url(&deny)).header("sec-fetch-site", "cross-site").form(&form).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // The cookie without the token, or with another; or from another origin.
    assert_eq!(console.post(&deny, &[("denial_reason", "tenant_paid")], &[]).await.status(), 403);
    assert_eq!(console.post(&deny, &[("csrf", "guess"), ("denial_reason", "tenant_paid")], &[]).await.status(), 403);
    let host = app.base.trim_start_matches("http://");
    assert_eq!(console.post(&deny, &form, &[("origin", "http://evil.example")]).await.status(), 403);
    assert_eq!(console.post(&deny, &form, &[("sec-fetch-site", "same-site")]).await.status(), 403);
    let c = app.get(&format!("/v1/claims/{claim}"), DEMO_KEY).await.ok();
    assert_eq!(c["status"], "under_review", "nothing changed");

    // `other` without a note: refused with the reason shown, nothing changed.
    let r = console.post(&deny, &[("csrf", &console.csrf), ("denial_reason", "other")], &[]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("needs a note"));
    // Too large an amount: refused, with the maximum.
    let approve = format!("/review/claims/{claim}/approve");
    let r = console.post(&approve, &[("csrf", &console.csrf), ("amount", "99999999")], &[]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("Amount too large"));
    // The real thing, from the console's own origin: decided, attributed, redirected.
    let origin = format!("http://{host}");
    let r = console.post(&deny, &form, &[("origin", &origin), ("sec-fetch-site", "same-origin")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("/review/claims/{claim}?done=denied").as_str());
    let c = app.get(&format!("/v1/claims/{claim}"), DEMO_KEY).await.ok();
    assert_eq!((c["status"].as_str(), c["review"]["decided_by"].as_str()), (Some("denied"), Some(alice.id.as_str())));
    // A decided claim says so.
    let r = console.post(&approve, &[("csrf", &console.csrf)], &[]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("already decided"));
    // The stylesheet is served from here, as CSS.
    let css = console.get("/review/assets/console.css").await;
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
}

#[tokio::test]
async fn four_eyes_in_the_console_says_a_second_operator_is_needed() {
    let app = TestApp::start().await;
    let policy = app.docs_policy(DEMO_KEY).await;
    let g = app
        .post(
            "/v1/guarantees",
            DEMO_KEY,
            json!({"policy": id(&policy), "tenant": "cus_123456789", "coverage_amount": 900_000, "currency": "eur",
                   "start_date": DOCS_NOW, "end_date": DOCS_NOW + 365 * DAY}),
        )
        .await
        .ok();
    app.clock.set(DOCS_NOW + 40 * DAY);
    let mut body = TestApp::claim_body(&id(&g), "inv_big", DOCS_NOW + 30 * DAY);
    body["reason"] = json!("property_damage");
    body["amount"] = json!(800_000);
    let claim = id(&app.post("/v1/claims", DEMO_KEY, body).await.ok());
    app.settle().await;
    let alice = operators::create(&app.store, "Alice", None, app.clock.now()).await.unwrap();
    let bob = operators::create(&app.store, "Bob", None, app.clock.now()).await.unwrap();
    let (a, b) = (Console::sign_in(&app, &alice.key).await, Console::sign_in(&app, &bob.key).await);
    let approve = format!("/review/claims/{claim}/approve");
    let r = a.post(&approve, &[("csrf", &a.csrf)], &[]).await;
    assert_eq!(r.headers()["location"], format!("/review/claims/{claim}?done=approval_recorded").as_str());
    let r = a.post(&approve, &[("csrf", &a.csrf)], &[]).await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("second, different operator"));
    let queue = b.get("/review?awaiting=second_approval").await.text().await.unwrap();
    assert!(queue.contains(&claim));
    let r = b.post(&approve, &[("csrf", &b.csrf), ("amount", "700000")], &[]).await;
    assert_eq!(r.headers()["location"], format!("/review/claims/{claim}?done=approved").as_str());
    let c = app.get(&format!("/v1/claims/{claim}"), DEMO_KEY).await.ok();
    assert_eq!(
        (c["amount_approved"].as_i64(), c["review"]["decided_by"].as_str()),
        (Some(700_000), Some(bob.id.as_str()))
    );
}

#[tokio::test]
async fn evidence_files_are_listed_escaped_and_downloaded_through_the_session_and_the_claim() {
    let app = TestApp::start().await;
    let grt = app.claimable_demo_guarantee().await;
    let name = "<script>alert(1)<script> & O'Brien.pdf";
    let bytes = crate::files::pdf(300);
    let file = id(&crate::files::upload(&app, DEMO_KEY, name, &bytes).await.ok());
    let elsewhere = id(&crate::files::upload(&app, DEMO_KEY, "other-claim.pdf", &crate::files::pdf(3)).await.ok());
    let file_claim = |invoice: &'static str, file: String| {
        let mut body = TestApp::claim_body(&grt, invoice, DOCS_NOW + 30 * DAY);
        body["reason"] = json!("property_damage");
        body["amount"] = json!(50_000);
        body["evidence"]["files"] = json!([file]);
        body
    };
    let claim = id(&app.post("/v1/claims", DEMO_KEY, file_claim("inv_with_file", file.clone())).await.ok());
    app.post("/v1/claims", DEMO_KEY, file_claim("inv_other_file", elsewhere.clone())).await.ok();
    app.settle().await;
    let alice = operators::create(&app.store, "Alice", None, app.clock.now()).await.unwrap();
    let console = Console::sign_in(&app, &alice.key).await;

    // Listed with its type and a link through the console; the name shown as text.
    let page = console.get(&format!("/review/claims/{claim}")).await.text().await.unwrap();
    let link = format!("/review/claims/{claim}/files/{file}");
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;script&gt; &amp; O'Brien.pdf"), "{page}");
    assert!(!page.contains("<script"), "a file name is not markup");
    assert!(page.contains(">PDF<"));
    assert!(!page.contains("No files attached."));

    // The download, with the session: the bytes, as an attachment, with the API's headers.
    let r = console.get(&link).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    let disposition = h["content-disposition"].to_str().unwrap();
    assert!(disposition.starts_with("attachment; filename=\""), "{disposition}");
    assert!(disposition.contains("filename*=UTF-8''%3Cscript%3Ealert%281%29%3Cscript%3E%20&%20O%27Brien.pdf"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox", "the file's policy, not the page's");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // Without a session: to the sign-in, no bytes.
    let r = client().get(app.url(&link)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/review/sign-in"));
    assert!(!r.bytes().await.unwrap().starts_with(b"%PDF"));
    // A file this claim does not name (another claim's), unknown ids: 404, no bytes.
    for path in [
        format!("/review/claims/{claim}/files/{elsewhere}"),
        format!("/review/claims/{claim}/files/file_nothing"),
        format!("/review/claims/clm_nothing/files/{file}"),
        format!("/review/claims/{claim}/files/cus_123456789"),
    ] {
        let r = console.get(&path).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{path}");
        assert!(!r.bytes().await.unwrap().starts_with(b"%PDF"), "{path}");
    }
    // A claim without files says so.
    let bare = waiting_claim(&app, json!({})).await;
    let page = console.get(&format!("/review/claims/{bare}")).await.text().await.unwrap();
    assert!(page.contains("No files attached."));
}

// Recoveries ------------------------------------------------------------------

/// A paid claim's page shows its recovery: status, amounts and the plan's schedule.
#[tokio::test]
async fn a_paid_claims_page_shows_its_recovery_and_plan() {
    let app = TestApp::start().await;
    let grt = app.claimable_demo_guarantee().await;
    let claim =
        id(&app.post("/v1/claims", DEMO_KEY, TestApp::claim_body(&grt, "inv_paid", DOCS_NOW + 30 * DAY)).await.ok());
    app.settle().await;
    let alice = operators::create(&app.store, "Alice", None, app.clock.now()).await.unwrap();
    let console = Console::sign_in(&app, &alice.key).await;
    let page = console.get(&format!("/review/claims/{claim}")).await.text().await.unwrap();
    assert!(page.contains("<h2>Recovery</h2>") && page.contains("No repayment plan yet."), "{page}");
    assert!(page.contains("1,200.00 EUR"), "what is owed");
    let list = app.get(&format!("/v1/recoveries?claim={claim}"), DEMO_KEY).await.ok();
    let rec = list["data"][0]["id"].as_str().unwrap().to_owned();
    // 2024-03-31, then 2024-04-30.
    app.post(
        &format!("/v1/recoveries/{rec}/plan"),
        DEMO_KEY,
        json!({"installments": 2, "first_due_date": 1_711_843_200}),
    )
    .await
    .ok();
    app.post(&format!("/v1/recoveries/{rec}/payments"), DEMO_KEY, json!({"amount": 60_000})).await.ok();
    let page = console.get(&format!("/review/claims/{claim}")).await.text().await.unwrap();
    assert!(page.contains("in plan") && page.contains("2024-03-31") && page.contains("2024-04-30"), "{page}");
    assert!(page.contains("600.00 EUR") && page.contains(">paid<") && page.contains(">pending<"), "{page}");
    assert!(page.contains("payment recorded") && page.contains("plan set") && page.contains("Platform"), "the trail");
    // A claim not paid has no recovery card.
    let mut body = TestApp::claim_body(&grt, "inv_waiting", DOCS_NOW + 30 * DAY);
    body["reason"] = json!("property_damage");
    body["amount"] = json!(1_000);
    let waiting = id(&app.post("/v1/claims", DEMO_KEY, body).await.ok());
    app.settle().await;
    let page = console.get(&format!("/review/claims/{waiting}")).await.text().await.unwrap();
    assert!(!page.contains("<h2>Recovery</h2>"), "{page}");
}
