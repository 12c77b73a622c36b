//! Every timing constant of the protocol machinery, in one place: each says what waits for
//! it and why it has its value. Settings an operator may change (lifetimes, DPD, retransmission)
//! are configuration, not constants, and live with the configuration.

use std::time::Duration;

/// After a peer answered TEMPORARY_FAILURE (RFC 7296 §2.25) to our CREATE_CHILD_SA (a CHILD
/// or IKE SA rekey, a new CHILD SA), we try again this much later: the peer is finishing an
/// exchange of its own, which takes a round trip or two.
pub const TEMPORARY_FAILURE_RETRY: Duration = Duration::from_secs(1);

/// A replaced IKE SA (rekeyed, reauthenticated, or the loser of a simultaneous initiation)
/// waits this long for the peer's Delete before we delete it ourselves. As strongSwan's
/// uniqueness check: long enough for a Delete that needs a retransmission or two.
pub const REPLACED_GRACE: Duration = Duration::from_secs(10);

/// A failed reauthentication is tried again this much later (the old IKE SA keeps working
/// meanwhile, until its authentication expires).
pub const REAUTH_RETRY: Duration = Duration::from_secs(10);

/// How long an IKE SA must have been authenticated for a new SA from the same peer to count
/// as its replacement (a reauthentication). Younger ones come from the same start-up as the
/// new SA (both ends initiating at once) and are left to the duplicate rule, which both ends
/// apply alike.
pub const REPLACEABLE_AGE: Duration = Duration::from_secs(2);

/// When we answered the IKE_AUTH of the IKE SA that survives a simultaneous initiation, we
/// ask the peer whether it has that SA (a liveness check on it; its answer lets us delete
/// the duplicate) this much later, not at once: strongSwan ignores requests on an IKE SA it
/// initiated until it has read our IKE_AUTH answer, and its threads may take the two in the
/// wrong order — then only the retransmission a second later is answered. And if our answer
/// was lost, the check makes a meshsec peer ask again at once: by then more than
/// [`RESEND_INTERVAL`] has passed, so we answer that from our cache.
pub const SURVIVOR_CHECK_DELAY: Duration = Duration::from_millis(300);

/// The Delete of the loser of a simultaneous start goes again this soon if unanswered (not
/// after the usual retransmission timeout): that SA carries nothing, both ends hold the
/// survivor, and every second it lives on is a duplicate in `status`. Longer than a peer's
/// `RESEND_INTERVAL` plus `DELETE_ANSWER_DELAY`, so that a lost answer is sent again.
pub const DUPLICATE_DELETE_RETRY: Duration = Duration::from_millis(500);

/// How many times that Delete goes (one `DUPLICATE_DELETE_RETRY` apart) before the loser is
/// removed without the peer's answer, 1.5 s after the first: a meshsec peer deletes its
/// copy by the same rule from the same nonces anyway, and a peer without the rule
/// (strongSwan) gets three chances to hear it — all three lost is 1 in 1,000 at 10 % loss
/// (the old schedule ended the same way, after ~9 s).
pub const DUPLICATE_DELETE_TRIES: u32 = 3;

/// After our reauthentication, how long the old IKE SA lives on before its Delete: we seal on
/// the new CHILD SA at once, and packets already sealed on the old one (in our send queues, or
/// the peer's receive queues) still find it at the peer. Peers without an inbound grace of
/// their own (strongSwan removes an SA the moment it reads our Delete) lost one in 30,000 such
/// packets without it.
pub const DRAIN: Duration = Duration::from_secs(1);

/// How long the answer to a Delete that removes CHILD SAs is held back. We stop sealing on
/// them at once, but what we sealed just before may still be on its way or waiting in the
/// peer's ESP queue, and a peer may remove its inbound SAs the moment our answer comes:
/// strongSwan's userspace ESP (kernel-libipsec) handles ESP and IKE in different threads,
/// and seen here it dropped a packet we had sealed before answering (the last of the old SA,
/// found "not belonging to an installed SA") when the answer overtook it. RFC 7296 §1.4.1
/// sets no time for the answer; the peer's first retransmission comes seconds later.
pub const DELETE_ANSWER_DELAY: Duration = Duration::from_millis(50);

/// At most one INVALID_SPI notification per peer this often: a flood of ESP with unknown SPIs
/// costs one IKE exchange per second, not one per packet.
pub const INVALID_SPI_INTERVAL: Duration = Duration::from_secs(1);

/// How long a deleted CHILD SA's inbound half still opens packets: ESP the peer sealed just
/// before it switched to the new SA may still be in a socket queue (or reordered) when the
/// Delete is processed.
pub const INBOUND_GRACE: Duration = Duration::from_secs(2);

/// ESP that arrives for an SPI not installed yet waits this long for its SA (a peer may seal
/// with a new SA as soon as it has our answer, before we installed it), then counts as an
/// unknown SPI.
pub const PARKED_ESP_WAIT: Duration = Duration::from_millis(500);

/// First delay before initiating again after a failure; it doubles after each refusal, up to
/// [`MAX_BACKOFF`]. An unanswered attempt (an outage, not a mismatch) is retried after this
/// delay without growing it, so that tunnels return within seconds of the path.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Longest delay between two attempts with a peer that refuses us.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The through-tunnel check counts us as sending while our outbound ESP counters moved within
/// this long.
pub const SENDING_WINDOW: Duration = Duration::from_secs(2);

/// Granularity of the node's liveness looks (DPD, through-tunnel check, NAT keepalives): their
/// deadlines are rounded up to it so that an idle node with many peers wakes up at most once
/// per this long for them, however many peers are due.
pub const LIVENESS_GRANULARITY: Duration = Duration::from_secs(1);

/// A cached IKE response is sent again for a retransmitted request at most once per this
/// long: a copy of a request replayed by someone on the path cannot make us a packet pump
/// towards the peer (honest retransmissions come seconds apart, RFC 7296 §2.1).
pub const RESEND_INTERVAL: Duration = Duration::from_millis(250);

/// Refusals of unauthenticated initiators are logged at most once per source per this long
/// (and a few lines per this long in all); the rest are counted and summed up in the next line.
pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
