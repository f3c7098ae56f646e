//! The product's operations: validation against stored state, lifecycles, and the
//! transactions that make each state change and its event one unit.

pub mod accounts;
pub mod claims;
pub mod customers;
pub mod delivery;
pub mod events;
pub mod expand;
pub mod files;
pub mod guarantees;
pub mod idempotency;
pub mod metrics;
pub mod operators;
pub mod policies;
pub mod rail;
pub mod recoveries;
pub mod reset;
pub mod review;
pub mod test_clocks;
pub mod webhooks;

use serde::Serialize;
use serde_json::value::RawValue;

use crate::domain::event::EventType;
use crate::domain::metadata::{Metadata, MetadataUpdate};
use crate::domain::webhook::subscribes;
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource::Resource;
use crate::store::{self, Conn, PageRequest, Scope, Store, Tx};
use crate::views::Render;
use crate::views::diff::previous_attributes_of;

/// Who is acting and when: the scope every query is limited to, the request's
/// time (one instant for the whole request), and what events should record of it.
#[derive(Debug, Clone)]
pub struct Call {
    pub scope: Scope,
    pub now: i64,
    pub request_id: Option<String>,
    pub idempotency_key: Option<String>,
    /// The idempotency key this request holds, if it sent one: its answer is stored
    /// in the same transaction as its effects.
    pub idempotency: Option<idempotency::Claim>,
}

impl Call {
    /// The context of background work: no request behind it.
    pub fn job(scope: Scope, now: i64) -> Call {
        Call { scope, now, request_id: None, idempotency_key: None, idempotency: None }
    }
}

/// Runs `op` again, once, if it failed on a broken store connection, after telling the
/// store (so the second run gets a fresh connection). For store calls outside the
/// request handlers' own retry (see `api::retry_on_connection_loss`); `op` must be
/// safe to run twice when its first run did not commit.
pub async fn again_if_connection_lost<T, F, Fut>(store: &Store, op: F) -> ApiResult<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ApiResult<T>>,
{
    match op().await {
        Err(e) if e.is_connection_lost() => {
            store.note_connection_lost();
            let second = op().await;
            if second.as_ref().is_err_and(ApiError::is_connection_lost) {
                store.note_connection_lost();
            }
            second
        }
        other => other,
    }
}

/// Runs `op` in one transaction and commits it if `op` succeeds; on an error the
/// transaction is dropped, which rolls it back.
pub async fn write<T>(store: &Store, op: impl AsyncFnOnce(&mut Tx) -> ApiResult<T>) -> ApiResult<T> {
    let mut tx = store.begin().await?;
    let out = op(&mut tx).await?;
    tx.commit().await?;
    Ok(out)
}

/// Runs `op` in one transaction and answers its result as JSON. When the request
/// holds an idempotency key, the answer is stored in the same transaction, so the
/// effects and the stored answer commit together.
pub async fn write_json<T: Serialize>(
    store: &Store,
    call: &Call,
    op: impl AsyncFnOnce(&mut Tx) -> ApiResult<T>,
) -> ApiResult<String> {
    let mut tx = store.begin().await?;
    let out = op(&mut tx).await?;
    let body = serde_json::to_string(&out).map_err(|e| ApiError::internal(e))?;
    if let Some(claim) = &call.idempotency {
        idempotency::complete_in(&mut tx, &call.scope, claim, 200, &body).await?;
    }
    tx.commit().await?;
    Ok(body)
}

/// Writes an event for `object` in the caller's transaction, with a delivery for
/// every enabled webhook endpoint of the scope that subscribes to it (the outbox).
pub async fn record_event<T: Render>(tx: &mut Tx, call: &Call, kind: EventType, object: &T) -> ApiResult<()> {
    let mut outbox = Outbox::default();
    outbox.record(call, kind, object)?;
    outbox.write(tx).await
}

/// An object a write just made, with its view rendered once: the bytes its event
/// carries are also the answer, when nothing in it is expanded.
pub struct Recorded<T> {
    pub object: T,
    pub view: Box<RawValue>,
}

/// `record_event` for the object a write answers with.
pub async fn record_created<T: Render>(tx: &mut Tx, call: &Call, kind: EventType, object: T) -> ApiResult<Recorded<T>> {
    let view = serde_json::value::to_raw_value(&object.view()).map_err(|e| ApiError::internal(e))?;
    let mut outbox = Outbox::default();
    outbox.push_rendered(call, kind, view.get().to_owned(), None);
    outbox.write(tx).await?;
    Ok(Recorded { object, view })
}

/// Writes an update event, with the fields that changed since `before`.
pub async fn record_update<T: Render>(
    tx: &mut Tx,
    call: &Call,
    kind: EventType,
    before: &T,
    after: &T,
) -> ApiResult<()> {
    let mut outbox = Outbox::default();
    outbox.record_update(call, kind, before, after)?;
    outbox.write(tx).await
}

/// Events recorded during a transaction and written together at its end, with their
/// webhook deliveries: one statement per chunk of rows, for the claims engine's
/// batches. Events keep the order they were recorded in.
///
/// An event stores the object's view (`views`), rendered here and kept as written:
/// the one place that picks the shape events and webhooks carry.
#[derive(Default)]
pub(crate) struct Outbox {
    events: Vec<PendingEvent>,
}

