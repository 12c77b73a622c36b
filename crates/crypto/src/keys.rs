//! The IKEv2 key schedule (RFC 7296 §2.13, §2.14, §2.17, §2.18).

use crate::encr::Encr;
use crate::error::Result;
use crate::integ::Integ;
use crate::prf::Prf;
use crate::secret::Secret;

/// The algorithms of an IKE SA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IkeSuite {
    /// Encryption of the SK payload.
    pub encr: Encr,
    /// PRF for the key schedule and AUTH.
    pub prf: Prf,
    /// Integrity of the SK payload (`None` with an AEAD cipher).
    pub integ: Option<Integ>,
}

impl IkeSuite {
    fn integ_key_len(&self) -> usize {
        self.integ.map_or(0, Integ::key_len)
    }
}

/// The seven secrets of an IKE SA (RFC 7296 §2.14).
#[derive(Debug, Clone)]
pub struct IkeKeys {
    /// SK_d: derives CHILD SA keys and the next IKE SA's SKEYSEED.
    pub sk_d: Secret,
    /// SK_ai: integrity, initiator → responder (empty with AEAD).
    pub sk_ai: Secret,
    /// SK_ar: integrity, responder → initiator (empty with AEAD).
    pub sk_ar: Secret,
    /// SK_ei: encryption key (| salt for AEAD), initiator → responder.
    pub sk_ei: Secret,
    /// SK_er: encryption key (| salt for AEAD), responder → initiator.
    pub sk_er: Secret,
    /// SK_pi: the initiator's AUTH computation.
    pub sk_pi: Secret,
    /// SK_pr: the responder's AUTH computation.
    pub sk_pr: Secret,
}

/// SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296 §2.14).
pub fn skeyseed(prf: Prf, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Secret {
    let key = Secret::new([ni, nr].concat());
    prf.compute(key.expose(), &[g_ir])
}

/// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) for a rekeyed IKE SA (RFC 7296 §2.18),
/// computed with the old IKE SA's PRF. Without a new KE (not allowed for IKE rekeys by
/// RFC 7296, but kept general) `g_ir` is empty.
pub fn rekey_skeyseed(old_prf: Prf, old_sk_d: &[u8], g_ir: &[u8], ni: &[u8], nr: &[u8]) -> Secret {
    old_prf.compute(old_sk_d, &[g_ir, ni, nr])
}

/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
pub fn ike_keys(
    suite: &IkeSuite,
    skeyseed: &Secret,
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
) -> Result<IkeKeys> {
    let prf_len = suite.prf.output_len();
    let a = suite.integ_key_len();
    let e = suite.encr.keymat_len();
    let total = 3 * prf_len + 2 * a + 2 * e;
    let dkm = suite.prf.plus(
        skeyseed.expose(),
        &[ni, nr, &spi_i.to_be_bytes(), &spi_r.to_be_bytes()],
        total,
    )?;
    let mut rest = dkm.expose();
    Ok(IkeKeys {
        sk_d: Secret::split_prefix(&mut rest, prf_len),
        sk_ai: Secret::split_prefix(&mut rest, a),
        sk_ar: Secret::split_prefix(&mut rest, a),
        sk_ei: Secret::split_prefix(&mut rest, e),
        sk_er: Secret::split_prefix(&mut rest, e),
        sk_pi: Secret::split_prefix(&mut rest, prf_len),
        sk_pr: Secret::split_prefix(&mut rest, prf_len),
    })
}

/// The keys of a CHILD SA pair (RFC 7296 §2.17), named by the direction they protect.
#[derive(Debug, Clone)]
pub struct ChildKeys {
    /// Encryption key (| salt) for traffic from the exchange's initiator.
    pub encr_i: Secret,
    /// Integrity key for traffic from the exchange's initiator (empty with AEAD).
    pub integ_i: Secret,
    /// Encryption key (| salt) for traffic from the exchange's responder.
    pub encr_r: Secret,
    /// Integrity key for traffic from the exchange's responder (empty with AEAD).
    pub integ_r: Secret,
}

/// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr), split as encr_i | integ_i | encr_r | integ_r.
///
/// "i" and "r" are the initiator and responder of the exchange that created the CHILD SA
/// (which may differ from the IKE SA's original roles); `g_ir` is the PFS shared secret of a
/// CREATE_CHILD_SA with KE payloads.
pub fn child_keys(
    prf: Prf,
    sk_d: &[u8],
    g_ir: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    encr: Encr,
    integ: Option<Integ>,
) -> Result<ChildKeys> {
    let e = encr.keymat_len();
    let a = integ.map_or(0, Integ::key_len);
    let keymat = prf.plus(sk_d, &[g_ir.unwrap_or_default(), ni, nr], 2 * (e + a))?;
    let mut rest = keymat.expose();
    Ok(ChildKeys {
        encr_i: Secret::split_prefix(&mut rest, e),
        integ_i: Secret::split_prefix(&mut rest, a),
        encr_r: Secret::split_prefix(&mut rest, e),
        integ_r: Secret::split_prefix(&mut rest, a),
    })
}
