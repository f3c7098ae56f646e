//! `casapay listen`: forwards the events of a key's account and mode to a local URL,
//! as `stripe listen` does, with no endpoint on the server and no public address. It
//! reads the events list over the API and signs each forwarded event with a secret of
//! its own, in both schemes, so the receiver verifies it as it would a real delivery.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::client::{ApiClient, CallError};
use crate::domain::review::civil_from_days;
use crate::webhooks::signing::{new_secret, signature_headers};

/// Events are read again this far back (seconds) on every poll: an event written by a
/// transaction that began earlier may commit after a later one was read.
const LOOKBACK: i64 = 10;
/// Events per page of the events list.
const PAGE: usize = 100;

#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub forward_to: String,
    /// Only these event types (None: all).
    pub events: Option<Vec<String>>,
    /// How often the events list is read.
    pub poll: Duration,
}

#[derive(Deserialize)]
struct EventPage {
    data: Vec<Box<RawValue>>,
    has_more: bool,
}

#[derive(Deserialize)]
struct EventHead {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    created: i64,
}

/// An event as the server wrote it: its bytes are forwarded unchanged.
struct Listed {
    head: EventHead,
    body: Box<RawValue>,
}

/// The events created at or after `since`, oldest first.
async fn events_since(client: &ApiClient, since: i64) -> Result<Vec<Listed>, CallError> {
    let mut found = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut path = format!("/v1/events?limit={PAGE}&created%5Bgte%5D={since}");
        if let Some(id) = &after {
            path.push_str(&format!("&starting_after={id}"));
        }
        let text = client.get_text(&path).await?;
        let page: EventPage = serde_json::from_str(&text).map_err(|e| CallError::Refused {
            method: "GET".into(),
            path: path.clone(),
            status: 200,
            message: format!("not an events list: {e}"),
        })?;
        for body in page.data {
            let head: EventHead = serde_json::from_str(body.get()).map_err(|e| CallError::Refused {
                method: "GET".into(),
                path: path.clone(),
                status: 200,
                message: format!("not an event: {e}"),
            })?;
            after = Some(head.id.clone());
            found.push(Listed { head, body });
        }
        if !page.has_more || after.is_none() {
            break;
        }
    }
    found.reverse();
    Ok(found)
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
fn utc(ts: i64) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(86_400));
    let s = ts.rem_euclid(86_400);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Forwards every new event until `stop` resolves. Prints the signing secret first,
/// then one line per event. A server that goes away is waited for; the events written
/// since the last one forwarded are forwarded when it is back.
pub async fn listen(client: ApiClient, options: ListenOptions, stop: impl Future<Output = ()>) -> Result<(), String> {
    let forwarder = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
    let secret = new_secret();
    let mut stop = std::pin::pin!(stop);
    // Where to start: the newest event there is; what is older is not forwarded.
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut newest = loop {
        match client.get_text("/v1/events?limit=1").await {
            Ok(text) => {
                let page: EventPage = serde_json::from_str(&text).map_err(|e| format!("not an events list: {e}"))?;
                let first = page.data.first().and_then(|e| serde_json::from_str::<EventHead>(e.get()).ok());
                break first.map_or(0, |e| e.created);
            }
            Err(CallError::Unreachable { .. }) => {
                eprintln!("Waiting for the API at {} ...", client.base());
                tokio::select! {
                    _ = &mut stop => return Ok(()),
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    for e in events_since(&client, (newest - LOOKBACK).max(0)).await.map_err(|e| e.to_string())? {
        seen.insert(e.head.id, e.head.created);
    }
    println!("Ready! Your webhook signing secret is {secret} (^C to quit)");
    let mut down = false;
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(()),
            _ = tokio::time::sleep(options.poll) => {}
        }
        let listed = match events_since(&client, (newest - LOOKBACK).max(0)).await {
            Ok(listed) => listed,
            Err(e) if e.is_transient() => {
                if !down {
                    eprintln!("Lost the API at {}; waiting for it to come back ...", client.base());
                    down = true;
                }
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        if down {
            eprintln!("The API is back; forwarding what happened since.");
            down = false;
        }
        for event in listed {
            if seen.contains_key(&event.head.id) {
                continue;
            }
            seen.insert(event.head.id.clone(), event.head.created);
            newest = newest.max(event.head.created);
            if options.events.as_ref().is_some_and(|only| !only.contains(&event.head.kind)) {
                continue;
            }
            let outcome = forward(&forwarder, &options.forward_to, &secret, &event).await;
            println!("{}  {}  {}  -> {outcome}", utc(event.head.created), event.head.kind, event.head.id);
        }
        seen.retain(|_, created| *created >= newest - 2 * LOOKBACK);
    }
}

/// Posts one event to `url`, signed as a delivery is; the answer's status, or why none.
async fn forward(http: &reqwest::Client, url: &str, secret: &str, event: &Listed) -> String {
    let body = event.body.get().as_bytes().to_vec();
    let timestamp = unix_now();
    let signatures = signature_headers(&[secret], &event.head.id, timestamp, &body);
    let mut request = http
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", &event.head.id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signatures.webhook_signature);
    if let Some(stripe_scheme) = signatures.casapay_signature {
        request = request.header("casapay-signature", stripe_scheme);
    }
    match request.body(body).send().await {
        Ok(answer) => answer.status().as_u16().to_string(),
        Err(e) if e.is_timeout() => "timed out".to_owned(),
        Err(e) if e.is_connect() => "connection refused".to_owned(),
        Err(e) => format!("failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_the_docs_claim_time() {
        assert_eq!(utc(1_708_819_200), "2024-02-25 00:00:00");
        assert_eq!(utc(1_708_819_200 + 3_723), "2024-02-25 01:02:03");
    }
}
