//! Evidence files: what the server accepts as a PDF, a JPEG or a PNG, judged from the
//! bytes alone, and the file names it keeps.

use super::{Timestamp, wire_enum};

wire_enum! {
    /// What a file is, judged from its content (`sniff`).
    FileType {
        Pdf = "pdf",
        Jpg = "jpg",
        Png = "png",
    }
}

wire_enum! {
    /// What a file is for.
    FilePurpose {
        ClaimEvidence = "claim_evidence",
    }
}

/// The most evidence files one claim holds.
pub const MAX_CLAIM_FILES: usize = 20;
/// The longest file name kept (in characters); a longer one keeps its end, with the
/// extension.
pub const FILENAME_MAX_CHARS: usize = 255;
/// The default of `CASAPAY_MAX_FILE_BYTES`: 10 MiB.
pub const DEFAULT_MAX_FILE_BYTES: usize = 10 * 1024 * 1024;
/// How many bytes of a file `sniff` needs to judge its start.
pub const SNIFF_HEAD_BYTES: usize = 16;
/// A PDF's last `%%EOF` must be within this many bytes of its end.
const PDF_EOF_WINDOW: usize = 1024;

impl FileType {
    /// The media type the contents are served as.
    pub const fn media_type(self) -> &'static str {
        match self {
            FileType::Pdf => "application/pdf",
            FileType::Jpg => "image/jpeg",
            FileType::Png => "image/png",
        }
    }
}

/// A stored file (its bytes are kept apart, see `store::files`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub id: String,
    pub filename: String,
    pub purpose: FilePurpose,
    pub size: i64,
    pub file_type: FileType,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    pub livemode: bool,
    pub created: Timestamp,
}

impl File {
    pub const OBJECT: &'static str = "file";

    /// Where its bytes are served.
    pub fn url(&self) -> String {
        format!("/v1/files/{}/contents", self.id)
    }
}

/// The type a file's first bytes claim, if one the server accepts: a PDF header
/// (`%PDF-` and a version digit), JPEG's start-of-image marker followed by another
/// marker, or PNG's signature followed by its IHDR chunk. `None` for anything else
/// (a ZIP's `PK\x03\x04`, HTML, an executable), whatever its name says.
pub fn sniff_head(head: &[u8]) -> Option<FileType> {
    if head.len() >= 6 && head.starts_with(b"%PDF-") && head[5].is_ascii_digit() {
        Some(FileType::Pdf)
    } else if head.len() >= 4 && head.starts_with(&[0xFF, 0xD8, 0xFF]) && head[3] >= 0xC0 {
        Some(FileType::Jpg)
    } else if head.len() >= 16 && head.starts_with(b"\x89PNG\r\n\x1a\n") && &head[12..16] == b"IHDR" {
        Some(FileType::Png)
    } else {
        None
    }
}

/// The type of a whole file: its start (`sniff_head`) and, for a PDF, its end. A PDF
/// ends with `%%EOF` (within its last kilobyte, as readers look for it), and nothing
/// after it may be a ZIP's end-of-central-directory record: a ZIP (an .docx, a .jar)
/// with a PDF header in front is a ZIP to every unzip tool, so it is refused.
pub fn sniff(contents: &[u8]) -> Option<FileType> {
    let kind = sniff_head(&contents[..contents.len().min(SNIFF_HEAD_BYTES)])?;
    if kind == FileType::Pdf {
        let tail = &contents[contents.len().saturating_sub(PDF_EOF_WINDOW)..];
        let eof = find_last(tail, b"%%EOF")?;
        if find_last(&tail[eof..], b"PK\x05\x06").is_some() || find_last(&tail[eof..], b"PK\x03\x04").is_some() {
            return None;
        }
    }
    Some(kind)
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// A client's file name made safe to keep and show: its last path component (after
/// any `/` or `\`), without control characters, trimmed, at most
/// `FILENAME_MAX_CHARS`. `None` when nothing usable is left (empty, `.`, `..`).
/// The name is only ever shown, never used as a path.
pub fn clean_filename(raw: &str) -> Option<String> {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last.chars().filter(|c| !c.is_control() && !is_invisible_format(*c)).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned.chars().all(|c| c == '.') {
        return None;
    }
    let count = cleaned.chars().count();
    if count <= FILENAME_MAX_CHARS {
        return Some(cleaned.to_owned());
    }
    // Keep the end, where the extension is.
    Some(cleaned.chars().skip(count - FILENAME_MAX_CHARS).collect())
}

/// Characters that change how a name is displayed rather than what it says: the
/// bidirectional overrides and isolates (which make `gpj.exe` read as `exe.jpg`) and
/// zero-width ones.
fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// The name in an ASCII `filename="..."` parameter: non-ASCII and the characters that
/// could end or escape the quoted string (`"`, `\`, `;`, `%`) become `_`. The exact
/// name goes in `filename*` (`content_disposition`).
fn ascii_filename(name: &str) -> String {
    name.chars()
        .map(|c| if (c.is_ascii_graphic() && !matches!(c, '"' | '\\' | ';' | '%')) || c == ' ' { c } else { '_' })
        .collect()
}

/// `Content-Disposition` for a download: always `attachment`, with the name both as
/// ASCII and as RFC 8187 UTF-8 (`filename*`), percent-encoded so that no byte of it
/// can break the header.
pub fn content_disposition(name: &str) -> String {
    let mut encoded = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{}\"; filename*=UTF-8''{encoded}", ascii_filename(name))
}

