//! A local stand-in (redis-server, DynamoDB Local) this test owns, started
//! with `local-stack/lib.sh` on a free loopback port with its data in a
//! folder, so it can be frozen, killed and started again on that data.
//! Every signal goes to the PID it was started with; dropping it stops it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct StandIn {
    /// `start_redis` or `start_dynamodb`, the lib.sh function.
    starter: &'static str,
    pub port: u16,
    dir: PathBuf,
    pid: u32,
}

impl StandIn {
    pub fn start(starter: &'static str, dir: &Path) -> Self {
        let port = free_port();
        let pid = launch(starter, port, dir);
        StandIn { starter, port, dir: dir.to_path_buf(), pid }
    }

    pub fn freeze(&self) {
        signal(self.pid, "STOP");
    }

    pub fn thaw(&self) {
        signal(self.pid, "CONT");
    }

    /// SIGKILL: the process dies at once, as in a crash.
    pub fn kill(&self) {
        signal(self.pid, "KILL");
        wait_gone(self.pid);
    }

    /// SIGTERM, waiting for a clean exit.
    pub fn terminate(&self) {
        signal(self.pid, "TERM");
        wait_gone(self.pid);
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.pid = launch(self.starter, self.port, &self.dir);
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if is_alive(self.pid) {
            signal(self.pid, "CONT");
            signal(self.pid, "KILL");
            wait_gone(self.pid);
        }
    }
}

fn lib_sh() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lib.sh")
}

fn launch(starter: &str, port: u16, dir: &Path) -> u32 {
    let script = format!("source '{}' && {starter} {port} '{}'", lib_sh().display(), dir.display());
    let output = Command::new("bash").arg("-c").arg(script).output().expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{starter} failed: {}", String::from_utf8_lossy(&output.stderr));
    stdout.trim().parse().unwrap_or_else(|_| panic!("{starter} printed no PID: {stdout}"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status();
}

/// Alive and not a zombie: the stand-ins are not our children (lib.sh's
/// shell started them), so whoever reaps them may be slow to.
fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn wait_gone(pid: u32) {
    let until = Instant::now() + Duration::from_secs(30);
    while is_alive(pid) {
        assert!(Instant::now() < until, "process {pid} did not exit within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}
