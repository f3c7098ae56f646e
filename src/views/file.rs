use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::Timestamp;
use crate::domain::file::{File, FilePurpose, FileType};

#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = File)]
pub struct FileView {
    pub id: String,
    #[schema(value_type = String)]
    pub object: &'static str,
    /// The uploaded file's name, cleaned: its last path component, without control
    /// characters. Only ever shown, never used as a path.
    pub filename: String,
    pub purpose: FilePurpose,
    /// In bytes.
    pub size: i64,
    /// Judged from the content, never from the name or the declared type.
    #[serde(rename = "type")]
    #[schema(rename = "type")]
    pub file_type: FileType,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// Where the bytes are served (with the same key): `/v1/files/{id}/contents`.
    pub url: String,
    pub livemode: bool,
    pub created: Timestamp,
}

impl From<&File> for FileView {
    fn from(f: &File) -> Self {
        FileView {
            id: f.id.clone(),
            object: File::OBJECT,
            filename: f.filename.clone(),
            purpose: f.purpose,
            size: f.size,
            file_type: f.file_type,
            sha256: f.sha256.clone(),
            url: f.url(),
            livemode: f.livemode,
            created: f.created,
        }
    }
}
