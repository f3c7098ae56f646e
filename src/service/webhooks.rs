//! Webhook endpoints: create, read, update, delete, rotate the secret; the attempts
//! log; resending an event.

use super::{Call, apply_metadata, check_cursors};
use crate::domain::event::Event;
use crate::domain::metadata::{Metadata, MetadataUpdate};
use crate::domain::webhook::{EndpointStatus, SignatureScheme, Signing, WebhookAttempt, WebhookEndpoint, subscribes};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource;
use crate::store::{self, Page, PageRequest, Store, Tx};
use crate::webhooks::signing::{new_secret, new_signing_key};

/// A new endpoint; `url` and `enabled_events` are checked at the edge.
#[derive(Debug)]
pub struct NewEndpoint {
    pub url: String,
    pub enabled_events: Vec<String>,
    pub description: Option<String>,
    pub metadata: Option<MetadataUpdate>,
    pub signature_scheme: SignatureScheme,
    pub rate_limit: Option<i64>,
}

#[derive(Debug, Default)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
    pub metadata: Option<MetadataUpdate>,
    /// `Some(None)` removes the limit.
    pub rate_limit: Option<Option<i64>>,
}

fn not_found(id: &str) -> ApiError {
    ApiError::no_such(Kind::WebhookEndpoint.object(), id, Some("id"))
}

/// A new secret of `scheme`: an HMAC secret or an Ed25519 signing key.
fn new_key(scheme: SignatureScheme) -> String {
    match scheme {
        SignatureScheme::HmacSha256 => new_secret(),
        SignatureScheme::Ed25519 => new_signing_key(),
    }
}

pub async fn create(tx: &mut Tx, call: &Call, input: NewEndpoint) -> ApiResult<WebhookEndpoint> {
    let secret = new_key(input.signature_scheme);
    let endpoint = WebhookEndpoint {
        id: Kind::WebhookEndpoint.new_id(),
        url: input.url,
        description: input.description,
        enabled_events: input.enabled_events,
        status: EndpointStatus::Enabled,
        metadata: apply_metadata(&Metadata::new(), input.metadata.as_ref())?,
        livemode: call.scope.livemode,
        created: call.now,
        signing: Signing { secret, ..Signing::default() },
        rate_limit: input.rate_limit,
    };
    store::webhooks::insert_endpoint(tx, &call.scope, &endpoint).await?;
    Ok(endpoint)
}

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<WebhookEndpoint> {
    store
        .run(async |conn| store::webhooks::get_endpoint(conn, &call.scope, id).await)
        .await?
        .ok_or_else(|| not_found(id))
}

pub async fn update(tx: &mut Tx, call: &Call, id: &str, input: EndpointPatch) -> ApiResult<WebhookEndpoint> {
    let mut e = store::webhooks::get_endpoint_for_update(tx, &call.scope, id).await?.ok_or_else(|| not_found(id))?;
    if let Some(url) = input.url {
        e.url = url;
    }
    if let Some(events) = input.enabled_events {
        e.enabled_events = events;
    }
    if let Some(description) = input.description {
        e.description = description;
    }
    if let Some(disabled) = input.disabled {
        e.set_disabled(disabled);
    }
    if let Some(rate_limit) = input.rate_limit {
        e.rate_limit = rate_limit;
    }
    e.metadata = apply_metadata(&e.metadata, input.metadata.as_ref())?;
    store::webhooks::update_endpoint(tx, &call.scope, &e).await?;
    Ok(e)
}

/// A new secret; the old one keeps signing beside it for 24 hours, as do any others
/// rotated out within the last 24 hours.
pub async fn rotate_secret(tx: &mut Tx, call: &Call, id: &str) -> ApiResult<WebhookEndpoint> {
    let mut e = store::webhooks::get_endpoint_for_update(tx, &call.scope, id).await?.ok_or_else(|| not_found(id))?;
    // The same scheme again: an Ed25519 endpoint gets a new key pair.
    e.rotate_secret(new_key(e.signing.scheme()), call.now);
    store::webhooks::update_endpoint(tx, &call.scope, &e).await?;
    Ok(e)
}

