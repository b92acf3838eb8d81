//! A noisy neighbour: one tenant does the worst it can with ordinary calls (a hot loop
//! past its rate limit, downloads it never reads, filter bombs) while another tenant
//! reads. The other tenant's p99 must stay under 100 ms with no 5xx, and the process
//! small.

use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bytea, Text};
use serde_json::{json, Value};

use crate::data::API_KEY;
use crate::report::Row;
use crate::scenarios::{drop_bench_segments, rss_row, Context};
use crate::service::Service;

/// The neighbour's key (the service's shape: `sk_` and 64 hex digits).
const NOISY_KEY: &str = "sk_0101010101010101010101010101010101010101010101010101010101010101";
/// A second key of the neighbour's, for its filter bombs: its own rate budget, so the
/// bombs reach the parser instead of the hot loop's 429s; the same tenant's share.
const BOMB_KEY: &str = "sk_0202020202020202020202020202020202020202020202020202020202020202";
const NOISY_CONTACTS: i64 = 50_000;
/// The rate limit the service runs with here (per key, a second) and its burst.
const RATE_LIMIT: u64 = 300;
const RATE_BURST: u64 = 600;

#[derive(QueryableByName)]
struct Id {
    #[diesel(sql_type = BigInt)]
    id: i64,
}

/// The neighbour's tenant, its key, and a static segment of all its contacts.
fn noisy_tenant(conn: &mut PgConnection) -> (i64, i64) {
    diesel::sql_query("DELETE FROM tenants WHERE name = 'bench-noisy'")
        .execute(conn)
        .expect("drop the old neighbour");
    let tenant: Id = diesel::sql_query(
        "INSERT INTO tenants (name, default_region) VALUES ('bench-noisy', 'IT') RETURNING id",
    )
    .get_result(conn)
    .expect("neighbour tenant");
    for key in [NOISY_KEY, BOMB_KEY] {
        diesel::sql_query("INSERT INTO api_keys (tenant_id, key_hash, prefix) VALUES ($1, $2, $3)")
            .bind::<BigInt, _>(tenant.id)
            .bind::<Bytea, _>(segments::core::keys::hash_api_key(key))
            .bind::<Text, _>(&key[..10])
            .execute(conn)
            .expect("neighbour key");
    }
    diesel::sql_query(
        "INSERT INTO contacts (tenant_id, name, phone, phone_e164, phone_country) \
         SELECT $1, 'N' || n, '+39 333 ' || n, '+39333' || lpad(n::text, 7, '0'), 'IT' \
         FROM generate_series(1, $2) AS n",
    )
    .bind::<BigInt, _>(tenant.id)
    .bind::<BigInt, _>(NOISY_CONTACTS)
    .execute(conn)
    .expect("neighbour contacts");
    let segment: Id = diesel::sql_query(
        "INSERT INTO segments (tenant_id, name, kind, channel, recipients) \
         VALUES ($1, 'everyone', 'static', 'whatsapp', $2) RETURNING id",
    )
    .bind::<BigInt, _>(tenant.id)
    .bind::<BigInt, _>(NOISY_CONTACTS)
    .get_result(conn)
    .expect("neighbour segment");
    diesel::sql_query(
        "INSERT INTO segment_members (tenant_id, segment_id, contact_id) \
         SELECT $1, $2, id FROM contacts WHERE tenant_id = $1",
    )
    .bind::<BigInt, _>(tenant.id)
    .bind::<BigInt, _>(segment.id)
    .execute(conn)
    .expect("neighbour members");
    (tenant.id, segment.id)
}

/// What a wrk run's answers were: 2xx, 429, 503 and any other status, counted by a Lua
/// script (wrk itself only counts "non-2xx").
#[derive(Default)]
struct Answers {
    ok: u64,
    rate_limited: u64,
    busy: u64,
    other: u64,
}

fn wrk(url: &str, key: &str, connections: u32, seconds: u64) -> Answers {
    let script = std::env::temp_dir().join(format!("segments-noisy-{}.lua", std::process::id()));
    std::fs::write(
        &script,
        r#"local threads = {}
setup = function(thread) table.insert(threads, thread) end
init = function() ok, limited, busy, other = 0, 0, 0, 0 end
response = function(status, headers, body)
  if status < 300 then ok = ok + 1
  elseif status == 429 then limited = limited + 1
  elseif status == 503 then busy = busy + 1
  else other = other + 1 end
end
done = function(summary, latency, requests)
  local totals = {ok = 0, limited = 0, busy = 0, other = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + thread:get(name) end
  end
  io.write(string.format("answers %d %d %d %d\n", totals.ok, totals.limited, totals.busy, totals.other))
end
"#,
    )
    .expect("write the wrk script");
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            // Requests that wait their 3 s for one of the tenant's connections still count.
            "--timeout",
            "10s",
            "-s",
        ])
        .arg(&script)
        .args(["-H", &format!("Authorization: Bearer {key}"), url])
        .output()
        .expect("run wrk (apt-get install wrk)");
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&output.stdout);
    let counts: Vec<u64> = text
        .lines()
        .find_map(|line| line.strip_prefix("answers "))
        .map(|rest| rest.split(' ').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    match counts[..] {
        [ok, rate_limited, busy, other] => Answers {
            ok,
            rate_limited,
            busy,
            other,
        },
        _ => panic!("wrk's answers not found in: {text}"),
    }
}

