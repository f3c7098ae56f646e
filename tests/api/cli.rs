//! The `casapay` binary: migrate, accounts create, operator-keys create, serve.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{TestDb, open_store};

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
    let mut child = Command::new(env!("CARGO_BIN_EXE_casapay"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &db.url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
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
    let mut server = Command::new(env!("CARGO_BIN_EXE_casapay"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}"), "--data"])
        .arg(&data)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
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
