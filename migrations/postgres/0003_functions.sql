-- The built-in function host's functions (the `lambda` management API).
-- `doc` is the function's configuration as JSON; `code` the uploaded zip, kept
-- here so every control-plane replica can run the function.
CREATE TABLE functions (
    account_id     TEXT NOT NULL REFERENCES tenants (account_id) ON DELETE CASCADE,
    function_name  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    doc            TEXT NOT NULL,
    code_sha256    TEXT NOT NULL,
    code           BYTEA NOT NULL,
    PRIMARY KEY (account_id, function_name)
);

-- Keys of the service principal: data-plane nodes sign Lambda Invoke calls on
-- behalf of an API's account with one. Secrets sealed like access keys'.
CREATE TABLE service_keys (
    access_key_id  TEXT PRIMARY KEY,
    secret_sealed  TEXT NOT NULL,
    description    TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
