//! Claim actions: the audit trail of each claim's review.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::batch::{defer_rows, scoped_row};
use super::{Conn, Scope, Tx, get_bool, read_row};
use crate::domain::claim::{ActionType, ClaimAction};

fn from_row(r: &AnyRow) -> Result<ClaimAction, sqlx::Error> {
    let kind: String = r.try_get("type")?;
    Ok(read_row! { r, ClaimAction {
        id,
        claim = "claim_id",
        kind: ActionType::parse(&kind)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown claim action {kind:?}").into()))?,
        actor, message, amount,
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

/// Writes actions of any scope, one statement per chunk, deferred (`Tx::defer`).
pub async fn insert(tx: &mut Tx, actions: &[(&Scope, &ClaimAction)]) -> Result<(), sqlx::Error> {
    defer_rows(
        tx,
        "claim_actions",
        actions,
        |values| {
            format!(
                "INSERT INTO claim_actions (id, account_id, livemode, created, claim_id, type, actor, message, amount) \
                 VALUES {values}"
            )
        },
        |sql, (scope, a)| {
            scoped_row(sql, a.id.clone(), scope, a.created, |sql| {
                vec![
                    sql.bind(a.claim.clone()),
                    sql.bind(a.kind.as_str()),
                    sql.bind(a.actor.clone()),
                    sql.bind(a.message.clone()),
                    sql.bind(a.amount),
                ]
            })
        },
    )
    .await?;
    Ok(())
}

/// A claim's actions, oldest first.
pub async fn for_claim(conn: &mut Conn, scope: &Scope, claim_id: &str) -> Result<Vec<ClaimAction>, sqlx::Error> {
    sqlx::query(
        "SELECT id, claim_id, type, actor, message, amount, livemode, created FROM claim_actions \
         WHERE claim_id = $1 AND account_id = $2 AND livemode = $3 ORDER BY seq",
    )
    .bind(claim_id)
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(from_row)
    .collect()
}
