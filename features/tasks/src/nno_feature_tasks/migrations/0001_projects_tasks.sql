-- Projects and their tasks, per tenant (the organization the user works in).
CREATE TABLE {{prefix}}projects (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    name TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX {{prefix}}ix_projects_org ON {{prefix}}projects (org_id, created_at);

CREATE TABLE {{prefix}}tasks (
    id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES {{prefix}}projects (id) ON DELETE CASCADE,
    title TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'todo' CHECK (status IN ('todo', 'doing', 'done')),
    assignee TEXT,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX {{prefix}}ix_tasks_project ON {{prefix}}tasks (org_id, project_id, created_at);
