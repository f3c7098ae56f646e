//! Operators: the claims staff, each a named person with keys of their own.

use serde::Serialize;

use crate::domain::operator::Operator;
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::store::{self, Store};

/// A new operator and its first key, shown once (`casapay operators create` prints
/// `{"id", "name", "key"}`, as SPEC section 4 says; `operators list` shows the email).
#[derive(Debug, Serialize)]
pub struct CreatedOperator {
    pub id: String,
    pub name: String,
    pub key: String,
}

/// The most characters of an operator's name and email.
pub const NAME_MAX_CHARS: usize = 200;

pub async fn create(store: &Store, name: &str, email: Option<&str>, now: i64) -> ApiResult<CreatedOperator> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS {
        return Err(ApiError::invalid(
            "parameter_invalid",
            "name",
            format!("An operator's name is 1 to {NAME_MAX_CHARS} characters."),
        ));
    }
    let email = email.map(str::trim).filter(|e| !e.is_empty());
    if email.is_some_and(|e| e.chars().count() > NAME_MAX_CHARS || !e.contains('@')) {
        return Err(ApiError::invalid("parameter_invalid", "email", "The email must be an address such as a@b.c."));
    }
    let operator = Operator {
        id: Kind::Operator.new_id(),
        name: name.to_owned(),
        email: email.map(str::to_owned),
        created: now,
        disabled_at: None,
    };
    let mut tx = store.begin().await?;
    store::operators::insert(&mut tx, &operator).await?;
    let key = super::accounts::new_operator_key(&mut tx, &operator.id, now).await?;
    tx.commit().await?;
    Ok(CreatedOperator { id: operator.id, name: operator.name, key })
}

pub async fn list(store: &Store) -> ApiResult<Vec<Operator>> {
    Ok(store.run(async |conn| store::operators::list(conn).await).await?)
}

pub async fn get(store: &Store, id: &str) -> ApiResult<Option<Operator>> {
    Ok(store.run(async |conn| store::operators::get(conn, id).await).await?)
}

/// Disables an operator: its keys are revoked and its console sessions end, in one
/// transaction. Servers look operator keys and sessions up on every request (the key
/// cache keeps no operator key), so they stop at once everywhere.
pub async fn disable(store: &Store, id: &str, now: i64) -> ApiResult<Operator> {
    let mut tx = store.begin().await?;
    let found = store::operators::get(&mut tx, id).await?;
    let Some(operator) = found else {
        return Err(ApiError::no_such(Kind::Operator.object(), id, Some("id")));
    };
    store::operators::disable(&mut tx, id, now).await?;
    tx.commit().await?;
    Ok(Operator { disabled_at: operator.disabled_at.or(Some(now)), ..operator })
}

/// Another key for an enabled operator (shown once): a person may hold several keys,
/// and they all count as that one person (four eyes).
pub async fn add_key(store: &Store, operator_id: &str, now: i64) -> ApiResult<String> {
    let mut tx = store.begin().await?;
    match store::operators::get(&mut tx, operator_id).await? {
        Some(o) if o.disabled_at.is_none() => {}
        _ => return Err(ApiError::no_such(Kind::Operator.object(), operator_id, Some("id"))),
    }
    let key = super::accounts::new_operator_key(&mut tx, operator_id, now).await?;
    tx.commit().await?;
    Ok(key)
}
