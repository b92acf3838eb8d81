//! The real server process, started for a scenario and stopped after it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Service {
    child: Child,
    pub base: String,
}

impl Service {
    /// The service with its rate limit off: throughput scenarios send one key's
    /// requests as fast as the service answers them.
    pub fn start(database_url: &str) -> Self {
        Self::start_with(database_url, &[("SEGMENTS_RATE_LIMIT", "0")])
    }

    /// As [`Service::start`], with settings of its environment changed.
    pub fn start_with(database_url: &str, settings: &[(&str, &str)]) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_segments"))
            .envs(settings.iter().copied())
            .env("DATABASE_URL", database_url)
            .env("SEGMENTS_BIND", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start the service");
        let service = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        service.wait_ready();
        service
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let address = self.base.trim_start_matches("http://").to_owned();
        while Instant::now() < deadline {
            if let Ok(mut stream) = std::net::TcpStream::connect(&address) {
                use std::io::{Read, Write};
                let _ = stream.write_all(b"GET /readyz HTTP/1.0\r\n\r\n");
                let mut reply = String::new();
                let _ = stream.read_to_string(&mut reply);
                if reply.contains(" 200 ") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("the service did not become ready");
    }

    /// The most memory the process has held so far, in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<f64>()
                    .ok()
            })
            .map_or(0.0, |kib| kib / 1024.0)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        // SIGTERM, as an orchestrator would, then wait.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
