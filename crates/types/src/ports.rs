//! The UDP ports of IKE and ESP in UDP.

/// IKE (RFC 7296 §2): the first IKE_SA_INIT goes to this port.
pub const IKE_PORT: u16 = 500;

/// NAT traversal (RFC 3948, RFC 7296 §2.23): IKE after floating (behind a non-ESP marker)
/// and ESP in UDP.
pub const NAT_T_PORT: u16 = 4500;
