use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::event::{API_VERSION, Event, EventData, EventRequest};

// `data.object` is the object's view as of the change, recorded then (see
// `service::Outbox`): an event keeps the shape it was written in.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Event)]
pub struct EventView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    #[schema(value_type = String)]
    pub api_version: &'static str,
    pub created: Timestamp,
    pub data: EventDataView,
    pub livemode: bool,
    pub pending_webhooks: i64,
    pub request: EventRequestView,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = EventData)]
pub struct EventDataView {
    /// The object as of the change.
    #[schema(value_type = Object)]
    pub object: Box<RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// On updates: the fields that changed, with their values before.
    #[schema(value_type = Option<Object>)]
    pub previous_attributes: Option<Box<RawValue>>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = EventRequest)]
pub struct EventRequestView {
    pub id: Option<String>,
    pub idempotency_key: Option<String>,
}

impl From<&Event> for EventView {
    fn from(e: &Event) -> Self {
        EventView {
            id: e.id.clone(),
            object: Event::OBJECT,
            api_version: API_VERSION,
            created: e.created,
            data: EventDataView::from(&e.data),
            livemode: e.livemode,
            pending_webhooks: e.pending_webhooks,
            request: EventRequestView::from(&e.request),
            kind: e.kind.clone(),
        }
    }
}

impl From<&EventData> for EventDataView {
    fn from(d: &EventData) -> Self {
        EventDataView { object: d.object.clone(), previous_attributes: d.previous_attributes.clone() }
    }
}

impl From<&EventRequest> for EventRequestView {
    fn from(r: &EventRequest) -> Self {
        EventRequestView { id: r.id.clone(), idempotency_key: r.idempotency_key.clone() }
    }
}
