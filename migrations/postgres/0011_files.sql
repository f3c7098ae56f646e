-- Evidence files (SPEC section 7). The file object and its bytes are two tables, so
-- that reads and lists of files never touch the bytes; `store::files::FileContents`
-- is the one place that reads and writes `file_contents`.
CREATE TABLE files (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY,
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (id),
    livemode   BOOLEAN NOT NULL,
    created    BIGINT NOT NULL,
    filename   TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    size       BIGINT NOT NULL,
    file_type  TEXT NOT NULL,
    sha256     TEXT NOT NULL
);
CREATE INDEX files_list_idx ON files (account_id, livemode, created DESC, seq DESC);

-- The bytes, in parts of at most 256 KiB (`store::files::PART_BYTES`) so that no
-- statement carries, and no connection buffers, a whole 10 MiB file.
CREATE TABLE file_contents (
    file_id  TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    part     BIGINT NOT NULL,
    contents BYTEA NOT NULL,
    PRIMARY KEY (file_id, part)
);

-- The ids of a claim's evidence files, a JSON array in the order they were added.
ALTER TABLE claims ADD COLUMN evidence_files TEXT NOT NULL DEFAULT '[]';