/// Opens downloads the neighbour never reads: the request sent, the socket left alone.
fn idle_downloads(base: &str, campaign: i64, count: usize) -> Vec<TcpStream> {
    let address = base.trim_start_matches("http://");
    (0..count)
        .filter_map(|_| {
            let mut stream = TcpStream::connect(address).ok()?;
            let request = format!(
                "GET /v1/campaigns/{campaign}/audience.ndjson HTTP/1.1\r\nHost: {address}\r\n\
                 Authorization: Bearer {NOISY_KEY}\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).ok()?;
            Some(stream)
        })
        .collect()
}

/// Filters built to cost as much as a filter can: past the bounds (refused, `true`), and
/// at them (accepted, but answered quickly).
fn bombs() -> Vec<(Value, bool)> {
    let naming = |segment: i64, times: usize| -> Vec<Value> {
        (0..times)
            .map(|_| json!({"field": "segment", "op": "in", "value": segment}))
            .collect()
    };
    let fifty_lists: Vec<Value> = (0..50)
        .map(|n| {
            let values: Vec<String> = (0..100).map(|v| format!("v{n}-{v}")).collect();
            json!({"field": "name", "op": "in", "value": values})
        })
        .collect();
    vec![
        (json!({"any": naming(1, 5000)}), true),
        (json!({"all": fifty_lists}), false),
        (
            json!({"any": (0..20_000).map(|_| json!({"all": []})).collect::<Vec<_>>()}),
            true,
        ),
    ]
}

/// A screen's load: `clients` loops, each sending a request every `every`, for
/// `seconds`. Returns the latencies in ms and the statuses.
async fn paced_reads(
    url: String,
    clients: usize,
    every: Duration,
    seconds: u64,
) -> (Vec<f64>, Vec<u16>) {
    let loops = (0..clients).map(|_| {
        let url = url.clone();
        async move {
            let client = awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .finish();
            let (mut latencies, mut statuses) = (Vec::new(), Vec::new());
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(seconds) {
                let at = Instant::now();
                let status = client
                    .get(&url)
                    .insert_header(("Authorization", format!("Bearer {API_KEY}")))
                    .send()
                    .await
                    .map_or(0, |response| response.status().as_u16());
                latencies.push(at.elapsed().as_secs_f64() * 1000.0);
                statuses.push(status);
                tokio::time::sleep(every.saturating_sub(at.elapsed())).await;
            }
            (latencies, statuses)
        }
    });
    let (mut latencies, mut statuses) = (Vec::new(), Vec::new());
    for (l, s) in futures_util::future::join_all(loops).await {
        latencies.extend(l);
        statuses.extend(s);
    }
    (latencies, statuses)
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    values[((values.len() - 1) as f64 * p).round() as usize]
}

pub async fn noisy_neighbour(ctx: &mut Context<'_>) -> Vec<Row> {
    let (_, noisy_segment) = noisy_tenant(ctx.conn);
    drop_bench_segments(ctx.conn, ctx.data.tenant_id, "bench-quiet");
    let service = Service::start_with(
        ctx.database_url,
        &[
            ("SEGMENTS_RATE_LIMIT", &RATE_LIMIT.to_string()),
            ("SEGMENTS_RATE_BURST", &RATE_BURST.to_string()),
        ],
    );
    let base = service.base.clone();
    let quiet_segment = ctx
        .call(
            "POST",
            &base,
            "/v1/segments",
            Some(json!({"name": "bench-quiet", "channel": "whatsapp"})),
        )
        .await["id"]
        .as_i64()
        .expect("segment id");
    let campaign = crate::scenarios::call_as(
        NOISY_KEY,
        "POST",
        &base,
        "/v1/campaigns",
        Some(json!({"name": "noise", "channel": "whatsapp", "segment_ids": [noisy_segment]})),
    )
    .await["id"]
        .as_i64()
        .expect("campaign id");
    // Long enough for wrk to see answers to requests that wait their 3 s for a connection.
    let seconds = if ctx.settings.quick { 5 } else { 20 };

    // The neighbour: downloads it never reads, a hot loop past its rate limit, bombs.
    let downloads = idle_downloads(&base, campaign, 8);
    let hot_url = format!("{base}/v1/segments?per_page=500");
    let hot_loop = std::thread::spawn(move || wrk(&hot_url, NOISY_KEY, 64, seconds));
    let bomb_base = base.clone();
    let bombing = std::thread::spawn(move || {
        let started = Instant::now();
        // Statuses of the bombs past the bounds, and of those at them.
        let (mut past, mut at_bounds) = (Vec::new(), Vec::new());
        let mut slowest = Duration::ZERO;
        while started.elapsed() < Duration::from_secs(seconds) {
            for (filter, past_bounds) in bombs() {
                let at = Instant::now();
                let status = blocking::post_json(
                    &bomb_base,
                    "/v1/segments/preview",
                    BOMB_KEY,
                    &json!({"channel": "whatsapp", "filter": filter}),
                )
                .unwrap_or(0);
                slowest = slowest.max(at.elapsed());
                if past_bounds {
                    &mut past
                } else {
                    &mut at_bounds
                }
                .push(status);
            }
        }
        (past, at_bounds, slowest)
    });
    // The quiet tenant, a screen's load meanwhile: four clients, one read each every
    // 40 ms (about 100 a second).
    let quiet_url = format!("{base}/v1/segments/{quiet_segment}");
    let (mut latencies, statuses) =
        paced_reads(quiet_url, 4, Duration::from_millis(40), seconds).await;
    let hot = hot_loop.join().expect("hot loop");
    let allowed = RATE_LIMIT * seconds + RATE_BURST;
    let (past_bounds, at_bounds, slowest_bomb) = bombing.join().expect("bombs");
    drop(downloads);
    let quiet_p99 = percentile(&mut latencies, 0.99);
    let quiet_failed = statuses.iter().filter(|s| **s >= 500 || **s == 0).count();
    let count = |statuses: &[u16], wanted: u16| statuses.iter().filter(|s| **s == wanted).count();

    vec![
        Row {
            scenario: "noisy-neighbour",
            metric: format!(
                "quiet tenant's reads (GET /v1/segments/{{id}}, ~100/s) p99 while the neighbour misbehaves ({} reads, {quiet_failed} 5xx)",
                statuses.len()
            ),
            service: quiet_p99,
            reference: None,
            unit: "ms",
            higher_is_better: false,
            target: "p99 < 100 ms, no 5xx".into(),
            met: Some(quiet_p99 < 100.0 && quiet_failed == 0 && statuses.iter().all(|s| *s == 200)),
        },
        Row {
            scenario: "noisy-neighbour",
            metric: format!(
                "neighbour's hot loop (64 connections, one key limited to {RATE_LIMIT}/s, burst {RATE_BURST}): {} answered 2xx, {} 429, {} 503 tenant_busy, {} other",
                hot.ok, hot.rate_limited, hot.busy, hot.other
            ),
            service: hot.ok as f64,
            reference: None,
            unit: "2xx",
            higher_is_better: false,
            target: format!("<= {allowed} (the limit's), no other status"),
            met: Some(hot.ok <= allowed && hot.other == 0),
        },
        Row {
            scenario: "noisy-neighbour",
            metric: format!(
                "filter bombs past the bounds: {} refused 422, {} 503 tenant_busy (its own share taken), {} other; at the bounds: {} answered 200, {} 503; slowest answer {:.0} ms",
                count(&past_bounds, 422),
                count(&past_bounds, 503),
                past_bounds.len() - count(&past_bounds, 422) - count(&past_bounds, 503),
                count(&at_bounds, 200),
                count(&at_bounds, 503),
                slowest_bomb.as_secs_f64() * 1000.0
            ),
            service: (past_bounds.len() + at_bounds.len()) as f64,
            reference: None,
            unit: "bombs",
            higher_is_better: true,
            target: "past the bounds all 422; none slower than 5 s".into(),
            met: Some(
                count(&past_bounds, 422) == past_bounds.len()
                    && slowest_bomb < Duration::from_secs(5),
            ),
        },
        {
            let mut row = rss_row("noisy-neighbour", &service);
            row.target = "< 256 MiB".into();
            row.met = Some(row.service < 256.0);
            row
        },
    ]
}

/// A blocking HTTP/1.1 client just big enough for the bombs (awc needs the async
/// runtime, which this thread does not have).
mod blocking {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Duration;

    use serde_json::Value;

    /// POSTs `body` as JSON; the answer's status, if one came.
    pub fn post_json(base: &str, path: &str, key: &str, body: &Value) -> Option<u16> {
        {
            let address = base.trim_start_matches("http://");
            let mut stream = TcpStream::connect(address).ok()?;
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .ok()?;
            let body = body.to_string();
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes()).ok()?;
            let mut reply = String::new();
            let _ = stream.read_to_string(&mut reply);
            reply.split_whitespace().nth(1)?.parse().ok()
        }
    }
}
