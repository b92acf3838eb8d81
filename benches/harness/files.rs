//! Files as people have them: the import's 200,000 rows as an Excel workbook against the
//! same rows as CSV (both through the service, same run), and previews of a 10 MB CSV and
//! of the workbook. The reference for the workbook is the service's own CSV import: what
//! is measured is the cost of reading a workbook instead of text.

use std::time::Instant;

use serde_json::Value;

use crate::data::API_KEY;
use crate::import::{file_rows, last_contact, undo};
use crate::report::{median, Row};
use crate::scenarios::{drop_bench_segments, reference_segment, run_numbers, Context, WARM_UP};
use crate::service::Service;
use crate::xlsx::{text, workbook, Cell};

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Uploads `body` to `path`; the answer and the seconds it took.
async fn upload(base: &str, path: &str, content_type: &str, body: Vec<u8>) -> (Value, f64) {
    let client = awc::Client::builder()
        .timeout(std::time::Duration::from_secs(600))
        .finish();
    let started = Instant::now();
    let mut response = client
        .post(format!("{base}{path}"))
        .insert_header(("Authorization", format!("Bearer {API_KEY}")))
        .insert_header(("Content-Type", content_type))
        .send_body(body)
        .await
        .expect("upload the file");
    let answer = response
        .body()
        .limit(64 * 1024 * 1024)
        .await
        .expect("read the answer");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        response.status().is_success(),
        "{path}: {} {}",
        response.status(),
        String::from_utf8_lossy(&answer)
    );
    (serde_json::from_slice(&answer).expect("JSON"), seconds)
}

pub async fn xlsx_import(ctx: &mut Context<'_>) -> Vec<Row> {
    let tenant = ctx.data.tenant_id;
    let rows = (ctx.data.contacts / 5).min(200_000);
    drop_bench_segments(ctx.conn, tenant, "bench-files");
    let segment = reference_segment(ctx.conn, tenant, "bench-files-import");
    let last_contact = last_contact(ctx);
    let file = file_rows(ctx, rows, "files");
    let header = "phone,name,tags,city";
    let csv: String = std::iter::once(format!("{header}\n"))
        .chain(file.iter().map(|r| r.csv.clone()))
        .collect();
    let sheet: Vec<Vec<Cell>> = std::iter::once(header)
        .chain(file.iter().map(|r| r.csv.trim_end()))
        .map(|line| line.split(',').map(text).collect())
        .collect();
    let xlsx = workbook(&[("Contacts", sheet)]);
    let service = Service::start(ctx.database_url);
    let rss_before = service.peak_rss_mib();
    let import = format!("/v1/segments/{segment}/import");
    let (mut csv_seconds, mut xlsx_seconds) = (Vec::new(), Vec::new());
    let mut reports = (Value::Null, Value::Null);
    for run in run_numbers(ctx.settings) {
        let (csv_report, csv_time) =
            upload(&service.base, &import, "text/csv", csv.clone().into_bytes()).await;
        undo(ctx, last_contact, segment, "files");
        let (xlsx_report, xlsx_time) = upload(&service.base, &import, XLSX, xlsx.clone()).await;
        undo(ctx, last_contact, segment, "files");
        for report in [&csv_report, &xlsx_report] {
            assert_eq!(report["rows"].as_i64(), Some(rows), "{report}");
        }
        assert_eq!(
            csv_report["added"], xlsx_report["added"],
            "the workbook reads as the CSV does"
        );
        if run != WARM_UP {
            csv_seconds.push(csv_time);
            xlsx_seconds.push(xlsx_time);
        }
        reports = (csv_report, xlsx_report);
    }
    let growth = service.peak_rss_mib() - rss_before;

    // Previews: a CSV of about 10 MB (the rows repeated), and the workbook.
    let big_csv: String = std::iter::once(format!("{header}\n"))
        .chain(file.iter().cycle().map(|r| r.csv.clone()))
        .scan(0usize, |size, line| {
            *size += line.len();
            (*size <= 10 * 1000 * 1000).then_some(line)
        })
        .collect();
    let preview = format!("/v1/segments/{segment}/import/preview");
    let (mut csv_previews, mut xlsx_previews) = (Vec::new(), Vec::new());
    for _ in run_numbers(ctx.settings) {
        let (answer, seconds) = upload(
            &service.base,
            &preview,
            "text/csv",
            big_csv.clone().into_bytes(),
        )
        .await;
        assert_eq!(answer["sample_rows"].as_array().map(Vec::len), Some(20));
        csv_previews.push(seconds);
        let (_, seconds) = upload(&service.base, &preview, XLSX, xlsx.clone()).await;
        xlsx_previews.push(seconds);
    }
    let (csv_time, xlsx_time) = (median(&mut csv_seconds), median(&mut xlsx_seconds));
    let (csv_preview, xlsx_preview) = (median(&mut csv_previews), median(&mut xlsx_previews));
    vec![
        Row {
            scenario: "xlsx-import",
            metric: format!(
                "{rows}-row .xlsx ({:.1} MB) vs the same rows as CSV ({:.1} MB), both through the service ({} added each)",
                xlsx.len() as f64 / 1e6,
                csv.len() as f64 / 1e6,
                reports.1["added"]
            ),
            service: xlsx_time * 1000.0,
            reference: Some(csv_time * 1000.0),
            unit: "ms",
            higher_is_better: false,
            target: "<= 2x the CSV".into(),
            met: Some(xlsx_time <= 2.0 * csv_time),
        },
        Row {
            scenario: "xlsx-import",
            metric: "service peak RSS growth over both imports".into(),
            service: growth,
            reference: None,
            unit: "MiB",
            higher_is_better: false,
            target: "< 150 MiB".into(),
            met: Some(growth < 150.0),
        },
        Row {
            scenario: "import-preview",
            metric: format!(
                "preview of a {:.1} MB CSV (rows estimated, 20 read)",
                big_csv.len() as f64 / 1e6
            ),
            service: csv_preview * 1000.0,
            reference: None,
            unit: "ms",
            higher_is_better: false,
            target: "< 1 s".into(),
            met: Some(csv_preview < 1.0),
        },
        Row {
            scenario: "import-preview",
            metric: format!("preview of the {:.1} MB .xlsx", xlsx.len() as f64 / 1e6),
            service: xlsx_preview * 1000.0,
            reference: None,
            unit: "ms",
            higher_is_better: false,
            target: "< 1 s".into(),
            met: Some(xlsx_preview < 1.0),
        },
    ]
}
