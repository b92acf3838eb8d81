//! One import inside its transaction: the file parsed on a thread while the connection
//! copies what it parsed into the staging table; then the contacts written, the members
//! added under the segment's rules and the endpoint limit, and the report.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

use chrono::NaiveDate;
use diesel::PgConnection;

use super::request::{read_layout, required_for, unreadable, ImportRequest, Progress};
use crate::core::attributes::Definition;
use crate::core::error::Error;
use crate::core::import::file::Layout;
use crate::core::import::row::{Row, RowError};
use crate::core::import::source::{Record, RowOrHeader, Table};
use crate::core::import::{DuplicateRow, Report, RowProblem};
use crate::core::membership::{Warning, MAX_LISTED};
use crate::core::phone;
use crate::db::imports;
use crate::db::{attributes, members};
use crate::service::dynamic;
use crate::service::membership::{add_members, lock_static_segments};

/// Encoded rows handed to COPY at a time, and how many may wait.
const CHUNK_BYTES: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 4;

/// Rows read on the phone thread at a time: one hand-off for many numbers, while another
/// tenant's batch waits behind at most these (~10 ms).
const ROWS_PER_HANDOFF: usize = 500;

/// What reading the file found, besides the rows staged.
#[derive(Default)]
struct FileTally {
    rows: i64,
    invalid: i64,
    duplicates: i64,
    errors: Vec<RowError>,
    duplicate_rows: Vec<DuplicateRow>,
    /// The first line naming each contact (by validated phone, else by e-mail).
    first_lines: HashMap<String, u64>,
    /// Rows staged without a validated phone, matched by e-mail.
    by_email: bool,
}

pub(super) fn import_in(
    conn: &mut PgConnection,
    request: &ImportRequest,
    today: NaiveDate,
    progress: &Progress,
    import_id: Option<i64>,
) -> Result<Report, Error> {
    let tenant = &request.tenant;
    dynamic::begin_write(conn, tenant.id)?;
    // Tenant, then segment, then contacts in phone order: every writer locks in this
    // order, so concurrent imports wait for each other instead of deadlocking.
    if tenant.endpoint_limit.is_some() {
        members::lock_tenant(conn, tenant.id)?;
    }
    let segment = lock_static_segments(conn, tenant, &[request.segment_id])?
        .pop()
        .ok_or(Error::NotFound("segment"))?;
    let definitions = attributes::definitions(conn, tenant.id)?;
    let (mut table, layout) = read_layout(request, &definitions, required_for(segment.channel()))?;
    let layout = Arc::new(layout);
    let (format, encoding, delimiter) = (
        table.format().as_str().to_owned(),
        table.encoding().to_owned(),
        table.delimiter(),
    );
    let region = request
        .region
        .as_deref()
        .or(tenant.default_region.as_deref());

    imports::create_staging(conn)?;
    progress.rows.store(0, Ordering::Relaxed);
    let (tally, staged) = std::thread::scope(|scope| {
        let (chunks, received) = mpsc::sync_channel(CHUNKS_IN_FLIGHT);
        let parser =
            scope.spawn(|| parse(&mut table, &layout, region, &definitions, progress, chunks));
        let staged = imports::copy_into_staging(conn, &|| received.recv().ok());
        drop(received);
        let tally = parser
            .join()
            .map_err(|_| Error::internal("the file parser panicked"));
        (tally, staged)
    });
    let (mut tally, staged) = (tally??, staged? as i64);

    let (mut contacts_created, mut contacts_updated) =
        imports::upsert_contacts(conn, tenant.id, request.mode, chrono::Utc::now())?;
    let mut ambiguous_rows = 0;
    if tally.by_email {
        let by_email = imports::upsert_by_email(conn, tenant.id, request.mode, chrono::Utc::now())?;
        contacts_created += by_email.created;
        contacts_updated += by_email.updated;
        ambiguous_rows = by_email.ambiguous.len() as i64;
        tally.invalid += ambiguous_rows;
        for row in by_email.ambiguous {
            tally.errors.push(RowError {
                line: row.line as u64,
                code: "ambiguous_email",
                message: "Two or more contacts have this e-mail and the row has no phone to tell \
                          them apart; add the phone, or merge the contacts."
                    .into(),
                value: row.email,
            });
        }
    }
    imports::resolve_phones(conn, tenant.id)?;
    let staged_ids = imports::staged_contact_ids(conn)?;
    dynamic::contacts_written(conn, tenant.id, today, &|_| Ok(staged_ids.clone()))?;
    let tenant_id = tenant.id;
    let (_, membership) = add_members(
        conn,
        tenant,
        today,
        &[request.segment_id],
        &|| imports::staged_contacts(tenant_id, &staged_ids),
        None,
        import_id,
    )?
    .pop()
    .ok_or_else(|| Error::internal("one segment, one report"))?;

    let mut errors: Vec<RowProblem> = tally.errors.into_iter().map(RowProblem::from).collect();
    let refused_ids: Vec<i64> = membership.rejected.iter().map(|r| r.contact_id).collect();
    let keys: HashMap<i64, (String, String)> = imports::keys_of(conn, tenant.id, &refused_ids)?
        .into_iter()
        .map(|contact| {
            let key = match (&contact.phone_e164, &contact.email) {
                (Some(phone), _) => format!("p:{phone}"),
                (None, Some(email)) => format!("e:{}", email.to_lowercase()),
                (None, None) => String::new(),
            };
            let value = contact.phone_e164.or(contact.email).unwrap_or_default();
            (contact.id, (key, value))
        })
        .collect();
    for rejection in &membership.rejected {
        let (key, value) = keys.get(&rejection.contact_id).cloned().unwrap_or_default();
        errors.push(RowProblem {
            line: tally.first_lines.get(&key).copied().unwrap_or_default(),
            code: rejection.code.clone(),
            message: rejection.message.clone(),
            value,
        });
    }
    errors.sort_by_key(|e| e.line);
    errors.truncate(MAX_LISTED as usize);

    let mut warnings = membership.warnings;
    let (opted_out, opted_out_ids) = imports::opted_out(conn, tenant.id, &staged_ids, MAX_LISTED)?;
    if opted_out > 0 {
        warnings.push(Warning {
            code: "opted_out".into(),
            message: "Some contacts in the file have opted out: they are in the segment but \
                      stay opted out and receive no messages."
                .into(),
            contact_ids: opted_out_ids,
            count: opted_out,
        });
    }
    debug_assert_eq!(
        staged - ambiguous_rows,
        membership.added + membership.already_members + membership.rejected_total
    );
    Ok(Report {
        import_id,
        format,
        encoding,
        delimiter,
        rows: tally.rows,
        added: membership.added,
        already_members: membership.already_members,
        rejected: membership.rejected_total,
        contacts_created,
        contacts_updated,
        duplicates_in_file: tally.duplicates,
        invalid_rows: tally.invalid,
        errors,
        duplicates: tally.duplicate_rows,
        ignored_columns: layout.ignored.clone(),
        warnings,
        recipients: membership.recipients,
    })
}

