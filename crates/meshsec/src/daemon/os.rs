//! The OS layer: the few system calls the standard library and socket2 do not offer —
//! batched datagram I/O (`recvmmsg`/`sendmmsg`) and `poll` — each `unsafe` block with its
//! `// SAFETY:` justification. Everything here works on borrowed file descriptors and caller
//! buffers; nothing allocates per packet.
#![allow(unsafe_code)]

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::RawFd;

/// Most datagrams moved by one `recvmmsg`/`sendmmsg`.
pub const BATCH: usize = 64;

/// Waits until one of `fds` is readable or `timeout_ms` passes (negative: no limit); returns
/// which are readable.
pub fn wait_readable(fds: &[RawFd], timeout_ms: i32, ready: &mut [bool]) -> io::Result<()> {
    let mut pfds = [libc::pollfd {
        fd: -1,
        events: 0,
        revents: 0,
    }; 8];
    let n = fds.len().min(pfds.len());
    for (p, fd) in pfds.iter_mut().zip(fds) {
        p.fd = *fd;
        p.events = libc::POLLIN;
    }
    // SAFETY: `pfds` is a valid array of `n` (<= its length) initialized pollfd structs that
    // lives for the duration of the call.
    let rc = unsafe { libc::poll(pfds.as_mut_ptr(), n as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            ready.iter_mut().for_each(|r| *r = false);
            return Ok(());
        }
        return Err(e);
    }
    for (r, p) in ready.iter_mut().zip(pfds.iter().take(n)) {
        *r = p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) != 0;
    }
    Ok(())
}

fn to_sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in.
            unsafe {
                std::ptr::write(
                    std::ptr::from_mut(&mut storage).cast::<libc::sockaddr_in>(),
                    sin,
                );
            }
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than and suitably aligned for sockaddr_in6.
            unsafe {
                std::ptr::write(
                    std::ptr::from_mut(&mut storage).cast::<libc::sockaddr_in6>(),
                    sin6,
                );
            }
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn from_sockaddr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(s.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (family AF_INET) into the storage.
            let sin = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::V4(SocketAddrV4::new(
                ip,
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the kernel wrote a sockaddr_in6 (family AF_INET6) into the storage.
            let sin6 = unsafe { &*std::ptr::from_ref(s).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// One received datagram: its length in its buffer, its source and (with packet info on)
/// the local address it was sent to.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Octets received.
    pub len: usize,
    /// Sender (for raw sockets the port is 0).
    pub from: SocketAddr,
    /// Our address it arrived at (IP_PKTINFO / IPV6_PKTINFO): a socket bound to the
    /// wildcard address otherwise cannot tell which of our addresses the peer used.
    pub to: Option<IpAddr>,
    /// With UDP GRO: the buffer holds consecutive datagrams of this size (the last may be
    /// shorter); 0 when it holds one datagram.
    pub segment: usize,
}

impl Received {
    /// Nothing received yet.
    pub const EMPTY: Received = Received {
        len: 0,
        from: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)),
        to: None,
        segment: 0,
    };
}

/// `UDP_SEGMENT` / `UDP_GRO` socket options (linux/udp.h).
const UDP_SEGMENT: libc::c_int = 103;
const UDP_GRO: libc::c_int = 104;
/// Room for the control messages of one datagram: a GRO segment size (an `int`) and packet
/// info (`in6_pktinfo`, the larger of the two families').
const CMSG_ROOM: usize = 96;

/// The daemon's effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Asks the kernel for the local address of every datagram received on `fd` (IP_PKTINFO,
/// or IPV6_RECVPKTINFO for an IPv6 socket).
pub fn enable_pktinfo(fd: RawFd, v6: bool) -> io::Result<()> {
    let on: libc::c_int = 1;
    let (level, name) = if v6 {
        (libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)
    } else {
        (libc::IPPROTO_IP, libc::IP_PKTINFO)
    };
    // SAFETY: `on` is a valid int that outlives the call; its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Lets the kernel coalesce consecutive datagrams of one flow into one receive (UDP GRO).
pub fn enable_udp_gro(fd: RawFd) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a valid int that outlives the call; its size is passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_UDP,
            UDP_GRO,
            std::ptr::from_ref(&on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `data`, the concatenation of datagrams of `segment` octets each (the last may be
/// shorter), to `dst` in one system call: the kernel cuts it (UDP GSO).
pub fn send_gso(fd: RawFd, data: &[u8], segment: u16, dst: &SocketAddr) -> io::Result<usize> {
    let (mut name, name_len) = to_sockaddr(dst);
    let mut iov = libc::iovec {
        iov_base: data.as_ptr().cast_mut().cast(),
        iov_len: data.len(),
    };
    let mut control = [0u64; CMSG_ROOM / 8];
    // SAFETY: msghdr is plain old data; all-zero is valid.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    msg.msg_name = std::ptr::from_mut(&mut name).cast();
    msg.msg_namelen = name_len;
    msg.msg_iov = std::ptr::from_mut(&mut iov);
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE only computes a size.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(std::mem::size_of::<u16>() as u32) } as usize;
    // SAFETY: msg_control points at `control`, large enough (CMSG_ROOM >= CMSG_SPACE(2)) and
    // 8-aligned; CMSG_FIRSTHDR therefore returns a pointer inside it, and CMSG_DATA one
    // with room for the u16 written.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null() {
            return Err(io::Error::other("no room for the GSO control message"));
        }
        (*cmsg).cmsg_level = libc::SOL_UDP;
        (*cmsg).cmsg_type = UDP_SEGMENT;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<u16>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<u16>(), segment);
    }
    // SAFETY: every pointer in `msg` refers to locals (`name`, `iov`, `control`) or to
    // `data`, all alive for the call; the kernel only reads them.
    let rc = unsafe { libc::sendmsg(fd, &msg, 0) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(usize::try_from(rc).unwrap_or(0))
}

/// The GRO segment size and the local address in a received message's control data.
fn control_data(msg: &libc::msghdr) -> (usize, Option<IpAddr>) {
    let (mut segment, mut to) = (0, None);
    // SAFETY: the kernel filled msg_control/msg_controllen; CMSG_FIRSTHDR/NXTHDR stay within
    // them and return null at the end; each payload is read unaligned, with the type its
    // level and type announce.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(msg);
        while !cmsg.is_null() {
            let (level, ty) = ((*cmsg).cmsg_level, (*cmsg).cmsg_type);
            let data = libc::CMSG_DATA(cmsg);
            if level == libc::SOL_UDP && ty == UDP_GRO {
                let v = std::ptr::read_unaligned(data.cast::<libc::c_int>());
                segment = usize::try_from(v).unwrap_or(0);
            } else if level == libc::IPPROTO_IP && ty == libc::IP_PKTINFO {
                let info = std::ptr::read_unaligned(data.cast::<libc::in_pktinfo>());
                to = Some(IpAddr::V4(Ipv4Addr::from(
                    info.ipi_addr.s_addr.to_ne_bytes(),
                )));
            } else if level == libc::IPPROTO_IPV6 && ty == libc::IPV6_PKTINFO {
                let info = std::ptr::read_unaligned(data.cast::<libc::in6_pktinfo>());
                to = Some(IpAddr::V6(Ipv6Addr::from(info.ipi6_addr.s6_addr)));
            }
            cmsg = libc::CMSG_NXTHDR(msg, cmsg);
        }
    }
    (segment, to)
}

