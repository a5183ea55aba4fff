-- The seed guide's sample schema and rows, as the guide gives them: its commands insert into
-- users (username, email) and read them back on both servers. Run once, in database postgres
-- (POSTGRES_DB), when postgres-primary's data directory is first initialised
-- (/docker-entrypoint-initdb.d); postgres-standby gets them by cloning.
CREATE TABLE IF NOT EXISTS users (
    id SERIAL PRIMARY KEY,
    username VARCHAR(50) UNIQUE NOT NULL,
    email VARCHAR(100),
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

INSERT INTO users (username, email) VALUES
    ('alice', 'alice@example.com'),
    ('bob', 'bob@example.com');
