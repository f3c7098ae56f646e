//! What a request's one log line and its metrics need to know from further in: the
//! route template the router matched (set by [`note_route`], a route layer) and the
//! account that authenticated (recorded on the request's log span).

use std::sync::{Arc, OnceLock};

use axum::extract::{MatchedPath, Request};
use axum::http::Extensions;

use crate::metrics::UNMATCHED_ROUTE;

/// Shared through the request's extensions, which the layers that run the request
/// again (or read it first) clone: an `Arc`, so that they all fill in the same one.
#[derive(Clone)]
pub struct RequestFacts(Arc<Facts>);

struct Facts {
    span: tracing::Span,
    route: OnceLock<MatchedPath>,
}

impl RequestFacts {
    /// Facts of the request logged in `span`, which has the fields `route` and
    /// `account_id` empty.
    pub(crate) fn new(span: tracing::Span) -> Self {
        RequestFacts(Arc::new(Facts { span, route: OnceLock::new() }))
    }

    /// The route template, or [`UNMATCHED_ROUTE`] when no route took the request.
    pub(crate) fn route_template(&self) -> &str {
        self.0.route.get().map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
    }
}

/// A route layer (it runs once the router has matched): notes the route template.
/// A plain function, so that it costs no allocation per request.
pub fn note_route(req: Request) -> Request {
    if let (Some(path), Some(facts)) = (req.extensions().get::<MatchedPath>(), req.extensions().get::<RequestFacts>())
        && facts.0.route.set(path.clone()).is_ok()
    {
        facts.0.span.record("route", tracing::field::display(path.as_str()));
    }
    req
}

/// Notes the account a platform key authenticated for, on the request's log span.
pub(crate) fn note_account(extensions: &Extensions, account_id: &str) {
    if let Some(facts) = extensions.get::<RequestFacts>() {
        facts.0.span.record("account_id", tracing::field::display(account_id));
    }
}
