//! [`IbVerbs`]: the real [`Verbs`] provider (feature `verbs`): one UD queue pair on one port
//! of one RDMA device, through libibverbs.
//!
//! Device discovery goes through the `ibverbs` crate ([`ibverbs::devices`]), which is where
//! a machine without RDMA shows: `Err(ENOSYS)` (no kernel support) or an empty list, both
//! reported as [`VerbsError::NoDevice`] and printed by totemd as
//! [`crate::NO_DEVICE_MESSAGE`]. The data path uses `ibverbs-sys` (the same bindings
//! `ibverbs` is built on) directly, because `ibverbs` 0.9 only offers reliable-connection
//! queue pairs set up by a pairwise handshake, with no address handles, no UD sends and no
//! access to its raw handles; a UD queue pair shared by the whole ring needs all three.
//!
//! Memory: one heap allocation registered once (`ibv_reg_mr`, local write only): the send
//! slots (`mtu` bytes each), then the receive slots (40-byte GRH + `mtu` bytes each). It is a
//! `Box<[u8]>` that never moves or reallocates while registered, and slots are only handed to
//! the HCA by index, so Rust never holds a reference to a byte the HCA writes while it may be
//! writing: a receive slot is read (`recv_buf`) only between its completion and its
//! re-posting, which the transport logic guarantees.
//!
//! Untested here (no RDMA hardware in CI): it is compiled and clippy-checked only; see the
//! crate README for the soft-RoCE recipe.

use alloc::boxed::Box;
use alloc::ffi::CString;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::ptr;

use ibverbs_sys as ffi;

use crate::config::IbOptions;
use crate::verbs::{Completion, IbAddr, Opcode, Verbs, VerbsError, WcStatus};

/// Bytes of Global Route Header the HCA writes in front of every UD receive.
pub const GRH_LEN: usize = 40;

const ENOSYS: i32 = 38;
const ENODEV: i32 = 19;

fn last_errno(default: i32) -> VerbsError {
    let e = std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(default);
    VerbsError::Io(if e == 0 { default } else { e })
}