struct PendingEvent {
    scope: Scope,
    id: String,
    created: i64,
    kind: EventType,
    object: String,
    previous_attributes: Option<String>,
    request_id: Option<String>,
    idempotency_key: Option<String>,
}

impl Outbox {
    pub(crate) fn record<T: Render>(&mut self, call: &Call, kind: EventType, object: &T) -> ApiResult<()> {
        self.push(call, kind, &object.view(), None)
    }

    /// Records an update event, with the fields that changed since `before`.
    pub(crate) fn record_update<T: Render>(
        &mut self,
        call: &Call,
        kind: EventType,
        before: &T,
        after: &T,
    ) -> ApiResult<()> {
        let after = after.view();
        let previous = previous_attributes_of(&before.view(), &after).map_err(|e| ApiError::internal(e))?;
        self.push(call, kind, &after, Some(previous))
    }

    fn push<T: Serialize>(
        &mut self,
        call: &Call,
        kind: EventType,
        object: &T,
        previous: Option<serde_json::Map<String, serde_json::Value>>,
    ) -> ApiResult<()> {
        let object = serde_json::to_string(object).map_err(|e| ApiError::internal(e))?;
        self.push_rendered(call, kind, object, previous);
        Ok(())
    }

    /// `push` of an object's view serialised already.
    fn push_rendered(
        &mut self,
        call: &Call,
        kind: EventType,
        object: String,
        previous: Option<serde_json::Map<String, serde_json::Value>>,
    ) {
        self.events.push(PendingEvent {
            scope: call.scope.clone(),
            id: Kind::Event.new_id(),
            created: call.now,
            kind,
            object,
            previous_attributes: previous.map(|p| serde_json::Value::Object(p).to_string()),
            request_id: call.request_id.clone(),
            idempotency_key: call.idempotency_key.clone(),
        });
    }

    /// Writes the events, then a delivery of each to every enabled endpoint of its
    /// scope that subscribes to its type.
    pub(crate) async fn write(self, tx: &mut Tx) -> ApiResult<()> {
        if self.events.is_empty() {
            // The writes held before it still go out here, as they do with events.
            return Ok(tx.flush().await?);
        }
        let mut targets: Vec<Vec<String>> = Vec::with_capacity(self.events.len());
        for e in &self.events {
            let endpoints = store::webhooks::enabled_endpoints_in(tx, &e.scope).await?;
            targets.push(
                endpoints
                    .into_iter()
                    .filter(|(_, events)| subscribes(events, e.kind.as_str()))
                    .map(|(endpoint, _)| endpoint)
                    .collect(),
            );
        }
        let rows: Vec<store::events::NewEvent> = self
            .events
            .iter()
            .zip(&targets)
            .map(|(e, endpoints)| store::events::NewEvent {
                id: &e.id,
                created: e.created,
                kind: e.kind.as_str(),
                object: &e.object,
                previous_attributes: e.previous_attributes.as_deref(),
                request_id: e.request_id.as_deref(),
                idempotency_key: e.idempotency_key.as_deref(),
                pending_webhooks: endpoints.len() as i64,
            })
            .collect();
        let scoped: Vec<_> = self.events.iter().zip(&rows).map(|(e, row)| (&e.scope, row)).collect();
        store::events::insert(tx, &scoped).await?;
        let deliveries: Vec<store::webhooks::NewDelivery> = self
            .events
            .iter()
            .zip(&targets)
            .flat_map(|(e, endpoints)| {
                endpoints.iter().map(move |endpoint| store::webhooks::NewDelivery {
                    scope: &e.scope,
                    id: Kind::WebhookDelivery.new_id(),
                    event_id: &e.id,
                    endpoint_id: endpoint,
                    now: e.created,
                })
            })
            .collect();
        if !deliveries.is_empty() {
            store::webhooks::insert_deliveries(tx, &deliveries).await?;
            tx.note_outbox_write();
        }
        // The state change and its events, as one statement on PostgreSQL.
        tx.flush().await?;
        Ok(())
    }
}

fn metadata_error(e: crate::domain::metadata::MetadataError) -> ApiError {
    ApiError::invalid("metadata_invalid", "metadata", e.to_string())
}

/// Applies a metadata update to `current`, if there is one.
pub(crate) fn apply_metadata(current: &Metadata, update: Option<&MetadataUpdate>) -> ApiResult<Metadata> {
    match update {
        Some(u) => u.apply(current).map_err(metadata_error),
        None => Ok(current.clone()),
    }
}

/// The object read by id, or a 404 naming the `id` when there is none in the
/// caller's scope. (The read itself stays with the caller, so that an internal error
/// is located at the service that read the row.)
pub fn found<T>(resource: &Resource, id: &str, object: Option<T>) -> ApiResult<T> {
    object.ok_or_else(|| ApiError::no_such(resource.object(), id, Some("id")))
}

/// Checks that the list cursors name objects of `resource` the caller can see, so an
/// unknown cursor is a 404 rather than a silently empty page.
pub async fn check_cursors(conn: &mut Conn, call: &Call, resource: &Resource, page: &PageRequest) -> ApiResult<()> {
    for (param, cursor) in [("starting_after", &page.starting_after), ("ending_before", &page.ending_before)] {
        if let Some(id) = cursor
            && !store::list::exists(conn, resource.table, &call.scope, id).await?
        {
            return Err(ApiError::no_such(resource.object(), id, Some(param)));
        }
    }
    Ok(())
}
