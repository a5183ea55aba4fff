//! BASE_BACKUP's answer: server messages fed to `BaseBackupDecoder`, in both protocol forms.
//!
//! Input: one byte choosing the server version (13 to 18), then the bytes the server sends.
//! Checks: no panic; events come in the order the protocol allows (the start first, then the
//! tablespaces, archive data only inside an archive, manifest data only after the manifest
//! began, the end last, each at most once); nothing after the decoder failed or finished.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use pgwire_repl::protocol::backend::BackendMessage;
use pgwire_repl::protocol::basebackup::{BackupEvent, BackupStep, BaseBackupDecoder};
use pgwire_repl::protocol::codec::decode_frame;
use pgwire_repl::ServerVersion;

#[derive(PartialEq, Clone, Copy)]
enum Where {
    Before,
    Started,
    Listed,
    Archive,
    Manifest,
    Ended,
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, stream)) = data.split_first() else {
        return;
    };
    let version = ServerVersion::from_num((13 + u32::from(k % 6)) * 10000);
    let mut d = BaseBackupDecoder::new(Some(version));
    let mut buf = BytesMut::from(stream);
    let mut at = Where::Before;
    while let Ok(Some(frame)) = decode_frame(&mut buf) {
        let Ok(msg) = BackendMessage::decode(frame) else {
            continue;
        };
        let step = d.handle(msg);
        while let Some(e) = d.next_event() {
            at = match (at, e) {
                (Where::Before, BackupEvent::Started { .. }) => Where::Started,
                (Where::Started, BackupEvent::Tablespaces(_)) => Where::Listed,
                (Where::Listed | Where::Archive, BackupEvent::ArchiveStart { name, .. }) => {
                    assert!(!name.is_empty());
                    Where::Archive
                }
                (Where::Archive, BackupEvent::ArchiveData(_)) => Where::Archive,
                (Where::Listed | Where::Archive, BackupEvent::ManifestStart) => Where::Manifest,
                (Where::Manifest, BackupEvent::ManifestData(_)) => Where::Manifest,
                (w @ (Where::Listed | Where::Archive | Where::Manifest), BackupEvent::Progress(_)) => w,
                (Where::Listed | Where::Archive | Where::Manifest, BackupEvent::Ended { .. }) => {
                    Where::Ended
                }
                (_, e) => panic!("event out of order: {e:?}"),
            };
        }
        match step {
            Ok(BackupStep::Done) => {
                assert!(at == Where::Ended, "done without an end position");
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
});
