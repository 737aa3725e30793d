//! Device selection and peer addressing options: what `transport: ib` in totemd's
//! configuration turns into.
//!
//! ```text
//! transport: ib
//! ib_device: mlx5_0        # optional: first device with an active port otherwise
//! ib_port: 1               # HCA port, 1-based
//! ib_gid_index: 0          # GID table index (RoCE v2 usually needs the IPv4-mapped one)
//! nodelist:
//!   - nodeid: 2
//!     ib_addr: fe80:0000:0000:0000:0002:c903:0001:2345/lid 7/qpn 0x48
//! ```
//!
//! `ib_addr` is exactly what a node prints at start-up (`IbAddr`'s `Display`), parsed by
//! [`parse_ib_addr`]. See the crate README for why peers are addressed this way.

use alloc::string::String;

use crate::verbs::IbAddr;

/// Device selection for the real provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IbOptions {
    /// Device name (`ibv_get_device_name`); `None` takes the first device.
    pub device: Option<String>,
    /// Port number, 1-based.
    pub port: u8,
    /// GID table index.
    pub gid_index: u8,
    /// Send buffers (send queue depth).
    pub send_slots: usize,
    /// Receive buffers (receive queue depth).
    pub recv_slots: usize,
    /// Q_Key shared by the cluster's UD queue pairs.
    pub qkey: u32,
}

impl Default for IbOptions {
    fn default() -> Self {
        Self {
            device: None,
            port: 1,
            gid_index: 0,
            send_slots: 256,
            recv_slots: 512,
            qkey: 0x7073_0000,
        }
    }
}

/// Parses `"<gid as 8 groups of 4 hex digits>/lid <n>/qpn <hex or decimal>"`.
/// Never panics; `None` for anything else.
pub fn parse_ib_addr(s: &str) -> Option<IbAddr> {
    let mut parts = s.trim().split('/');
    let gid_s = parts.next()?;
    let lid_s = parts.next()?.trim().strip_prefix("lid")?.trim();
    let qpn_s = parts.next()?.trim().strip_prefix("qpn")?.trim();
    if parts.next().is_some() {
        return None;
    }
    let mut gid = [0u8; 16];
    let mut groups = 0;
    for (i, g) in gid_s.split(':').enumerate() {
        if i >= 8 || g.len() != 4 {
            return None;
        }
        let v = u16::from_str_radix(g, 16).ok()?;
        gid[i * 2..i * 2 + 2].copy_from_slice(&v.to_be_bytes());
        groups += 1;
    }
    if groups != 8 {
        return None;
    }
    let lid = lid_s.parse().ok()?;
    let qpn = match qpn_s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok()?,
        None => qpn_s.parse().ok()?,
    };
    (qpn <= 0x00ff_ffff).then_some(IbAddr { gid, lid, qpn })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn ib_addr_display_parses_back() {
        let a = IbAddr {
            gid: [
                0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 2, 0xc9, 3, 0, 1, 0x23, 0x45,
            ],
            lid: 7,
            qpn: 0x48,
        };
        let s = a.to_string();
        assert_eq!(s, "fe80:0000:0000:0000:0002:c903:0001:2345/lid 7/qpn 0x48");
        assert_eq!(parse_ib_addr(&s), Some(a));
        for bad in [
            "",
            "fe80/lid 1/qpn 2",
            "x/lid/qpn",
            &alloc::format!("{s}/x"),
        ] {
            assert_eq!(parse_ib_addr(bad), None, "{bad}");
        }
    }
}
