//! The real binary, as an orchestrator runs it: SIGTERM during a large import lets the
//! import finish whole and the process exit 0, and no secret ever reaches the logs.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::{json, Value};

use crate::harness::TestDatabase;

const ADMIN_TOKEN: &str = "admin-token-that-must-never-be-logged";

struct Running {
    child: std::process::Child,
    base: String,
    log: std::path::PathBuf,
}

fn start(database: &TestDatabase) -> Running {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let log = std::env::temp_dir().join(format!("segments-{}.log", database.name));
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_segments"))
        .env("DATABASE_URL", &database.url)
        .env("SEGMENTS_BIND", format!("127.0.0.1:{port}"))
        .env("SEGMENTS_ADMIN_TOKEN", ADMIN_TOKEN)
        // The most verbose level: a secret that leaks anywhere leaks here.
        .env("RUST_LOG", "trace")
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .expect("start the binary");
    Running {
        child,
        base: format!("http://127.0.0.1:{port}"),
        log,
    }
}

async fn call(base: &str, method: &str, path: &str, token: &str, body: Option<Value>) -> Value {
    let client = awc::Client::builder()
        .timeout(Duration::from_secs(120))
        .finish();
    let request = client
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .insert_header(("Authorization", format!("Bearer {token}")));
    let mut response = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    }
    .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let bytes = response.body().await.unwrap();
    assert!(
        response.status().is_success(),
        "{method} {path}: {}",
        String::from_utf8_lossy(&bytes)
    );
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

#[actix_web::test]
async fn sigterm_during_an_import_finishes_it_whole_and_exits_0_and_secrets_stay_out_of_the_logs() {
    let database = TestDatabase::new();
    let mut service = start(&database);
    let base = service.base.clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = awc::Client::new()
            .get(format!("{base}/readyz"))
            .send()
            .await;
        if ready.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the service did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let created = call(
        &base,
        "POST",
        "/v1/admin/tenants",
        ADMIN_TOKEN,
        Some(json!({"name": "T", "default_region": "IT"})),
    )
    .await;
    let key = created["api_key"].as_str().unwrap().to_owned();
    let segment = call(
        &base,
        "POST",
        "/v1/segments",
        &key,
        Some(json!({"name": "Big", "channel": "whatsapp"})),
    )
    .await;
    let segment = segment["id"].as_i64().unwrap();
    // A search for a phone number: the query string never reaches the log.
    call(
        &base,
        "GET",
        "/v1/contacts?search=%2B393339990001",
        &key,
        None,
    )
    .await;

    let rows = 40_000;
    let file: String = std::iter::once("phone,name\n".to_owned())
        .chain((0..rows).map(|i| format!("+39 333 {i:07},Candidate {i}\n")))
        .collect();
    let upload = {
        let (base, key) = (base.clone(), key.clone());
        actix_web::rt::spawn(async move {
            let mut response = awc::Client::builder()
                .timeout(Duration::from_secs(120))
                .finish()
                .post(format!("{base}/v1/segments/{segment}/import"))
                .insert_header(("Authorization", format!("Bearer {key}")))
                .insert_header(("Content-Type", "text/csv"))
                .send_body(file)
                .await
                .ok()?;
            let body = response.body().limit(16 << 20).await.ok()?;
            Some((
                response.status().as_u16(),
                serde_json::from_slice::<Value>(&body).ok()?,
            ))
        })
    };
    // Let the upload arrive and the import start, then stop the service as Kubernetes would.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stopping = Instant::now();
    let pid = service.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let outcome = upload.await.unwrap();
    let status = loop {
        if let Some(status) = service.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(30),
            "still running 30 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.success(), "exit status {status}");

    // All or nothing: the segment holds the whole file, or nothing if it was refused.
    use segments::db::schema::segment_members;
    let members: i64 = segment_members::table
        .filter(segment_members::segment_id.eq(segment))
        .count()
        .get_result(&mut database.connection())
        .unwrap();
    let answered = outcome.as_ref().map(|(status, _)| *status);
    match outcome {
        Some((200, report)) => {
            assert_eq!(report["added"], rows, "report: {report}");
            assert_eq!(members, rows);
        }
        other => assert_eq!(
            members, 0,
            "refused ({other:?}) but {members} members were written"
        ),
    }
    eprintln!(
        "SIGTERM during an import of {rows} rows: the import answered {answered:?}, {members} members; exited 0 after {:?}",
        stopping.elapsed()
    );

    let log = std::fs::read_to_string(&service.log).unwrap();
    assert!(
        log.contains("import"),
        "the log has the requests: {}",
        &log[..log.len().min(2000)]
    );
    assert!(!log.contains(ADMIN_TOKEN), "the admin token was logged");
    assert!(!log.contains(&key), "an API key was logged");
    assert!(
        !log.contains("3339990001"),
        "a searched phone number was logged"
    );
    let tenant_id = created["tenant"]["id"].as_i64().unwrap();
    let search_line = log
        .lines()
        .find(|line| line.contains("route=/v1/contacts") && line.contains("close"))
        .unwrap_or_else(|| {
            panic!(
                "no request line for the search: {}",
                &log[..log.len().min(3000)]
            )
        });
    assert!(
        search_line.contains(&format!("tenant_id={tenant_id}")),
        "{search_line}"
    );
    assert!(search_line.contains("key_id="), "{search_line}");
    assert!(search_line.contains("status=200"), "{search_line}");
    let _ = std::fs::remove_file(&service.log);
}

#[test]
fn a_short_admin_token_is_refused_at_start() {
    let output = Command::new(env!("CARGO_BIN_EXE_segments"))
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none")
        .env("SEGMENTS_ADMIN_TOKEN", "too-short")
        .arg("migrate")
        .output()
        .expect("run the binary");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("at least 32 characters"), "{stderr}");
    assert!(
        !stderr.contains("too-short"),
        "the token itself is not repeated"
    );
}
