-- Versioned configuration resources streamed to data-plane nodes. One row per
-- resource key ("stage/{account_id}/{api_id}/{stage_name}"), holding only the
-- latest version; a NULL body is a removal (tombstone), kept so a node that
-- reconnects with an old version learns the resource is gone.
CREATE TABLE config_resources (
    resource_key   TEXT PRIMARY KEY,
    version        INTEGER NOT NULL,
    account_id     TEXT NOT NULL,
    -- EDGE | REGIONAL | PRIVATE: decides which nodes serve the resource.
    endpoint_type  TEXT NOT NULL,
    body           TEXT NULL
);
CREATE INDEX config_resources_version ON config_resources (version);

-- The one configuration version counter. Every publication bumps it with
-- UPDATE … SET version = version + 1 inside the management transaction: the
-- row lock serialises config writers, so versions become visible in order.
CREATE TABLE config_version (
    id       INTEGER PRIMARY KEY,
    version  INTEGER NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);