/// Receives one datagram without blocking (for the IKE sockets): its length at the start of
/// `buf`, its source and the local address it was sent to.
pub fn recv_one(fd: RawFd, buf: &mut [u8]) -> io::Result<Received> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: sockaddr_storage and msghdr are plain old data; all-zero is valid.
    let mut name: libc::sockaddr_storage = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: as above.
    let mut msg: libc::msghdr = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut control = [0u64; CMSG_ROOM / 8];
    msg.msg_name = std::ptr::from_mut(&mut name).cast();
    msg.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = std::ptr::from_mut(&mut iov);
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = CMSG_ROOM;
    // SAFETY: every pointer in `msg` refers to locals (`name`, `iov`, `control`) or to `buf`
    // (exclusively borrowed), all alive for the call; the sizes given are theirs.
    let rc = unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
    let (segment, to) = control_data(&msg);
    Ok(Received {
        len: if truncated {
            0
        } else {
            usize::try_from(rc).unwrap_or(0)
        },
        from: from_sockaddr(&name).ok_or_else(|| io::Error::other("no sender address"))?,
        to,
        segment,
    })
}

/// Receives up to `bufs.len()` (at most [`BATCH`]) datagrams without blocking; each lands at
/// offset `headroom` of its buffer (room for headers written in front of it later). Returns
/// how many; `out[i]` describes `bufs[i]`. Truncated datagrams are reported with `len` 0
/// (they cannot be valid).
pub fn recv_batch(
    fd: RawFd,
    bufs: &mut [Vec<u8>],
    out: &mut [Received],
    headroom: usize,
) -> io::Result<usize> {
    let n = bufs.len().min(out.len()).min(BATCH);
    let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
    // SAFETY: sockaddr_storage and mmsghdr are plain old data; all-zero is valid.
    let mut names: [libc::sockaddr_storage; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    // SAFETY: as above.
    let mut msgs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
    let mut controls = [[0u64; CMSG_ROOM / 8]; BATCH];
    // Only the headers actually prepared are handed to the kernel.
    let mut prepared = 0;
    for (i, buf) in bufs.iter_mut().take(n).enumerate() {
        let Some(room) = buf.get_mut(headroom..) else {
            break;
        };
        let iov = libc::iovec {
            iov_base: room.as_mut_ptr().cast(),
            iov_len: room.len(),
        };
        let (Some(slot), Some(msg), Some(name)) =
            (iovs.get_mut(i), msgs.get_mut(i), names.get_mut(i))
        else {
            break;
        };
        let iov = slot.write(iov);
        msg.msg_hdr.msg_iov = std::ptr::from_mut(iov);
        msg.msg_hdr.msg_iovlen = 1;
        msg.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
        msg.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        if let Some(control) = controls.get_mut(i) {
            msg.msg_hdr.msg_control = control.as_mut_ptr().cast();
            msg.msg_hdr.msg_controllen = CMSG_ROOM;
        }
        prepared = i + 1;
    }
    if prepared == 0 {
        return Ok(0);
    }
    // SAFETY: the first `prepared` mmsghdrs point at live iovecs over `bufs` (exclusively
    // borrowed for this call), at `names` and at `controls`; all outlive the call.
    let rc = unsafe {
        libc::recvmmsg(
            fd,
            msgs.as_mut_ptr(),
            prepared as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = usize::try_from(rc).unwrap_or(0);
    for ((o, msg), name) in out.iter_mut().zip(&msgs).zip(&names).take(got) {
        let truncated = msg.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        let (segment, to) = control_data(&msg.msg_hdr);
        *o = Received {
            len: if truncated { 0 } else { msg.msg_len as usize },
            from: from_sockaddr(name).unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0))),
            to,
            segment,
        };
    }
    Ok(got)
}