/// Why files cannot be added to a claim's evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvidenceFilesError {
    /// The file at this index of the request is for something else.
    WrongPurpose { index: usize, purpose: FilePurpose },
    /// There would be more than `MAX_CLAIM_FILES`.
    TooMany { total: usize },
}

/// The files of `requested` (ids in request order) that `current` does not hold yet,
/// each once, with its index in the request; refused when the claim would then hold
/// more than `MAX_CLAIM_FILES` (checked before any is looked up).
pub fn new_evidence_files<'a>(
    current: &[String],
    requested: &'a [String],
) -> Result<Vec<(usize, &'a str)>, EvidenceFilesError> {
    let new: Vec<(usize, &str)> = requested
        .iter()
        .enumerate()
        .filter(|(i, id)| !current.contains(id) && !requested[..*i].contains(id))
        .map(|(i, id)| (i, id.as_str()))
        .collect();
    let total = current.len() + new.len();
    if total > MAX_CLAIM_FILES {
        return Err(EvidenceFilesError::TooMany { total });
    }
    Ok(new)
}

/// The evidence files after adding `new` (from `new_evidence_files`, each with its
/// purpose): only files for claim evidence, only ever added.
pub fn add_evidence_files(
    current: &[String],
    new: &[(usize, String, FilePurpose)],
) -> Result<Vec<String>, EvidenceFilesError> {
    let mut files = current.to_vec();
    for (index, id, purpose) in new {
        if *purpose != FilePurpose::ClaimEvidence {
            return Err(EvidenceFilesError::WrongPurpose { index: *index, purpose: *purpose });
        }
        files.push(id.clone());
    }
    if files.len() > MAX_CLAIM_FILES {
        return Err(EvidenceFilesError::TooMany { total: files.len() });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG_HEAD: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn pdf(body: &[u8]) -> Vec<u8> {
        [b"%PDF-1.7\n".as_slice(), body, b"\ntrailer\n%%EOF\n"].concat()
    }

    #[test]
    fn types_are_judged_from_the_bytes() {
        assert_eq!(sniff(&pdf(b"1 0 obj")), Some(FileType::Pdf));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F']), Some(FileType::Jpg));
        assert_eq!(sniff(&[PNG_HEAD, b"rest"].concat()), Some(FileType::Png));
        for other in [
            b"PK\x03\x04\x14\0\0\0".as_slice(),
            b"<html><script>alert(1)</script>",
            b"MZ\x90\0",
            b"GIF89a",
            b"%PDF-x",
            b"\xFF\xD8",
            b"\x89PNG\r\n\x1a\n\0\0\0\rIEND",
            b"",
            b"%PDF",
        ] {
            assert_eq!(sniff(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_pdf_needs_its_end_and_a_zip_behind_a_pdf_header_is_refused() {
        // A header and no %%EOF: cut off, or not a PDF at all.
        assert_eq!(sniff(b"%PDF-1.4\n1 0 obj"), None);
        // %%EOF far from the end: more than a kilobyte of something else follows.
        assert_eq!(sniff(&[pdf(b"x").as_slice(), &[b'A'; 2000]].concat()), None);
        // A ZIP with a PDF header glued in front: its central directory ends the file.
        let mut zip = b"%PDF-1.4\n%%EOF\nPK\x03\x04\x14\0\0\0payload".to_vec();
        zip.extend_from_slice(b"PK\x01\x02central directoryPK\x05\x06\0\0\0\0\x01\0\x01\0");
        assert_eq!(sniff(&zip), None);
        // The usual newline or spaces after %%EOF are fine.
        assert_eq!(sniff(b"%PDF-2.0\n%%EOF\r\n  \n"), Some(FileType::Pdf));
        // Only the start is judged by sniff_head: the streaming check of the first chunk.
        assert_eq!(sniff_head(b"%PDF-1.4\n"), Some(FileType::Pdf));
        assert_eq!(sniff_head(b"PK\x03\x04%PDF-1.4"), None);
    }

    #[test]
    fn file_names_are_cleaned_never_paths() {
        assert_eq!(clean_filename("lease.pdf").as_deref(), Some("lease.pdf"));
        assert_eq!(clean_filename("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(clean_filename("C:\\Users\\me\\photo 1.jpg").as_deref(), Some("photo 1.jpg"));
        assert_eq!(clean_filename("a\r\nX-Injected: 1\0.pdf").as_deref(), Some("aX-Injected: 1.pdf"));
        assert_eq!(clean_filename("inv\u{202E}fdp.exe").as_deref(), Some("invfdp.exe"));
        assert_eq!(clean_filename("  spaced.png  ").as_deref(), Some("spaced.png"));
        assert_eq!(clean_filename("Mietvertrag – Küche.pdf").as_deref(), Some("Mietvertrag – Küche.pdf"));
        for nothing in ["", "/", "dir/", "..", ".", "\u{1}\u{2}", "   "] {
            assert_eq!(clean_filename(nothing), None, "{nothing:?}");
        }
        let long = format!("{}.pdf", "a".repeat(300));
        let kept = clean_filename(&long).unwrap();
        assert_eq!(kept.chars().count(), FILENAME_MAX_CHARS);
        assert!(kept.ends_with(".pdf"));
    }

    #[test]
    fn downloads_are_attachments_with_a_name_that_cannot_break_the_header() {
        assert_eq!(content_disposition("lease.pdf"), "attachment; filename=\"lease.pdf\"; filename*=UTF-8''lease.pdf");
        let d = content_disposition("a\"; b=c\\d é.pdf");
        assert_eq!(d, "attachment; filename=\"a__ b=c_d _.pdf\"; filename*=UTF-8''a%22%3B%20b%3Dc%5Cd%20%C3%A9.pdf");
        assert!(d.bytes().all(|b| (0x20..0x7F).contains(&b)));
    }

    #[test]
    fn evidence_files_are_added_never_removed_up_to_twenty() {
        let ids = |r: std::ops::Range<usize>| -> Vec<String> { r.map(|i| format!("file_{i}")).collect() };
        let current = ids(0..1);
        // Ids already there, or repeated, are not added again; the index is the request's.
        let requested = ["file_0", "file_1", "file_1", "file_2"].map(String::from);
        let new = new_evidence_files(&current, &requested).unwrap();
        assert_eq!(new, [(1, "file_1"), (3, "file_2")]);
        let found: Vec<_> = new.iter().map(|(i, id)| (*i, id.to_string(), FilePurpose::ClaimEvidence)).collect();
        let added = add_evidence_files(&current, &found).unwrap();
        assert_eq!(added, ["file_0", "file_1", "file_2"]);
        assert_eq!(add_evidence_files(&added, &[]).unwrap(), added);
        assert_eq!(new_evidence_files(&[], &ids(0..20)).unwrap().len(), 20);
        assert_eq!(new_evidence_files(&added, &ids(3..21)), Err(EvidenceFilesError::TooMany { total: 21 }));
        // Twenty-one ids of which one repeats are twenty files.
        let mut repeated = ids(0..20);
        repeated.push("file_0".into());
        assert_eq!(new_evidence_files(&[], &repeated).unwrap().len(), 20);
    }
}
