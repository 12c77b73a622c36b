//! The request window of an IKE SA (RFC 7296 §2.3): we keep one request in flight, and the
//! exchanges we want to start wait here as tasks until the window is free.

use meshsec_types::IkeSpi;

use crate::endpoint::Endpoint;
use crate::event::PeerId;
use crate::sa::{State, Task, Timestamp};

impl Endpoint {
    /// The established IKE SA with `peer` (our SPI) — the newest if several.
    pub(crate) fn established_sa(&self, peer: PeerId) -> Option<IkeSpi> {
        self.sas
            .iter()
            .filter(|(_, sa)| {
                sa.peer == Some(peer) && sa.state == State::Established && !sa.is_replaced()
            })
            .max_by_key(|(_, sa)| sa.established_at)
            .map(|(spi, _)| *spi)
    }

    /// Queues `task` on IKE SA `spi` and starts it if the request window is free.
    pub(crate) fn queue_task(&mut self, now: Timestamp, spi: IkeSpi, task: Task) -> bool {
        let Some(sa) = self.sas.get_mut(&spi) else {
            return false;
        };
        if !sa.tasks.contains(&task) {
            sa.tasks.push_back(task);
        }
        self.run_tasks(now, spi);
        true
    }

    /// Starts the next queued exchange of IKE SA `spi` while the window is free.
    pub(crate) fn run_tasks(&mut self, now: Timestamp, spi: IkeSpi) {
        loop {
            let Some(sa) = self.sas.get_mut(&spi) else {
                return;
            };
            if sa.outstanding.is_some() || sa.state != State::Established || now < sa.tasks_after {
                return;
            }
            let Some(task) = sa.tasks.pop_front() else {
                return;
            };
            let started = match task {
                Task::RekeyChild(inbound) => self.start_child_exchange(now, spi, Some(inbound)),
                Task::CreateChild => self.start_child_exchange(now, spi, None),
                Task::DeleteChild(inbound) => self.start_delete_child(now, spi, inbound),
                Task::Liveness => self.start_liveness(now, spi),
                Task::DeleteIke => self.start_delete_ike(now, spi),
                Task::InvalidSpi(esp) => self.start_invalid_spi(now, spi, esp),
                Task::RekeyIke => self.start_ike_rekey(now, spi),
                Task::Reauthenticate => self.start_reauth(now, spi),
            };
            if started {
                return;
            }
        }
    }
}
