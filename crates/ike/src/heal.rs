//! Healing one-sided ("half") CHILD SAs (RFC 7296 §3.10.1 INVALID_SPI): ESP arriving with an
//! SPI we do not know, from a peer we share an IKE SA with, means the peer still sends on a
//! CHILD SA whose inbound half we lost. We tell it so inside the authenticated IKE SA
//! (never in the clear, rate-limited); on receipt, the named CHILD SA is replaced: a new
//! one is created, then the broken one deleted.

use meshsec_types::{IkeSpi, InboundSpi, OutboundSpi};

use meshsec_wire::payload::{Notify, Payload, PayloadBody};
use meshsec_wire::registry::{NotifyType, ProtocolId};

use crate::endpoint::{ApiMisuse, Endpoint};
use crate::event::{Event, PeerId};
use crate::request::InfoPurpose;
use crate::sa::{ChildState, Task, Timestamp};

use meshsec_types::timing::INVALID_SPI_INTERVAL;

impl Endpoint {
    /// ESP with unknown SPI `spi` came from `peer`: tells the peer inside the IKE SA (at most
    /// once a second per peer). Returns whether a notification was queued.
    pub fn notify_invalid_spi(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        spi: InboundSpi,
    ) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(ike) = self.established_sa(peer) else {
            return Ok(false);
        };
        if self
            .invalid_spi_sent
            .get(&peer)
            .is_some_and(|t| now < *t + INVALID_SPI_INTERVAL)
        {
            return Ok(false);
        }
        self.invalid_spi_sent.insert(peer, now);
        Ok(self.queue_task(now, ike, Task::InvalidSpi(spi)))
    }

    pub(crate) fn start_invalid_spi(
        &mut self,
        now: Timestamp,
        spi: IkeSpi,
        esp_spi: InboundSpi,
    ) -> bool {
        let mut n = Notify::new(NotifyType::INVALID_SPI, esp_spi.to_be_bytes().to_vec());
        n.protocol = ProtocolId::ESP;
        let inner = [Payload::new(PayloadBody::Notify(n))];
        self.send_informational(now, spi, &inner, InfoPurpose::Liveness)
    }

    /// The peer says it received ESP on `data` (our outbound SPI) and has no such SA.
    pub(crate) fn peer_reported_invalid_spi(&mut self, now: Timestamp, spi: IkeSpi, data: &[u8]) {
        let Ok(esp) = <[u8; 4]>::try_from(data).map(|b| OutboundSpi::new(u32::from_be_bytes(b)))
        else {
            // Not four octets: an INVALID_SPI that names nothing.
            self.errors.count(crate::error::ErrorKind::InvalidSyntax);
            return;
        };
        let Some(sa) = self.sas.get_mut(&spi) else {
            return;
        };
        let Some(peer) = sa.peer else { return };
        let Some(broken) = sa
            .children
            .iter()
            .find(|c| c.outbound == esp && c.state != ChildState::Deleting)
            .map(|c| c.inbound)
        else {
            return; // not (or no longer) ours: nothing to heal
        };
        // A replacement first (make-before-break), then the broken one goes.
        for task in [Task::DeleteChild(broken), Task::CreateChild] {
            if !sa.tasks.contains(&task) {
                sa.tasks.push_front(task);
            }
        }
        self.event(Event::HealingChildSa {
            peer,
            inbound_spi: broken,
            outbound_spi: esp,
        });
        self.run_tasks(now, spi);
    }

    /// Deletes the CHILD SA with inbound SPI `inbound` of `peer` (e.g. one the data plane lost
    /// a half of), keeping the IKE SA.
    pub fn delete_child_sa_spi(
        &mut self,
        now: Timestamp,
        peer: PeerId,
        inbound: InboundSpi,
    ) -> Result<bool, ApiMisuse> {
        self.peers.get(peer).ok_or(ApiMisuse::UnknownPeer(peer))?;
        let Some(spi) = self.established_sa(peer) else {
            return Ok(false);
        };
        let known = self
            .sas
            .get(&spi)
            .is_some_and(|sa| sa.children.iter().any(|c| c.inbound == inbound));
        Ok(known && self.queue_task(now, spi, Task::DeleteChild(inbound)))
    }
}
