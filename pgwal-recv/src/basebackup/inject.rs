//! `-R`: the recovery settings written into the base archive on its way through, as
//! pg_basebackup's recovery injector does (`src/bin/pg_basebackup/astreamer_inject.c`,
//! PostgreSQL 12 and later: settings in `postgresql.auto.conf`, plus `standby.signal`).
//!
//! [`RecoveryInjector`] is a tar-to-tar filter for the base tablespace's archive; its output
//! goes to `base.tar` (tar format) or into the [`Extractor`](super::extract::Extractor)
//! (plain format). What it changes:
//!
//! - `postgresql.auto.conf`: its header's size grows by the settings' length (checksum
//!   recomputed), its data passes through, and the settings follow it. So the member is
//!   streamed like any other: nothing is held but one header block;
//! - `standby.signal` in the archive is dropped;
//! - before the end-of-archive marker: `postgresql.auto.conf` with the settings alone if the
//!   archive had none, then an empty `standby.signal`.
//!
//! The text itself comes from [`recovery_settings`], with the connection string from
//! [`conninfo_string`].

use std::time::{SystemTime, UNIX_EPOCH};

use tar::{EntryType, Header};

use super::tarstream::{padding, Event, TarError, TarStream, BLOCK};

const AUTO_CONF: &[u8] = b"postgresql.auto.conf";
const STANDBY_SIGNAL: &[u8] = b"standby.signal";

/// `pg_file_create_mode`, the mode of the members pg_basebackup injects.
const INJECTED_MODE: u32 = 0o600;
/// The owner pg_basebackup gives injected members: "There seems to be no principled argument
/// for these values, but they are what PostgreSQL has historically used."
/// (`astreamer_inject_file`).
const INJECTED_UID: u64 = 0o4000;
const INJECTED_GID: u64 = 0o2000;

/// A push-style tar filter that adds the recovery settings to a base archive.
///
/// [`feed_to`](RecoveryInjector::feed_to) it the archive's bytes as they arrive; it passes
/// on the edited archive's bytes, about as many as it was given (a header is held back
/// until complete, the end-of-archive marker until the members injected before it). Then
/// [`finish`](RecoveryInjector::finish) checks that the archive was complete.
#[derive(Debug)]
pub struct RecoveryInjector {
    stream: TarStream,
    edit: Edit,
}

#[derive(Debug)]
struct Edit {
    settings: Vec<u8>,
    mtime: u64,
    found_auto_conf: bool,
    /// The member being passed on: whether it is dropped, whether it is
    /// `postgresql.auto.conf`, and its data size in the output.
    skip: bool,
    auto_conf: bool,
    size: u64,
}

impl RecoveryInjector {
    /// `settings` is the text to append (see [`recovery_settings`]); `now` is the
    /// modification time of the members created.
    pub fn new(settings: &str, now: SystemTime) -> RecoveryInjector {
        RecoveryInjector {
            stream: TarStream::new(),
            edit: Edit {
                settings: settings.as_bytes().to_vec(),
                mtime: now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
                found_auto_conf: false,
                skip: false,
                auto_conf: false,
                size: 0,
            },
        }
    }

    /// Passes on what `data` completes of the archive, edited, by appending it to `out`.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<u8>) -> Result<(), TarError> {
        self.feed_to(data, &mut |piece: &[u8]| {
            out.extend_from_slice(piece);
            Ok::<(), TarError>(())
        })
    }

    /// Passes on what `data` completes of the archive, edited, in pieces to `emit`: the
    /// archive's own data as slices of `data` (nothing copied), headers, settings and
    /// padding from here.
    pub fn feed_to<E: From<TarError>>(
        &mut self,
        data: &[u8],
        emit: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        let edit = &mut self.edit;
        self.stream.feed(data, |event| edit.event(event, emit))
    }

    /// Checks that the archive ended with its end-of-archive marker (by then the output
    /// has its own).
    pub fn finish(self) -> Result<(), TarError> {
        self.stream.finish()
    }
}

