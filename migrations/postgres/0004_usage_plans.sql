-- API keys, usage plans and their usage (issue 5). `doc` columns hold AWS's
-- shapes as JSON (ApiKey without its value, UsagePlan). A key's value is
-- sealed with the tenancy sealer so includeValue can return it; data-plane
-- nodes only ever receive `value_sha256`.
CREATE TABLE api_keys (
    account_id    TEXT NOT NULL REFERENCES tenants (account_id) ON DELETE CASCADE,
    key_id        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    version       BIGINT NOT NULL,
    doc           TEXT NOT NULL,
    value_sealed  TEXT NOT NULL,
    value_sha256  TEXT NOT NULL,
    PRIMARY KEY (account_id, key_id)
);
-- A value identifies one key of a tenant.
CREATE UNIQUE INDEX api_keys_value ON api_keys (account_id, value_sha256);

CREATE TABLE usage_plans (
    account_id  TEXT NOT NULL REFERENCES tenants (account_id) ON DELETE CASCADE,
    plan_id     TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL,
    doc         TEXT NOT NULL,
    PRIMARY KEY (account_id, plan_id)
);

CREATE TABLE usage_plan_keys (
    account_id  TEXT NOT NULL,
    plan_id     TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    PRIMARY KEY (account_id, plan_id, key_id),
    FOREIGN KEY (account_id, plan_id) REFERENCES usage_plans (account_id, plan_id) ON DELETE CASCADE,
    FOREIGN KEY (account_id, key_id) REFERENCES api_keys (account_id, key_id) ON DELETE CASCADE
);
CREATE INDEX usage_plan_keys_key ON usage_plan_keys (account_id, key_id);

-- Requests admitted per key per UTC day, persisted from the data plane's
-- quota counters so GetUsage survives a Redis restart.
CREATE TABLE usage_daily (
    account_id  TEXT NOT NULL,
    plan_id     TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    day         TEXT NOT NULL,
    used        BIGINT NOT NULL,
    PRIMARY KEY (account_id, plan_id, key_id, day)
);