pub async fn delete(store: &Store, call: &Call, id: &str) -> ApiResult<()> {
    // In a transaction: its commit makes the endpoint cache forget the endpoint.
    super::write(store, async |tx| {
        if store::webhooks::delete_endpoint(tx, &call.scope, id).await? { Ok(()) } else { Err(not_found(id)) }
    })
    .await
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest) -> ApiResult<Page<WebhookEndpoint>> {
    store
        .run(async |conn| {
            check_cursors(conn, call, &resource::WEBHOOK_ENDPOINT, page).await?;
            Ok(store::webhooks::list_endpoints(conn, &call.scope, page).await?)
        })
        .await
}

pub async fn attempts(
    store: &Store,
    call: &Call,
    endpoint_id: &str,
    page: &PageRequest,
) -> ApiResult<Page<WebhookAttempt>> {
    store
        .run(async |conn| {
            if store::webhooks::get_endpoint(conn, &call.scope, endpoint_id).await?.is_none() {
                return Err(not_found(endpoint_id));
            }
            check_cursors(conn, call, &resource::WEBHOOK_ATTEMPT, page).await?;
            Ok(store::webhooks::list_attempts(conn, &call.scope, endpoint_id, page).await?)
        })
        .await
}

/// Queues again every delivery to an enabled endpoint that failed for good since
/// `since` (its first attempt again, at once); returns how many.
pub async fn recover(tx: &mut Tx, call: &Call, id: &str, since: i64) -> ApiResult<usize> {
    let e = store::webhooks::get_endpoint_for_update(tx, &call.scope, id).await?.ok_or_else(|| not_found(id))?;
    if e.status != EndpointStatus::Enabled {
        return Err(ApiError::invalid(
            "webhook_endpoint_disabled",
            "id",
            "The webhook endpoint is disabled: enable it before recovering its deliveries.",
        ));
    }
    if since > call.now {
        return Err(ApiError::invalid("parameter_invalid_integer", "since", "since must not be in the future."));
    }
    // A delivery that failed for good still counts in its event's `pending_webhooks`
    // (only a success takes it off), so nothing to adjust there.
    let events = store::webhooks::recover_failed(tx, &call.scope, id, since, call.now).await?;
    if !events.is_empty() {
        tx.note_outbox_write();
    }
    Ok(events.len())
}

/// Queues a fresh delivery of an event: to one endpoint, or to every enabled
/// endpoint that subscribes to its type.
pub async fn resend(tx: &mut Tx, call: &Call, event_id: &str, endpoint: Option<String>) -> ApiResult<Event> {
    let event = store::events::get(tx, &call.scope, event_id)
        .await?
        .ok_or_else(|| ApiError::no_such(Kind::Event.object(), event_id, Some("id")))?;
    let targets: Vec<String> = match endpoint {
        Some(id) => {
            let e = store::webhooks::get_endpoint(tx, &call.scope, &id)
                .await?
                .ok_or_else(|| ApiError::no_such(Kind::WebhookEndpoint.object(), &id, Some("webhook_endpoint")))?;
            if e.status != EndpointStatus::Enabled {
                return Err(ApiError::invalid(
                    "webhook_endpoint_disabled",
                    "webhook_endpoint",
                    "The webhook endpoint is disabled: enable it before resending to it.",
                ));
            }
            vec![e.id]
        }
        None => store::webhooks::enabled_endpoints(tx, &call.scope)
            .await?
            .into_iter()
            .filter(|(_, events)| subscribes(events, &event.kind))
            .map(|(id, _)| id)
            .collect(),
    };
    let deliveries: Vec<store::webhooks::NewDelivery> = targets
        .iter()
        .map(|target| store::webhooks::NewDelivery {
            scope: &call.scope,
            id: Kind::WebhookDelivery.new_id(),
            event_id: &event.id,
            endpoint_id: target,
            now: call.now,
        })
        .collect();
    store::webhooks::insert_deliveries(tx, &deliveries).await?;
    tx.flush().await?;
    store::webhooks::adjust_pending_webhooks(tx, &event.id, targets.len() as i64).await?;
    if !targets.is_empty() {
        tx.note_outbox_write();
    }
    Ok(store::events::get(tx, &call.scope, event_id).await?.unwrap_or(event))
}
