CREATE TABLE {{ plural }} (
    id BLOB PRIMARY KEY NOT NULL,
    owner_id BLOB NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX {{ plural }}_owner ON {{ plural }} (owner_id, id);
