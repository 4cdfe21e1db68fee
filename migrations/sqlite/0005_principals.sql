-- IAM-style principals (issue 6): an access key of a tenant with an identity
-- policy, for callers of AWS_IAM methods. Not administrators: the management
-- API does not accept their keys. The secret is sealed like access_keys';
-- data-plane nodes only ever receive signing keys derived from it, scoped to
-- one day, their region and execute-api.
CREATE TABLE principals (
    access_key_id  TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES tenants (account_id) ON DELETE CASCADE,
    -- "user" or "role": the ARN's resource type.
    kind           TEXT NOT NULL,
    name           TEXT NOT NULL,
    -- AIDA… (users) or AROA… (roles): `$context.identity.user` / `caller`.
    unique_id      TEXT NOT NULL,
    secret_sealed  TEXT NOT NULL,
    -- The identity policy document, as given (JSON text).
    policy         TEXT NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE UNIQUE INDEX principals_name ON principals (account_id, kind, name);
