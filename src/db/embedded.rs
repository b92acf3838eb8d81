//! The embedded default: with no `DATABASE_URL`, a private PostgreSQL cluster under the
//! data directory, run from the machine's installed server binaries.

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use diesel::prelude::*;
use diesel::sql_types::Text;

const SUPERUSER: &str = "segments";
const DATABASE: &str = "segments";

/// A running private cluster; stops it on [`EmbeddedPostgres::stop`] if this process
/// started it.
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    bin_dir: PathBuf,
    port: u16,
    started_here: bool,
    run_as: Option<(u32, u32)>,
}

impl EmbeddedPostgres {
    /// Initialises the cluster on first use, starts it unless it already runs, and makes
    /// sure the service's database exists.
    pub fn start(root: &Path) -> Result<Self, String> {
        fs::create_dir_all(root).map_err(|e| format!("cannot create {}: {e}", root.display()))?;
        let root = root
            .canonicalize()
            .map_err(|e| format!("cannot resolve {}: {e}", root.display()))?;
        let data_dir = root.join("postgres");
        let bin_dir = find_bin_dir()?;
        // PostgreSQL refuses to run as root: hand the cluster to an unprivileged user.
        let run_as = if is_root() {
            Some(unprivileged_user()?)
        } else {
            None
        };
        let mut cluster = Self {
            data_dir,
            bin_dir,
            port: 0,
            started_here: false,
            run_as,
        };
        if !cluster.data_dir.join("PG_VERSION").exists() {
            cluster.init()?;
        }
        match cluster.running_port() {
            Some(port) => cluster.port = port,
            None => {
                cluster.port = free_port()?;
                cluster.launch()?;
                cluster.started_here = true;
            }
        }
        cluster.create_database()?;
        Ok(cluster)
    }

    pub fn database_url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{DATABASE}", self.port)
    }

    /// The URL of the maintenance database, for creating and dropping others.
    pub fn admin_url(&self) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port)
    }

    pub fn stop(&self) {
        if self.started_here {
            let mut command = self.command("pg_ctl");
            command
                .args(["stop", "-m", "fast", "-D"])
                .arg(&self.data_dir);
            if let Err(error) = run(command) {
                tracing::warn!(%error, "could not stop the embedded PostgreSQL");
            }
        }
    }

    fn init(&self) -> Result<(), String> {
        fs::create_dir_all(&self.data_dir).map_err(|e| e.to_string())?;
        self.hand_over(&self.data_dir)?;
        let mut command = self.command("initdb");
        command
            .args([
                "-U",
                SUPERUSER,
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "-D",
            ])
            .arg(&self.data_dir);
        run(command).map(drop)
    }

    fn launch(&self) -> Result<(), String> {
        let log = self.data_dir.join("server.log");
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories='' -c max_connections=200",
            self.port
        );
        let mut command = self.command("pg_ctl");
        command
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-o", &options]);
        run(command).map(drop)
    }

    /// The port of a server already running on this data directory, from its pid file.
    fn running_port(&self) -> Option<u16> {
        let mut status = self.command("pg_ctl");
        status.args(["status", "-D"]).arg(&self.data_dir);
        run(status).ok()?;
        let pid_file = fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        pid_file.lines().nth(3)?.trim().parse().ok()
    }

    fn create_database(&self) -> Result<(), String> {
        let mut connection =
            PgConnection::establish(&self.admin_url()).map_err(|e| e.to_string())?;
        #[derive(QueryableByName)]
        struct Exists {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            exists: bool,
        }
        let found: Exists = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists",
        )
        .bind::<Text, _>(DATABASE)
        .get_result(&mut connection)
        .map_err(|e| e.to_string())?;
        if !found.exists {
            // Identifiers cannot be bound; DATABASE is a constant.
            diesel::sql_query(format!("CREATE DATABASE {DATABASE}"))
                .execute(&mut connection)
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }

    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin_dir.join(program));
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
    }

    fn hand_over(&self, path: &Path) -> Result<(), String> {
        if let Some((uid, gid)) = self.run_as {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("cannot hand {} to uid {uid}: {e}", path.display()))?;
        }
        Ok(())
    }
}

fn run(mut command: Command) -> Result<Output, String> {
    let output = command
        .output()
        .map_err(|e| format!("cannot run {:?}: {e}", command.get_program()))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{:?} failed: {}{}",
            command.get_program(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// `SEGMENTS_PG_BIN`, else the newest `/usr/lib/postgresql/<version>/bin`, else `PATH`.
fn find_bin_dir() -> Result<PathBuf, String> {
    if let Ok(dir) = std::env::var("SEGMENTS_PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .find(|dir| dir.join("pg_ctl").exists() && dir.join("initdb").exists())
        .ok_or_else(|| {
            "no PostgreSQL server binaries found (install the postgresql package, \
             set SEGMENTS_PG_BIN, or set DATABASE_URL)"
                .to_owned()
        })
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// The `postgres` account the server package creates, else `nobody`.
fn unprivileged_user() -> Result<(u32, u32), String> {
    let passwd = fs::read_to_string("/etc/passwd").map_err(|e| e.to_string())?;
    let account = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.len() > 3 && fields[0] == name)
                .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                .flatten()
        })
    };
    account("postgres")
        .or_else(|| account("nobody"))
        .ok_or_else(|| {
            "running as root, and no postgres or nobody account to run PostgreSQL as".to_owned()
        })
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| format!("no free port: {e}"))
}