/// Sends each `(datagram, destination)` with as few `sendmmsg` calls as possible. Returns how many were handed to the kernel (the rest failed, e.g. a full
/// socket buffer: ESP is datagram traffic, so they are dropped and counted by the caller).
pub fn send_batch(fd: RawFd, packets: &[(&[u8], SocketAddr)]) -> usize {
    let mut sent = 0;
    for chunk in packets.chunks(BATCH) {
        let mut iovs: [MaybeUninit<libc::iovec>; BATCH] = [const { MaybeUninit::uninit() }; BATCH];
        // SAFETY: plain old data; all-zero is valid.
        let mut names: [libc::sockaddr_storage; BATCH] =
            unsafe { MaybeUninit::zeroed().assume_init() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { MaybeUninit::zeroed().assume_init() };
        for (i, (data, dst)) in chunk.iter().enumerate() {
            let (Some(slot), Some(msg), Some(name)) =
                (iovs.get_mut(i), msgs.get_mut(i), names.get_mut(i))
            else {
                break;
            };
            let (storage, len) = to_sockaddr(dst);
            *name = storage;
            let iov = slot.write(libc::iovec {
                iov_base: data.as_ptr().cast_mut().cast(),
                iov_len: data.len(),
            });
            msg.msg_hdr.msg_iov = std::ptr::from_mut(iov);
            msg.msg_hdr.msg_iovlen = 1;
            msg.msg_hdr.msg_name = std::ptr::from_mut(name).cast();
            msg.msg_hdr.msg_namelen = len;
        }
        let mut off = 0;
        while off < chunk.len() {
            let Some(rest) = msgs.get_mut(off..chunk.len()) else {
                break;
            };
            // SAFETY: the mmsghdrs in `rest` point at iovecs over the caller's packet slices
            // (only read by the kernel) and at `names`, all alive for the call.
            let rc =
                unsafe { libc::sendmmsg(fd, rest.as_mut_ptr(), rest.len() as libc::c_uint, 0) };
            if rc <= 0 {
                // Skip the datagram the kernel refused and go on with the rest.
                off += 1;
                continue;
            }
            let n = usize::try_from(rc).unwrap_or(0);
            sent += n;
            off += n;
        }
    }
    sent
}

/// The IP addresses configured on this host's interfaces (to find this host in a mesh
/// inventory); empty if they cannot be read.
pub fn host_addresses() -> Vec<IpAddr> {
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: `list` is a valid out-pointer; on success it receives a linked list that we
    // free with freeifaddrs below and do not use afterwards.
    if unsafe { libc::getifaddrs(&raw mut list) } != 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a non-null node of the list getifaddrs returned, alive until
        // freeifaddrs.
        let ifa = unsafe { &*cur };
        if !ifa.ifa_addr.is_null() {
            // SAFETY: ifa_addr is non-null and points at a sockaddr whose family tells its
            // real type and size.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: family AF_INET: the sockaddr is a sockaddr_in.
                let sin = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in>() };
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 {
                // SAFETY: family AF_INET6: the sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*ifa.ifa_addr.cast::<libc::sockaddr_in6>() };
                out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        cur = ifa.ifa_next;
    }
    // SAFETY: `list` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// Restores the default action of SIGPIPE (the Rust runtime ignores it): a CLI command whose
/// reader went away (`meshsec status | head -1`) then ends quietly, as Unix tools do, instead
/// of panicking on the failed write. Not for the daemon, whose writes to a closed control
/// connection must stay errors.
pub fn default_sigpipe() {
    // SAFETY: signal(2) with SIG_DFL installs no handler; it only changes this process's
    // disposition of SIGPIPE, before any thread that could be writing starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
