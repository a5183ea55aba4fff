//! The base backup stream: `BASE_BACKUP` sent, its answer read and handed to the sans-IO
//! [`BaseBackupDecoder`], the events handed out one at a time.

use super::client::Client;
use crate::error::{Error, Result};
use crate::protocol::backend::BackendMessage;
use crate::protocol::basebackup::{
    base_backup_command, upload_manifest_command, BackupEvent, BackupStep, BaseBackupDecoder,
    BaseBackupOptions,
};
use crate::protocol::frontend;
use crate::protocol::query::message_name;

/// The answer to `BASE_BACKUP`, as [`BackupEvent`]s: see
/// [`protocol::basebackup`](crate::protocol::basebackup) for their order in each
/// protocol form.
///
/// The client is borrowed until the stream has ended ([`next`](Self::next) returned
/// `Ok(None)` or an error); a stream dropped before that leaves the connection unusable
/// (the server is still sending the backup).
pub struct BaseBackupStream<'a> {
    client: &'a mut Client,
    decoder: BaseBackupDecoder,
    finished: bool,
}

impl std::fmt::Debug for BaseBackupStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseBackupStream")
            .field("finished", &self.finished)
            .finish()
    }
}

impl<'a> BaseBackupStream<'a> {
    pub(crate) async fn start(
        client: &'a mut Client,
        opts: &BaseBackupOptions,
    ) -> Result<BaseBackupStream<'a>> {
        let version = client.server_version();
        let cmd = base_backup_command(opts, version)?;
        client.conn.check_usable()?;
        client.conn.send(|b| frontend::query(&cmd, b)).await?;
        Ok(BaseBackupStream {
            client,
            decoder: BaseBackupDecoder::new(version),
            finished: false,
        })
    }

    /// The next event; `Ok(None)` once the server has finished the command (the client
    /// then takes the next one). A server error (`ERROR: could not stat file …`) is
    /// returned as it is, and leaves the connection usable.
    pub async fn next(&mut self) -> Result<Option<BackupEvent>> {
        loop {
            if let Some(event) = self.decoder.next_event() {
                return Ok(Some(event));
            }
            if self.finished {
                return Ok(None);
            }
            let msg = self.client.conn.next_message().await?;
            match self.decoder.handle(msg) {
                Ok(BackupStep::Done) => self.finished = true,
                Ok(BackupStep::Continue | BackupStep::Event) => {}
                Err(e) => {
                    self.finished = true;
                    if !matches!(e, Error::Db(_)) {
                        self.client
                            .conn
                            .mark_broken(format!("protocol error during a base backup: {e}"));
                    }
                    return Err(e);
                }
            }
        }
    }
}

impl Drop for BaseBackupStream<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.client
                .conn
                .mark_broken("a base backup was abandoned before its end");
        }
    }
}

/// `UPLOAD_MANIFEST` (17+): sends a previous backup's manifest for an incremental backup.
pub(crate) async fn upload_manifest(client: &mut Client, manifest: &[u8]) -> Result<()> {
    /// CopyData pieces of at most this size, as pg_basebackup sends them (its 128 kB reads).
    const PIECE: usize = 128 << 10;
    let cmd = upload_manifest_command(client.server_version())?;
    client.conn.check_usable()?;
    client.conn.send(|b| frontend::query(cmd, b)).await?;
    match client.conn.next_message().await? {
        BackendMessage::CopyInResponse => {}
        BackendMessage::ErrorResponse(e) => {
            // ReadyForQuery follows the error.
            client.conn.next_message().await?;
            return Err(Error::Db(Box::new(e)));
        }
        other => {
            let what = message_name(&other);
            client
                .conn
                .mark_broken(format!("UPLOAD_MANIFEST answered with {what}"));
            return Err(Error::protocol(format!(
                "UPLOAD_MANIFEST answered with {what}, expected CopyInResponse"
            )));
        }
    }
    for piece in manifest.chunks(PIECE) {
        client
            .conn
            .send(|b| {
                frontend::copy_data(piece, b);
                Ok(())
            })
            .await?;
    }
    client
        .conn
        .send(|b| {
            frontend::copy_done(b);
            Ok(())
        })
        .await?;
    // The answer is an empty result: CommandComplete, or the server's error; then
    // ReadyForQuery.
    let mut q = crate::protocol::query::SimpleQuery::new();
    loop {
        let msg = client.conn.next_message().await?;
        match q.handle(msg) {
            Ok(crate::protocol::query::QueryStep::Continue) => {}
            Ok(crate::protocol::query::QueryStep::Done(res)) => return res.map(drop),
            Ok(crate::protocol::query::QueryStep::CopyBoth) | Err(_) => {
                client
                    .conn
                    .mark_broken("unexpected answer to UPLOAD_MANIFEST");
                return Err(Error::protocol("unexpected answer to UPLOAD_MANIFEST"));
            }
        }
    }
}
