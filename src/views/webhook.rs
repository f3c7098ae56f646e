use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::metadata::Metadata;
use crate::domain::webhook::{EndpointStatus, WebhookAttempt, WebhookEndpoint};

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
    /// Shown once: in the answers to create and rotate_secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub metadata: Metadata,
    pub livemode: bool,
    pub created: Timestamp,
}

impl WebhookEndpointView {
    /// The endpoint with its signing secret: only the answers to create and
    /// rotate_secret show it.
    pub fn with_secret(e: &WebhookEndpoint) -> Self {
        WebhookEndpointView { secret: Some(e.signing.secret.clone()), ..WebhookEndpointView::from(e) }
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
            secret: None,
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
