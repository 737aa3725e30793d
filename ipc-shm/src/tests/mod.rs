//! Crate tests that need internals (hostile peers write the shared header directly):
//! the ring over a real mapping, stress, fuzz-lite, end-to-end, and robustness.
//! `tests/fd_leak.rs` is separate because it counts this process's fds.

mod end_to_end;
mod fuzz_lite;
mod ring_shm;
mod robustness;
mod stress;
#[cfg(feature = "tokio")]
mod tokio_adapter;
mod zero_copy;

use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::{AccessPolicy, Client, Connection, Server, ServerConfig};

/// Log lines of every test, captured (the crate logs through `log`).
static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        if let Ok(mut l) = LINES.lock() {
            l.push(alloc::format!("{} {}", record.level(), record.args()));
        }
    }
    fn flush(&self) {}
}

fn install_logger() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = log::set_logger(&Capture);
        log::set_max_level(log::LevelFilter::Trace);
    });
}

/// Captured lines that start with `name:` (after the level), excluding debug lines.
pub(crate) fn log_lines(name: &str) -> Vec<String> {
    let prefix = alloc::format!("{name}:");
    LINES
        .lock()
        .map(|l| {
            l.iter()
                .filter(|s| {
                    let mut it = s.splitn(2, ' ');
                    let level = it.next().unwrap_or("");
                    level != "DEBUG" && it.next().is_some_and(|r| r.starts_with(&prefix))
                })
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// A fresh directory (mode 0755, so setuid children can reach the socket) and a unique
/// server name for log filtering.
pub(crate) struct Scratch {
    pub(crate) dir: PathBuf,
    pub(crate) name: String,
}

impl Scratch {
    pub(crate) fn new(tag: &str) -> Self {
        install_logger();
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(alloc::format!(
            "/tmp/ipc-shm-test-{}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self {
            dir,
            name: alloc::format!("t-{tag}-{n}"),
        }
    }

    pub(crate) fn sock(&self) -> PathBuf {
        self.dir.join("s")
    }

    /// A small-ring config: 64 KiB rings, 16 KiB messages (fast tests, easy to fill).
    pub(crate) fn small(&self) -> ServerConfig {
        ServerConfig {
            name: self.name.clone(),
            rings: crate::RingSizes {
                request: 64 << 10,
                response: 64 << 10,
                event: 64 << 10,
            },
            max_message: 16 << 10,
            ..ServerConfig::default()
        }
    }

    pub(crate) fn server(&self, config: ServerConfig) -> Server {
        Server::bind(self.sock(), config, AccessPolicy::for_current_process()).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Wait until the listener is readable, then accept (panics after 5 s).
pub(crate) fn accept_one(server: &mut Server) -> Result<Connection, crate::AcceptError> {
    for _ in 0..500 {
        if let Some(c) = server.accept()? {
            return Ok(c);
        }
        let mut fds = [crate::sys::pollfd(server.as_fd())];
        crate::sys::poll(&mut fds, Some(Duration::from_millis(10))).unwrap();
    }
    panic!("no connection within 5 s");
}

/// Serve `n` requests by echoing them, then return the connection.
pub(crate) fn echo(mut conn: Connection, n: usize) -> Connection {
    let mut served = 0;
    while served < n {
        conn.clear_doorbell();
        while let Some(req) = conn.try_recv_request().unwrap() {
            let r = req.to_vec();
            conn.send_response(&r).unwrap();
            served += 1;
        }
        if served < n {
            assert!(conn.wait(Some(Duration::from_secs(5))).unwrap());
        }
    }
    conn
}

/// Connect a client from a helper thread while the server accepts here.
pub(crate) fn pair(server: &mut Server) -> (Connection, Client) {
    let path = server.path().to_path_buf();
    let t = std::thread::spawn(move || Client::connect(path));
    let conn = accept_one(server).unwrap();
    let client = t.join().unwrap().unwrap();
    (conn, client)
}

/// Run `f` in a forked child that exits with its return value (never unwinds into the
/// harness). The child must not log or take locks other threads might hold.
pub(crate) fn fork_child(f: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `f` (syscalls, allocation, this crate's client code, which
    // takes no locks) and then `_exit`s, so no lock held by another harness thread at fork
    // time is touched.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let code = std::panic::catch_unwind(core::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: terminates the child immediately without running atexit handlers or
        // destructors that belong to the parent's harness.
        unsafe { libc::_exit(code) };
    }
    pid
}

/// Wait for a child; its exit code (or 128 + signal).
pub(crate) fn wait_child(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: waits for our own child; `status` is a valid out-pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid);
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    }
}

/// A pipe for child → parent "ready" signals.
pub(crate) fn pipe() -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid 2-element array for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: pipe2 returned two fresh fds that nothing else owns.
    unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    }
}

/// Write one byte to a pipe end.
pub(crate) fn signal(fd: std::os::fd::BorrowedFd<'_>) {
    use std::os::fd::AsRawFd;
    // SAFETY: writes one byte from a live buffer to an open fd.
    let _ = unsafe { libc::write(fd.as_raw_fd(), b"x".as_ptr().cast(), 1) };
}

/// Block until one byte arrives on a pipe end (or it closes).
pub(crate) fn await_signal(fd: std::os::fd::BorrowedFd<'_>) -> bool {
    use std::os::fd::AsRawFd;
    let mut b = [0u8; 1];
    // SAFETY: reads one byte into a live buffer from an open fd.
    (unsafe { libc::read(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1) }) == 1
}

/// A tiny seeded PRNG (xorshift64*), for reproducible payloads and fuzzing.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Deterministic payload for record `i` of length `len` (checked by the receiver).
pub(crate) fn payload(i: u64, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(x as u8);
    }
    v
}
