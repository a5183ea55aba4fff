//! The replication client: connect and authenticate, then replication commands as typed
//! methods.

use super::basebackup::BaseBackupStream;
use super::connect;
use super::connection::Connection;
use super::stream::{ReplicationStream, StartReplication};
use crate::config::{Config, ConnectParams};
use crate::error::{DbError, Error, Result};
use crate::lsn::{TimelineId, WalSegmentSize};
use crate::protocol::basebackup::BaseBackupOptions;
use crate::protocol::command::{
    self, CreateSlotOptions, CreatedSlot, IdentifySystem, ReadSlot, TimelineHistory,
};
use crate::protocol::frontend;
use crate::protocol::query::{QueryResult, QueryStep, SimpleQuery};
use crate::protocol::startup::ServerInfo;
use crate::server_version::ServerVersion;

/// A connection to a PostgreSQL server, in replication mode unless made with
/// [`Client::connect_sql`].
///
/// Commands take `&mut self` and run one at a time. [`Client::start_replication`] borrows the
/// client for the length of the stream; once the stream has ended, the client takes the next
/// command (TIMELINE_HISTORY, START_REPLICATION on the next timeline, …).
pub struct Client {
    pub(crate) conn: Connection,
    /// From resolving the configuration; see [`Client::warnings`].
    warnings: Vec<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server_version", &self.conn.info.version)
            .field("process_id", &self.conn.info.process_id)
            .field("broken", &self.conn.broken)
            .finish()
    }
}

impl Client {
    /// A client on an open, authenticated connection.
    pub(crate) fn new(conn: Connection) -> Client {
        Client {
            conn,
            warnings: Vec::new(),
        }
    }

    /// Connects in physical replication mode (`replication=true`), taking unset options from
    /// the environment and the password file as libpq does.
    ///
    /// Nothing is printed: what libpq would print as a warning (a password file ignored for
    /// its permissions, say) is in [`Client::warnings`]. To see it also when the connection
    /// fails (where it often explains why), resolve first and read
    /// [`ConnectParams::warnings`]: `Client::connect_params(&config.resolve(true)?, true)`.
    pub async fn connect(config: &Config) -> Result<Client> {
        let params = config.resolve(true)?;
        Client::connect_params(&params, true).await
    }

    /// Connects for plain SQL (no replication), for monitoring queries.
    pub async fn connect_sql(config: &Config) -> Result<Client> {
        let params = config.resolve(false)?;
        Client::connect_params(&params, false).await
    }

    /// Connects with resolved parameters: each host in turn until one works and is of the
    /// kind `target_session_attrs` asks for. `connect_timeout` bounds each host's attempt,
    /// TLS, authentication and that check included, as in libpq 14 and later.
    ///
    /// `p.warnings` are the caller's to report (the library never writes to stderr); the
    /// client keeps a copy in [`Client::warnings`].
    pub async fn connect_params(p: &ConnectParams, replication: bool) -> Result<Client> {
        let mut client = Client::new(connect::connect(p, replication).await?);
        client.warnings.clone_from(&p.warnings);
        Ok(client)
    }

    /// Problems met while resolving the configuration that did not stop the connection, for
    /// the application to report as it reports things: libpq prints these on stderr
    /// (`WARNING: password file "…" has group or world access; …`), a library should not.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// What the server reported at startup (and since): parameters, version, process id.
    pub fn server_info(&self) -> &ServerInfo {
        &self.conn.info
    }

    /// The version the server reported at startup (15.4, say); `None` if it reported none.
    pub fn server_version(&self) -> Option<ServerVersion> {
        self.conn.info.version
    }

