//! `/v1/files`: uploads (`multipart/form-data`, as Stripe's SDKs and `curl -F` send
//! them), the file objects, and their contents.
//!
//! An upload's body is streamed: its parts are read as they arrive (axum's
//! `Multipart`, over multer), the file's SHA-256 is taken chunk by chunk, its first
//! bytes decide at once whether it can be a PDF, JPEG or PNG, and the body is cut off
//! at `upload_body_limit`. The file itself is then held once in memory, to be written
//! in one transaction with its row. This route alone takes bodies over
//! `ApiConfig::max_body_bytes`: `api::retry_on_connection_loss` leaves its body
//! unread (the handler retries its own write), and the idempotency layer reads it up
//! to `upload_body_limit` (`api::body_limit`).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::Json;
use axum::body::{Body as AxumBody, Bytes, HttpBody};
use axum::extract::multipart::MultipartError;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{BodyDeadlinePassed, Caller, PathId, Platform, caused_by, content_type};
use super::input::QueryInput;
use super::list::{list_query, render};
use super::openapi::{Errors, ExpandQuery, IdPath, List};
use super::{expand_paths, object_paths, write_view};
use crate::app::{ApiConfig, AppState};
use crate::domain::file::{
    File, FilePurpose, SNIFF_HEAD_BYTES, clean_filename, content_disposition, sniff, sniff_head,
};
use crate::error::{ApiError, ApiResult};
use crate::ids::{FileId, Kind};
use crate::service::files::{self, Upload};
use crate::store::files::FileFilters;
use crate::views::{FileView, Render};

/// Room in an upload's body for the multipart framing and the `purpose` part, beyond
/// the file itself.
pub const MULTIPART_ALLOWANCE: usize = 64 * 1024;
/// The longest text part (`purpose`) read.
const TEXT_PART_MAX_BYTES: usize = 256;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(retrieve))
        .routes(routes!(contents))
        // The upload sets its own limit (`read_upload`); nothing else here has a body.
        .layer(DefaultBodyLimit::disable())
}

/// The largest body `POST /v1/files` reads.
pub fn upload_body_limit(config: &ApiConfig) -> usize {
    config.max_file_bytes.saturating_add(MULTIPART_ALLOWANCE)
}

/// Whether a request is an upload, whose body may be larger than other routes'.
pub(crate) fn is_upload(method: &Method, path: &str) -> bool {
    method == Method::POST && path == "/v1/files"
}

/// An upload: the file and what it is for. (The document's view of the parts; the
/// handler reads them itself, as they stream in, in `read_upload`.)
#[derive(Debug, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct FileUpload {
    /// The file: a PDF, JPEG or PNG, judged from its content (not its name or declared
    /// type), at most 10 MiB (`CASAPAY_MAX_FILE_BYTES`). Sent as a file part, with a
    /// filename.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    pub purpose: FilePurpose,
}

/// Bytes, as a download's body.
pub struct Binary;

impl utoipa::PartialSchema for Binary {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for Binary {}

/// Upload a file (`multipart/form-data`: `file`, `purpose=claim_evidence`), to name
/// in a claim's `evidence[files]`.
#[utoipa::path(post, path = "/v1/files", tag = "Files",
    request_body(content = FileUpload, content_type = "multipart/form-data"),
    responses((status = 200, description = "The file", body = FileView), Errors))]
async fn create(State(state): State<AppState>, Platform(call): Platform, req: Request) -> ApiResult<Response> {
    let upload = read_upload(&state.config, req).await?;
    // Outside `retry_on_connection_loss` (which would have read the body again): the
    // write is retried here, once, from the upload already read.
    crate::service::again_if_connection_lost(&state.store, || {
        write_view(&state, &call, async |tx| files::create(tx, &call, &upload).await)
    })
    .await
}

/// Retrieve a file. With an operator key: a file that some claim's evidence names, in
/// any account and mode (the files of the claims operators review).
#[utoipa::path(get, path = "/v1/files/{id}", tag = "Files", params(IdPath, ExpandQuery),
    responses((status = 200, description = "The file", body = FileView), Errors))]
