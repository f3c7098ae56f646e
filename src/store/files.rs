//! Files: the `files` table (the file objects) and, behind `FileContents`, where
//! their bytes live.
//!
//! Today the bytes are in the database too (`file_contents`: PostgreSQL `bytea`,
//! SQLite blob), written in the same transaction as the file's row, so every replica
//! serves every file and a backup holds everything. An S3-compatible store would be
//! another `FileContents`: `put` before the row commits (a row never names missing
//! bytes; bytes whose row did not commit are swept later), `get` by the id.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Conn, Scope, Tx, get_bool, insert_query, read_row, row_scope};
use crate::domain::file::{File, FilePurpose, FileType};
use crate::resource;

const COLUMNS: &str = "id, livemode, created, filename, purpose, size, file_type, sha256";

fn from_row(r: &AnyRow) -> Result<File, sqlx::Error> {
    let purpose: String = r.try_get("purpose")?;
    let file_type: String = r.try_get("file_type")?;
    Ok(read_row! { r, File {
        id, filename,
        purpose: FilePurpose::parse(&purpose)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown file purpose {purpose:?}").into()))?,
        size,
        file_type: FileType::parse(&file_type)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown file type {file_type:?}").into()))?,
        sha256,
        livemode: get_bool(r, "livemode")?,
        created,
    }})
}

pub async fn insert(conn: &mut Conn, scope: &Scope, f: &File) -> Result<(), sqlx::Error> {
    insert_query(
        "INSERT INTO files (id, account_id, livemode, created, filename, purpose, size, file_type, sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &f.id,
        scope,
        f.created,
    )
    .bind(&f.filename)
    .bind(f.purpose.as_str())
    .bind(f.size)
    .bind(f.file_type.as_str())
    .bind(&f.sha256)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Filters of `GET /v1/files`.
#[derive(Debug, Default, Clone)]
pub struct FileFilters {
    pub purpose: Option<FilePurpose>,
}

super::list::scoped_reads! {
    File, resource::FILE.table, COLUMNS, from_row;
    list(f: FileFilters) |sql| sql.and_eq_some("purpose", f.purpose.map(|p| p.as_str()))
}

/// Notes that claim `claim_id` names `file_ids` in its evidence (`claim_files`; a pair
/// already noted stays once). The files are the claim's account's and mode's, checked
/// by the caller (`service::files::add_evidence`).
pub async fn link_to_claim(tx: &mut Tx, claim_id: &str, file_ids: &[String]) -> Result<(), sqlx::Error> {
    if file_ids.is_empty() {
        return Ok(());
    }
    // Deferred (`Tx::defer`): the claim it names may be a deferred insert too.
    tx.defer("claim_files", |sql| {
        let claim = sql.bind(claim_id.to_owned());
        let rows: Vec<String> = file_ids.iter().map(|file| format!("({}, {claim})", sql.bind(file.clone()))).collect();
        format!("INSERT INTO claim_files (file_id, claim_id) VALUES {} ON CONFLICT DO NOTHING", rows.join(", "))
    })
    .await
}

/// A claim whose evidence names file `file_id` (the oldest, if several do), with its
/// scope: the scope in which an operator reads the file. Found by the file's id
/// through `claim_files`' primary key; `None` when no claim names it.
pub async fn claim_naming(conn: &mut Conn, file_id: &str) -> Result<Option<(Scope, String)>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT c.account_id, c.livemode, c.id FROM claim_files cf JOIN claims c ON c.id = cf.claim_id \
         WHERE cf.file_id = $1 ORDER BY c.seq LIMIT 1",
    )
    .bind(file_id)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(|r| Ok((row_scope(r)?, r.try_get::<String, _>("id")?))).transpose()
}

/// Where the bytes of files are kept. Every call is about a file the caller has read
/// (or is writing) in its scope; `put` runs in the transaction that inserts the file.
pub trait FileContents {
    /// Stores the bytes of file `id`.
    fn put(
        &self,
        conn: &mut Conn,
        scope: &Scope,
        id: &str,
        bytes: &[u8],
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;

    /// The bytes of `file` (read in the caller's scope), if it is the caller's.
    fn get(
        &self,
        conn: &mut Conn,
        scope: &Scope,
        file: &File,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, sqlx::Error>> + Send;
}

/// The bytes in the database (`file_contents`).
#[derive(Debug, Clone, Copy, Default)]
pub struct InDatabase;

/// The storage the server uses.
pub const CONTENTS: InDatabase = InDatabase;

/// The most bytes one row of `file_contents` holds.
pub const PART_BYTES: usize = 256 * 1024;

impl FileContents for InDatabase {
    async fn put(&self, conn: &mut Conn, _scope: &Scope, id: &str, bytes: &[u8]) -> Result<(), sqlx::Error> {
        // The file's row (inserted first, in the same transaction) carries the scope.
        // In parts: the driver copies each statement's values (PostgreSQL into its
        // connection's buffer, which keeps its size), so a part is what it costs.
        for (part, chunk) in bytes.chunks(PART_BYTES).enumerate() {
            sqlx::query("INSERT INTO file_contents (file_id, part, contents) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(part as i64)
                .bind(chunk)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    async fn get(&self, conn: &mut Conn, scope: &Scope, file: &File) -> Result<Option<Vec<u8>>, sqlx::Error> {
        use futures_util::TryStreamExt;
        let mut rows = sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT c.contents FROM file_contents c JOIN files f ON f.id = c.file_id \
             WHERE f.id = $1 AND f.account_id = $2 AND f.livemode = $3 ORDER BY c.part",
        )
        .bind(&file.id)
        .bind(&scope.account_id)
        .bind(scope.livemode)
        .fetch(&mut *conn);
        let mut bytes: Option<Vec<u8>> = None;
        while let Some(part) = rows.try_next().await? {
            let capacity = usize::try_from(file.size).unwrap_or(0);
            bytes.get_or_insert_with(|| Vec::with_capacity(capacity)).extend_from_slice(&part);
        }
        Ok(bytes)
    }
}
