use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::metadata::Metadata;
use crate::domain::webhook::{EndpointStatus, SignatureScheme, WebhookAttempt, WebhookEndpoint};
use crate::webhooks::signing::public_key;

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct WebhookEndpointView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    pub url: String,
    pub description: Option<String>,
    pub enabled_events: Vec<String>,
    pub status: EndpointStatus,
    /// `hmac_sha256` (a shared `secret`; both signature headers) or `ed25519`
    /// (`public_key`; `webhook-signature` with `v1a`).
    pub signature_scheme: SignatureScheme,
    /// Shown once: in the answers to create and rotate_secret (`hmac_sha256` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The key that verifies an `ed25519` endpoint's signatures (`whpk_` + base64); null for `hmac_sha256`.
    pub public_key: Option<String>,
    /// At most this many deliveries a second; null: no limit.
    pub rate_limit: Option<i64>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

impl WebhookEndpointView {
    /// The endpoint with its signing secret: only the answers to create and
    /// rotate_secret show it.
    pub fn with_secret(e: &WebhookEndpoint) -> Self {
        let view = WebhookEndpointView::from(e);
        match view.signature_scheme {
            // An Ed25519 signing key never leaves the server: its public key is shown instead.
            SignatureScheme::Ed25519 => view,
            SignatureScheme::HmacSha256 => WebhookEndpointView { secret: Some(e.signing.secret.clone()), ..view },
        }
    }
}

impl From<&WebhookEndpoint> for WebhookEndpointView {
    fn from(e: &WebhookEndpoint) -> Self {
        WebhookEndpointView {
            id: e.id.clone(),
            object: WebhookEndpoint::OBJECT,
            url: e.url.clone(),
            description: e.description.clone(),
            enabled_events: e.enabled_events.clone(),
            status: e.status,
            signature_scheme: e.signing.scheme(),
            secret: None,
            public_key: public_key(&e.signing.secret),
            rate_limit: e.rate_limit,
            metadata: e.metadata.clone(),
            livemode: e.livemode,
            created: e.created,
        }
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = WebhookAttempt)]
pub struct WebhookAttemptView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    pub event: String,
    pub webhook_endpoint: String,
    pub status_code: Option<i64>,
    pub latency_ms: i64,
    pub error: Option<String>,
    pub response_body: Option<String>,
    pub livemode: bool,
    pub created: Timestamp,
}

impl From<&WebhookAttempt> for WebhookAttemptView {
    fn from(a: &WebhookAttempt) -> Self {
        WebhookAttemptView {
            id: a.id.clone(),
            object: WebhookAttempt::OBJECT,
            event: a.event.clone(),
            webhook_endpoint: a.webhook_endpoint.clone(),
            status_code: a.status_code,
            latency_ms: a.latency_ms,
            error: a.error.clone(),
            response_body: a.response_body.clone(),
            livemode: a.livemode,
            created: a.created,
        }
    }
}
