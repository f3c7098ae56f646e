//! The `casapay` binary: migrate, accounts create, operator-keys create, serve.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{TestDb, open_store, serve_command};

fn casapay(db: &TestDb, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_casapay"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env_remove("CASAPAY_LISTEN")
        .stdin(Stdio::null())
        .output()
        .expect("run casapay")
}

/// The first answer of a server that is starting, polled with a deadline.
async fn first_answer(client: &reqwest::Client, url: &str, key: &str) -> reqwest::Response {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.get(url).bearer_auth(key).send().await {
            Ok(r) => return r,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("server did not start: {e}"),
        }
    }
}

#[tokio::test]
async fn cli_creates_accounts_and_operator_keys_that_work() {
    let db = TestDb::create().await;
    let out = casapay(&db, &["migrate"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let out = casapay(&db, &["accounts", "create", "--name", "Acme Lettings"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let account: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let test_key = account["test_key"].as_str().unwrap().to_owned();
    assert!(account["id"].as_str().unwrap().starts_with("acct_"));
    assert!(test_key.starts_with("sk_test_"));
    assert!(account["live_key"].as_str().unwrap().starts_with("sk_live_"));

    let out = casapay(&db, &["operator-keys", "create"]);
    let op: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let op_key = op["key"].as_str().unwrap().to_owned();
    assert!(op_key.starts_with("opk_"));

    // Only hashes are stored: the keys appear nowhere in the database.
    let store = open_store(&db.url).await;
    let rows: Vec<(String,)> = sqlx::query_as("SELECT key_hash FROM api_keys").fetch_all(store.pool()).await.unwrap();
    assert_eq!(rows.len(), 3);
    for (hash,) in rows {
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("sk_") && !hash.contains("opk_"));
    }

    // The server started by the binary accepts the new key and refuses the operator key.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = serve_command(&["--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .spawn()
        .expect("spawn serve");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/customers");
    let resp = first_answer(&client, &url, &test_key).await;
    assert_eq!(resp.status(), 200);
    let r = client.get(&url).bearer_auth(&op_key).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // SIGTERM: the server stops cleanly.
    #[cfg(unix)]
    {
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "clean exit after SIGTERM: {status}");
                break;
            }
            assert!(Instant::now() < deadline, "server did not stop after SIGTERM");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    #[cfg(not(unix))]
    child.kill().unwrap();
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_and_are_idempotent() {
    let db = TestDb::create().await;
    let store = open_store(&db.url).await;
    store.migrate().await.expect("second run is a no-op");
    for table in ["accounts", "api_keys", "customers", "guarantee_policies", "guarantees", "claims", "events"] {
        let n: (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(store.pool()).await.unwrap();
        assert_eq!(n.0, 0, "{table} exists and is empty");
    }
}

/// The zero-set-up store: `serve --data DIR` on SQLite; one server per file; the other
/// commands work beside it and what they create is visible at once.
#[tokio::test]
async fn sqlite_serve_is_one_per_file_and_other_commands_work_beside_it() {
    let dir = std::env::temp_dir().join(format!("casapay_cli_{}", casapay::ids::random_secret(10)));
    let data = dir.join("nested");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_casapay"))
            .args(args)
            .arg("--data")
            .arg(&data)
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .expect("run casapay")
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = serve_command(&["--demo", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env_remove("DATABASE_URL")
        .spawn()
        .expect("spawn serve");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/customers/cus_123456789");
    assert_eq!(first_answer(&client, &url, crate::support::DEMO_KEY).await.status(), 200);
    assert!(data.join("casapay.db").exists(), "the database file is in the data directory");

    let second = run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(!second.status.success(), "a second server on the same file is refused");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("another casapay server is already running"), "{stderr}");

    let out = run(&["accounts", "create", "--name", "Beside"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let account: Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = client
        .get(format!("http://127.0.0.1:{port}/v1/customers"))
        .bearer_auth(account["test_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a key created beside the server works at once");

    server.kill().unwrap();
    server.wait().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn keys_roll_with_a_grace_period_and_revoke() {
    use casapay::service::accounts::authenticate;
    use std::io::Write;

    let db = TestDb::create().await;
    let out = casapay(&db, &["accounts", "create", "--name", "Rolling"]);
    let account: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, old_test, live) = (
        account["id"].as_str().unwrap().to_owned(),
        account["test_key"].as_str().unwrap().to_owned(),
        account["live_key"].as_str().unwrap().to_owned(),
    );
    let store = open_store(&db.url).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let valid = |key: String, at: i64| {
        let store = store.clone();
        async move { authenticate(&store, &key, at).await.unwrap().is_some() }
    };

    // Rolled with two hours of grace: the old key works until then, the new one at once.
    let out = casapay(&db, &["keys", "roll", "--account", &id, "--mode", "test", "--grace-hours", "2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rolled: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new_test = rolled["key"].as_str().unwrap().to_owned();
    assert!(new_test.starts_with("sk_test_") && new_test != old_test);
    assert!(valid(old_test.clone(), now + 60).await, "the old key works during the grace period");
    assert!(!valid(old_test.clone(), now + 2 * 3600 + 60).await, "and not after it");
    assert!(valid(new_test.clone(), now + 3 * 3600).await);
    assert!(valid(live.clone(), now).await, "the other mode is untouched");

    // Rolled with no grace: the replaced key stops at once.
    let out = casapay(&db, &["keys", "roll", "--account", &id, "--mode", "test"]);
    let newest: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!valid(new_test.clone(), now + 60).await);
    let newest = newest["key"].as_str().unwrap().to_owned();
    assert!(valid(newest.clone(), now + 60).await);

    // Revoked from standard input.
    let revoke = |key: String| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_casapay"))
            .args(["keys", "revoke"])
            .env("DATABASE_URL", &db.url)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{key}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(revoke(live.clone()).status.success());
    assert!(!valid(live.clone(), now).await, "a revoked key is refused");
    assert!(!revoke(live).status.success(), "revoking twice says so");

    let out = casapay(&db, &["keys", "roll", "--account", "acct_nope", "--mode", "live"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such account"));
}

fn on_sqlite() -> bool {
    std::env::var("CASAPAY_TEST_BACKEND").is_ok_and(|b| b == "sqlite")
}

/// A port nothing listens on: bound, then freed.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run_with_url(url: &str, args: &[&str]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_casapay"))
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("CASAPAY_CREATE_DATABASE")
        .stdin(Stdio::null())
        .output()
        .expect("run casapay");
    (out, started.elapsed())
}

/// A refused connection is reported at once with the address tried, not as the
/// pool's "timed out" after its 5 s; never with the password.
#[tokio::test]
async fn an_unreachable_postgres_is_named_at_once() {
    let port = closed_port();
    let url = format!("postgres://casapay:pw-not-shown@127.0.0.1:{port}/casapay");
    for args in [&["migrate"][..], &["serve", "--listen", "127.0.0.1:0"]] {
        let (out, took) = run_with_url(&url, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("could not connect to PostgreSQL at 127.0.0.1:{port} (connection refused)")),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("is it running"), "{stderr}");
        assert!(!stderr.contains("pw-not-shown"), "the password is never printed: {stderr}");
        assert!(took < Duration::from_secs(4), "{args:?} took {took:?}");
    }
}

/// A missing database: the message says how to create it, and `--create-database`
/// (or `CASAPAY_CREATE_DATABASE=true`) creates it.
#[tokio::test]
async fn a_missing_database_says_how_to_create_it_or_is_created_when_allowed() {
    if on_sqlite() {
        return; // PostgreSQL only: SQLite creates its file.
    }
    use sqlx::Connection;
    let admin =
        std::env::var("CASAPAY_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let name = format!("casapay_missing_{}", casapay::ids::random_secret(10).to_ascii_lowercase());
    let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
    let url = format!("{base}/{name}");
    let target: sqlx::postgres::PgConnectOptions = url.parse().unwrap();

    let (out, _) = run_with_url(&url, &["migrate"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&format!("the database \"{name}\" does not exist")), "{stderr}");
    let createdb =
        format!("createdb -h {} -p {} -U {} {name}", target.get_host(), target.get_port(), target.get_username());
    assert!(stderr.contains(&createdb), "{stderr}");
    assert!(stderr.contains("--create-database"), "{stderr}");

    let (out, _) = run_with_url(&url, &["migrate", "--create-database"]);
    let created = out.status.success();
    // Through the environment, on a database that exists by now.
    let again = Command::new(env!("CARGO_BIN_EXE_casapay"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("CASAPAY_CREATE_DATABASE", "true")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut conn).await;
    assert!(created, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(again.status.success(), "an existing database is fine: {}", String::from_utf8_lossy(&again.stderr));
}

/// SQLite's counterpart: a data directory that cannot be created or written says so.
#[tokio::test]
async fn an_unusable_data_directory_says_so() {
    let dir = std::env::temp_dir().join(format!("casapay_cli_{}", casapay::ids::random_secret(10)));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("not-a-dir");
    std::fs::write(&file, b"").unwrap();
    for args in [&["migrate"][..], &["serve", "--listen", "127.0.0.1:0"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_casapay"))
            .args(args)
            .arg("--data")
            .arg(file.join("data"))
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains("cannot create the data directory"), "{stderr}");
        assert!(stderr.contains("--data or CASAPAY_DATA"), "{stderr}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// SIGTERM with clients that never finish (half a request line, a body trickling in):
/// the process exits, cleanly, once the grace period is over.
#[cfg(unix)]
#[tokio::test]
async fn serve_exits_within_the_grace_period_after_sigterm_despite_trickling_clients() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let db = TestDb::create().await;
    let port = closed_port();
    let mut child = serve_command(&["--demo", "--no-engine", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .env("CASAPAY_SHUTDOWN_GRACE_SECS", "1")
        .env("CASAPAY_HEADER_READ_TIMEOUT_SECS", "60")
        .env("CASAPAY_IDLE_TIMEOUT_SECS", "60")
        .env("CASAPAY_REQUEST_TIMEOUT_SECS", "60")
        .spawn()
        .expect("spawn serve");
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/v1/customers");
    assert_eq!(first_answer(&client, &url, crate::support::DEMO_KEY).await.status(), 200);

    let address = format!("127.0.0.1:{port}");
    let mut half = tokio::net::TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /v1/customers HTTP/1.1\r\nHost: ca").await.unwrap();
    // A POST whose handler is reading a body that never comes whole (`100 Continue`
    // says the handler has started on it).
    let mut trickling = tokio::net::TcpStream::connect(&address).await.unwrap();
    let head = format!(
        "POST /v1/customers HTTP/1.1\r\nHost: casapay\r\nAuthorization: Bearer {}\r\nIdempotency-Key: sigterm\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
        crate::support::DEMO_KEY
    );
    trickling.write_all(head.as_bytes()).await.unwrap();
    let mut continued = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(10), trickling.read_exact(&mut continued)).await.unwrap().unwrap();
    assert_eq!(&continued, b"HTTP/1.1 100");
    trickling.write_all(b"name=").await.unwrap();

    let pid = child.id().to_string();
    let signalled = Instant::now();
    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    let deadline = signalled + Duration::from_secs(6);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "clean exit after SIGTERM: {status}");
            break;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("still running {:?} after SIGTERM with a 1 s grace period", signalled.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(signalled.elapsed() >= Duration::from_millis(950), "the request in flight had its grace period");
    drop((half, trickling));
}

/// `--grace-hours` is 0 to 720: a negative or huge value once wrapped `now + grace`
/// into the past and ended the old key at once. Now it is refused, and nothing changes.
#[tokio::test]
async fn keys_roll_refuses_a_grace_period_out_of_range() {
    use casapay::service::accounts::authenticate;

    let db = TestDb::create().await;
    let out = casapay(&db, &["accounts", "create", "--name", "Rolling"]);
    let account: Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id, old) = (account["id"].as_str().unwrap().to_owned(), account["test_key"].as_str().unwrap().to_owned());
    let store = open_store(&db.url).await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;

    for grace in [
        "--grace-hours=-1",
        "--grace-hours=721",
        "--grace-hours=9223372036854775807",
        "--grace-hours=-9223372036854775808",
    ] {
        let out = casapay(&db, &["keys", "roll", "--account", &id, "--mode", "test", grace]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{grace} is refused");
        assert!(stderr.contains("--grace-hours") && stderr.contains("0..=720"), "{grace}: {stderr}");
        assert!(out.stdout.is_empty(), "no key is printed");
    }
    // A negative number after a space is a value too, and refused the same way.
    let out = casapay(&db, &["keys", "roll", "--account", &id, "--mode", "test", "--grace-hours", "-5"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("0..=720"));
    assert!(authenticate(&store, &old, now + 60).await.unwrap().is_some(), "the old key still works");
    let keys: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys").fetch_one(store.pool()).await.unwrap();
    assert_eq!(keys, 2, "no key was made");

    // The bound itself is accepted: 720 hours.
    let out = casapay(&db, &["keys", "roll", "--account", &id, "--mode", "test", "--grace-hours", "720"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(authenticate(&store, &old, now + 719 * 3600).await.unwrap().is_some());
    assert!(authenticate(&store, &old, now + 720 * 3600 + 60).await.unwrap().is_none());
}

/// The service refuses an out-of-range grace period too, whoever calls it.
#[tokio::test]
async fn roll_secret_key_bounds_the_grace_period() {
    use casapay::service::accounts::{self, MAX_KEY_GRACE_HOURS};

    let db = TestDb::create().await;
    let store = open_store(&db.url).await;
    let created = accounts::create_account(&store, "Rolling", 1_000).await.unwrap();
    for grace in [-1, MAX_KEY_GRACE_HOURS * 3600 + 1, i64::MAX, i64::MIN] {
        let e = accounts::roll_secret_key(&store, &created.id, false, grace, 1_000).await.unwrap_err();
        assert_eq!(e.code(), Some("parameter_out_of_range"), "{grace}");
    }
    assert!(accounts::authenticate(&store, &created.test_key, 1_001).await.unwrap().is_some());
    accounts::roll_secret_key(&store, &created.id, false, MAX_KEY_GRACE_HOURS * 3600, 1_000).await.unwrap();
    assert!(
        accounts::authenticate(&store, &created.test_key, 1_000 + MAX_KEY_GRACE_HOURS * 3600 - 1)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn cli_creates_lists_and_disables_named_operators() {
    let db = TestDb::create().await;
    let out = casapay(&db, &["operators", "create", "--name", "Alice Martin", "--email", "alice@provider.example"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let alice: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(alice["id"].as_str().unwrap().starts_with("op_"));
    assert_eq!(alice["name"], "Alice Martin");
    assert!(alice["key"].as_str().unwrap().starts_with("opk_"));
    let fields: Vec<&str> = alice.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(fields.len(), 3, "{alice}");
    let out = casapay(&db, &["operator-keys", "create"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = casapay(&db, &["operators", "list"]);
    let all: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    let names: Vec<&str> = all.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Alice Martin", "operator"]);
    assert_eq!(all[0]["email"], "alice@provider.example");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("opk_"), "keys are shown once, at creation");
    let out = casapay(&db, &["operators", "disable", "--id", alice["id"].as_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let disabled: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(disabled["disabled_at"].is_i64());
    let out = casapay(&db, &["operators", "disable", "--id", "op_nobody"]);
    assert!(!out.status.success());
    let out = casapay(&db, &["operators", "create", "--name", " "]);
    assert!(!out.status.success(), "a name is required");
}
