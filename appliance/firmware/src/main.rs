//! appliance-firmware: the appliance core as a bare-metal image, to measure what a firmware
//! pays for a totem ring in code size (`cargo xtask appliance` builds it for
//! `thumbv7em-none-eabihf` with the `firmware` profile and reports the ELF's `text`).
//!
//! It is a complete integrator of `totem-appliance`, shaped like real firmware: a reset
//! entry (`_start`), a panic handler, the core's [`Heap`] as global allocator, a clock, a
//! ring-seq store and a MAC driver. The clock, the store and the MAC are stand-ins (no
//! board here), written so that the optimizer cannot predict them (`black_box` where a
//! real driver reads a timer, flash or DMA memory): every path of the stack — receive,
//! ring, CPG, transmit — stays in the image, as it would with real hardware. It is built,
//! never run. No logging (neither `log` nor `defmt`): the stack's own size.
#![no_std]
#![no_main]

use core::hint::black_box;
use core::net::Ipv4Addr;

use totem_appliance::services::GroupName;
use totem_appliance::services::cpg::wire::CpgGuarantee;
use totem_appliance::smoltcp::iface::{Config as IfaceConfig, Interface, SocketSet, SocketStorage};
use totem_appliance::smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use totem_appliance::smoltcp::socket::udp;
use totem_appliance::smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};
use totem_appliance::totem_proto::NodeId;
use totem_appliance::totem_proto::time::Instant;
use totem_appliance::transport_smoltcp::{Mode, to_smoltcp_instant};
use totem_appliance::{AppEvent, Appliance, ApplianceConfig, Clock, Heap, Net, RingSeqStore};

/// A microcontroller-sized heap: the working set of a small ring plus messages of up to
/// [`MAX_MESSAGE`] bytes (see the appliance README for the measured peak).
const HEAP_SIZE: usize = 192 * 1024;

/// The largest message this firmware reassembles (every node's applications must stay
/// below it).
const MAX_MESSAGE: usize = 16 * 1024;

#[global_allocator]
static HEAP: Heap<HEAP_SIZE> = Heap::new();

/// Ethernet frame buffer of the stand-in MAC: MTU 1500 plus the header.
const FRAME: usize = 1514;

static NODES: [(NodeId, Ipv4Addr); 3] = [
    (NodeId(1), Ipv4Addr::new(10, 213, 5, 1)),
    (NodeId(2), Ipv4Addr::new(10, 213, 5, 2)),
    (NodeId(3), Ipv4Addr::new(10, 213, 5, 3)),
];

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // A real firmware logs and resets; a halt is enough to measure.
    loop {
        core::hint::spin_loop();
    }
}

/// The stand-in MAC: one receive and one transmit buffer, as DMA descriptors would be.
struct Mac {
    rx: [u8; FRAME],
    tx: [u8; FRAME],
}

struct Rx<'a>(&'a [u8]);
struct Tx<'a>(&'a mut [u8; FRAME]);

impl phy::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let r = f(&mut self.0[..len.min(FRAME)]);
        // "Start the DMA": the frame is observed.
        black_box(&*self.0);
        r
    }
}

impl Device for Mac {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: totem_appliance::smoltcp::time::Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        // The received length, as the MAC's descriptor would report it.
        let len = black_box(0_usize).min(FRAME);
        if len == 0 {
            return None;
        }
        let rx = black_box(&self.rx[..len]);
        Some((Rx(rx), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _: totem_appliance::smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME;
        caps
    }
}

/// A free-running microsecond timer.
struct Timer;

impl Clock for Timer {
    fn now(&mut self) -> Instant {
        Instant::from_micros(black_box(0))
    }
}

/// A flash word holding the ring seq.
struct Flash;

impl RingSeqStore for Flash {
    type Error = ();

    fn load(&mut self) -> Result<u64, ()> {
        Ok(black_box(0))
    }

    fn store(&mut self, seq: u64) -> Result<(), ()> {
        black_box(seq);
        Ok(())
    }
}

/// The reset entry: set up the stack, then run the driver loop for ever.
#[unsafe(no_mangle)]
pub extern "C" fn _start() -> ! {
    let mut mac = Mac {
        rx: [0; FRAME],
        tx: [0; FRAME],
    };
    let mut clock = Timer;
    let mut flash = Flash;
    let mac_addr = EthernetAddress([0x02, 0x00, 10, 213, 5, 3]);
    let mut iface = Interface::new(
        IfaceConfig::new(HardwareAddress::Ethernet(mac_addr)),
        &mut mac,
        to_smoltcp_instant(clock.now()),
    );
    iface.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::new(IpAddress::Ipv4(NODES[2].1), 24));
    });
    let mut sockets = [SocketStorage::EMPTY; 2];
    let mut rx_meta = [udp::PacketMetadata::EMPTY; 16];
    let mut rx_bytes = [0u8; 20 * 1024];
    let mut tx_meta = [udp::PacketMetadata::EMPTY; 16];
    let mut tx_bytes = [0u8; 20 * 1024];
    let net = Net {
        iface,
        device: mac,
        sockets: SocketSet::new(&mut sockets[..]),
        rx: udp::PacketBuffer::new(&mut rx_meta[..], &mut rx_bytes[..]),
        tx: udp::PacketBuffer::new(&mut tx_meta[..], &mut tx_bytes[..]),
    };
    let mode = Mode::Multicast(Ipv4Addr::new(239, 213, 5, 1));
    let mut config = ApplianceConfig::like_totemd(NodeId(3), "appliance", &NODES, mode);
    config.set_max_message_len(MAX_MESSAGE);
    config.ring.send_queue_bytes = 2 * MAX_MESSAGE;
    config.ring.retransmit_window = 256;
    let last = flash.load().unwrap_or(0);
    let Ok(mut app) = Appliance::new(&config, net, clock.now(), last) else {
        panic_halt()
    };
    let Ok(group) = GroupName::new(b"sensors") else {
        panic_halt()
    };
    let _ = app.join(&group);
    loop {
        if app.turn(&mut clock, &mut flash).is_err() {
            panic_halt();
        }
        while let Some(event) = app.poll_event() {
            if let AppEvent::Deliver { payload, .. } = event {
                black_box(payload);
            }
        }
        if black_box(false) {
            let _ = app.mcast(&group, CpgGuarantee::Agreed, black_box(b"reading"));
        }
        black_box(HEAP.stats());
        // A real firmware sleeps here (WFI) until the MAC's interrupt or the deadline.
    }
}

fn panic_halt() -> ! {
    loop {
        core::hint::spin_loop();
    }
}
