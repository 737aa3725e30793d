//! No fd or mapping leaks: 300 connect / request / disconnect cycles, then this process
//! has exactly the fds and `ipc-shm` mappings it had before. Its own test binary, so no
//! other test opens fds concurrently.

use core::time::Duration;
use std::os::fd::AsFd;
use std::path::PathBuf;

use ipc_shm::{AccessPolicy, Client, ConnError, Server, ServerConfig};

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn shm_mappings() -> usize {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.contains("memfd:ipc-shm"))
        .count()
}

fn poll_readable(fd: std::os::fd::BorrowedFd<'_>, ms: i32) {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) };
}

#[test]
fn no_fds_or_mappings_leak_over_many_connections() {
    const CYCLES: usize = 300;
    let dir = PathBuf::from(format!("/tmp/ipc-shm-fdleak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s");
    let before = (open_fds(), shm_mappings());
    let config = ServerConfig {
        name: "fdleak".into(),
        rings: ipc_shm::RingSizes {
            request: 64 << 10,
            response: 64 << 10,
            event: 64 << 10,
        },
        max_message: 16 << 10,
        ..ServerConfig::default()
    };
    let mut server = Server::bind(&path, config, AccessPolicy::for_current_process()).unwrap();
    let daemon = std::thread::spawn(move || {
        for _ in 0..CYCLES {
            let mut conn = loop {
                if let Some(c) = server.accept().unwrap() {
                    break c;
                }
                poll_readable(server.as_fd(), 1000);
            };
            conn.send_event(b"hello").unwrap();
            loop {
                conn.clear_doorbell();
                while let Some(req) = conn.try_recv_request().unwrap() {
                    let r = req.to_vec();
                    conn.send_response(&r).unwrap();
                }
                match conn.wait(Some(Duration::from_secs(5))) {
                    Ok(true) => {}
                    Ok(false) => panic!("client hung"),
                    Err(e) => {
                        assert_eq!(e, ConnError::Disconnected);
                        break;
                    }
                }
            }
            assert_eq!(server.connections(), 1);
            drop(conn);
            assert_eq!(server.connections(), 0);
        }
        server
    });
    for i in 0..CYCLES {
        let mut c = Client::connect(&path).unwrap();
        let req = (i as u64).to_le_bytes();
        assert_eq!(c.request(&req).unwrap(), req);
        assert_eq!(
            c.recv_event(Some(Duration::from_secs(5))).unwrap().unwrap(),
            b"hello"
        );
    }
    let server = daemon.join().unwrap();
    drop(server);
    assert_eq!(
        (open_fds(), shm_mappings()),
        before,
        "fds and mappings all returned"
    );
    assert!(!path.exists());
    std::fs::remove_dir_all(&dir).unwrap();
}
