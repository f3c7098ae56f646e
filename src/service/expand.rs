//! `expand`: replacing an id in a response by the object it names, as Stripe does
//! (`expand[]=policy`, nested `expand[]=guarantee.policy`, `expand[]=data.policy` on
//! lists), up to four levels deep.

use serde::Serialize;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource::{self, Resource};
use crate::store::{self, Conn, Scope, Store};
use crate::views::Render;

/// How deep an expansion may go (`a.b.c.d`).
pub const MAX_DEPTH: usize = 4;

/// Every path that can be expanded on a `root` (for the OpenAPI document), with
/// `data.` in front for a list. The expandable fields are the registry's.
pub fn all_paths(root: &Resource, list: bool) -> Vec<String> {
    fn walk(object: &Resource, prefix: &str, depth: usize, out: &mut Vec<String>) {
        if depth == MAX_DEPTH {
            return;
        }
        for e in object.expandable {
            let path = if prefix.is_empty() { e.field.to_string() } else { format!("{prefix}.{}", e.field) };
            out.push(path.clone());
            walk(e.target, &path, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(root, "", 0, &mut out);
    if list {
        out.iter_mut().for_each(|p| p.insert_str(0, "data."));
    }
    out
}

/// Checks `paths` against a `root` object (or, with `list`, against the items of a
/// list, whose paths start with `data.`). Returns them split into fields.
pub fn parse(paths: &[String], root: &Resource, list: bool) -> ApiResult<Vec<Vec<String>>> {
    let invalid = |path: &str, why: &str| {
        ApiError::invalid(
            "parameter_invalid_expand",
            "expand",
            format!("This property cannot be expanded ({path}): {why}."),
        )
    };
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        let mut fields: Vec<&str> = path.split('.').collect();
        if list {
            if fields.first() != Some(&"data") || fields.len() < 2 {
                return Err(invalid(path, "on a list, expand the items with data.<field>"));
            }
            fields.remove(0);
        }
        if fields.len() > MAX_DEPTH {
            return Err(invalid(path, "expansions go at most four levels deep"));
        }
        let mut object = root;
        for field in &fields {
            object = object
                .expands(field)
                .ok_or_else(|| invalid(path, &format!("{} has no expandable field {field}", object.object())))?;
        }
        out.push(fields.into_iter().map(str::to_owned).collect());
    }
    Ok(out)
}

/// An object as answered: its view when nothing is expanded (serialised once,
/// straight to the response, or already, for its event: `Rendered`), or the view's
/// JSON tree with the expanded fields filled in (by the views of the objects they name).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Expanded<T> {
    Plain(T),
    Rendered(Box<serde_json::value::RawValue>),
    Tree(Value),
}

/// The object's view with `paths` expanded; reads go through `conn`, so a write can
/// expand its answer inside its own transaction.
pub async fn apply<T: Render>(
    conn: &mut Conn,
    scope: &Scope,
    object: T,
    paths: &[Vec<String>],
) -> ApiResult<Expanded<T::View>> {
    let view = object.view();
    if paths.is_empty() {
        return Ok(Expanded::Plain(view));
    }
    let mut value = serde_json::to_value(&view).map_err(|e| ApiError::internal(e))?;
    for path in paths {
        expand_path(conn, scope, &mut value, path).await?;
    }
    Ok(Expanded::Tree(value))
}

/// `apply` on each item of a list.
pub async fn apply_all<T: Render>(
    conn: &mut Conn,
    scope: &Scope,
    items: Vec<T>,
    paths: &[Vec<String>],
) -> ApiResult<Vec<Expanded<T::View>>> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(apply(conn, scope, item, paths).await?);
    }
    Ok(out)
}

/// `apply` outside a transaction.
pub async fn apply_read<T: Render>(
    store: &Store,
    scope: &Scope,
    object: T,
    paths: &[Vec<String>],
) -> ApiResult<Expanded<T::View>> {
    if paths.is_empty() {
        return Ok(Expanded::Plain(object.view()));
    }
    store.run(async |conn| apply(conn, scope, object, paths).await).await
}

