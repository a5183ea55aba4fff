-- The lab's data, as the seed's init.sql made it: run once on the new primary by
-- `testenv up`, after the replicator role exists.
CREATE TABLE users (
    id         serial PRIMARY KEY,
    name       text NOT NULL,
    email      text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO users (name, email) VALUES
    ('Alice', 'alice@example.com'),
    ('Bob', 'bob@example.com'),
    ('Carol', 'carol@example.com');

-- The conninfos that `up` prints log in as replicator: let them use the table too.
GRANT SELECT, INSERT, UPDATE, DELETE ON users TO replicator;
GRANT USAGE ON SEQUENCE users_id_seq TO replicator;
