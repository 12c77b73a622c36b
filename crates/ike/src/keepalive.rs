//! NAT keepalives (RFC 3948 §2.3): behind a NAT, a one-octet 0xFF datagram to the peer's
//! NAT-T port every `nat_keepalive`, so that the NAT does not drop the mapping of an idle
//! tunnel. Only when our own address is translated (the peer's NAT-D hash of our address did
//! not match): ESP in UDP chosen without a NAT has no mapping to keep.

use std::collections::HashSet;
use std::time::Duration;

use meshsec_types::IkeSpi;

use crate::endpoint::Endpoint;
use crate::event::{Transmit, TransmitKind};
use crate::sa::Timestamp;
use crate::timers::SaTimer;

/// Keepalives of many IKE SAs due in the same granule go out together (one wakeup).
pub(crate) const KEEPALIVE_GRANULARITY: Duration = Duration::from_secs(1);

impl Endpoint {
    /// Sends the keepalives due on the IKE SAs in `due`.
    pub(crate) fn nat_keepalives(&mut self, now: Timestamp, due: &HashSet<IkeSpi>) {
        let Some(interval) = self.config.nat_keepalive else {
            return;
        };
        for spi in due {
            let timers = match self.sas.get(spi) {
                Some(sa) => sa.timers(&self.config),
                None => continue,
            };
            if timers.get(SaTimer::NatKeepalive).is_none_or(|t| t > now) {
                continue;
            }
            let Some(sa) = self.sas.get_mut(spi) else {
                continue;
            };
            sa.keepalive_at = Some((now + interval).on_grid(KEEPALIVE_GRANULARITY, now));
            let (src, dst) = (sa.local, sa.remote);
            self.transmits.push_back(Transmit {
                src,
                dst,
                payload: vec![0xff],
                kind: TransmitKind::NatKeepalive,
            });
        }
    }
}
