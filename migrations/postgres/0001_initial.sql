-- Tenancy and credentials.
CREATE TABLE tenants (
    account_id  TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- Secrets are sealed (AEAD) with the control plane's master key: SigV4
-- verification needs the clear secret, so a hash would not do.
CREATE TABLE access_keys (
    access_key_id  TEXT PRIMARY KEY,
    account_id     TEXT NOT NULL REFERENCES tenants (account_id) ON DELETE CASCADE,
    secret_sealed  TEXT NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE INDEX access_keys_account ON access_keys (account_id);

-- Operator tokens, stored as argon2 hashes; token_id is a short digest of the
-- token used to find the row without scanning every hash.
CREATE TABLE admin_tokens (
    token_id    TEXT PRIMARY KEY,
    hash        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

-- A REST API is one aggregate (resources, methods, integrations, models,
-- validators, gateway responses) kept as one JSON document, so every change
-- is a single-row compare-and-swap on `version`.
CREATE TABLE rest_apis (
    api_id      TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES tenants (account_id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    doc         TEXT NOT NULL
);
CREATE INDEX rest_apis_account ON rest_apis (account_id, created_at);

-- Deployments are immutable: `snapshot` is the compiled deployment.
CREATE TABLE deployments (
    api_id         TEXT NOT NULL REFERENCES rest_apis (api_id) ON DELETE CASCADE,
    deployment_id  TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    doc            TEXT NOT NULL,
    snapshot       TEXT NOT NULL,
    PRIMARY KEY (api_id, deployment_id)
);

CREATE TABLE stages (
    api_id         TEXT NOT NULL REFERENCES rest_apis (api_id) ON DELETE CASCADE,
    stage_name     TEXT NOT NULL,
    account_id     TEXT NOT NULL,
    deployment_id  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    version        BIGINT NOT NULL,
    doc            TEXT NOT NULL,
    PRIMARY KEY (api_id, stage_name),
    FOREIGN KEY (api_id, deployment_id) REFERENCES deployments (api_id, deployment_id)
);
