//! Customers table.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::list::{Page, PageRequest, fetch_page};
use super::{Conn, Scope, Tx, get_bool, get_json, to_json};
use crate::domain::customer::Customer;
use crate::resource;

const COLUMNS: &str = "id, livemode, created, name, email, score, metadata";

fn from_row(r: &AnyRow) -> Result<Customer, sqlx::Error> {
    Ok(Customer {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        score: r.try_get("score")?,
        metadata: get_json(r, "metadata")?,
        livemode: get_bool(r, "livemode")?,
        created: r.try_get("created")?,
    })
}

pub async fn insert(conn: &mut Conn, scope: &Scope, c: &Customer) -> Result<(), sqlx::Error> {
    insert_with(conn, scope, c, "").await.map(|_| ())
}

/// Inserts unless a customer with this id exists (for the demo seed).
pub async fn insert_if_absent(conn: &mut Conn, scope: &Scope, c: &Customer) -> Result<bool, sqlx::Error> {
    insert_with(conn, scope, c, " ON CONFLICT (id) DO NOTHING").await
}

/// Inserts, with `on_conflict` appended to the statement; returns whether a row went in.
async fn insert_with(conn: &mut Conn, scope: &Scope, c: &Customer, on_conflict: &str) -> Result<bool, sqlx::Error> {
    let sql = format!(
        "INSERT INTO customers (id, account_id, livemode, created, name, email, score, metadata) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8){on_conflict}"
    );
    let done = sqlx::query(&sql)
        .bind(&c.id)
        .bind(&scope.account_id)
        .bind(scope.livemode)
        .bind(c.created)
        .bind(c.name.clone())
        .bind(c.email.clone())
        .bind(c.score)
        .bind(to_json(&c.metadata))
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Reads one object in the caller's scope.
pub async fn get(conn: &mut Conn, scope: &Scope, id: &str) -> Result<Option<Customer>, sqlx::Error> {
    select(conn, scope, id, "").await
}

/// Reads one object and locks it until the transaction ends.
pub async fn get_for_update(tx: &mut Tx, scope: &Scope, id: &str) -> Result<Option<Customer>, sqlx::Error> {
    let lock = tx.lock_clause();
    select(tx, scope, id, lock).await
}

async fn select(conn: &mut Conn, scope: &Scope, id: &str, lock: &str) -> Result<Option<Customer>, sqlx::Error> {
    let sql = format!("SELECT {COLUMNS} FROM customers WHERE id = $1 AND account_id = $2 AND livemode = $3{lock}");
    let row =
        sqlx::query(&sql).bind(id).bind(&scope.account_id).bind(scope.livemode).fetch_optional(&mut *conn).await?;
    row.as_ref().map(from_row).transpose()
}

pub async fn update(conn: &mut Conn, scope: &Scope, c: &Customer) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE customers SET name = $1, email = $2, score = $3, metadata = $4 \
         WHERE id = $5 AND account_id = $6 AND livemode = $7",
    )
    .bind(c.name.clone())
    .bind(c.email.clone())
    .bind(c.score)
    .bind(to_json(&c.metadata))
    .bind(&c.id)
    .bind(&scope.account_id)
    .bind(scope.livemode)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn list(
    conn: &mut Conn,
    scope: &Scope,
    page: &PageRequest,
    email: Option<String>,
) -> Result<Page<Customer>, sqlx::Error> {
    fetch_page(
        conn,
        resource::CUSTOMER.table,
        COLUMNS,
        scope,
        page,
        |sql| {
            if let Some(email) = email {
                sql.and_eq("email", email);
            }
        },
        from_row,
    )
    .await
}
