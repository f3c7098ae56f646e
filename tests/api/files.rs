//! Evidence files (SPEC section 7): uploads as `curl -F` and Stripe's SDKs send them,
//! the type judged from the bytes, bad bodies refused with nothing stored, the size
//! limits, safe downloads, idempotent uploads, claims' `evidence[files]`, tenancy.

use std::time::Duration;

use casapay::ApiConfig;
use casapay::api::rate_limit::RateLimitConfig;
use casapay::clock::Clock;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{DEMO_KEY, DOCS_NOW, Resp, TestApp, id};

const DAY: i64 = 86_400;
const BOUNDARY: &str = "------------------------casapay0123456789";

/// A small PDF: header, an object, the trailer's `%%EOF`.
pub fn pdf(body_len: usize) -> Vec<u8> {
    let mut b = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nstream\n".to_vec();
    b.extend(std::iter::repeat_n(b'x', body_len));
    b.extend_from_slice(b"\nendstream\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n");
    b
}

fn jpeg() -> Vec<u8> {
    [&[0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10][..], b"JFIF\0\x01\x01", &[0u8; 64], &[0xFF, 0xD9]].concat()
}

fn png() -> Vec<u8> {
    [&b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0"[..], &[0u8; 32], b"\0\0\0\0IEND\xaeB`\x82"]
        .concat()
}

/// One part of a multipart body.
pub enum Part<'a> {
    Text(&'a str, &'a str),
    /// name, filename (or none), declared content type, bytes.
    File(&'a str, Option<&'a str>, &'a str, &'a [u8]),
}

/// A multipart/form-data body, as curl -F writes one.
pub fn multipart(boundary: &str, parts: &[Part]) -> Vec<u8> {
    let mut b = Vec::new();
    for part in parts {
        b.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match part {
            Part::Text(name, value) => b.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}").as_bytes(),
            ),
            Part::File(name, filename, ct, bytes) => {
                let filename = filename.map(|f| format!("; filename=\"{f}\"")).unwrap_or_default();
                b.extend_from_slice(
                    format!("Content-Disposition: form-data; name=\"{name}\"{filename}\r\nContent-Type: {ct}\r\n\r\n")
                        .as_bytes(),
                );
                b.extend_from_slice(bytes);
            }
        }
        b.extend_from_slice(b"\r\n");
    }
    b.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    b
}

fn form_type(boundary: &str) -> String {
    format!("multipart/form-data; boundary={boundary}")
}

async fn upload_parts(app: &TestApp, key: &str, parts: &[Part<'_>]) -> Resp {
    app.raw(Method::POST, "/v1/files", Some(key), Some(&form_type(BOUNDARY)), multipart(BOUNDARY, parts)).await
}

/// `curl -F file=@<name> -F purpose=claim_evidence`.
pub async fn upload(app: &TestApp, key: &str, name: &str, bytes: &[u8]) -> Resp {
    upload_parts(
        app,
        key,
        &[Part::File("file", Some(name), "application/octet-stream", bytes), Part::Text("purpose", "claim_evidence")],
    )
    .await
}

async fn file_count(app: &TestApp, key: &str) -> usize {
    app.get("/v1/files?limit=100", key).await.ok()["data"].as_array().unwrap().len()
}

async fn download(app: &TestApp, key: &str, file_id: &str) -> reqwest::Response {
    app.client.get(app.url(&format!("/v1/files/{file_id}/contents"))).bearer_auth(key).send().await.unwrap()
}

#[tokio::test]
async fn uploads_are_stored_read_listed_and_downloaded_safely() {
    let app = TestApp::start().await;
    let bytes = pdf(1000);
    let r = upload(&app, DEMO_KEY, "lease.pdf", &bytes).await;
    // The fields, in this order.
    let fields = ["id", "object", "filename", "purpose", "size", "type", "sha256", "url", "livemode", "created"];
    let at: Vec<usize> = fields.iter().map(|f| r.text.find(&format!("\"{f}\":")).expect(f)).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{}", r.text);
    let f = r.ok();
    assert_eq!(f.as_object().unwrap().len(), fields.len());
    let file_id = id(&f);
    assert!(file_id.starts_with("file_"), "{f}");
    let sha = hex::encode(Sha256::digest(&bytes));
    assert_eq!(f["object"], "file");
    assert_eq!(f["filename"], "lease.pdf");
    assert_eq!(f["purpose"], "claim_evidence");
    assert_eq!(f["size"], bytes.len());
    assert_eq!(f["type"], "pdf");
    assert_eq!(f["sha256"], sha.as_str());
    assert_eq!(f["url"], format!("/v1/files/{file_id}/contents"));
    assert_eq!(f["livemode"], false);
    assert_eq!(f["created"], DOCS_NOW);
    assert_eq!(app.get(&format!("/v1/files/{file_id}"), DEMO_KEY).await.ok(), f);

    // The bytes as stored, as an attachment no browser renders as a page of ours.
    let r = download(&app, DEMO_KEY, &file_id).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/pdf");
    assert_eq!(h["content-disposition"], "attachment; filename=\"lease.pdf\"; filename*=UTF-8''lease.pdf");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
    assert_eq!(h["cache-control"], "no-store");
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // JPEG and PNG, each served as its type.
    for (name, bytes, kind, media) in
        [("photo.jpg", jpeg(), "jpg", "image/jpeg"), ("plan.png", png(), "png", "image/png")]
    {
        let f = upload(&app, DEMO_KEY, name, &bytes).await.ok();
        assert_eq!((f["type"].as_str(), f["size"].as_u64()), (Some(kind), Some(bytes.len() as u64)));
        let r = download(&app, DEMO_KEY, &id(&f)).await;
        assert_eq!(r.headers()["content-type"], media);
        assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    }

    // Lists: newest first, cursors, `purpose` and `created` filters.
    let list = app.get("/v1/files", DEMO_KEY).await.ok();
    assert_eq!(list["url"], "/v1/files");
    let data = list["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[2]["id"], file_id.as_str());
    let page = app.get("/v1/files?limit=1", DEMO_KEY).await.ok();
    assert_eq!(page["has_more"], true);
    let next = app.get(&format!("/v1/files?starting_after={}", id(&page["data"][0])), DEMO_KEY).await.ok();
    assert_eq!(next["data"].as_array().unwrap().len(), 2);
    let by_purpose = app.get("/v1/files?purpose=claim_evidence", DEMO_KEY).await.ok();
    assert_eq!(by_purpose["data"].as_array().unwrap().len(), 3);
    let r = app.get("/v1/files?purpose=selfie", DEMO_KEY).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_invalid_value"))["param"], "purpose");
    let later = app.get(&format!("/v1/files?created[gt]={DOCS_NOW}"), DEMO_KEY).await.ok();
    assert_eq!(later["data"].as_array().unwrap().len(), 0);
    let r = app.get("/v1/files?starting_after=file_nothing", DEMO_KEY).await;
    r.err(404, "invalid_request_error", Some("resource_missing"));
    for path in ["/v1/files/file_nothing", "/v1/files/file_nothing/contents", "/v1/files/cus_123456789/contents"] {
        app.get(path, DEMO_KEY).await.err(404, "invalid_request_error", Some("resource_missing"));
    }

    // Its event.
    let events = app.get("/v1/events?type=file.created", DEMO_KEY).await.ok();
    assert_eq!(events["data"].as_array().unwrap().len(), 3);
    assert_eq!(events["data"][2]["data"]["object"], f);
}

#[tokio::test]
async fn the_type_is_judged_from_the_bytes_never_the_name_or_declared_type() {
    let app = TestApp::start().await;
    // A PDF named and declared as a PNG is a PDF.
    let r = upload_parts(
        &app,
        DEMO_KEY,
        &[Part::File("file", Some("scan.png"), "image/png", &pdf(10)), Part::Text("purpose", "claim_evidence")],
    )
    .await
    .ok();
    assert_eq!(r["type"], "pdf");
    let r = download(&app, DEMO_KEY, &id(&r)).await;
    assert_eq!(r.headers()["content-type"], "application/pdf");

    let mut zip_behind_pdf_header = b"%PDF-1.4\n%%EOF\nPK\x03\x04\x14\0\0\0\x08\0".to_vec();
    zip_behind_pdf_header.extend_from_slice(&[7u8; 200]);
    zip_behind_pdf_header.extend_from_slice(b"PK\x01\x02\x14\0PK\x05\x06\0\0\0\0\x01\0\x01\0\x2e\0\0\0");
    let zip = [&b"PK\x03\x04\x14\0\0\0\x08\0"[..], &[7u8; 200]].concat();
    let html = b"<!doctype html><script>alert(document.cookie)</script>".to_vec();
    let pdf_without_end = b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n".to_vec();
    for (name, bytes) in [
        ("contract.pdf", zip_behind_pdf_header),
        ("contract.pdf", zip),
        ("invoice.pdf", html),
        ("lease.pdf", pdf_without_end),
        ("photo.jpg", b"GIF89a\x01\0\x01\0".to_vec()),
    ] {
        let r = upload(&app, DEMO_KEY, name, &bytes).await;
        let e = r.err(400, "invalid_request_error", Some("file_type_unsupported"));
        assert_eq!(e["param"], "file", "{name}");
    }
    // A 0-byte file.
    let r = upload(&app, DEMO_KEY, "empty.pdf", b"").await;
    assert_eq!(r.err(400, "invalid_request_error", Some("file_empty"))["param"], "file");
    assert_eq!(file_count(&app, DEMO_KEY).await, 1, "nothing refused was stored");
}

#[tokio::test]
async fn bad_bodies_are_clear_400s_and_store_nothing() {
    let app = TestApp::start().await;
    let doc = pdf(100);
    let file = Part::File("file", Some("lease.pdf"), "application/pdf", &doc);
    let purpose = Part::Text("purpose", "claim_evidence");

    // Truncated: the body stops inside the file part (Content-Length matches what is sent).
    let whole = multipart(
        BOUNDARY,
        &[Part::Text("purpose", "claim_evidence"), Part::File("file", Some("a.pdf"), "application/pdf", &doc)],
    );
    for cut in [whole.len() - 10, whole.len() - 60, 60] {
        let r =
            app.raw(Method::POST, "/v1/files", Some(DEMO_KEY), Some(&form_type(BOUNDARY)), whole[..cut].to_vec()).await;
        r.err(400, "invalid_request_error", None);
    }
    let cases: Vec<(Vec<Part>, &str, Option<&str>)> = vec![
        (vec![Part::Text("purpose", "claim_evidence")], "file", Some("parameter_missing")),
        (vec![Part::File("file", Some("lease.pdf"), "application/pdf", &doc)], "purpose", Some("parameter_missing")),
        (
            vec![
                Part::File("file", Some("a.pdf"), "application/pdf", &doc),
                Part::File("file", Some("b.pdf"), "application/pdf", &doc),
                Part::Text("purpose", "claim_evidence"),
            ],
            "file",
            Some("parameter_duplicate"),
        ),
        (
            vec![Part::Text("purpose", "claim_evidence"), Part::Text("purpose", "claim_evidence")],
            "purpose",
            Some("parameter_duplicate"),
        ),
        (
            vec![Part::File("file", None, "application/pdf", &doc), Part::Text("purpose", "claim_evidence")],
            "file",
            Some("file_name_invalid"),
        ),
        (
            vec![Part::File("file", Some("../.."), "application/pdf", &doc), Part::Text("purpose", "claim_evidence")],
            "file",
            Some("file_name_invalid"),
        ),
        (
            vec![Part::File("file", Some("lease.pdf"), "application/pdf", &doc), Part::Text("purpose", "selfie")],
            "purpose",
            Some("parameter_invalid_value"),
        ),
        (
            vec![
                Part::File("file", Some("lease.pdf"), "application/pdf", &doc),
                Part::Text("purpose", "claim_evidence"),
                Part::Text("title", "Lease"),
            ],
            "title",
            Some("parameter_unknown"),
        ),
    ];
    for (parts, param, code) in cases {
        let r = upload_parts(&app, DEMO_KEY, &parts).await;
        assert_eq!(r.err(400, "invalid_request_error", code)["param"], param, "{}", r.text);
    }
    // A file part sent as plain text (no filename) under another name, a body that is
    // not multipart at all, a multipart type without its boundary.
    let r = app.post("/v1/files", DEMO_KEY, json!({"purpose": "claim_evidence", "file": "JVBERi0="})).await;
    r.err(415, "invalid_request_error", Some("unsupported_media_type"));
    let body = multipart(BOUNDARY, &[file, purpose]);
    let r = app.raw(Method::POST, "/v1/files", Some(DEMO_KEY), Some("multipart/form-data"), body.clone()).await;
    r.err(400, "invalid_request_error", None);
    let r = app.raw(Method::POST, "/v1/files", Some(DEMO_KEY), Some(&form_type("other-boundary")), body).await;
    r.err(400, "invalid_request_error", None);
    // A control character other than a tab in a part's header: malformed.
    upload(&app, DEMO_KEY, "bad\u{1}name.pdf", &doc).await.err(400, "invalid_request_error", None);
    assert_eq!(file_count(&app, DEMO_KEY).await, 0);
    assert_eq!(app.get("/v1/events?type=file.created", DEMO_KEY).await.ok()["data"].as_array().unwrap().len(), 0);

    // Names with paths and control characters are stored cleaned, and never break
    // the download's headers.
    for (sent, kept) in [
        ("../../etc/lease.pdf", "lease.pdf"),
        ("C:\\Users\\me\\scan 1.pdf", "scan 1.pdf"),
        ("bad\tname\u{202e}fdp.pdf", "badnamefdp.pdf"),
        ("Übergabe–Protokoll.pdf", "Übergabe–Protokoll.pdf"),
    ] {
        let r = upload(&app, DEMO_KEY, sent, &doc).await;
        assert_eq!(r.status, 200, "{sent:?}: {}", r.text);
        let f = r.body;
        assert_eq!(f["filename"], kept, "{sent}");
        let r = download(&app, DEMO_KEY, &id(&f)).await;
        let disposition = r.headers()["content-disposition"].to_str().unwrap().to_owned();
        assert!(disposition.starts_with("attachment; filename=\""), "{disposition}");
        assert!(!disposition.contains('/') && !disposition.contains('\\'), "{disposition}");
        assert_eq!(disposition.matches('"').count(), 2, "{disposition}");
    }
}

/// Sends `head` and then `body` in chunks of `chunk` bytes with chunked transfer
/// encoding, over a raw connection; returns the status of the answer.
async fn send_chunked(app: &TestApp, path: &str, content_type: &str, body: &[u8], chunk: usize) -> u16 {
    let mut conn = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {DEMO_KEY}\r\nContent-Type: {content_type}\r\n\
         Transfer-Encoding: chunked\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (and stop reading) before the body ends: writes may fail then.
    for part in body.chunks(chunk) {
        if conn.write_all(format!("{:x}\r\n", part.len()).as_bytes()).await.is_err()
            || conn.write_all(part).await.is_err()
            || conn.write_all(b"\r\n").await.is_err()
        {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no answer: {text:?}"))
}

#[tokio::test]
async fn the_file_limit_is_for_uploads_only() {
    let max = 200_000;
    let app = TestApp::start_with(ApiConfig {
        rate_limits: RateLimitConfig::OFF,
        max_file_bytes: max,
        ..ApiConfig::default()
    })
    .await;
    // Exactly the limit, then a byte more.
    let at_limit = pdf(max - pdf(0).len());
    assert_eq!(at_limit.len(), max);
    upload(&app, DEMO_KEY, "big.pdf", &at_limit).await.ok();
    let over = pdf(max + 1 - pdf(0).len());
    let r = upload(&app, DEMO_KEY, "big.pdf", &over).await;
    assert_eq!(r.err(413, "invalid_request_error", Some("file_too_large"))["param"], "file");
    // A body over the upload's limit: 413 by Content-Length, and when sent chunked.
    let huge = multipart(
        BOUNDARY,
        &[Part::Text("purpose", "claim_evidence"), Part::File("file", Some("h.pdf"), "application/pdf", &pdf(max * 2))],
    );
    let r = app.raw(Method::POST, "/v1/files", Some(DEMO_KEY), Some(&form_type(BOUNDARY)), huge.clone()).await;
    r.err(413, "invalid_request_error", Some("request_too_large"));
    assert_eq!(send_chunked(&app, "/v1/files", &form_type(BOUNDARY), &huge, 16 * 1024).await, 413);
    // With an Idempotency-Key too (that layer reads the body first).
    let r = app
        .client
        .post(app.url("/v1/files"))
        .bearer_auth(DEMO_KEY)
        .header("idempotency-key", "big-one")
        .header("content-type", form_type(BOUNDARY))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // A chunked upload within the limit is fine.
    let ok = multipart(
        BOUNDARY,
        &[Part::Text("purpose", "claim_evidence"), Part::File("file", Some("c.pdf"), "application/pdf", &pdf(50_000))],
    );
    assert_eq!(send_chunked(&app, "/v1/files", &form_type(BOUNDARY), &ok, 7_000).await, 200);
    assert_eq!(file_count(&app, DEMO_KEY).await, 2);

    // Every other route keeps the 1 MiB limit, by Content-Length and chunked.
    let name = "n".repeat(1_100_000);
    let form = format!("name={name}").into_bytes();
    let r = app
        .raw(Method::POST, "/v1/customers", Some(DEMO_KEY), Some("application/x-www-form-urlencoded"), form.clone())
        .await;
    r.err(413, "invalid_request_error", Some("request_too_large"));
    assert_eq!(send_chunked(&app, "/v1/customers", "application/x-www-form-urlencoded", &form, 64 * 1024).await, 413);
}

#[tokio::test]
async fn uploads_over_a_mebibyte_pass_by_default() {
    let app = TestApp::start().await;
    let big = pdf(3 * 1024 * 1024);
    let f = upload(&app, DEMO_KEY, "ledger.pdf", &big).await.ok();
    assert_eq!(f["size"], big.len());
    assert_eq!(f["sha256"], hex::encode(Sha256::digest(&big)).as_str());
    // Stored in parts of 256 KiB, read back whole and in order.
    assert!(download(&app, DEMO_KEY, &id(&f)).await.bytes().await.unwrap() == big);
}

#[tokio::test]
async fn uploads_are_idempotent() {
    let app = TestApp::start().await;
    let doc = pdf(500);
    let send = |key: &'static str, boundary: &'static str, bytes: Vec<u8>| {
        let body = multipart(
            boundary,
            &[
                Part::File("file", Some("lease.pdf"), "application/pdf", &bytes),
                Part::Text("purpose", "claim_evidence"),
            ],
        );
        app.client
            .post(app.url("/v1/files"))
            .bearer_auth(DEMO_KEY)
            .header("idempotency-key", key)
            .header("content-type", form_type(boundary))
            .body(body)
            .send()
    };
    let first = Resp::from_response(&Method::POST, send("upload-1", BOUNDARY, doc.clone()).await.unwrap()).await;
    let first_headers = first.headers.clone();
    let first = first.ok();
    assert!(first_headers.get("idempotent-replayed").is_none());
    // The same upload again, and again with another boundary (as curl picks a new one).
    for boundary in [BOUNDARY, "xyz-another-boundary"] {
        let again = Resp::from_response(&Method::POST, send("upload-1", boundary, doc.clone()).await.unwrap()).await;
        assert_eq!(again.headers["idempotent-replayed"], "true");
        assert_eq!(again.ok(), first);
    }
    // Other bytes with the same key: the usual 400.
    let other = Resp::from_response(&Method::POST, send("upload-1", BOUNDARY, pdf(501)).await.unwrap()).await;
    other.err(400, "idempotency_error", None);
    assert_eq!(file_count(&app, DEMO_KEY).await, 1);
}

#[tokio::test]
async fn claims_take_evidence_files_added_never_removed() {
    let app = TestApp::start().await;
    let account = app.new_account().await;
    let other = app.new_account().await;
    let key = account.test_key.as_str();
    let policy = app.docs_policy(key).await;
    let tenant = app.customer(key, 80).await;
    let g = id(&app.docs_guarantee(key, &id(&policy), &id(&tenant)).await);
    app.clock.set(DOCS_NOW + 40 * DAY);
    let due = DOCS_NOW + 30 * DAY;
    let mut files = Vec::new();
    for i in 0..21 {
        files.push(id(&upload(&app, key, &format!("photo{i}.pdf"), &pdf(i)).await.ok()));
    }
    // The same account's live mode, and another account.
    let live = id(&upload(&app, &account.live_key, "live.pdf", &pdf(1)).await.ok());
    let foreign = id(&upload(&app, &other.test_key, "theirs.pdf", &pdf(1)).await.ok());

    // On create: ids of this account and mode only; a 404 names the id's place.
    // (An id of the wrong shape is refused as it is parsed, naming the list, as for
    // any list parameter.)
    for (bad, param) in [
        (foreign.as_str(), "evidence[files][1]"),
        (live.as_str(), "evidence[files][1]"),
        ("file_nothing", "evidence[files][1]"),
        ("cus_123456789", "evidence[files]"),
    ] {
        let mut body = TestApp::claim_body(&g, "inv_bad", due);
        body["evidence"]["files"] = json!([files[0], bad]);
        let r = app.post("/v1/claims", key, body).await;
        assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], param, "{bad}");
    }
    let mut body = TestApp::claim_body(&g, "inv_many", due);
    body["evidence"]["files"] = json!(files);
    let r = app.post("/v1/claims", key, body).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("too_many_files"))["param"], "evidence[files]");
    assert_eq!(app.get("/v1/claims", key).await.ok()["data"].as_array().unwrap().len(), 0);

    // Form-encoded, as Stripe's SDKs send it.
    let form = format!(
        "guarantee={g}&amount=120000&currency=eur&reason=property_damage&evidence[invoice_id]=inv_1\
         &evidence[due_date]={due}&evidence[files][0]={}&evidence[files][1]={}",
        files[0], files[1]
    );
    let r = app
        .raw(Method::POST, "/v1/claims", Some(key), Some("application/x-www-form-urlencoded"), form.into_bytes())
        .await;
    let claim = r.ok();
    assert_eq!(claim["evidence"]["files"], json!([files[0], files[1]]));
    let path = format!("/v1/claims/{}", id(&claim));
    assert_eq!(app.get(&path, key).await.ok()["evidence"]["files"], json!([files[0], files[1]]));

    // Update while under review: ids are added (once), never removed.
    let updated = app.post(&path, key, json!({"evidence": {"files": [files[2], files[0]]}})).await.ok();
    assert_eq!(updated["evidence"]["files"], json!([files[0], files[1], files[2]]));
    assert_eq!(updated["evidence"]["invoice_id"], "inv_1");
    let same = app.post(&path, key, json!({"evidence": {"files": []}, "metadata": {"k": "v"}})).await.ok();
    assert_eq!(same["evidence"]["files"], updated["evidence"]["files"]);
    let event = &app.get("/v1/events?type=claim.updated&limit=2", key).await.ok()["data"][1];
    assert_eq!(event["data"]["previous_attributes"]["evidence"]["files"], json!([files[0], files[1]]));
    let r = app.post(&path, key, json!({"evidence": {"files": [foreign]}})).await;
    assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], "evidence[files][0]");
    let r = app.post(&path, key, json!({"evidence": {"files": files[3..21]}})).await;
    r.err(400, "invalid_request_error", Some("too_many_files"));
    let r = app.post(&path, key, json!({"evidence": {"invoice_id": "inv_other"}})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("parameter_unknown"))["param"], "evidence[invoice_id]");
    let r = app.post(&path, key, json!({"evidence": {"files": ["not-a-file"]}})).await;
    assert_eq!(r.err(404, "invalid_request_error", Some("resource_missing"))["param"], "evidence[files]");
    assert_eq!(app.get(&path, key).await.ok()["evidence"]["files"].as_array().unwrap().len(), 3);

    // Decided: no more evidence, though metadata still changes.
    app.post(&format!("/v1/test_helpers/claims/{}/deny", id(&claim)), key, json!({})).await.ok();
    let r = app.post(&path, key, json!({"evidence": {"files": [files[4]]}})).await;
    assert_eq!(r.err(400, "invalid_request_error", Some("claim_not_under_review"))["param"], "evidence[files]");
    app.post(&path, key, json!({"metadata": {"k": "w"}})).await.ok();
}

#[tokio::test]
async fn files_are_scoped_to_their_account_and_mode() {
    let app = TestApp::start().await;
    let a = app.new_account().await;
    let b = app.new_account().await;
    let test_file = upload(&app, &a.test_key, "a.pdf", &pdf(3)).await.ok();
    let live_file = upload(&app, &a.live_key, "a-live.pdf", &pdf(4)).await.ok();
    assert_eq!(live_file["livemode"], true);
    for (key, f) in
        [(&a.live_key, &test_file), (&a.test_key, &live_file), (&b.test_key, &test_file), (&b.live_key, &live_file)]
    {
        for path in [format!("/v1/files/{}", id(f)), format!("/v1/files/{}/contents", id(f))] {
            app.get(&path, key).await.err(404, "invalid_request_error", Some("resource_missing"));
        }
        let r = app.get(&format!("/v1/files?starting_after={}", id(f)), key).await;
        r.err(404, "invalid_request_error", Some("resource_missing"));
    }
    let only = |v: Value| v["data"].as_array().unwrap().iter().map(id).collect::<Vec<_>>();
    assert_eq!(only(app.get("/v1/files", &a.test_key).await.ok()), [id(&test_file)]);
    assert_eq!(only(app.get("/v1/files", &a.live_key).await.ok()), [id(&live_file)]);
    assert!(only(app.get("/v1/files", &b.test_key).await.ok()).is_empty());
    // Operator keys are not platform keys: they list and upload nothing, and a file
    // that no claim names is no file to them.
    let operator = app.operator_key().await;
    for path in [format!("/v1/files/{}", id(&test_file)), format!("/v1/files/{}/contents", id(&test_file))] {
        app.get(&path, &operator).await.err(404, "invalid_request_error", Some("resource_missing"));
    }
    app.get("/v1/files", &operator).await.err(403, "permission_error", None);
    upload(&app, &operator, "op.pdf", &pdf(1)).await.err(403, "permission_error", None);
}

/// The headers every download of a file's bytes carries, whoever asks.
fn assert_download_headers(r: &reqwest::Response, media: &str, filename: &str) {
    let h = r.headers();
    assert_eq!(h["content-type"], media);
    assert_eq!(
        h["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{filename}\"; filename*=UTF-8''{filename}")
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
    assert_eq!(h["cache-control"], "no-store");
}

#[tokio::test]
async fn operators_read_the_files_of_claims_in_any_account_and_nothing_else() {
    let app = TestApp::start().await;
    let a = app.new_account().await;
    let b = app.new_account().await;
    let key = a.test_key.as_str();
    let policy = app.docs_policy(key).await;
    let tenant = app.customer(key, 80).await;
    let g = id(&app.docs_guarantee(key, &id(&policy), &id(&tenant)).await);
    app.clock.set(DOCS_NOW + 40 * DAY);
    let bytes = pdf(200);
    let on_create = upload(&app, key, "lease.pdf", &bytes).await.ok();
    let later = upload(&app, key, "photo.png", &png()).await.ok();
    let loose = upload(&app, key, "unattached.pdf", &pdf(5)).await.ok();
    let mut body = TestApp::claim_body(&g, "inv_files", DOCS_NOW + 30 * DAY);
    body["reason"] = json!("property_damage");
    body["evidence"]["files"] = json!([id(&on_create)]);
    let claim = app.post("/v1/claims", key, body).await.ok();
    app.settle().await;
    let operator = casapay::service::operators::create(&app.store, "Alice", None, app.clock.now()).await.unwrap().key;

    // The review claim holds the file objects, as its platform reads them.
    let review = app.get(&format!("/v1/review/claims/{}", id(&claim)), &operator).await.ok();
    assert_eq!(review["evidence"]["files"], json!([on_create.clone()]));

    // Files a claim names, answered as to the platform, with the same download headers.
    assert_eq!(app.get(&format!("/v1/files/{}", id(&on_create)), &operator).await.ok(), on_create);
    let r = download(&app, &operator, &id(&on_create)).await;
    assert_eq!(r.status(), 200);
    assert_download_headers(&r, "application/pdf", "lease.pdf");
    assert_eq!(r.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let r = download(&app, key, &id(&on_create)).await;
    assert_download_headers(&r, "application/pdf", "lease.pdf");

    // Not yet named by a claim: 404; once the platform adds it to the evidence, readable.
    let path = format!("/v1/files/{}", id(&later));
    app.get(&path, &operator).await.err(404, "invalid_request_error", Some("resource_missing"));
    app.post(&format!("/v1/claims/{}", id(&claim)), key, json!({"evidence": {"files": [id(&later)]}})).await.ok();
    assert_eq!(app.get(&path, &operator).await.ok(), later);
    let r = download(&app, &operator, &id(&later)).await;
    assert_download_headers(&r, "image/png", "photo.png");
    let review = app.get(&format!("/v1/review/claims/{}", id(&claim)), &operator).await.ok();
    let names: Vec<&str> =
        review["evidence"]["files"].as_array().unwrap().iter().map(|f| f["filename"].as_str().unwrap()).collect();
    assert_eq!(names, ["lease.pdf", "photo.png"], "in the order they were added");

    // A file no claim names, an unknown id: 404 to operators, as to everyone.
    for f in [id(&loose), "file_nothing".to_owned()] {
        for path in [format!("/v1/files/{f}"), format!("/v1/files/{f}/contents")] {
            app.get(&path, &operator).await.err(404, "invalid_request_error", Some("resource_missing"));
        }
    }
    // Another platform cannot read account A's files, named by a claim or not.
    for f in [&on_create, &later, &loose] {
        for path in [format!("/v1/files/{}", id(f)), format!("/v1/files/{}/contents", id(f))] {
            app.get(&path, &b.test_key).await.err(404, "invalid_request_error", Some("resource_missing"));
            app.get(&path, &a.live_key).await.err(404, "invalid_request_error", Some("resource_missing"));
        }
    }
    // Platforms never see the review routes.
    app.get(&format!("/v1/review/claims/{}", id(&claim)), key).await.err(403, "permission_error", None);
}