async fn retrieve(
    State(state): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    QueryInput(q): QueryInput<ExpandQuery>,
) -> ApiResult<Json<FileView>> {
    object_paths(Kind::File, &id, q.expand)?;
    let file = match caller {
        Caller::Platform(call) => files::retrieve(&state.store, &call, &id).await?,
        Caller::Operator(_) => files::retrieve_for_review(&state.store, &id).await?,
    };
    Ok(Json(file.view()))
}

/// Download a file's contents: the bytes as uploaded, always as an attachment. With an
/// operator key: those of a file that some claim's evidence names.
#[utoipa::path(get, path = "/v1/files/{id}/contents", tag = "Files", params(IdPath),
    responses((status = 200, description = "The file's bytes, with its type's Content-Type",
        content((Binary = "application/pdf"), (Binary = "image/jpeg"), (Binary = "image/png"))), Errors))]
async fn contents(State(state): State<AppState>, caller: Caller, PathId(id): PathId) -> ApiResult<Response> {
    super::check_id(Kind::File, &id)?;
    let (file, bytes) = match caller {
        Caller::Platform(call) => files::contents(&state.store, &call, &id).await?,
        Caller::Operator(_) => files::contents_for_review(&state.store, &id).await?,
    };
    Ok(download(&file, bytes))
}

/// The bytes with headers that keep a browser from ever treating them as a page of
/// this origin: the stored type (never sniffed), an attachment, and a sandbox that
/// runs nothing even if it were rendered. The console's downloads answer the same.
pub(crate) fn download(file: &File, bytes: Vec<u8>) -> Response {
    let mut resp = (StatusCode::OK, bytes).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(file.file_type.media_type()));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&file.filename)) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    headers.insert("cross-origin-resource-policy", HeaderValue::from_static("same-origin"));
    resp
}

list_query! {
    /// `GET /v1/files`.
    FileList, FileId {
        /// Only files for this purpose.
        purpose: Option<FilePurpose>,
    }
}

/// List files, newest first.
#[utoipa::path(get, path = "/v1/files", tag = "Files", params(FileList),
    responses((status = 200, description = "A page of files", body = List<FileView>), Errors))]
async fn list(
    State(state): State<AppState>,
    Platform(call): Platform,
    QueryInput(q): QueryInput<FileList>,
) -> ApiResult<Json<super::list::ListBody<FileView>>> {
    let page = q.page()?;
    expand_paths(q.expand, File::OBJECT, true)?;
    let filters = FileFilters { purpose: q.purpose };
    Ok(render(files::list(&state.store, &call, &page, filters).await?, "/v1/files"))
}

/// Why an upload's body stopped, as its reader saw it (multer's errors do not carry
/// their causes far enough to tell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFailure {
    TooLarge,
    Deadline,
    Broken,
}

/// An upload's body, cut off past `limit` bytes, noting why it failed. It hands out
/// one frame per poll: multer reads its stream until it would wait, so from a fast
/// client it would otherwise buffer the whole body before the handler sees a byte.
struct UploadBody {
    inner: AxumBody,
    limit: usize,
    seen: usize,
    failure: Arc<Mutex<Option<BodyFailure>>>,
    /// A frame went out on the last poll: this one yields first.
    yield_next: bool,
    /// The rest of a frame larger than `FRAME_BYTES` (a body read whole already, by
    /// the idempotency layer), handed out in slices of that size.
    pending: Option<Bytes>,
}

/// The most bytes `UploadBody` hands out at once.
const FRAME_BYTES: usize = 64 * 1024;

#[derive(Debug)]
struct UploadTooLarge;

impl std::fmt::Display for UploadTooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the upload is larger than its limit")
    }
}

impl std::error::Error for UploadTooLarge {}

impl UploadBody {
    fn fail(&self, why: BodyFailure) {
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(why);
        }
    }
}

