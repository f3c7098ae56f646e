//! Events table: the outbox that every state change writes to in its own transaction.

use std::collections::HashMap;

use serde_json::value::RawValue;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::{defer_rows, scoped_row};
use super::{Conn, Scope, Tx, get_bool};
use crate::domain::event::{Event, EventData, EventRequest};
use crate::resource;

const COLUMNS: &str =
    "id, livemode, created, type, object, previous_attributes, request_id, idempotency_key, pending_webhooks";

fn raw(text: String) -> Result<Box<RawValue>, sqlx::Error> {
    RawValue::from_string(text).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

fn from_row(r: &AnyRow) -> Result<Event, sqlx::Error> {
    let previous: Option<String> = r.try_get("previous_attributes")?;
    Ok(Event {
        id: r.try_get("id")?,
        created: r.try_get("created")?,
        data: EventData { object: raw(r.try_get("object")?)?, previous_attributes: previous.map(raw).transpose()? },
        livemode: get_bool(r, "livemode")?,
        pending_webhooks: r.try_get("pending_webhooks")?,
        request: EventRequest { id: r.try_get("request_id")?, idempotency_key: r.try_get("idempotency_key")? },
        kind: r.try_get("type")?,
    })
}

/// A new event row; `object` and `previous_attributes` are JSON text.
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub created: i64,
    pub kind: &'a str,
    pub object: &'a str,
    pub previous_attributes: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    /// How many webhook deliveries the event starts with.
    pub pending_webhooks: i64,
}

/// Inserts events, each in its scope, in the order given: one statement per chunk,
/// deferred (`Tx::defer`).
pub async fn insert(tx: &mut Tx, events: &[(&Scope, &NewEvent<'_>)]) -> Result<(), sqlx::Error> {
    defer_rows(
        tx,
        "events",
        events,
        |values| {
            format!(
                "INSERT INTO events (id, account_id, livemode, created, type, object, previous_attributes, \
                 request_id, idempotency_key, pending_webhooks) VALUES {values}"
            )
        },
        |sql, (scope, e)| {
            scoped_row(sql, e.id.to_owned(), scope, e.created, |sql| {
                vec![
                    sql.bind(e.kind.to_owned()),
                    sql.bind(e.object.to_owned()),
                    sql.bind(e.previous_attributes.map(str::to_owned)),
                    sql.bind(e.request_id.map(str::to_owned)),
                    sql.bind(e.idempotency_key.map(str::to_owned)),
                    sql.bind(e.pending_webhooks),
                ]
            })
        },
    )
    .await?;
    Ok(())
}

super::list::scoped_reads! {
    Event, resource::EVENT.table, COLUMNS, from_row;
    list(kind: Option<String>) |sql| sql.and_eq_some("type", kind)
}

/// Deletes events created before `before` (retention). Returns how many went.
pub async fn delete_older_than(conn: &mut Conn, before: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM events WHERE created < $1").bind(before).execute(&mut *conn).await?.rows_affected())
}

/// Events by id alone, for the dispatcher (which works across accounts): one query
/// for a whole batch of deliveries.
pub async fn get_many_any(conn: &mut Conn, ids: &[&str]) -> Result<HashMap<String, Event>, sqlx::Error> {
    super::list::fetch_by_ids(conn, &format!("SELECT {COLUMNS} FROM events"), ids, "", from_row).await
}
