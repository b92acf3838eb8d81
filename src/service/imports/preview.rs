//! How a file reads, before anything is written: for an import screen's mapping step.

use crate::core::attributes::Definition;
use crate::core::error::Error;
use crate::core::import::file::{self, Required};
use crate::core::import::row::Row;
use crate::core::import::source::RowOrHeader;
use crate::core::import::RowProblem;
use crate::db::{attributes, pool};
use crate::service::Env;

use super::request::{read_layout, required_for, unreadable, ImportRequest};

/// Data rows a preview shows.
const PREVIEW_ROWS: usize = 20;
/// Sample values a preview shows per column.
const PREVIEW_SAMPLES: usize = 3;

/// What a preview shows: how the file reads, before anything is written.
pub struct Preview {
    pub format: String,
    pub encoding: String,
    pub delimiter: Option<String>,
    pub rows_estimate: u64,
    pub columns: Vec<PreviewColumn>,
    pub sample_rows: Vec<SampleRow>,
}

pub struct PreviewColumn {
    pub column: file::ColumnInfo,
    pub samples: Vec<String>,
}

/// A data row as the import would read it, or why it would not.
pub struct SampleRow {
    pub line: u64,
    pub row: Option<Row>,
    pub problem: Option<RowProblem>,
}

/// Reads the header and the first rows the way the import would; writes nothing.
pub async fn preview(env: &Env, request: ImportRequest) -> Result<Preview, Error> {
    let tenant = request.tenant.clone();
    let (segment, definitions) = pool::run(&env.pool.tenant(tenant.id), move |conn| {
        let segment = crate::db::segments::find(conn, tenant.id, request.segment_id)?;
        let definitions = attributes::definitions(conn, tenant.id)?;
        Ok::<_, Error>((segment, (definitions, request)))
    })
    .await?;
    let (definitions, request) = definitions;
    if segment.kind() == crate::core::types::SegmentKind::Dynamic {
        return Err(crate::service::membership::read_only(segment.id));
    }
    // Parsing is CPU work: off the async threads.
    let required = required_for(segment.channel());
    tokio::task::spawn_blocking(move || preview_of(&request, &definitions, required))
        .await
        .map_err(Error::internal)?
}

fn preview_of(
    request: &ImportRequest,
    definitions: &[Definition],
    required: Required,
) -> Result<Preview, Error> {
    let (mut table, layout) = read_layout(request, definitions, required)?;
    let region = request
        .region
        .as_deref()
        .or(request.tenant.default_region.as_deref());
    let mut samples: Vec<Vec<String>> = vec![Vec::new(); layout.columns().len()];
    let mut sample_rows = Vec::new();
    table
        .each_row(&mut |row| {
            let RowOrHeader::Row(record) = row else {
                return true;
            };
            if let Ok(cells) = &record.cells {
                for (index, cell) in cells.iter().enumerate() {
                    let cell = cell.trim();
                    if let Some(list) = samples.get_mut(index) {
                        if !cell.is_empty() && list.len() < PREVIEW_SAMPLES {
                            list.push(cell.chars().take(200).collect());
                        }
                    }
                }
            }
            let line = record.line;
            sample_rows.push(match layout.read(record, region, definitions) {
                Ok(row) => SampleRow {
                    line,
                    row: Some(row),
                    problem: None,
                },
                Err(error) => SampleRow {
                    line,
                    row: None,
                    problem: Some(error.into()),
                },
            });
            sample_rows.len() < PREVIEW_ROWS
        })
        .map_err(unreadable)?;
    let columns = layout
        .columns()
        .iter()
        .cloned()
        .zip(samples)
        .map(|(column, samples)| PreviewColumn { column, samples })
        .collect();
    Ok(Preview {
        format: table.format().as_str().to_owned(),
        encoding: table.encoding().to_owned(),
        delimiter: table.delimiter(),
        // A workbook without a dimension says nothing: at least the rows seen, then.
        rows_estimate: table.rows_estimate().max(sample_rows.len() as u64),
        columns,
        sample_rows,
    })
}