async fn expand_path(conn: &mut Conn, scope: &Scope, root: &mut Value, path: &[String]) -> ApiResult<()> {
    let mut node = root;
    for field in path {
        let object = node["object"].as_str().and_then(resource::by_object);
        let Some(target) = object.and_then(|o| o.expands(field)) else { return Ok(()) };
        let slot = &mut node[field.as_str()];
        if let Value::String(id) = slot
            && let Some(found) = fetch(conn, scope, target.kind, id).await?
        {
            *slot = found;
        }
        if !slot.is_object() {
            return Ok(());
        }
        node = slot;
    }
    Ok(())
}

/// The object of `kind` with this id, as JSON. Every `target` in the registry needs
/// its arm here; the match names every kind, so a new one cannot be missed.
async fn fetch(conn: &mut Conn, scope: &Scope, kind: Kind, id: &str) -> ApiResult<Option<Value>> {
    fn json<T: Render>(v: Option<T>) -> ApiResult<Option<Value>> {
        v.map(|v| serde_json::to_value(v.view()).map_err(|e| ApiError::internal(e))).transpose()
    }
    match kind {
        Kind::Policy => json(store::policies::get(conn, scope, id).await?),
        Kind::Customer => json(store::customers::get(conn, scope, id).await?),
        Kind::Guarantee => json(store::guarantees::get(conn, scope, id).await?),
        Kind::Claim => json(store::claims::get(conn, scope, id).await?),
        Kind::Payout => json(store::payouts::get(conn, scope, id).await?),
        Kind::File => json(store::files::get(conn, scope, id).await?),
        Kind::Recovery => json(store::recoveries::get(conn, scope, id).await?),
        // Nothing expands to these.
        Kind::Event
        | Kind::WebhookEndpoint
        | Kind::WebhookAttempt
        | Kind::WebhookDelivery
        | Kind::Account
        | Kind::Request
        | Kind::ApiKey
        | Kind::Operator
        | Kind::ClaimAction
        | Kind::RecoveryAction
        | Kind::TestClock => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::{CLAIM, CUSTOMER, GUARANTEE, PAYOUT};

    fn paths(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn valid_paths() {
        assert_eq!(parse(&paths(&["policy", "tenant"]), &GUARANTEE, false).unwrap().len(), 2);
        assert!(parse(&paths(&["guarantee.policy"]), &CLAIM, false).is_ok());
        assert!(parse(&paths(&["claim.guarantee.policy"]), &PAYOUT, false).is_ok());
        assert!(parse(&paths(&["data.policy"]), &GUARANTEE, true).is_ok());
        assert!(parse(&paths(&["claim.payout.claim.guarantee"]), &PAYOUT, false).is_ok(), "four levels");
    }

    #[test]
    fn every_listed_path_parses() {
        for root in [&GUARANTEE, &CLAIM, &PAYOUT] {
            for list in [false, true] {
                let paths = all_paths(root, list);
                assert!(!paths.is_empty());
                parse(&paths, root, list).unwrap();
            }
        }
        assert!(all_paths(&CUSTOMER, false).is_empty());
        assert!(all_paths(&GUARANTEE, false).contains(&"tenant".to_string()));
        assert!(all_paths(&PAYOUT, true).contains(&"data.claim.guarantee.policy".to_string()));
    }

    #[test]
    fn invalid_paths() {
        for (p, root, list) in [
            ("nope", &GUARANTEE, false),
            ("policy", &CLAIM, false),
            ("policy", &GUARANTEE, true),
            ("data.nope", &CLAIM, true),
            ("claim.payout.claim.guarantee.policy", &PAYOUT, false),
            ("", &GUARANTEE, false),
            ("policy", &CUSTOMER, false),
        ] {
            let err = parse(&paths(&[p]), root, list).unwrap_err();
            assert_eq!(err.code(), Some("parameter_invalid_expand"), "{p}");
        }
    }
}