impl Edit {
    fn event<E>(
        &mut self,
        event: Event<'_>,
        emit: &mut dyn FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        match event {
            Event::Header(header) => {
                let raw = header.path_bytes();
                let name = raw.strip_prefix(b"./").unwrap_or(&raw);
                let regular = header.entry_type() == EntryType::Regular;
                // The stream checked the size already.
                let size = header.entry_size().unwrap_or_default();
                self.skip = name == STANDBY_SIGNAL;
                self.auto_conf = regular && name == AUTO_CONF;
                self.size = size;
                if self.auto_conf {
                    self.found_auto_conf = true;
                    self.size = size + self.settings.len() as u64;
                    let mut edited = header.clone();
                    edited.set_size(self.size);
                    edited.set_cksum();
                    emit(edited.as_bytes())?;
                } else if !self.skip {
                    emit(header.as_bytes())?;
                }
            }
            Event::Data(data) => {
                if !self.skip {
                    emit(data)?;
                }
            }
            Event::MemberEnd => {
                if self.auto_conf {
                    emit(&self.settings)?;
                }
                if !self.skip {
                    emit(&ZEROS[..padding(self.size)])?;
                }
                self.skip = false;
                self.auto_conf = false;
            }
            Event::ArchiveEnd => {
                if !self.found_auto_conf {
                    let settings = std::mem::take(&mut self.settings);
                    self.inject(emit, AUTO_CONF, &settings)?;
                }
                self.inject(emit, STANDBY_SIGNAL, b"")?;
                emit(&ZEROS[..2 * BLOCK])?;
            }
        }
        Ok(())
    }

    /// Passes on a regular member, as `astreamer_inject_file` makes one.
    fn inject<E>(
        &self,
        emit: &mut dyn FnMut(&[u8]) -> Result<(), E>,
        name: &[u8],
        data: &[u8],
    ) -> Result<(), E> {
        let mut header = Header::new_ustar();
        header.set_entry_type(EntryType::Regular);
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_size(data.len() as u64);
        header.set_mode(INJECTED_MODE);
        header.set_uid(INJECTED_UID);
        header.set_gid(INJECTED_GID);
        header.set_mtime(self.mtime);
        header.set_cksum();
        emit(header.as_bytes())?;
        emit(data)?;
        emit(&ZEROS[..padding(data.len() as u64)])
    }
}

/// Padding and the end-of-archive marker: at most two blocks of zeros.
static ZEROS: [u8; 2 * BLOCK] = [0; 2 * BLOCK];

/// What pg_basebackup `-R` appends to `postgresql.auto.conf` (PostgreSQL 12 and later):
/// `GenerateRecoveryConfig` in `src/fe_utils/recovery_gen.c`.
///
/// `primary_conninfo` is the connection string (see [`conninfo_string`]) quoted for a
/// configuration file: single quotes and backslashes doubled (`escape_single_quotes_ascii`,
/// `src/port/quotes.c`). `primary_slot_name` follows when a slot is given. PostgreSQL writes
/// the slot name unescaped ("ReplicationSlotValidateName allows [a-z0-9_] only"); it is
/// escaped the same way here, which changes nothing for a valid name and keeps an invalid
/// one from breaking the file.
pub fn recovery_settings(conninfo: &str, slot: Option<&str>) -> String {
    let mut s = format!("primary_conninfo = '{}'\n", escape_quotes(conninfo));
    if let Some(slot) = slot {
        s.push_str(&format!("primary_slot_name = '{}'\n", escape_quotes(slot)));
    }
    s
}

/// `escape_single_quotes_ascii`: doubles `'` and `\`.
fn escape_quotes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == '\'' || c == '\\' {
            out.push(c);
        }
        out.push(c);
    }
    out
}

/// A libpq connection string of `keyword=value` pairs joined by spaces, each value as
/// `appendConnStrVal` (`src/fe_utils/string_utils.c`) writes it: bare if it is one or more
/// of `[A-Za-z0-9_.]`, else in single quotes with `'` and `\` preceded by a backslash.
///
/// `GenerateRecoveryConfig` leaves out empty values and the keywords `replication`,
/// `dbname` (unless slot synchronization asks for it) and `fallback_application_name`; that
/// choice is the caller's, every pair given here is written.
pub fn conninfo_string(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (keyword, value) in pairs {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(keyword);
        out.push('=');
        let plain = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
        if plain {
            out.push_str(value);
        } else {
            out.push_str(&quote_conninfo_value(value));
        }
    }
    out
}

/// One conninfo value in single quotes, `\` before `'` and `\` (libpq's
/// `appendConnStrVal` when the value needs quoting).
pub fn quote_conninfo_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\'' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests;
