//! Export and import of an organization's log as JSON Lines.
//!
//! One event per line: the envelope (stream, version, position, event id,
//! type, schema version, metadata) and the payload, i.e. a serialized
//! [`RecordedEvent`]. The export is the *readable* log: payloads are upcast to
//! the current schema version and personal data is opened, except that of
//! deleted users, which is exported erased (R-LIFE-06). Data keys never
//! appear in an export; an import seals personal data again under keys of
//! the target store.
//!
//! Importing into a store where the stream is empty reproduces the same
//! state: the same events with the same event ids, versions, metadata and
//! command ids (so a command re-sent after the move is still a duplicate).

use crate::codec;
use crate::event::Event;
use crate::ids::*;
use crate::service::{CommandService, ServiceError};
use crate::store::{
    AppendRequest, ExpectedVersion, RecordedEvent, Store, StoreError, MAX_EVENTS_PER_APPEND,
    MAX_PAYLOAD_BYTES, MAX_READ_PAGE,
};
use std::io::{BufRead, Read, Write};

/// Limit: bytes of one line of an export (a payload plus its envelope).
pub const MAX_LINE_BYTES: usize = MAX_PAYLOAD_BYTES + 64 * 1024;

/// Why an export or import failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JsonlError {
    /// Reading the store or decoding an event failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Reading or writing the file failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// A line of the file is not a valid event of the log being imported.
    #[error("line {line}: {reason}")]
    Line {
        /// 1-based line number.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A command of the file is already recorded in this store (under any
    /// organization): the file was imported before, or ids collide.
    #[error("command {command} is already recorded in this store")]
    AlreadyRecorded {
        /// The command id.
        command: CommandId,
    },
    /// The target stream already has events; imports only go into an empty stream.
    #[error("organization {org} already has {version} events; import needs an empty stream")]
    NotEmpty {
        /// The organization.
        org: OrgId,
        /// Its version.
        version: u64,
    },
}

impl From<StoreError> for JsonlError {
    fn from(e: StoreError) -> Self {
        JsonlError::Service(e.into())
    }
}

/// What an import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportReport {
    /// The organization imported.
    pub org: OrgId,
    /// Events appended.
    pub events: u64,
    /// Appends made (one per recorded command).
    pub appends: u64,
}

