//! The resource registry: for each kind of object the API lists, its table, its list
//! route and the fields `expand` can fill in. Expansion (`service::expand`), list
//! cursors (`service::check_cursors`, `store::list::fetch_page`) and the OpenAPI
//! document (`api::openapi::finish`) read it, so that a new resource is one entry
//! here rather than a name repeated in each of them (see docs/architecture.md).

use crate::ids::Kind;

/// A resource the API lists and, maybe, expands.
#[derive(Debug)]
pub struct Resource {
    /// Its id prefix and `object` name.
    pub kind: Kind,
    /// The table of its rows. Every listed table has `id`, `account_id`, `livemode`,
    /// `created` and `seq`, which lists and cursors use.
    pub table: &'static str,
    /// The route of its list: its collection, or a sub-collection of another's.
    pub route: &'static str,
    /// Its id fields that `expand[]` can replace by the object they name.
    pub expandable: &'static [Expandable],
}

/// An id field and the resource whose id it holds.
#[derive(Debug)]
pub struct Expandable {
    pub field: &'static str,
    pub target: &'static Resource,
}

impl Resource {
    /// The `object` name, as in responses and "No such ..." messages.
    pub const fn object(&self) -> &'static str {
        self.kind.object()
    }

    /// The resource an expandable `field` names, if the field is expandable.
    pub fn expands(&self, field: &str) -> Option<&'static Resource> {
        self.expandable.iter().find(|e| e.field == field).map(|e| e.target)
    }
}

// Statics rather than constants: the entries refer to each other (a claim expands to
// its payout, a payout to its claim), which only statics may do.
pub static CUSTOMER: Resource =
    Resource { kind: Kind::Customer, table: "customers", route: "/v1/customers", expandable: &[] };
pub static POLICY: Resource =
    Resource { kind: Kind::Policy, table: "guarantee_policies", route: "/v1/guarantee_policies", expandable: &[] };
pub static GUARANTEE: Resource = Resource {
    kind: Kind::Guarantee,
    table: "guarantees",
    route: "/v1/guarantees",
    expandable: &[Expandable { field: "policy", target: &POLICY }, Expandable { field: "tenant", target: &CUSTOMER }],
};
pub static CLAIM: Resource = Resource {
    kind: Kind::Claim,
    table: "claims",
    route: "/v1/claims",
    expandable: &[
        Expandable { field: "guarantee", target: &GUARANTEE },
        Expandable { field: "payout", target: &PAYOUT },
    ],
};
pub static PAYOUT: Resource = Resource {
    kind: Kind::Payout,
    table: "payouts",
    route: "/v1/payouts",
    expandable: &[Expandable { field: "claim", target: &CLAIM }, Expandable { field: "guarantee", target: &GUARANTEE }],
};
pub static EVENT: Resource = Resource { kind: Kind::Event, table: "events", route: "/v1/events", expandable: &[] };
pub static WEBHOOK_ENDPOINT: Resource = Resource {
    kind: Kind::WebhookEndpoint,
    table: "webhook_endpoints",
    route: "/v1/webhook_endpoints",
    expandable: &[],
};
pub static WEBHOOK_ATTEMPT: Resource = Resource {
    kind: Kind::WebhookAttempt,
    table: "webhook_attempts",
    route: "/v1/webhook_endpoints/{id}/attempts",
    expandable: &[],
};

pub static FILE: Resource = Resource { kind: Kind::File, table: "files", route: "/v1/files", expandable: &[] };

pub static TEST_CLOCK: Resource =
    Resource { kind: Kind::TestClock, table: "test_clocks", route: "/v1/test_helpers/test_clocks", expandable: &[] };

pub static RECOVERY: Resource = Resource {
    kind: Kind::Recovery,
    table: "recoveries",
    route: "/v1/recoveries",
    expandable: &[Expandable { field: "claim", target: &CLAIM }, Expandable { field: "guarantee", target: &GUARANTEE }],
};

/// Every resource.
pub static RESOURCES: [&Resource; 11] = [
    &CUSTOMER,
    &POLICY,
    &GUARANTEE,
    &CLAIM,
    &PAYOUT,
    &EVENT,
    &WEBHOOK_ENDPOINT,
    &WEBHOOK_ATTEMPT,
    &FILE,
    &TEST_CLOCK,
    &RECOVERY,
];

/// The resource of an `object` name (`"guarantee"`).
pub fn by_object(object: &str) -> Option<&'static Resource> {
    RESOURCES.iter().copied().find(|r| r.object() == object)
}

/// The resource a route is about: the one with the longest list route that is the
/// route itself or a parent of it (`/v1/guarantees/{id}/cancel` is about guarantees).
/// A test helper (`/v1/test_helpers/claims/{id}/approve`) is about what it helps with.
/// A resource of its own under `/v1/test_helpers/` (test clocks) is itself.
pub fn for_route(path: &str) -> Option<&'static Resource> {
    let under =
        |path: &str, route: &str| path.strip_prefix(route).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
    let longest = |path: &str| RESOURCES.iter().copied().filter(|r| under(path, r.route)).max_by_key(|r| r.route.len());
    longest(path).or_else(|| longest(&format!("/v1/{}", path.strip_prefix("/v1/test_helpers/")?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_distinct_and_named_by_their_kind() {
        for (i, a) in RESOURCES.iter().enumerate() {
            for b in &RESOURCES[i + 1..] {
                assert_ne!(a.kind, b.kind);
                assert_ne!(a.table, b.table);
                assert_ne!(a.route, b.route);
            }
            assert!(std::ptr::eq(by_object(a.object()).unwrap(), *a));
            assert!(std::ptr::eq(for_route(a.route).unwrap(), *a), "{}", a.route);
            for e in a.expandable {
                assert!(RESOURCES.iter().any(|r| std::ptr::eq(*r, e.target)), "{}.{}", a.object(), e.field);
            }
        }
        assert!(by_object("account").is_none());
    }

    #[test]
    fn routes_belong_to_the_longest_list_route_above_them() {
        let object = |p: &str| for_route(p).map(Resource::object);
        assert_eq!(object("/v1/guarantees/{id}/cancel"), Some("guarantee"));
        assert_eq!(object("/v1/guarantee_policies/{id}"), Some("guarantee_policy"));
        assert_eq!(object("/v1/test_helpers/claims/{id}/approve"), Some("claim"));
        assert_eq!(object("/v1/test_helpers/test_clocks/{id}/advance"), Some("test_helpers.test_clock"));
        assert_eq!(object("/v1/webhook_endpoints/{id}/attempts"), Some("webhook_attempt"));
        assert_eq!(object("/v1/webhook_endpoints/{id}/rotate_secret"), Some("webhook_endpoint"));
        assert_eq!(object("/v1/guaranteesx"), None);
        assert_eq!(object("/v1/openapi.json"), None);
        assert_eq!(object("/healthz"), None);
    }
}
