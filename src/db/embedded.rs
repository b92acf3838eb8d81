//! The embedded default: with no `DATABASE_URL`, a private PostgreSQL cluster under the
//! data directory, run from the machine's installed server binaries. It listens on the
//! loopback address only and takes a password (generated, kept in the data directory,
//! readable by its owner alone), so no other local user can reach the data.

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
    password: String,
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
        let password_file = root.join("postgres-password");
        let password = match fs::read_to_string(&password_file) {
            Ok(password) => password.trim().to_owned(),
            Err(_) => crate::core::keys::generate_api_key().replace("sk_", ""),
        };
        // PostgreSQL refuses to run as root: hand the cluster to an unprivileged user.
        let run_as = if is_root() {
            Some(unprivileged_user()?)
        } else {
            None
        };
        let mut cluster = Self {
            data_dir,
            password,
            bin_dir,
            port: 0,
            started_here: false,
            run_as,
        };
        if !cluster.data_dir.join("PG_VERSION").exists() {
            cluster.init(&root)?;
        }
        match cluster.running_port() {
            Some(port) => cluster.port = port,
            None => {
                cluster.port = free_port()?;
                cluster.launch()?;
                cluster.started_here = true;
            }
        }
        cluster.require_password(&password_file)?;
        cluster.create_database()?;
        Ok(cluster)
    }

    pub fn database_url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/{DATABASE}",
            self.password, self.port
        )
    }

    /// The URL of the maintenance database, for creating and dropping others.
    pub fn admin_url(&self) -> String {
        format!(
            "postgres://{SUPERUSER}:{}@127.0.0.1:{}/postgres",
            self.password, self.port
        )
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

    fn init(&self, root: &Path) -> Result<(), String> {
        fs::create_dir_all(&self.data_dir).map_err(|e| e.to_string())?;
        self.hand_over(&self.data_dir)?;
        // initdb reads the password from a file the server's account can read; it is
        // removed at once (the service keeps its own copy, readable by itself alone).
        let pwfile = root.join("initdb-password");
        write_private(&pwfile, &self.password)?;
        self.hand_over(&pwfile)?;
        let mut command = self.command("initdb");
        command
            .args([
                "-U",
                SUPERUSER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .arg("-D")
            .arg(&self.data_dir);
        let outcome = run(command).map(drop);
        let _ = fs::remove_file(&pwfile);
        outcome
    }

    /// Clusters made before passwords were required trusted every local connection:
    /// give the superuser the password and stop trusting anyone.
    fn require_password(&self, password_file: &Path) -> Result<(), String> {
        let hba_file = self.data_dir.join("pg_hba.conf");
        let hba = fs::read_to_string(&hba_file).unwrap_or_default();
        if hba.lines().any(|line| line.trim_end().ends_with("trust")) {
            let trusted = format!("postgres://{SUPERUSER}@127.0.0.1:{}/postgres", self.port);
            let mut connection = PgConnection::establish(&trusted).map_err(|e| e.to_string())?;
            // A password cannot be bound in ALTER ROLE; it is hex, so it quotes safely.
            diesel::sql_query(format!(
                "ALTER ROLE {SUPERUSER} PASSWORD '{}'",
                self.password
            ))
            .execute(&mut connection)
            .map_err(|e| e.to_string())?;
            let hardened: String = hba
                .lines()
                .map(|line| match line.trim_end().strip_suffix("trust") {
                    Some(rest) => format!("{rest}scram-sha-256\n"),
                    None => format!("{line}\n"),
                })
                .collect();
            fs::write(&hba_file, hardened).map_err(|e| e.to_string())?;
            let mut reload = self.command("pg_ctl");
            reload.args(["reload", "-D"]).arg(&self.data_dir);
            run(reload)?;
        }
        if !password_file.exists() {
            write_private(password_file, &self.password)?;
        }
        Ok(())
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

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    writeln!(file, "{text}").map_err(|e| e.to_string())
}
