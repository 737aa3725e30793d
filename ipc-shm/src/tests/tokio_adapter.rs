//! The `tokio` feature: an async server task serving a blocking client thread.

use core::time::Duration;

use crate::{AsyncServer, Client, ConnError};

use super::Scratch;

#[tokio::test(flavor = "current_thread")]
async fn async_server_serves_requests_and_events_until_disconnect() {
    let s = Scratch::new("tokio");
    let mut server = AsyncServer::new(s.server(s.small())).unwrap();
    let path = server.get_ref().path().to_path_buf();
    let client = std::thread::spawn(move || {
        let mut c = Client::connect(path).unwrap();
        for i in 0..200u32 {
            let r = c.request(&i.to_le_bytes()).unwrap();
            assert_eq!(r, (i * 2).to_le_bytes());
        }
        let ev = c.recv_event(Some(Duration::from_secs(5))).unwrap().unwrap();
        assert_eq!(ev, b"bye");
    });
    let mut conn = server.accept().await.unwrap();
    for _ in 0..200 {
        let req = conn.recv_request().await.unwrap();
        let i = u32::from_le_bytes(req.try_into().unwrap());
        conn.send_response(&(i * 2).to_le_bytes()).unwrap();
    }
    conn.send_event(b"bye").unwrap();
    assert_eq!(
        conn.recv_request().await.unwrap_err(),
        ConnError::Disconnected
    );
    client.join().unwrap();
    let conn = conn.into_inner();
    assert_eq!(conn.stats().requests, 200);
}