/// Reads every row; sends the valid, first-seen ones to `chunks` in COPY format.
fn parse(
    table: &mut Table<'_>,
    layout: &Arc<Layout>,
    region: Option<&str>,
    definitions: &[Definition],
    progress: &Progress,
    chunks: mpsc::SyncSender<Vec<u8>>,
) -> Result<FileTally, Error> {
    let reader = RowReader {
        layout: Arc::clone(layout),
        region: region.map(str::to_owned),
        definitions: Arc::new(definitions.to_vec()),
    };
    let mut stager = Stager {
        tally: FileTally::default(),
        chunk: Vec::with_capacity(CHUNK_BYTES + 4096),
        chunks,
    };
    let mut records = Vec::with_capacity(ROWS_PER_HANDOFF);
    let mut copying = true;
    table
        .each_row(&mut |row| {
            let RowOrHeader::Row(record) = row else {
                return true;
            };
            stager.tally.rows += 1;
            progress.bytes.store(record.offset, Ordering::Relaxed);
            progress
                .rows
                .store(stager.tally.rows as u64, Ordering::Relaxed);
            records.push(record);
            if records.len() == ROWS_PER_HANDOFF {
                let full = std::mem::replace(&mut records, Vec::with_capacity(ROWS_PER_HANDOFF));
                copying = stager.stage(reader.read(full));
            }
            copying
        })
        .map_err(unreadable)?;
    if copying && !records.is_empty() {
        copying = stager.stage(reader.read(records));
    }
    if copying && !stager.chunk.is_empty() {
        let _ = stager.chunks.send(stager.chunk);
    }
    progress.bytes.store(table.len(), Ordering::Relaxed);
    Ok(stager.tally)
}

/// What reads records into rows, owned so that it can go to the phone thread.
struct RowReader {
    layout: Arc<Layout>,
    region: Option<String>,
    definitions: Arc<Vec<Definition>>,
}

impl RowReader {
    fn read(&self, records: Vec<Record>) -> Vec<Result<Row, RowError>> {
        let (layout, region, definitions) = (
            Arc::clone(&self.layout),
            self.region.clone(),
            Arc::clone(&self.definitions),
        );
        phone::on_phone_thread(move || {
            records
                .into_iter()
                .map(|record| layout.read(record, region.as_deref(), &definitions))
                .collect()
        })
    }
}

/// Tallies rows as they are read, and encodes the valid, first-seen ones for COPY.
struct Stager {
    tally: FileTally,
    chunk: Vec<u8>,
    chunks: mpsc::SyncSender<Vec<u8>>,
}

impl Stager {
    /// Takes rows in file order; false once COPY has failed (its error is what the
    /// caller reports).
    fn stage(&mut self, rows: Vec<Result<Row, RowError>>) -> bool {
        let tally = &mut self.tally;
        for row in rows {
            let row = match row {
                Ok(row) => row,
                Err(error) => {
                    tally.invalid += 1;
                    if tally.errors.len() < MAX_LISTED as usize {
                        tally.errors.push(error);
                    }
                    continue;
                }
            };
            let key = row.key();
            if let Some(first_line) = tally.first_lines.get(&key) {
                tally.duplicates += 1;
                if tally.duplicate_rows.len() < MAX_LISTED as usize {
                    tally.duplicate_rows.push(DuplicateRow {
                        line: row.line,
                        first_line: *first_line,
                        value: match &row.phone {
                            Some(_) => row.phone_as_written,
                            None => row.email.unwrap_or_default(),
                        },
                    });
                }
                continue;
            }
            tally.by_email |= row.phone.is_none();
            tally.first_lines.insert(key, row.line);
            imports::encode_staged(&mut self.chunk, &row);
            if self.chunk.len() >= CHUNK_BYTES {
                let full =
                    std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_BYTES + 4096));
                if self.chunks.send(full).is_err() {
                    return false;
                }
            }
        }
        true
    }
}
