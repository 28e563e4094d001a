-- One row per setting: scope 'platform' (org_id '') or 'tenant' (the organization's id).
CREATE TABLE {{prefix}}settings (
    scope TEXT NOT NULL CHECK (scope IN ('platform', 'tenant')),
    org_id TEXT NOT NULL DEFAULT '',
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (scope, org_id, key)
);
