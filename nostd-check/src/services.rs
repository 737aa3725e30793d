//! services without std: one ring (it forms a singleton ring by itself) drives the
//! `Services` dispatcher with the CPG engine; a fake client connection initializes, joins a
//! group and multicasts a message, and must get the replies, its JOIN confchg and the
//! message back in a Deliver event.

use alloc::boxed::Box;
use alloc::vec::Vec;

use bytes::Bytes;
use services::cpg::wire::{CpgGuarantee, McastMessage, Request};
use services::cpg::{Cpg, CpgConfig};
use services::{Action, ConnId, Credentials, GroupName, Services, service_id};
use totem_proto::NodeId;
use totem_proto::time::{Duration, Instant};
use totem_ring::{Config, Ring};

use crate::ensure;

pub(crate) fn scenario() -> Result<(), &'static str> {
    let me = NodeId(1);
    let mut cfg = Config::new(me, 7);
    cfg.token = Duration::from_millis(300);
    cfg.join = Duration::from_millis(30);
    cfg.merge = Duration::from_millis(50);
    cfg.max_message_len = 64 * 1024;
    cfg.send_queue_bytes = 256 * 1024;
    let mut now = Instant::ZERO;
    let mut ring = Ring::new(&cfg, now, 0).map_err(|_| "ring config")?;
    let mut services = Services::new(me);
    let cpg = Cpg::new(
        me,
        CpgConfig {
            max_message_len: cfg.max_message_len,
            ..CpgConfig::default()
        },
    );
    services.add_engine(Box::new(cpg)).map_err(|_| "add cpg")?;
    let conn = ConnId(1);
    services
        .handle_connect(
            service_id::CPG,
            conn,
            Credentials {
                pid: 4242,
                uid: 0,
                gid: 0,
            },
        )
        .map_err(|_| "connect")?;
    let group = GroupName::new(b"nostd").map_err(|_| "group name")?;
    let requests = [
        Request::Initialize {
            flags: 0,
            pid: 4242,
        },
        Request::Join {
            group: group.clone(),
        },
        Request::Mcast {
            guarantee: CpgGuarantee::Agreed,
            group,
            payload: Bytes::from_static(b"no std here"),
        },
    ];
    let mut next_request = 0;
    let mut replies = 0;
    let mut delivered: Option<Vec<u8>> = None;
    for _ in 0..100_000 {
        // The driver loop: ring outputs to services (a singleton ring sends to itself only
        // through its own timers), services' multicasts back to the ring, actions to the client.
        while let Some(ev) = ring.poll_event() {
            services.handle_ring_event(ev);
        }
        while ring.poll_transmit().is_some() {}
        services.flush_multicasts(|s, p, g| ring.offer(s, p, g));
        while let Some(a) = services.poll_action() {
            match a {
                Action::Reply { .. } => replies += 1,
                Action::Event { bytes, .. } => {
                    if let Ok(m) = McastMessage::parse(&bytes) {
                        delivered = Some(m.payload.to_vec());
                    }
                }
                Action::Close { .. } => return Err("connection closed"),
            }
        }
        if delivered.is_some() {
            break;
        }
        // Requests go in once the ring is operational and synchronized.
        if next_request < requests.len() && services.is_synchronized() && replies == next_request {
            services.handle_request(conn, requests[next_request].emit());
            next_request += 1;
            continue;
        }
        match ring.poll_timeout() {
            Some(t) => now = now.max(t),
            None => return Err("ring has no deadline"),
        }
        ring.handle_timeout(now);
    }
    ensure(replies == 3, "three replies (initialize, join, mcast)")?;
    ensure(
        delivered.as_deref() == Some(b"no std here".as_slice()),
        "own message delivered",
    )?;
    Ok(())
}
