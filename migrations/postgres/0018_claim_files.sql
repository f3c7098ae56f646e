-- Which claims name a file in their evidence (`claims.evidence_files`, the JSON array
-- the API shows, stays the record of the order): operators may read a file that some
-- claim's evidence names (SPEC section 7), and this finds that claim, and with it the
-- scope the file is read in, by the file's id through an index rather than a scan of
-- every claim's evidence. Rows go with their claim or their file.
CREATE TABLE claim_files (
    file_id  TEXT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    claim_id TEXT NOT NULL REFERENCES claims (id) ON DELETE CASCADE,
    PRIMARY KEY (file_id, claim_id)
);
CREATE INDEX claim_files_claim_idx ON claim_files (claim_id);

INSERT INTO claim_files (file_id, claim_id)
SELECT DISTINCT f.value, c.id
FROM claims c, jsonb_array_elements_text(c.evidence_files::jsonb) AS f (value)
WHERE EXISTS (SELECT 1 FROM files WHERE files.id = f.value);
