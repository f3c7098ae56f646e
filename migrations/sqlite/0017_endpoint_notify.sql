-- PostgreSQL announces changes to webhook endpoints to the other replicas here (a
-- trigger and NOTIFY). SQLite has one server per file, whose own commits keep its
-- endpoint cache right: nothing to do.
SELECT 1;