    /// A ParameterStatus value, e.g. `server_version` or `integer_datetimes`.
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.conn.info.parameter(name)
    }

    /// Notices the server sent (the latest few), oldest first, removing them.
    pub fn take_notices(&mut self) -> Vec<DbError> {
        self.conn.notices.drain(..).collect()
    }

    /// Runs a simple query (or replication command) and returns its result sets.
    pub async fn simple_query(&mut self, sql: &str) -> Result<Vec<QueryResult>> {
        match self.query_or_copy(sql).await? {
            Some(results) => Ok(results),
            None => {
                self.conn
                    .mark_broken("a query unexpectedly entered COPY mode");
                Err(Error::protocol(format!(
                    "\"{sql}\" unexpectedly started COPY"
                )))
            }
        }
    }

    /// Sends `sql` and reads up to ReadyForQuery; `None` means the server entered COPY BOTH.
    pub(crate) async fn query_or_copy(&mut self, sql: &str) -> Result<Option<Vec<QueryResult>>> {
        self.conn.check_usable()?;
        self.conn.send(|b| frontend::query(sql, b)).await?;
        let mut q = SimpleQuery::new();
        loop {
            let msg = self.conn.next_message().await?;
            match q.handle(msg) {
                Ok(QueryStep::Continue) => {}
                Ok(QueryStep::CopyBoth) => return Ok(None),
                Ok(QueryStep::Done(res)) => return res.map(Some),
                Err(e) => {
                    self.conn
                        .mark_broken(format!("protocol error during a command: {e}"));
                    return Err(e);
                }
            }
        }
    }

    /// `IDENTIFY_SYSTEM`.
    pub async fn identify_system(&mut self) -> Result<IdentifySystem> {
        IdentifySystem::parse(&self.simple_query(IdentifySystem::COMMAND).await?)
    }

    /// `SHOW name`: the setting's value as text.
    pub async fn show(&mut self, name: &str) -> Result<String> {
        command::parse_show(&self.simple_query(&command::show_command(name)?).await?)
    }

    /// The server's WAL segment size (`SHOW wal_segment_size`).
    pub async fn wal_segment_size(&mut self) -> Result<WalSegmentSize> {
        WalSegmentSize::parse_setting(&self.show("wal_segment_size").await?)
    }

    /// `TIMELINE_HISTORY tli`: the history file of a timeline (which must be 2 or later).
    pub async fn timeline_history(&mut self, tli: TimelineId) -> Result<TimelineHistory> {
        TimelineHistory::parse(&self.simple_query(&TimelineHistory::command(tli)).await?)
    }

    /// `CREATE_REPLICATION_SLOT name [TEMPORARY] PHYSICAL [RESERVE_WAL]`, in the syntax of
    /// the server's version.
    pub async fn create_replication_slot(
        &mut self,
        name: &str,
        opts: CreateSlotOptions,
    ) -> Result<CreatedSlot> {
        let cmd = command::create_slot_command(name, opts, self.server_version());
        CreatedSlot::parse(&self.simple_query(&cmd).await?)
    }

    /// `DROP_REPLICATION_SLOT name [WAIT]`.
    pub async fn drop_replication_slot(&mut self, name: &str, wait: bool) -> Result<()> {
        self.simple_query(&command::drop_slot_command(name, wait))
            .await
            .map(drop)
    }

    /// `READ_REPLICATION_SLOT name` (PostgreSQL 15+; on older servers an error, and nothing
    /// is sent).
    pub async fn read_replication_slot(&mut self, name: &str) -> Result<ReadSlot> {
        let cmd = ReadSlot::command(name, self.server_version())?;
        ReadSlot::parse(&self.simple_query(&cmd).await?)
    }

    /// `START_REPLICATION [SLOT s] PHYSICAL lsn [TIMELINE tli]`: the replication stream.
    pub async fn start_replication(
        &mut self,
        opts: StartReplication,
    ) -> Result<ReplicationStream<'_>> {
        ReplicationStream::start(self, opts).await
    }

    /// `BASE_BACKUP`, in the syntax of the server's version: the backup as a stream of
    /// events (start position, tablespaces, archives, manifest, end position).
    pub async fn base_backup(&mut self, opts: &BaseBackupOptions) -> Result<BaseBackupStream<'_>> {
        BaseBackupStream::start(self, opts).await
    }

    /// `UPLOAD_MANIFEST` (PostgreSQL 17+): the manifest of an earlier backup, for a
    /// [`base_backup`](Self::base_backup) with `incremental` set on this connection next.
    pub async fn upload_manifest(&mut self, manifest: &[u8]) -> Result<()> {
        super::basebackup::upload_manifest(self, manifest).await
    }

    /// Sends Terminate and closes the connection.
    pub async fn close(self) -> Result<()> {
        if self.conn.broken.is_none() {
            self.conn
                .send(|b| {
                    frontend::terminate(b);
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }
}
