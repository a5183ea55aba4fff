-- The lab's data: the seed guide's primary/init.sql, exactly (its table, its two rows), run
-- once on the new primary in database postgres by `testenv up`, after the roles exist.
CREATE TABLE IF NOT EXISTS users (
    id SERIAL PRIMARY KEY,
    username VARCHAR(50) UNIQUE NOT NULL,
    email VARCHAR(100),
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);

INSERT INTO users (username, email) VALUES 
    ('alice', 'alice@example.com'),
    ('bob', 'bob@example.com');

-- Beyond the guide: the replicator conninfos that `up` prints may use the table too, and
-- read the replication statistics (pg_stat_replication's columns need pg_read_all_stats,
-- which pg_monitor includes) for `pgwal-recv status` and the guide's monitoring queries.
GRANT SELECT, INSERT, UPDATE, DELETE ON users TO replicator;
GRANT USAGE ON SEQUENCE users_id_seq TO replicator;
GRANT pg_monitor TO replicator;
