//! Each test gets its own database, cloned from a migrated template, on the server named
//! by `DATABASE_URL` or else on the embedded PostgreSQL the service itself would start.

use std::sync::OnceLock;

use actix_http::Request;
use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::{test as actix_test, web};
use diesel::prelude::*;
use diesel::sql_types::Text;
use segments::config::Config;
use segments::core::clock::Clock;
use segments::db::embedded::EmbeddedPostgres;
use segments::{build_app, db, AppState};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const ADMIN_TOKEN: &str = "test-admin-token-of-thirty-two-chars";

/// The server's maintenance URL, resolved once per test process.
fn server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var("DATABASE_URL") {
        Ok(url) => url,
        Err(_) => EmbeddedPostgres::start(std::path::Path::new(".data"))
            .expect("start the embedded PostgreSQL")
            .admin_url(),
    })
}

/// `url` with its database name replaced.
fn with_database(url: &str, database: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("a URL with a database name");
    let query = url
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{database}{query}")
}

/// The template's name carries a hash of the migrations, so a changed schema gets a new one.
fn template() -> &'static str {
    static TEMPLATE: OnceLock<String> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let mut hasher = Sha256::new();
        let mut entries: Vec<_> = walk("migrations");
        entries.sort();
        for path in entries {
            hasher.update(path.as_bytes());
            hasher.update(std::fs::read(&path).expect("read a migration"));
        }
        let name = format!(
            "segments_template_{}",
            &hex::encode(hasher.finalize())[..16]
        );
        let mut admin = PgConnection::establish(server_url()).expect("connect to the test server");
        // Several test processes may race to build it.
        diesel::sql_query("SELECT pg_advisory_lock(4242)")
            .execute(&mut admin)
            .expect("lock");
        if !database_exists(&mut admin, &name) {
            let building = format!("{name}_building");
            drop_database(&mut admin, &building);
            diesel::sql_query(format!("CREATE DATABASE {building}"))
                .execute(&mut admin)
                .expect("create template");
            let mut connection = PgConnection::establish(&with_database(server_url(), &building))
                .expect("connect to the template");
            db::migrate::run_migrations(&mut connection).expect("migrate the template");
            drop(connection);
            diesel::sql_query(format!("ALTER DATABASE {building} RENAME TO {name}"))
                .execute(&mut admin)
                .expect("publish template");
        }
        diesel::sql_query("SELECT pg_advisory_unlock(4242)")
            .execute(&mut admin)
            .expect("unlock");
        name
    })
}

fn walk(dir: &str) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read migrations").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(path.to_str().expect("utf-8 path")));
        } else {
            files.push(path.to_string_lossy().into_owned());
        }
    }
    files
}

#[derive(QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

fn database_exists(admin: &mut PgConnection, name: &str) -> bool {
    diesel::sql_query("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists")
        .bind::<Text, _>(name)
        .get_result::<Exists>(admin)
        .expect("query pg_database")
        .exists
}

fn drop_database(admin: &mut PgConnection, name: &str) {
    diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(admin)
        .expect("drop database");
}

/// A private database, dropped when the test ends (passing or not).
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn new() -> Self {
        let template = template();
        let name = format!("segments_test_{:016x}", rand::random::<u64>());
        let mut admin = PgConnection::establish(server_url()).expect("connect to the test server");
        diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .execute(&mut admin)
            .expect("clone the template");
        let url = with_database(server_url(), &name);
        Self { name, url }
    }

    pub fn connection(&self) -> PgConnection {
        PgConnection::establish(&self.url).expect("connect to the test database")
    }

    /// Refuses (`false`) or allows new connections to this database; refusing also ends
    /// the open ones: for the service, the database is gone.
    pub fn set_reachable(&self, reachable: bool) {
        let mut admin = PgConnection::establish(server_url()).expect("connect to the server");
        diesel::sql_query(format!(
            "ALTER DATABASE {} ALLOW_CONNECTIONS {reachable}",
            self.name
        ))
        .execute(&mut admin)
        .expect("change ALLOW_CONNECTIONS");
        if !reachable {
            diesel::sql_query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            )
            .bind::<diesel::sql_types::Text, _>(&self.name)
            .execute(&mut admin)
            .expect("end the open connections");
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(server_url()) {
            drop_database(&mut admin, &self.name);
        }
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Asserts the status and, for errors, the problem+json shape; returns the body.
    #[track_caller]
    pub fn expect(self, status: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        if status >= 400 {
            assert_eq!(
                self.content_type, "application/problem+json",
                "body: {}",
                self.text
            );
            assert_eq!(self.body["status"], status);
            assert!(
                self.body["code"].is_string()
                    && self.body["title"].is_string()
                    && self.body["detail"].is_string()
            );
            assert!(self.body["type"]
                .as_str()
                .unwrap()
                .starts_with("urn:segments:problem:"));
        }
        self.body
    }

    /// Asserts an error status and code.
    #[track_caller]
    pub fn expect_problem(self, status: u16, code: &str) -> Value {
        let body = self.expect(status);
        assert_eq!(body["code"], code, "problem: {body}");
        body
    }
}