/// Reads one line of at most [`MAX_LINE_BYTES`]; `None` at the end.
fn read_line<R: BufRead>(reader: &mut R, line: usize) -> Result<Option<Vec<u8>>, JsonlError> {
    let mut buf = Vec::new();
    let n = reader
        .by_ref()
        .take(MAX_LINE_BYTES as u64 + 1)
        .read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.len() > MAX_LINE_BYTES {
        return Err(JsonlError::Line {
            line,
            reason: format!("longer than {MAX_LINE_BYTES} bytes"),
        });
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Ok(Some(buf))
}

/// Parses one export line into its envelope and its event (upcast to the current version).
pub fn parse_line(text: &[u8], line: usize) -> Result<(RecordedEvent, Event), JsonlError> {
    let bad = |reason: String| JsonlError::Line { line, reason };
    let r: RecordedEvent =
        serde_json::from_slice(text).map_err(|e| bad(codec::json_error_shape(&e)))?;
    // Exports are plain; a sealed field here is read as erased, never opened.
    let e = codec::decode(&r).map_err(|e| bad(e.to_string()))?;
    Ok((r, e))
}

impl<S: Store> CommandService<S> {
    /// Writes the organization's log to `out` as JSON Lines, oldest first;
    /// returns the number of events written. Personal data of deleted users
    /// is exported erased.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, org: switchboard_core::OrgId) -> Result<(), switchboard_core::audit::JsonlError> {
    /// let mut file = Vec::new();
    /// let written = service.export_jsonl(org, &mut file).await?;
    /// assert_eq!(file.iter().filter(|b| **b == b'\n').count() as u64, written);
    /// # Ok(()) }
    /// ```
    pub async fn export_jsonl<W: Write>(&self, org: OrgId, out: &mut W) -> Result<u64, JsonlError> {
        let mut written = 0u64;
        loop {
            let page = self
                .read_decoded(org, written + 1, None, MAX_READ_PAGE)
                .await?;
            if page.is_empty() {
                break;
            }
            for (r, e) in page {
                let plain = codec::encode(&e, r.event_id, r.metadata.clone())
                    .map_err(ServiceError::from)?;
                let line = RecordedEvent {
                    schema_version: plain.schema_version,
                    payload: plain.payload,
                    ..r
                };
                serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                written += 1;
            }
        }
        out.flush()?;
        Ok(written)
    }

    /// Reads a JSON Lines export and appends it to its (empty) organization
    /// in this service's store: same event ids, versions, metadata and command
    /// ids, personal data sealed under this store's keys. Events of one command
    /// are appended together, as they were recorded. Blank lines are skipped.
    ///
    /// ```
    /// # use switchboard_core::service::*;
    /// # async fn demo<S: switchboard_core::store::Store>(service: &CommandService<S>, file: &[u8]) -> Result<(), switchboard_core::audit::JsonlError> {
    /// let report = service.import_jsonl(&mut std::io::Cursor::new(file)).await?;
    /// let state = service.load(report.org).await?;
    /// assert_eq!(state.version, report.events);
    /// # Ok(()) }
    /// ```
    pub async fn import_jsonl<R: BufRead>(
        &self,
        input: &mut R,
    ) -> Result<ImportReport, JsonlError> {
        let mut report: Option<ImportReport> = None;
        let mut batch: Vec<(RecordedEvent, Event)> = Vec::new();
        let mut line_no = 0usize;
        // Whether the batch continues a command whose first events were
        // already appended (a command longer than the append limit).
        let mut continuing = false;
        loop {
            line_no += 1;
            let Some(text) = read_line(input, line_no)? else {
                break;
            };
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let (r, e) = parse_line(&text, line_no)?;
            let bad = |reason: String| JsonlError::Line {
                line: line_no,
                reason,
            };
            let rep = match &mut report {
                Some(rep) => rep,
                None => {
                    let version = self.store().stream_version(r.stream).await?;
                    if version != 0 {
                        return Err(JsonlError::NotEmpty {
                            org: r.stream,
                            version,
                        });
                    }
                    report.insert(ImportReport {
                        org: r.stream,
                        events: 0,
                        appends: 0,
                    })
                }
            };
            if r.stream != rep.org {
                return Err(bad(format!(
                    "event of organization {}, the file is of {}",
                    r.stream, rep.org
                )));
            }
            let expected = rep.events + batch.len() as u64 + 1;
            if r.version != expected {
                return Err(bad(format!(
                    "version {} where {expected} was expected",
                    r.version
                )));
            }
            let same_command = batch.last().is_some_and(|(last, _)| {
                last.metadata.command_id.is_some()
                    && last.metadata.command_id == r.metadata.command_id
            });
            if !batch.is_empty() && (!same_command || batch.len() >= MAX_EVENTS_PER_APPEND) {
                self.import_batch(rep, std::mem::take(&mut batch), continuing)
                    .await?;
                continuing = same_command;
            }
            batch.push((r, e));
        }
        let Some(mut rep) = report else {
            return Err(JsonlError::Line {
                line: line_no,
                reason: "the file holds no event".into(),
            });
        };
        if !batch.is_empty() {
            self.import_batch(&mut rep, batch, continuing).await?;
        }
        Ok(rep)
    }

    async fn import_batch(
        &self,
        rep: &mut ImportReport,
        batch: Vec<(RecordedEvent, Event)>,
        continuing: bool,
    ) -> Result<(), JsonlError> {
        let Some((first, _)) = batch.first() else {
            return Ok(());
        };
        // Only the first append of a command carries its id (a command split
        // by the append limit would otherwise be refused as a duplicate).
        let command_id = first.metadata.command_id.filter(|_| !continuing);
        let events: Vec<Event> = batch.iter().map(|(_, e)| e.clone()).collect();
        // Imported events keep their ids and envelopes; their personal data
        // is sealed here, with new keys created (and deleted users' keys
        // shredded) by the same append.
        let to_seal: Vec<_> = batch
            .iter()
            .map(|(r, e)| (e, r.event_id, &r.metadata))
            .collect();
        let mut known = Default::default();
        let sealed = self.seal(rep.org, &to_seal, &mut known).await?;
        let outcome = self
            .store()
            .append(AppendRequest {
                stream: rep.org,
                expected: if rep.events == 0 {
                    ExpectedVersion::NoStream
                } else {
                    ExpectedVersion::Exact(rep.events)
                },
                command_id,
                command_digest: None,
                events: sealed.events,
                claims: codec::claims(&events),
                keys: sealed.keys,
            })
            .await?;
        if let Some(command) = command_id.filter(|_| outcome.duplicate) {
            return Err(JsonlError::AlreadyRecorded { command });
        }
        rep.events += batch.len() as u64;
        rep.appends += 1;
        Ok(())
    }
}