/// Names of the RDMA devices present, through `ibverbs::devices()`.
///
/// # Errors
/// [`VerbsError::NoDevice`] when the kernel has no RDMA support (`ENOSYS`, `ENODEV`) or no
/// device exists; `Io` otherwise.
pub fn device_names() -> Result<Vec<String>, VerbsError> {
    let list = ibverbs::devices().map_err(|e| match e.raw_os_error() {
        Some(ENOSYS | ENODEV) | None => VerbsError::NoDevice,
        Some(code) => VerbsError::Io(code),
    })?;
    let names: Vec<String> = list
        .iter()
        .filter_map(|d| d.name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if names.is_empty() {
        return Err(VerbsError::NoDevice);
    }
    Ok(names)
}

/// An address handle; destroyed on drop.
#[derive(Debug)]
pub struct IbAh(*mut ffi::ibv_ah);

impl Drop for IbAh {
    fn drop(&mut self) {
        // SAFETY: `self.0` came from a successful `ibv_create_ah` and is destroyed once. No
        // send names it any more: the transport keeps a replaced peer's AH (`retired`) until
        // no send is in flight, and drops its peers before the provider (field order).
        unsafe {
            ffi::ibv_destroy_ah(self.0);
        }
    }
}

/// One UD queue pair with its completion queues and registered buffers.
#[derive(Debug)]
pub struct IbVerbs {
    ctx: *mut ffi::ibv_context,
    pd: *mut ffi::ibv_pd,
    /// Completion channel of both CQs: its fd becomes readable when a completion arrives
    /// on an armed CQ, so a driver can sleep in epoll instead of polling ([`Self::event_fd`]).
    channel: *mut ffi::ibv_comp_channel,
    send_cq: *mut ffi::ibv_cq,
    recv_cq: *mut ffi::ibv_cq,
    qp: *mut ffi::ibv_qp,
    mr: *mut ffi::ibv_mr,
    /// Base of the registered region (`mem_len` bytes, from a leaked `Box<[u8]>`). Kept as a
    /// raw pointer so Rust never holds a reference spanning slots the HCA may be writing.
    mem: *mut u8,
    mem_len: usize,
    port: u8,
    gid_index: u8,
    qkey: u32,
    addr: IbAddr,
    mtu: usize,
    send_slots: usize,
    recv_slots: usize,
    wcs: Vec<ffi::ibv_wc>,
}

impl IbVerbs {
    /// Opens the device and port of `opts`, creates the queue pair and brings it to RTS.
    ///
    /// # Errors
    /// [`VerbsError::NoDevice`] without an RDMA device (or without the named one);
    /// `Io(errno)` for any verbs failure.
    pub fn open(opts: &IbOptions) -> Result<Self, VerbsError> {
        let names = device_names()?;
        let name = match &opts.device {
            Some(want) if names.contains(want) => want.clone(),
            Some(_) => return Err(VerbsError::NoDevice),
            None => names[0].clone(), // `device_names` never returns an empty list
        };
        let wanted = CString::new(name).map_err(|_| VerbsError::NoDevice)?;
        let mut n = 0i32;
        // SAFETY: `n` is a valid out-pointer; the list is freed below after opening.
        let list = unsafe { ffi::ibv_get_device_list(&mut n) };
        if list.is_null() {
            return Err(VerbsError::NoDevice);
        }
        let mut ctx = ptr::null_mut();
        for i in 0..usize::try_from(n).unwrap_or(0) {
            // SAFETY: `list` holds `n` valid device pointers until it is freed.
            let dev = unsafe { *list.add(i) };
            // SAFETY: `dev` is a valid device; the name is a NUL-terminated C string owned by
            // the device list.
            let dev_name = unsafe { core::ffi::CStr::from_ptr(ffi::ibv_get_device_name(dev)) };
            if dev_name == wanted.as_c_str() {
                // SAFETY: `dev` is valid; the opened context outlives the list.
                ctx = unsafe { ffi::ibv_open_device(dev) };
                break;
            }
        }
        // SAFETY: `list` came from `ibv_get_device_list`; opened contexts stay valid.
        unsafe { ffi::ibv_free_device_list(list) };
        if ctx.is_null() {
            return Err(VerbsError::NoDevice);
        }
        let mut v = Self {
            ctx,
            pd: ptr::null_mut(),
            channel: ptr::null_mut(),
            send_cq: ptr::null_mut(),
            recv_cq: ptr::null_mut(),
            qp: ptr::null_mut(),
            mr: ptr::null_mut(),
            mem: ptr::null_mut(),
            mem_len: 0,
            port: opts.port,
            gid_index: opts.gid_index,
            qkey: opts.qkey,
            addr: IbAddr::default(),
            mtu: 0,
            send_slots: opts.send_slots.max(1),
            recv_slots: opts.recv_slots.max(1),
            wcs: vec![ffi::ibv_wc::default(); 64],
        };
        // From here on, `Drop` releases whatever was created.
        v.setup()?;
        Ok(v)
    }

    fn setup(&mut self) -> Result<(), VerbsError> {
        let mut port_attr = ffi::ibv_port_attr::default();
        // SAFETY: `ctx` is an open context; the compat struct is a prefix of `ibv_port_attr`,
        // exactly as the `ibverbs` crate calls it.
        let rc = unsafe { ffi::ibv_query_port(self.ctx, self.port, (&raw mut port_attr).cast()) };
        if rc != 0 {
            return Err(VerbsError::Io(rc));
        }
        if port_attr.state != ffi::ibv_port_state::IBV_PORT_ACTIVE {
            return Err(VerbsError::Io(ENODEV));
        }
        // IBV_MTU_256 = 1 … IBV_MTU_4096 = 5.
        self.mtu = 128usize << port_attr.active_mtu.clamp(1, 5);
        let mut gid = ffi::ibv_gid::default();
        // SAFETY: valid context and out-pointer.
        let rc =
            unsafe { ffi::ibv_query_gid(self.ctx, self.port, i32::from(self.gid_index), &mut gid) };
        if rc != 0 {
            return Err(VerbsError::Io(rc));
        }
        // SAFETY: every bit pattern of the union is a valid `[u8; 16]`.
        let raw_gid = unsafe { gid.raw };

        // SAFETY: valid context.
        self.pd = unsafe { ffi::ibv_alloc_pd(self.ctx) };
        if self.pd.is_null() {
            return Err(last_errno(12));
        }
        // SAFETY: valid context.
        self.channel = unsafe { ffi::ibv_create_comp_channel(self.ctx) };
        if self.channel.is_null() {
            return Err(last_errno(12));
        }
        // The channel's fd is read from an event loop: it must never block.
        // SAFETY: `channel` is valid; `fd` is its open descriptor; fcntl on it is sound.
        let rc = unsafe {
            let fd = (*self.channel).fd;
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 {
                -1
            } else {
                libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)
            }
        };
        if rc < 0 {
            return Err(last_errno(5));
        }
        let cqe = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        // SAFETY: valid context and completion channel.
        self.send_cq = unsafe {
            ffi::ibv_create_cq(
                self.ctx,
                cqe(self.send_slots),
                ptr::null_mut(),
                self.channel,
                0,
            )
        };
        // SAFETY: as above.
        self.recv_cq = unsafe {
            ffi::ibv_create_cq(
                self.ctx,
                cqe(self.recv_slots),
                ptr::null_mut(),
                self.channel,
                0,
            )
        };
        if self.send_cq.is_null() || self.recv_cq.is_null() {
            return Err(last_errno(12));
        }
        self.arm()?;
        let mut init = ffi::ibv_qp_init_attr {
            send_cq: self.send_cq,
            recv_cq: self.recv_cq,
            cap: ffi::ibv_qp_cap {
                max_send_wr: self.send_slots as u32,
                max_recv_wr: self.recv_slots as u32,
                max_send_sge: 1,
                max_recv_sge: 1,
                max_inline_data: 0,
            },
            qp_type: ffi::ibv_qp_type::IBV_QPT_UD,
            sq_sig_all: 1,
            ..Default::default()
        };
        // SAFETY: valid PD and CQs; `init` lives across the call.
        self.qp = unsafe { ffi::ibv_create_qp(self.pd, &mut init) };
        if self.qp.is_null() {
            return Err(last_errno(12));
        }
        let len = self.send_slots * self.mtu + self.recv_slots * (GRH_LEN + self.mtu);
        self.mem = Box::into_raw(vec![0u8; len].into_boxed_slice()).cast::<u8>();
        self.mem_len = len;
        // SAFETY: `mem` is a live allocation of `len` bytes that is neither moved nor freed
        // before `ibv_dereg_mr` in `Drop`.
        self.mr = unsafe {
            ffi::ibv_reg_mr(
                self.pd,
                self.mem.cast(),
                len,
                ffi::ibv_access_flags::IBV_ACCESS_LOCAL_WRITE.0 as i32,
            )
        };
        if self.mr.is_null() {
            return Err(last_errno(12));
        }
        self.bring_up()?;
        // SAFETY: `qp` is a valid queue pair.
        let qpn = unsafe { (*self.qp).qp_num };
        self.addr = IbAddr {
            gid: raw_gid,
            lid: port_attr.lid,
            qpn,
        };
        Ok(())
    }

    /// Asks both CQs for an event on their next completion (the inline
    /// `ibv_req_notify_cq` of verbs.h, through the context's ops as `poll_cq` is called).
    fn arm(&mut self) -> Result<(), VerbsError> {
        for cq in [self.send_cq, self.recv_cq] {
            // SAFETY: `cq` is a valid CQ of `ctx`, created with the completion channel.
            let rc = unsafe {
                let ops = &mut (*(*cq).context).ops;
                match ops.req_notify_cq.as_mut() {
                    Some(notify) => notify(cq, 0),
                    None => ENOSYS,
                }
            };
            if rc != 0 {
                return Err(VerbsError::Io(rc));
            }
        }
        Ok(())
    }

    /// The completion channel's fd (non-blocking): readable when a completion arrived on a
    /// CQ since the last [`Self::rearm`]. For epoll/tokio; owned by this provider.
    pub fn event_fd(&self) -> std::os::fd::RawFd {
        // SAFETY: `channel` is valid for the provider's life (created in `setup`, which
        // `open` requires to succeed).
        unsafe { (*self.channel).fd }
    }

    /// Consumes the channel's pending events and re-arms both CQs. Call it when
    /// [`Self::event_fd`] is readable, *before* polling the CQs, so a completion that lands
    /// after the poll raises a new event rather than being missed.
    ///
    /// # Errors
    /// `Io(errno)` when re-arming fails.
    pub fn rearm(&mut self) -> Result<(), VerbsError> {
        let (mut on_send, mut on_recv) = (0u32, 0u32);
        loop {
            let mut cq: *mut ffi::ibv_cq = ptr::null_mut();
            let mut cq_ctx: *mut core::ffi::c_void = ptr::null_mut();
            // SAFETY: `channel` is valid and non-blocking: with no event this returns -1
            // (EAGAIN) at once; the out-pointers are valid locals.
            let rc = unsafe { ffi::ibv_get_cq_event(self.channel, &mut cq, &mut cq_ctx) };
            if rc != 0 {
                break;
            }
            if cq == self.send_cq {
                on_send += 1;
            } else {
                on_recv += 1;
            }
        }
        // Every event taken must be acknowledged before the CQ can be destroyed.
        // SAFETY: both CQs are valid; the counts are events taken from them above.
        unsafe {
            if on_send > 0 {
                ffi::ibv_ack_cq_events(self.send_cq, on_send);
            }
            if on_recv > 0 {
                ffi::ibv_ack_cq_events(self.recv_cq, on_recv);
            }
        }
        self.arm()
    }

    fn modify(
        &mut self,
        attr: &mut ffi::ibv_qp_attr,
        mask: ffi::ibv_qp_attr_mask,
    ) -> Result<(), VerbsError> {
        // SAFETY: `qp` is valid and `attr` lives across the call.
        let rc = unsafe { ffi::ibv_modify_qp(self.qp, attr, mask.0 as i32) };
        if rc == 0 {
            Ok(())
        } else {
            Err(VerbsError::Io(rc))
        }
    }

    /// RESET → INIT → RTR → RTS for a UD queue pair (no remote side to name).
    fn bring_up(&mut self) -> Result<(), VerbsError> {
        use ffi::ibv_qp_attr_mask as M;
        let mut a = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_RESET,
            ..Default::default()
        };
        self.modify(&mut a, M::IBV_QP_STATE)?;
        let mut a = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_INIT,
            pkey_index: 0,
            port_num: self.port,
            qkey: self.qkey,
            ..Default::default()
        };
        self.modify(
            &mut a,
            M::IBV_QP_STATE | M::IBV_QP_PKEY_INDEX | M::IBV_QP_PORT | M::IBV_QP_QKEY,
        )?;
        let mut a = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_RTR,
            ..Default::default()
        };
        self.modify(&mut a, M::IBV_QP_STATE)?;
        let mut a = ffi::ibv_qp_attr {
            qp_state: ffi::ibv_qp_state::IBV_QPS_RTS,
            sq_psn: 0,
            ..Default::default()
        };
        self.modify(&mut a, M::IBV_QP_STATE | M::IBV_QP_SQ_PSN)
    }

    /// `len` bytes of the region at `off`: a receive slot between its completion and its
    /// re-posting (the only time the transport reads one).
    fn slot(&self, off: usize, len: usize) -> &[u8] {
        assert!(
            off + len <= self.mem_len,
            "slot out of the registered region"
        );
        // SAFETY: in bounds (checked above) of a live allocation; the HCA does not write
        // this receive slot until it is posted again, which needs `&mut self`.
        unsafe { core::slice::from_raw_parts(self.mem.add(off), len) }
    }

    fn send_off(&self, slot: u32) -> usize {
        slot as usize * self.mtu
    }

    fn recv_off(&self, slot: u32) -> usize {
        self.send_slots * self.mtu + slot as usize * (GRH_LEN + self.mtu)
    }

    fn poll_one(
        &mut self,
        cq: *mut ffi::ibv_cq,
        opcode: Opcode,
        out: &mut Vec<Completion>,
    ) -> Result<(), VerbsError> {
        loop {
            // SAFETY: `cq` is a valid CQ of `ctx`; `wcs` has room for `len` entries. This is
            // the inline `ibv_poll_cq` of verbs.h, as the `ibverbs` crate calls it.
            let n = unsafe {
                let ops = &mut (*(*cq).context).ops;
                match ops.poll_cq.as_mut() {
                    Some(poll) => poll(cq, self.wcs.len() as i32, self.wcs.as_mut_ptr()),
                    None => -ENOSYS,
                }
            };
            if n < 0 {
                return Err(VerbsError::Io(-n));
            }
            for wc in &self.wcs[..n as usize] {
                let status = match wc.error() {
                    None => WcStatus::Success,
                    Some((ffi::ibv_wc_status::IBV_WC_WR_FLUSH_ERR, _)) => WcStatus::Flushed,
                    Some((s, _)) => WcStatus::Error(s),
                };
                let slot = u32::try_from(wc.wr_id()).unwrap_or(u32::MAX);
                let mut src = IbAddr {
                    gid: [0; 16],
                    lid: wc.slid,
                    qpn: wc.src_qp,
                };
                let mut byte_len = 0;
                if opcode == Opcode::Recv
                    && status == WcStatus::Success
                    && (slot as usize) < self.recv_slots
                {
                    byte_len = wc.len().saturating_sub(GRH_LEN) as u32;
                    if wc.wc_flags.0 & ffi::ibv_wc_flags::IBV_WC_GRH.0 != 0 {
                        // GRH: SGID at bytes 8..24.
                        let off = self.recv_off(slot);
                        src.gid.copy_from_slice(&self.slot(off + 8, 16)[..16]);
                    }
                }
                out.push(Completion {
                    opcode,
                    slot,
                    status,
                    byte_len,
                    src,
                });
            }
            if (n as usize) < self.wcs.len() {
                return Ok(());
            }
        }
    }
}