impl Reply {
    /// The `contact_id` of each line of an NDJSON body, in order.
    pub fn ndjson_contact_ids(&self) -> Vec<i64> {
        self.text
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()["contact_id"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    }
}

/// The `id` of a created resource.
pub fn id(value: &Value) -> i64 {
    value["id"].as_i64().unwrap()
}

/// Any in-process application, whatever its body type: keeps helper signatures short.
pub trait App:
    Service<Request, Response = ServiceResponse<Self::Body>, Error = actix_web::Error>
{
    type Body: MessageBody;
}

impl<S, B> App for S
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Body = B;
}

/// The real application, in process, on a private database.
pub struct TestApp<S> {
    pub service: S,
    pub database: TestDatabase,
}

pub async fn spawn_app() -> TestApp<
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
> {
    spawn_app_with_clock(Clock::System).await
}

/// The application whose date filters count from `clock`: "today" on any day of the year.
pub async fn spawn_app_with_clock(
    clock: Clock,
) -> TestApp<
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
> {
    let database = TestDatabase::new();
    let service = app_on(&database.url, clock, |_| {}).await;
    TestApp { service, database }
}

/// The application with its configuration changed by `change`.
pub async fn spawn_app_with_config(
    change: impl FnOnce(&mut Config),
) -> TestApp<
    impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error>,
> {
    let database = TestDatabase::new();
    let service = app_on(&database.url, Clock::System, change).await;
    TestApp { service, database }
}

/// Another instance of the application on the same database, as a second replica behind a
/// load balancer would be; it listens for key and tenant changes as `main` does.
pub async fn replica_of<S>(
    app: &TestApp<S>,
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
    let replica = app_on(&app.database.url, Clock::System, |_| {}).await;
    replica
}

async fn app_on(
    url: &str,
    clock: Clock,
    change: impl FnOnce(&mut Config),
) -> impl Service<Request, Response = ServiceResponse<impl MessageBody>, Error = actix_web::Error> {
    let mut config = Config::for_database(url);
    config.admin_token = Some(ADMIN_TOKEN.to_owned());
    change(&mut config);
    let state = web::Data::new(AppState::with_clock(config, clock));
    actix_test::init_service(build_app(state)).await
}

impl<S, B> TestApp<S>
where
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    /// Sends a request; `body` is sent as JSON when given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = actix_test::TestRequest::default().method(method).uri(path);
        if let Some(key) = key {
            request = request.insert_header(("Authorization", format!("Bearer {key}")));
        }
        if let Some(body) = body {
            request = request.set_json(body);
        }
        self.send(request.to_request()).await
    }

    pub async fn send(&self, request: Request) -> Reply {
        let response = actix_test::call_service(&self.service, request).await;
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let bytes = actix_test::read_body(response).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            content_type,
            headers,
            body,
            text,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Reply {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(key), Some(body)).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::PATCH, path, Some(key), Some(body)).await
    }

    pub async fn put(&self, path: &str, key: &str, body: Value) -> Reply {
        self.call(Method::PUT, path, Some(key), Some(body)).await
    }

    pub async fn delete(&self, path: &str, key: &str) -> Reply {
        self.call(Method::DELETE, path, Some(key), None).await
    }

    /// Creates a tenant through the admin API; returns its id and API key.
    pub async fn tenant(&self, settings: Value) -> (i64, String) {
        let mut body = json!({"name": "Test tenant", "default_region": "IT"});
        body.as_object_mut()
            .unwrap()
            .extend(settings.as_object().cloned().unwrap_or_default());
        let created = self
            .post("/v1/admin/tenants", ADMIN_TOKEN, body)
            .await
            .expect(201);
        (
            created["tenant"]["id"].as_i64().unwrap(),
            created["api_key"].as_str().unwrap().to_owned(),
        )
    }

    /// A tenant with default settings (region IT); returns its API key.
    pub async fn tenant_key(&self) -> String {
        self.tenant(json!({})).await.1
    }

    pub async fn contact(&self, key: &str, body: Value) -> Value {
        self.post("/v1/contacts", key, body).await.expect(201)
    }

    /// Defines attributes: `(key, label, type)` each.
    pub async fn attributes(&self, key: &str, definitions: &[(&str, &str, &str)]) {
        for (attribute, label, kind) in definitions {
            self.post(
                "/v1/attributes",
                key,
                json!({"key": attribute, "label": label, "type": kind}),
            )
            .await
            .expect(201);
        }
    }

    pub async fn segment(&self, key: &str, name: &str, channel: &str) -> Value {
        self.post(
            "/v1/segments",
            key,
            json!({"name": name, "channel": channel}),
        )
        .await
        .expect(201)
    }

    /// A dynamic WhatsApp segment over `filter`; returns its id.
    pub async fn dynamic_segment(&self, key: &str, name: &str, filter: Value) -> i64 {
        let segment = self
            .post(
                "/v1/segments",
                key,
                json!({"name": name, "channel": "whatsapp", "kind": "dynamic", "filter": filter}),
            )
            .await
            .expect(201);
        segment["id"].as_i64().expect("a segment id")
    }
}
