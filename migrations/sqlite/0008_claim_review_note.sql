-- The deciding operator's note (`review.note` on the claim): required when a claim is
-- denied for `other`, optional otherwise.
ALTER TABLE claims ADD COLUMN review_note TEXT;
-- The per-period cap sums the approved and paid claims of one guarantee due in one
-- month: found by guarantee and due date. The index on the guarantee alone is a
-- prefix of this one.
CREATE INDEX claims_guarantee_due_idx ON claims (guarantee_id, due_date);
DROP INDEX claims_guarantee_idx;