impl Verbs for IbVerbs {
    type Ah = IbAh;

    fn local_addr(&self) -> IbAddr {
        self.addr
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn send_slots(&self) -> usize {
        self.send_slots
    }

    fn recv_slots(&self) -> usize {
        self.recv_slots
    }

    fn create_ah(&mut self, peer: &IbAddr) -> Result<IbAh, VerbsError> {
        let mut attr = ffi::ibv_ah_attr {
            grh: ffi::ibv_global_route {
                dgid: ffi::ibv_gid { raw: peer.gid },
                flow_label: 0,
                sgid_index: self.gid_index,
                hop_limit: 0xff,
                traffic_class: 0,
            },
            dlid: peer.lid,
            sl: 0,
            src_path_bits: 0,
            static_rate: 0,
            // RoCE has no LIDs and always needs the GRH; on IB it is harmless.
            is_global: u8::from(peer.gid != [0; 16]),
            port_num: self.port,
        };
        // SAFETY: valid PD; `attr` lives across the call.
        let ah = unsafe { ffi::ibv_create_ah(self.pd, &mut attr) };
        if ah.is_null() {
            Err(last_errno(22))
        } else {
            Ok(IbAh(ah))
        }
    }

    fn send_buf(&mut self, slot: u32) -> &mut [u8] {
        let off = self.send_off(slot);
        // The transport only names slots it got from `0..send_slots`.
        assert!((slot as usize) < self.send_slots, "send slot out of range");
        // SAFETY: the slot is in bounds (asserted above) of a live allocation and not posted:
        // the HCA reads a send slot only between post and completion, and the transport fills
        // only free slots.
        unsafe { core::slice::from_raw_parts_mut(self.mem.add(off), self.mtu) }
    }

    fn post_send(
        &mut self,
        slot: u32,
        len: usize,
        ah: &IbAh,
        peer: &IbAddr,
    ) -> Result<(), VerbsError> {
        if slot as usize >= self.send_slots || len > self.mtu {
            return Err(VerbsError::BadSlot(slot));
        }
        let off = self.send_off(slot);
        let mut sge = ffi::ibv_sge {
            addr: self.mem.wrapping_add(off) as u64,
            length: len as u32,
            // SAFETY: `mr` is a valid registration of `mem`.
            lkey: unsafe { (*self.mr).lkey },
        };
        let mut wr = ffi::ibv_send_wr {
            wr_id: u64::from(slot),
            next: ptr::null_mut(),
            sg_list: &mut sge,
            num_sge: 1,
            opcode: ffi::ibv_wr_opcode::IBV_WR_SEND,
            send_flags: ffi::ibv_send_flags::IBV_SEND_SIGNALED.0,
            ..Default::default()
        };
        wr.wr.ud = ffi::ibv_send_wr__bindgen_ty_2__bindgen_ty_3 {
            ah: ah.0,
            remote_qpn: peer.qpn,
            remote_qkey: self.qkey,
        };
        let mut bad = ptr::null_mut();
        // SAFETY: valid QP; `wr` and `sge` live across the call; the SGE points into the
        // registered region, which the transport does not touch until the send completes.
        let rc = unsafe {
            let ops = &mut (*(*self.qp).context).ops;
            match ops.post_send.as_mut() {
                Some(post) => post(self.qp, &mut wr, &mut bad),
                None => ENOSYS,
            }
        };
        match rc {
            0 => Ok(()),
            12 => Err(VerbsError::QueueFull), // ENOMEM: send queue full
            22 => Err(VerbsError::QpError),   // EINVAL: QP not in RTS
            e => Err(VerbsError::Io(e)),
        }
    }

    fn post_recv(&mut self, slot: u32) -> Result<(), VerbsError> {
        if slot as usize >= self.recv_slots {
            return Err(VerbsError::BadSlot(slot));
        }
        let off = self.recv_off(slot);
        let mut sge = ffi::ibv_sge {
            addr: self.mem.wrapping_add(off) as u64,
            length: (GRH_LEN + self.mtu) as u32,
            // SAFETY: `mr` is a valid registration of `mem`.
            lkey: unsafe { (*self.mr).lkey },
        };
        let mut wr = ffi::ibv_recv_wr {
            wr_id: u64::from(slot),
            next: ptr::null_mut(),
            sg_list: &mut sge,
            num_sge: 1,
        };
        let mut bad = ptr::null_mut();
        // SAFETY: valid QP; `wr` and `sge` live across the call; the slot is not read until
        // its completion is polled.
        let rc = unsafe {
            let ops = &mut (*(*self.qp).context).ops;
            match ops.post_recv.as_mut() {
                Some(post) => post(self.qp, &mut wr, &mut bad),
                None => ENOSYS,
            }
        };
        match rc {
            0 => Ok(()),
            12 => Err(VerbsError::QueueFull),
            22 => Err(VerbsError::QpError),
            e => Err(VerbsError::Io(e)),
        }
    }

    fn recv_buf(&self, slot: u32) -> &[u8] {
        if slot as usize >= self.recv_slots {
            return &[];
        }
        let off = self.recv_off(slot) + GRH_LEN;
        self.slot(off, self.mtu)
    }

    fn poll(&mut self, out: &mut Vec<Completion>) -> Result<(), VerbsError> {
        self.poll_one(self.send_cq, Opcode::Send, out)?;
        self.poll_one(self.recv_cq, Opcode::Recv, out)
    }

    fn recover(&mut self) -> Result<(), VerbsError> {
        self.bring_up()
    }
}

impl Drop for IbVerbs {
    fn drop(&mut self) {
        // SAFETY: each handle is either null or a live object created in `setup`/`open`,
        // destroyed once, in reverse order of creation (QP before its CQs and MR, PD after
        // everything allocated from it, context last); the region is freed after its
        // registration is gone, from the same `Box<[u8]>` layout it was leaked from.
        unsafe {
            if !self.qp.is_null() {
                ffi::ibv_destroy_qp(self.qp);
            }
            if !self.mr.is_null() {
                ffi::ibv_dereg_mr(self.mr);
            }
            if !self.send_cq.is_null() {
                ffi::ibv_destroy_cq(self.send_cq);
            }
            if !self.recv_cq.is_null() {
                ffi::ibv_destroy_cq(self.recv_cq);
            }
            if !self.channel.is_null() {
                ffi::ibv_destroy_comp_channel(self.channel);
            }
            if !self.pd.is_null() {
                ffi::ibv_dealloc_pd(self.pd);
            }
            ffi::ibv_close_device(self.ctx);
            if !self.mem.is_null() {
                drop(Box::from_raw(ptr::slice_from_raw_parts_mut(
                    self.mem,
                    self.mem_len,
                )));
            }
        }
    }
}

/// Opens the device of `opts` and builds the transport for `node` on it: what totemd calls
/// for `transport: ib`. On [`VerbsError::NoDevice`] totemd prints
/// [`crate::NO_DEVICE_MESSAGE`] and exits non-zero.
///
/// # Errors
/// As [`IbVerbs::open`] and [`crate::IbTransport::new`].
pub fn open_transport(
    opts: &IbOptions,
    node: totem_proto::NodeId,
    cfg: crate::IbConfig,
) -> Result<crate::IbTransport<IbVerbs>, VerbsError> {
    crate::IbTransport::new(IbVerbs::open(opts)?, node, cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without RDMA hardware (CI, most laptops) opening must fail with `NoDevice`, never
    /// panic; with a device (soft-RoCE included) it must yield a usable address.
    #[test]
    fn open_reports_no_device_or_works() {
        match IbVerbs::open(&IbOptions::default()) {
            Err(VerbsError::NoDevice) => {}
            Err(e) => std::println!("device present but not usable here: {e}"),
            Ok(v) => assert!(v.mtu() >= 256 && v.local_addr().qpn != 0),
        }
    }

    /// Where the kernel has no RDMA class at all (this CI), discovery says `NoDevice`: the
    /// condition behind totemd's "transport ib: no RDMA device found".
    #[test]
    fn no_rdma_class_means_no_device() {
        if !std::path::Path::new("/sys/class/infiniband").exists() {
            assert_eq!(device_names().err(), Some(VerbsError::NoDevice));
            let err = open_transport(
                &IbOptions::default(),
                totem_proto::NodeId(1),
                crate::IbConfig::default(),
            );
            assert_eq!(err.err(), Some(VerbsError::NoDevice));
            assert_eq!(
                std::format!("transport ib: {}", VerbsError::NoDevice),
                crate::NO_DEVICE_MESSAGE
            );
        }
    }
}
