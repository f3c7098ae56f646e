//! Files: storing an upload, reading it back, and checking the ids a claim's evidence
//! names.

use super::{Call, check_cursors, found, record_event};
use crate::domain::event::EventType;
use crate::domain::file::{
    EvidenceFilesError, File, FilePurpose, FileType, MAX_CLAIM_FILES, add_evidence_files, new_evidence_files,
};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource;
use crate::store::files::{FileContents, FileFilters};
use crate::store::{self, Conn, Page, PageRequest, Scope, Store, Tx};

/// An upload, read whole and checked (`api::files`): its type judged from the bytes,
/// its name cleaned, its digest taken as it streamed in.
#[derive(Debug)]
pub struct Upload {
    pub filename: String,
    pub purpose: FilePurpose,
    pub file_type: FileType,
    pub sha256: String,
    pub contents: Vec<u8>,
}

/// Stores an upload: the file's row, its bytes and its event, in one transaction.
pub async fn create(tx: &mut Tx, call: &Call, upload: &Upload) -> ApiResult<File> {
    let file = File {
        id: Kind::File.new_id(),
        filename: upload.filename.clone(),
        purpose: upload.purpose,
        size: upload.contents.len() as i64,
        file_type: upload.file_type,
        sha256: upload.sha256.clone(),
        livemode: call.scope.livemode,
        created: call.now,
    };
    store::files::insert(tx, &call.scope, &file).await?;
    store::files::CONTENTS.put(tx, &call.scope, &file.id, &upload.contents).await?;
    record_event(tx, call, EventType::FileCreated, &file).await?;
    Ok(file)
}

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<File> {
    found(&resource::FILE, id, store.run(async |conn| store::files::get(conn, &call.scope, id).await).await?)
}

/// The file and its bytes.
pub async fn contents(store: &Store, call: &Call, id: &str) -> ApiResult<(File, Vec<u8>)> {
    store.run(async |conn| contents_in(conn, &call.scope, id).await).await
}

/// The file `id` of `scope` and its bytes (404 when the scope has no such file).
pub async fn contents_in(conn: &mut Conn, scope: &Scope, id: &str) -> ApiResult<(File, Vec<u8>)> {
    let file = found(&resource::FILE, id, store::files::get(conn, scope, id).await?)?;
    let bytes = store::files::CONTENTS.get(conn, scope, &file).await?;
    // A file row is written with its bytes: one without them is a broken store.
    let bytes = bytes.ok_or_else(|| ApiError::internal(format!("file {id} has no contents")))?;
    Ok((file, bytes))
}

/// The scope an operator reads file `id` in: that of a claim whose evidence names it
/// (operators read the files of any claim they can review, in any account and mode;
/// SPEC section 7). A file no claim names is, to operators, no file (404).
async fn review_scope(conn: &mut Conn, id: &str) -> ApiResult<Scope> {
    match store::files::claim_naming(conn, id).await? {
        Some((scope, _claim)) => Ok(scope),
        None => found(&resource::FILE, id, None),
    }
}

/// A file for an operator: one that some claim's evidence names, read in the claim's
/// account and mode.
pub async fn retrieve_for_review(store: &Store, id: &str) -> ApiResult<File> {
    store
        .run(async |conn| {
            let scope = review_scope(conn, id).await?;
            found(&resource::FILE, id, store::files::get(conn, &scope, id).await?)
        })
        .await
}

/// The bytes of a file for an operator, as `retrieve_for_review` finds it.
pub async fn contents_for_review(store: &Store, id: &str) -> ApiResult<(File, Vec<u8>)> {
    store
        .run(async |conn| {
            let scope = review_scope(conn, id).await?;
            contents_in(conn, &scope, id).await
        })
        .await
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest, filters: FileFilters) -> ApiResult<Page<File>> {
    store
        .run(async |conn| {
            check_cursors(conn, call, &resource::FILE, page).await?;
            Ok(store::files::list(conn, &call.scope, page, filters).await?)
        })
        .await
}

/// The param a claim's evidence file id came from: `evidence[files][0]`.
pub fn evidence_param(index: usize) -> String {
    format!("evidence[files][{index}]")
}

/// The evidence files of a claim that holds `current`, after adding `requested`
/// (from `evidence[files]`). An id that names no file of the caller's account and
/// mode is a 404 naming its place in the request, as for any id; a file for another
/// purpose is a 400.
pub async fn add_evidence(
    conn: &mut Conn,
    call: &Call,
    current: &[String],
    requested: &[String],
) -> ApiResult<Vec<String>> {
    let new = new_evidence_files(current, requested).map_err(evidence_error)?;
    let mut found = Vec::with_capacity(new.len());
    for (index, id) in new {
        let file = store::files::get(conn, &call.scope, id)
            .await?
            .ok_or_else(|| ApiError::no_such(Kind::File.object(), id, Some(&evidence_param(index))))?;
        found.push((index, file.id, file.purpose));
    }
    add_evidence_files(current, &found).map_err(evidence_error)
}

fn evidence_error(e: EvidenceFilesError) -> ApiError {
    match e {
        EvidenceFilesError::WrongPurpose { index, purpose } => ApiError::invalid(
            "file_purpose_invalid",
            evidence_param(index),
            format!(
                "This file's purpose is {purpose}; a claim's evidence takes files uploaded with purpose claim_evidence."
            ),
        ),
        EvidenceFilesError::TooMany { total } => ApiError::invalid(
            "too_many_files",
            "evidence[files]",
            format!("A claim holds at most {MAX_CLAIM_FILES} evidence files; this would make {total}."),
        ),
    }
}
