//! Writes IKE/ESP datagrams into a classic pcap file (LINKTYPE_RAW: IPv4/IPv6 + UDP), with
//! correct IP and UDP checksums, so tshark can dissect what we emit.

use std::net::IpAddr;

/// One UDP datagram between two addresses.
pub struct Datagram {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub sport: u16,
    pub dport: u16,
    pub payload: Vec<u8>,
}

const LINKTYPE_RAW: u32 = 101;

fn sum16(data: &[u8], mut acc: u32) -> u32 {
    for c in data.chunks(2) {
        let word = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        acc += u32::from(word);
    }
    acc
}

fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

fn packet(d: &Datagram) -> Vec<u8> {
    let udp_len = 8 + d.payload.len();
    let mut udp = Vec::with_capacity(udp_len);
    udp.extend_from_slice(&d.sport.to_be_bytes());
    udp.extend_from_slice(&d.dport.to_be_bytes());
    udp.extend_from_slice(&(udp_len as u16).to_be_bytes());
    udp.extend_from_slice(&[0, 0]);
    udp.extend_from_slice(&d.payload);
    let (src, dst) = match (d.src, d.dst) {
        (IpAddr::V4(s), IpAddr::V4(t)) => (s.octets().to_vec(), t.octets().to_vec()),
        (IpAddr::V6(s), IpAddr::V6(t)) => (s.octets().to_vec(), t.octets().to_vec()),
        _ => panic!("mixed address families"),
    };
    // Pseudo-header: addresses, protocol 17, UDP length.
    let mut acc = sum16(&src, 0);
    acc = sum16(&dst, acc);
    acc += 17 + udp_len as u32;
    let mut ck = fold(sum16(&udp, acc));
    if ck == 0 {
        ck = 0xffff;
    }
    udp[6..8].copy_from_slice(&ck.to_be_bytes());
    let mut ip = Vec::new();
    if d.src.is_ipv4() {
        let total = (20 + udp_len) as u16;
        ip.extend_from_slice(&[0x45, 0]);
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[0, 1, 0x40, 0, 64, 17, 0, 0]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
        let ck = fold(sum16(&ip, 0));
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
    } else {
        ip.extend_from_slice(&[0x60, 0, 0, 0]);
        ip.extend_from_slice(&(udp_len as u16).to_be_bytes());
        ip.extend_from_slice(&[17, 64]);
        ip.extend_from_slice(&src);
        ip.extend_from_slice(&dst);
    }
    ip.extend_from_slice(&udp);
    ip
}

/// The pcap file holding `datagrams` in order, one second apart.
pub fn pcap(datagrams: &[&Datagram]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&LINKTYPE_RAW.to_le_bytes());
    for (i, d) in datagrams.iter().enumerate() {
        let p = packet(d);
        out.extend_from_slice(&(1_700_000_000 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&p);
    }
    out
}