impl HttpBody for UploadBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if this.yield_next {
            this.yield_next = false;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        if let Some(rest) = this.pending.as_mut() {
            let piece = rest.split_to(rest.len().min(FRAME_BYTES));
            if rest.is_empty() {
                this.pending = None;
            }
            this.yield_next = true;
            return Poll::Ready(Some(Ok(Frame::data(piece))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.seen = this.seen.saturating_add(frame.data_ref().map_or(0, Bytes::len));
                if this.seen > this.limit {
                    this.fail(BodyFailure::TooLarge);
                    return Poll::Ready(Some(Err(axum::Error::new(UploadTooLarge))));
                }
                this.yield_next = true;
                match frame.into_data() {
                    Ok(mut data) => {
                        if data.len() > FRAME_BYTES {
                            this.pending = Some(data.split_off(FRAME_BYTES));
                        }
                        Poll::Ready(Some(Ok(Frame::data(data))))
                    }
                    Err(frame) => Poll::Ready(Some(Ok(frame))),
                }
            }
            Poll::Ready(Some(Err(e))) => {
                this.fail(if caused_by::<BodyDeadlinePassed>(&e) {
                    BodyFailure::Deadline
                } else {
                    BodyFailure::Broken
                });
                Poll::Ready(Some(Err(e)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // What is left of `pending` is not in the inner body's hint.
        SizeHint::default()
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
}

/// The multipart body of `req`, streamed through `UploadBody`; the cell tells why the
/// body failed, if it did.
async fn multipart_of(req: Request, limit: usize) -> ApiResult<(Multipart, Arc<Mutex<Option<BodyFailure>>>)> {
    match content_type(req.headers()).as_deref() {
        Some("multipart/form-data") => {}
        Some(other) => return Err(ApiError::multipart_required(other)),
        None => return Err(ApiError::multipart_required("(none)")),
    }
    if declared_length(req.headers()).is_some_and(|n| n > limit as u64) {
        return Err(ApiError::body_too_large(limit));
    }
    let failure = Arc::new(Mutex::new(None));
    let watched = failure.clone();
    let req = req.map(|inner| {
        AxumBody::new(UploadBody { inner, limit, seen: 0, failure: watched, yield_next: false, pending: None })
    });
    let multipart = Multipart::from_request(req, &())
        .await
        .map_err(|_| ApiError::bad_request("The multipart/form-data Content-Type has no boundary (boundary=...)."))?;
    Ok((multipart, failure))
}

/// The answer to a body that could not be read as multipart: too large (413), too
/// slow (503, as for any body), cut off or malformed (400).
fn multipart_error(e: &MultipartError, failure: &Mutex<Option<BodyFailure>>, limit: usize) -> ApiError {
    match failure.lock().ok().and_then(|f| *f) {
        Some(BodyFailure::TooLarge) => ApiError::body_too_large(limit),
        Some(BodyFailure::Deadline) => ApiError::timeout(),
        Some(BodyFailure::Broken) => ApiError::bad_request("The request body could not be read."),
        None if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::body_too_large(limit),
        None => ApiError::bad_request(format!(
            "The multipart/form-data body is malformed or incomplete ({}).",
            crate::error::clip(&e.body_text())
        )),
    }
}

fn duplicate_part(name: &str) -> ApiError {
    ApiError::invalid("parameter_duplicate", name, format!("The part {name} was sent more than once: send it once."))
}

/// Reads and checks an upload: one `file` part (with a filename) and one `purpose`,
/// nothing else. The file's type is judged from its bytes as they arrive: a body
/// whose file cannot be a PDF, JPEG or PNG is refused at its first bytes.
pub(crate) async fn read_upload(config: &ApiConfig, req: Request) -> ApiResult<Upload> {
    let max_file = config.max_file_bytes;
    let limit = upload_body_limit(config);
    let capacity = declared_length(req.headers()).map_or(0, |n| (n as usize).min(max_file));
    let (mut multipart, failure) = multipart_of(req, limit).await?;
    let mut file: Option<(String, Vec<u8>, Sha256)> = None;
    let mut purpose: Option<FilePurpose> = None;
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(multipart_error(&e, &failure, limit)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(duplicate_part("file"));
                }
                let filename = field.file_name().and_then(clean_filename).ok_or_else(|| {
                    ApiError::invalid(
                        "file_name_invalid",
                        "file",
                        "The file part needs a filename (curl -F file=@lease.pdf): a name, not only a path or dots.",
                    )
                })?;
                let mut bytes = Vec::with_capacity(capacity);
                let mut digest = Sha256::new();
                let mut judged = false;
                loop {
                    let chunk = match field.chunk().await {
                        Ok(Some(chunk)) => chunk,
                        Ok(None) => break,
                        Err(e) => return Err(multipart_error(&e, &failure, limit)),
                    };
                    if bytes.len() + chunk.len() > max_file {
                        return Err(ApiError::file_too_large(max_file));
                    }
                    digest.update(&chunk);
                    bytes.extend_from_slice(&chunk);
                    if !judged && bytes.len() >= SNIFF_HEAD_BYTES {
                        judged = true;
                        if sniff_head(&bytes).is_none() {
                            return Err(unsupported_type());
                        }
                    }
                }
                file = Some((filename, bytes, digest));
            }
            "purpose" => {
                if purpose.is_some() {
                    return Err(duplicate_part("purpose"));
                }
                let mut text = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|e| multipart_error(&e, &failure, limit))? {
                    text.extend_from_slice(&chunk);
                    if text.len() > TEXT_PART_MAX_BYTES {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&text);
                purpose = Some(FilePurpose::parse(&text).ok_or_else(|| {
                    ApiError::invalid(
                        "parameter_invalid_value",
                        "purpose",
                        format!(
                            "Invalid purpose: must be one of {}, got '{}'.",
                            FilePurpose::names(),
                            crate::error::clip(&text)
                        ),
                    )
                })?);
            }
            "" => return Err(ApiError::bad_request("Every part of the body needs a name (file or purpose).")),
            other => return Err(ApiError::unknown(other)),
        }
    }
    let (filename, contents, digest) = file.ok_or_else(|| ApiError::missing("file"))?;
    let purpose = purpose.ok_or_else(|| ApiError::missing("purpose"))?;
    if contents.is_empty() {
        return Err(ApiError::invalid("file_empty", "file", "The file is empty (0 bytes)."));
    }
    let file_type = sniff(&contents).ok_or_else(unsupported_type)?;
    Ok(Upload { filename, purpose, file_type, sha256: hex::encode(digest.finalize()), contents })
}

fn unsupported_type() -> ApiError {
    ApiError::invalid(
        "file_type_unsupported",
        "file",
        "The file must be a PDF, JPEG or PNG (judged from its content, not its name or declared type).",
    )
}

/// The parameters of an upload for its idempotency fingerprint: each part's name,
/// filename and the SHA-256 of its bytes, so that the same upload sent again with
/// another multipart boundary (as `curl -F` picks a new one each time) is the same
/// request. `None` when the body is not well-formed multipart (it is then compared
/// as bytes).
pub(crate) async fn upload_fingerprint(headers: &HeaderMap, body: Bytes) -> Option<String> {
    // In slices, so that multer does not copy the whole body into its buffer at once.
    let failure = Arc::new(Mutex::new(None));
    let sliced = UploadBody {
        inner: AxumBody::from(body),
        limit: usize::MAX,
        seen: 0,
        failure,
        yield_next: false,
        pending: None,
    };
    let mut req = Request::new(AxumBody::new(sliced));
    *req.headers_mut() = headers.clone();
    let mut multipart = Multipart::from_request(req, &()).await.ok()?;
    let mut canonical = String::new();
    while let Some(mut field) = multipart.next_field().await.ok()? {
        let mut digest = Sha256::new();
        while let Some(chunk) = field.chunk().await.ok()? {
            digest.update(&chunk);
        }
        let part = serde_json::json!([field.name(), field.file_name(), hex::encode(digest.finalize())]);
        canonical.push_str(&part.to_string());
        canonical.push('\n');
    }
    Some(canonical)
}
