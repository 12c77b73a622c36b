//! The Traffic Selector payloads TSi and TSr (RFC 7296 §3.13).

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::codec::{Reader, Writer, count_u8};
use crate::error::{Error, Result};
use crate::payload::Bytes;
use crate::registry::TsType;

/// TS payload body: one or more selectors (their union is what the SA carries).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TsPayload<'a> {
    /// The selectors, in the sender's order (the first may be the packet that triggered it).
    pub selectors: Vec<TrafficSelector<'a>>,
}

/// One traffic selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrafficSelector<'a> {
    /// TS_IPV4_ADDR_RANGE or TS_IPV6_ADDR_RANGE.
    Addr(AddrSelector),
    /// Any other selector type (e.g. TS_SECLABEL), kept as it came.
    Other {
        /// The selector type.
        ts_type: TsType,
        /// The octet after the type (IP protocol for address ranges, reserved elsewhere).
        second_octet: u8,
        /// Everything after the Selector Length field.
        data: Bytes<'a>,
    },
}

/// An address range with an IP protocol and a port range; `start` and `end` are of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrSelector {
    /// IP protocol number; 0 means any.
    pub ip_protocol: u8,
    /// First port (0 with `end_port` 65535 means any).
    pub start_port: u16,
    /// Last port.
    pub end_port: u16,
    /// First address of the range.
    pub start: IpAddr,
    /// Last address of the range.
    pub end: IpAddr,
}

impl AddrSelector {
    /// Every port and protocol between two addresses.
    pub fn range(start: IpAddr, end: IpAddr) -> Self {
        AddrSelector {
            ip_protocol: 0,
            start_port: 0,
            end_port: u16::MAX,
            start,
            end,
        }
    }

    /// The selector type this range is encoded as.
    pub fn ts_type(&self) -> TsType {
        match self.start {
            IpAddr::V4(_) => TsType::IPV4_ADDR_RANGE,
            IpAddr::V6(_) => TsType::IPV6_ADDR_RANGE,
        }
    }
}

const IPV4_SELECTOR_LEN: usize = 16;
const IPV6_SELECTOR_LEN: usize = 40;

impl<'a> TrafficSelector<'a> {
    fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "traffic selector");
        let ts_type = TsType(r.u8()?);
        let second_octet = r.u8()?;
        let _len = r.u16()?;
        let bad_len = |problem| Error::BadLength {
            what: "traffic selector",
            problem,
        };
        let ports = |r: &mut Reader<'a>| -> Result<(u16, u16)> { Ok((r.u16()?, r.u16()?)) };
        match ts_type {
            TsType::IPV4_ADDR_RANGE => {
                if bytes.len() != IPV4_SELECTOR_LEN {
                    return Err(bad_len("TS_IPV4_ADDR_RANGE must be 16 octets"));
                }
                let (start_port, end_port) = ports(&mut r)?;
                let start = Ipv4Addr::from(r.array::<4>()?);
                let end = Ipv4Addr::from(r.array::<4>()?);
                Ok(TrafficSelector::Addr(AddrSelector {
                    ip_protocol: second_octet,
                    start_port,
                    end_port,
                    start: start.into(),
                    end: end.into(),
                }))
            }
            TsType::IPV6_ADDR_RANGE => {
                if bytes.len() != IPV6_SELECTOR_LEN {
                    return Err(bad_len("TS_IPV6_ADDR_RANGE must be 40 octets"));
                }
                let (start_port, end_port) = ports(&mut r)?;
                let start = Ipv6Addr::from(r.array::<16>()?);
                let end = Ipv6Addr::from(r.array::<16>()?);
                Ok(TrafficSelector::Addr(AddrSelector {
                    ip_protocol: second_octet,
                    start_port,
                    end_port,
                    start: start.into(),
                    end: end.into(),
                }))
            }
            _ => Ok(TrafficSelector::Other {
                ts_type,
                second_octet,
                data: Cow::Borrowed(r.take_rest()),
            }),
        }
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        let start = w.position();
        match self {
            TrafficSelector::Addr(a) => {
                w.u8(a.ts_type().0);
                w.u8(a.ip_protocol);
                let len = w.reserve_u16(start, "traffic selector");
                w.u16(a.start_port);
                w.u16(a.end_port);
                match (a.start, a.end) {
                    (IpAddr::V4(s), IpAddr::V4(e)) => {
                        w.bytes(&s.octets());
                        w.bytes(&e.octets());
                    }
                    (IpAddr::V6(s), IpAddr::V6(e)) => {
                        w.bytes(&s.octets());
                        w.bytes(&e.octets());
                    }
                    _ => {
                        return Err(Error::BadValue {
                            what: "traffic selector",
                            problem: "start and end address of different families",
                        });
                    }
                }
                w.patch_len_u16(len)
            }
            TrafficSelector::Other {
                ts_type,
                second_octet,
                data,
            } => {
                w.u8(ts_type.0);
                w.u8(*second_octet);
                let len = w.reserve_u16(start, "traffic selector");
                w.bytes(data);
                w.patch_len_u16(len)
            }
        }
    }
}

impl<'a> TsPayload<'a> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut r = Reader::new(bytes, "TS payload");
        let declared = usize::from(r.u8()?);
        let _reserved = r.take(3)?;
        let mut selectors = Vec::new();
        while !r.is_empty() {
            let ts = r.take_length_prefixed(2, 4, "traffic selector")?;
            selectors.push(TrafficSelector::parse(ts)?);
        }
        if selectors.len() != declared {
            return Err(Error::BadValue {
                what: "TS payload",
                problem: "Number of TSs does not match the selectors present",
            });
        }
        Ok(TsPayload { selectors })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(count_u8(self.selectors.len(), "TS payload Number of TSs")?);
        w.bytes(&[0, 0, 0]);
        for ts in &self.selectors {
            ts.emit(w)?;
        }
        Ok(())
    }
}
