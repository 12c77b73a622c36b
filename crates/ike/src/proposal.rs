//! Proposals: what we accept, written the way strongSwan users write it
//! (`aes256gcm16-prfsha256-x25519`), and the responder's selection among what a peer offers
//! (RFC 7296 §2.7, §3.3) — with an explanation naming the first mismatch when nothing fits.

use core::fmt;
use std::borrow::Cow;

use meshsec_wire::payload::{Proposal, Transform};
use meshsec_wire::registry::{EncrId, EsnId, IntegId, KeMethod, PrfId, ProtocolId, TransformType};

/// An encryption transform with its key length in bits (where the algorithm has one).
pub type EncrSpec = (EncrId, Option<u16>);

/// One proposal of ours: for each transform type, the algorithms we accept, in our order of
/// preference. An empty list means "this type is absent" (e.g. INTEG with AEAD ciphers, KE in
/// an ESP proposal without PFS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalSpec {
    /// IKE or ESP.
    pub protocol: ProtocolId,
    /// Encryption algorithms.
    pub encr: Vec<EncrSpec>,
    /// Integrity algorithms.
    pub integ: Vec<IntegId>,
    /// PRFs (IKE only).
    pub prf: Vec<PrfId>,
    /// Key exchange methods (IKE: required; ESP: PFS groups, or empty for none).
    pub ke: Vec<KeMethod>,
    /// ESN choices (ESP only).
    pub esn: Vec<EsnId>,
}

/// Why a proposal string is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposalSyntaxError {
    /// The proposal string.
    pub proposal: String,
    /// What is wrong, and what was expected.
    pub problem: String,
}

impl fmt::Display for ProposalSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "proposal {:?}: {}", self.proposal, self.problem)
    }
}

impl std::error::Error for ProposalSyntaxError {}

enum Keyword {
    Encr(EncrSpec),
    Integ(IntegId),
    Prf(PrfId),
    Ke(KeMethod),
    Esn(EsnId),
}

/// strongSwan's keywords (a subset: the algorithms meshsec implements).
fn keyword(word: &str) -> Option<Keyword> {
    use Keyword::*;
    Some(match word {
        "aes128" => Encr((EncrId::AES_CBC, Some(128))),
        "aes256" => Encr((EncrId::AES_CBC, Some(256))),
        "aes128gcm16" | "aes128gcm128" => Encr((EncrId::AES_GCM_16, Some(128))),
        "aes256gcm16" | "aes256gcm128" => Encr((EncrId::AES_GCM_16, Some(256))),
        "chacha20poly1305" => Encr((EncrId::CHACHA20_POLY1305, None)),
        "null" => Encr((EncrId::NULL, None)),
        "sha1" | "sha" => Integ(IntegId::HMAC_SHA1_96),
        "sha256" | "sha2_256" => Integ(IntegId::HMAC_SHA2_256_128),
        "sha384" | "sha2_384" => Integ(IntegId::HMAC_SHA2_384_192),
        "sha512" | "sha2_512" => Integ(IntegId::HMAC_SHA2_512_256),
        "prfsha1" => Prf(PrfId::HMAC_SHA1),
        "prfsha256" => Prf(PrfId::HMAC_SHA2_256),
        "prfsha384" => Prf(PrfId::HMAC_SHA2_384),
        "prfsha512" => Prf(PrfId::HMAC_SHA2_512),
        "x25519" | "curve25519" => Ke(KeMethod::CURVE25519),
        "ecp256" => Ke(KeMethod::ECP_256),
        "ecp384" => Ke(KeMethod::ECP_384),
        "ecp521" => Ke(KeMethod::ECP_521),
        "modp2048" => Ke(KeMethod::MODP_2048),
        "modp3072" => Ke(KeMethod::MODP_3072),
        "modp4096" => Ke(KeMethod::MODP_4096),
        "modp1024" => Ke(KeMethod::MODP_1024),
        "esn" => Esn(EsnId::YES),
        "noesn" => Esn(EsnId::NO),
        _ => return None,
    })
}

/// The PRF strongSwan derives from an integrity algorithm when an IKE proposal names none.
fn prf_for_integ(i: IntegId) -> Option<PrfId> {
    Some(match i {
        IntegId::HMAC_SHA1_96 => PrfId::HMAC_SHA1,
        IntegId::HMAC_SHA2_256_128 => PrfId::HMAC_SHA2_256,
        IntegId::HMAC_SHA2_384_192 => PrfId::HMAC_SHA2_384,
        IntegId::HMAC_SHA2_512_256 => PrfId::HMAC_SHA2_512,
        _ => return None,
    })
}

fn is_aead(e: EncrId) -> bool {
    matches!(e, EncrId::AES_GCM_16 | EncrId::CHACHA20_POLY1305)
}

impl ProposalSpec {
    /// Parses one strongSwan-style proposal, e.g. `aes256gcm16-prfsha256-x25519` (IKE) or
    /// `aes128-sha256-modp3072`, `aes256gcm16-esn` (ESP).
    pub fn parse(text: &str, protocol: ProtocolId) -> Result<ProposalSpec, ProposalSyntaxError> {
        let err = |problem: String| ProposalSyntaxError {
            proposal: text.to_string(),
            problem,
        };
        let mut p = ProposalSpec {
            protocol,
            encr: Vec::new(),
            integ: Vec::new(),
            prf: Vec::new(),
            ke: Vec::new(),
            esn: Vec::new(),
        };
        for word in text.split('-').map(str::trim) {
            let kw = keyword(&word.to_ascii_lowercase()).ok_or_else(|| {
                err(format!(
                    "unknown algorithm {word:?} (expected e.g. aes256gcm16, chacha20poly1305, \
                     aes256, sha256, prfsha256, x25519, ecp256, modp3072, esn)"
                ))
            })?;
            match kw {
                Keyword::Encr(e) => p.encr.push(e),
                Keyword::Integ(i) => p.integ.push(i),
                Keyword::Prf(x) => p.prf.push(x),
                Keyword::Ke(k) => p.ke.push(k),
                Keyword::Esn(e) => p.esn.push(e),
            }
        }
        if p.encr.is_empty() {
            return Err(err("no encryption algorithm".into()));
        }
        let aead = p.encr.iter().all(|(e, _)| is_aead(*e));
        let mixed = p.encr.iter().any(|(e, _)| is_aead(*e)) && !aead;
        if mixed {
            return Err(err(
                "AEAD and non-AEAD encryption cannot share one proposal (split it in two)".into(),
            ));
        }
        if aead && !p.integ.is_empty() {
            return Err(err("an AEAD cipher takes no integrity algorithm".into()));
        }
        if !aead && p.integ.is_empty() {
            return Err(err(
                "a non-AEAD cipher needs an integrity algorithm (e.g. sha256)".into(),
            ));
        }
        if protocol == ProtocolId::IKE {
            if p.prf.is_empty() {
                p.prf = p.integ.iter().filter_map(|i| prf_for_integ(*i)).collect();
            }
            if p.prf.is_empty() {
                return Err(err("an IKE proposal needs a PRF (e.g. prfsha256)".into()));
            }
            if p.ke.is_empty() {
                return Err(err(
                    "an IKE proposal needs a key exchange method (e.g. x25519)".into(),
                ));
            }
            if !p.esn.is_empty() {
                return Err(err("esn/noesn apply to ESP proposals only".into()));
            }
        } else {
            if !p.prf.is_empty() {
                return Err(err("PRFs apply to IKE proposals only".into()));
            }
            if p.esn.is_empty() {
                p.esn.push(EsnId::NO);
            }
        }
        Ok(p)
    }

    /// The same proposal without key exchange methods: the first CHILD SA, negotiated inside
    /// IKE_AUTH, never has its own key exchange (RFC 7296 §1.2), whatever PFS group the
    /// configuration names for later CHILD SAs.
    pub fn without_ke(&self) -> ProposalSpec {
        ProposalSpec {
            ke: Vec::new(),
            ..self.clone()
        }
    }

    /// The SA payload proposal offering these transforms.
    pub fn to_proposal(&self, number: u8, spi: Vec<u8>) -> Proposal<'static> {
        let mut transforms = Vec::new();
        transforms.extend(self.encr.iter().map(|(e, bits)| Transform::encr(*e, *bits)));
        transforms.extend(self.prf.iter().map(|p| Transform::prf(*p)));
        transforms.extend(self.integ.iter().map(|i| Transform::integ(*i)));
        transforms.extend(self.ke.iter().map(|k| Transform::ke(*k)));
        transforms.extend(self.esn.iter().map(|e| Transform::esn(*e)));
        Proposal {
            number,
            protocol: self.protocol,
            spi: Cow::Owned(spi),
            transforms,
        }
    }
}

/// What the responder chose: one algorithm per transform type present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    /// The peer's proposal number (echoed in the response).
    pub number: u8,
    /// The peer's SPI from that proposal.
    pub spi: Vec<u8>,
    /// Encryption.
    pub encr: EncrSpec,
    /// Integrity (none with AEAD).
    pub integ: Option<IntegId>,
    /// PRF (IKE only).
    pub prf: Option<PrfId>,
    /// Key exchange method (none for ESP without PFS).
    pub ke: Option<KeMethod>,
    /// ESN (ESP only).
    pub esn: Option<EsnId>,
}

impl Chosen {
    /// The single-transform proposal a responder sends back (RFC 7296 §2.7).
    pub fn to_proposal(&self, protocol: ProtocolId, our_spi: Vec<u8>) -> Proposal<'static> {
        let spec = ProposalSpec {
            protocol,
            encr: vec![self.encr],
            integ: self.integ.into_iter().collect(),
            prf: self.prf.into_iter().collect(),
            ke: self.ke.into_iter().collect(),
            esn: self.esn.into_iter().collect(),
        };
        spec.to_proposal(self.number, our_spi)
    }

    /// The chosen transforms in strongSwan's notation (status displays, logs).
    pub fn describe(&self, protocol: ProtocolId) -> String {
        describe(&self.to_proposal(protocol, Vec::new()))
    }
}

/// The transform types in the order mismatches are reported.
const TYPES: [TransformType; 5] = [
    TransformType::ENCR,
    TransformType::INTEG,
    TransformType::PRF,
    TransformType::KE,
    TransformType::ESN,
];

fn type_name(t: TransformType) -> &'static str {
    match t {
        TransformType::ENCR => "encryption algorithm",
        TransformType::INTEG => "integrity algorithm",
        TransformType::PRF => "PRF",
        TransformType::KE => "DH group / key exchange method",
        TransformType::ESN => "extended sequence numbers",
        _ => {
            "a transform type or attribute we do not support (e.g. RFC 9370 additional key exchanges)"
        }
    }
}

/// Why no proposal was chosen: what each side had, and where the closest pair first differed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoProposalChosen {
    /// The peer's proposals, strongSwan notation.
    pub offered: Vec<String>,
    /// Ours, strongSwan notation.
    pub accepted: Vec<String>,
    /// The first transform type that did not match in the closest pair.
    pub first_mismatch: &'static str,
}

impl fmt::Display for NoProposalChosen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "NO_PROPOSAL_CHOSEN: peer offered [{}]; we accept [{}]; first mismatch: {}",
            self.offered.join(", "),
            self.accepted.join(", "),
            self.first_mismatch
        )
    }
}

/// One algorithm's name in strongSwan's notation (`AES_GCM_16_256`, `PRF_HMAC_SHA2_256`).
fn transform_name(t: &Transform<'_>) -> String {
    match t.ty {
        TransformType::ENCR => match t.key_length() {
            Some(bits) => format!("{}_{bits}", t.encr_id()),
            None => t.encr_id().to_string(),
        },
        TransformType::INTEG => t.integ_id().to_string(),
        TransformType::PRF => format!("PRF_{}", t.prf_id()),
        TransformType::KE => t.ke_method().to_string(),
        TransformType::ESN => match EsnId(t.id) {
            EsnId::YES => "ESN".into(),
            _ => "NO_EXT_SEQ".into(),
        },
        other => format!("{other}:{}", t.id),
    }
}

/// A proposal in strongSwan's notation, e.g. `AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519`.
pub fn describe(p: &Proposal<'_>) -> String {
    p.transforms
        .iter()
        .map(transform_name)
        .collect::<Vec<_>>()
        .join("/")
}

/// Chooses, in *our* order of preference, the first of our proposals that one of the peer's
/// proposals satisfies, taking within each type our most preferred algorithm the peer offers.
pub fn select(ours: &[ProposalSpec], offered: &[Proposal<'_>]) -> Result<Chosen, NoProposalChosen> {
    for spec in ours {
        for p in offered.iter().filter(|p| p.protocol == spec.protocol) {
            if let Ok(chosen) = match_one(spec, p) {
                return Ok(chosen);
            }
        }
    }
    // Explain with the pair whose first mismatch comes latest (the "closest" one).
    let mut first_mismatch = TYPES[0];
    let mut best = 0;
    for spec in ours {
        for p in offered {
            // An unsupported type ranks last: the pair agreed on everything else.
            let (at, t) = match match_one(spec, p) {
                Err(t) => (TYPES.iter().position(|x| *x == t).unwrap_or(TYPES.len()), t),
                Ok(_) => continue,
            };
            if at >= best {
                best = at;
                first_mismatch = t;
            }
        }
    }
    Err(NoProposalChosen {
        offered: offered.iter().map(describe).collect(),
        accepted: ours
            .iter()
            .map(|s| describe(&s.to_proposal(0, Vec::new())))
            .collect(),
        first_mismatch: if offered
            .iter()
            .all(|p| ours.iter().all(|s| s.protocol != p.protocol))
        {
            "protocol"
        } else {
            type_name(first_mismatch)
        },
    })
}

/// Matches one of our specs against one offered proposal; on failure returns the first
/// transform type (in report order) that has no common algorithm.
fn match_one(spec: &ProposalSpec, p: &Proposal<'_>) -> Result<Chosen, TransformType> {
    let offered = |ty: TransformType| p.transforms_of(ty).collect::<Vec<_>>();
    let encr = spec
        .encr
        .iter()
        .find(|(id, bits)| {
            offered(TransformType::ENCR)
                .iter()
                .any(|t| t.encr_id() == *id && t.key_length() == *bits)
        })
        .copied();
    let Some(encr) = encr else {
        return Err(TransformType::ENCR);
    };
    // A type we list must be matched; a type we leave empty must be absent, or offered with
    // NONE among its choices (RFC 7296 §3.3.6: e.g. optional PFS, KE {NONE, ECP_256}, which
    // strongSwan and OpenIKED can be configured to send): we choose NONE.
    fn pick<T: Copy + PartialEq>(
        ours: &[T],
        theirs: &[u16],
        to_id: impl Fn(T) -> u16,
        none: Option<u16>,
    ) -> Result<Option<T>, ()> {
        if ours.is_empty() {
            return if theirs.is_empty() || none.is_some_and(|n| theirs.contains(&n)) {
                Ok(None)
            } else {
                Err(())
            };
        }
        ours.iter()
            .copied()
            .find(|o| theirs.contains(&to_id(*o)))
            .map(Some)
            .ok_or(())
    }
    let ids = |ty| offered(ty).iter().map(|t| t.id).collect::<Vec<u16>>();
    let integ = pick(
        &spec.integ,
        &ids(TransformType::INTEG),
        |i: IntegId| i.0,
        Some(0),
    )
    .map_err(|_| TransformType::INTEG)?;
    let prf = pick(&spec.prf, &ids(TransformType::PRF), |x: PrfId| x.0, None)
        .map_err(|_| TransformType::PRF)?;
    let ke = pick(
        &spec.ke,
        &ids(TransformType::KE),
        |k: KeMethod| k.0,
        Some(0),
    )
    .map_err(|_| TransformType::KE)?;
    let esn = pick(&spec.esn, &ids(TransformType::ESN), |e: EsnId| e.0, None)
        .map_err(|_| TransformType::ESN)?;
    // RFC 7296 §3.3.6: a transform type we do not know or an attribute other than Key
    // Length makes the proposal unacceptable — ignoring it would accept a proposal that
    // demands more than we do — unless, like an optional key exchange, NONE is among the
    // choices of that type (RFC 9370's additional key exchanges, types 6-12: we choose
    // NONE and leave the type out of our answer).
    let understood = |t: &Transform<'_>| {
        let type_known = TYPES.contains(&t.ty) || p.transforms_of(t.ty).any(|x| x.id == 0);
        type_known
            && t.attributes.iter().all(|a| {
                matches!(a, meshsec_wire::payload::TransformAttribute::Tv { ty, .. }
                    if *ty == meshsec_wire::registry::TransformAttrType::KEY_LENGTH)
            })
    };
    if let Some(t) = p.transforms.iter().find(|t| !understood(t)) {
        return Err(t.ty);
    }
    Ok(Chosen {
        number: p.number,
        spi: p.spi.to_vec(),
        encr,
        integ,
        prf,
        ke,
        esn,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ike(s: &str) -> ProposalSpec {
        ProposalSpec::parse(s, ProtocolId::IKE).unwrap()
    }

    fn esp(s: &str) -> ProposalSpec {
        ProposalSpec::parse(s, ProtocolId::ESP).unwrap()
    }

    #[test]
    fn parses_strongswan_syntax_and_fills_in_defaults() {
        let p = ike("aes256gcm16-prfsha256-x25519");
        assert_eq!(p.encr, vec![(EncrId::AES_GCM_16, Some(256))]);
        assert_eq!(
            (p.prf.clone(), p.ke.clone()),
            (vec![PrfId::HMAC_SHA2_256], vec![KeMethod::CURVE25519])
        );
        assert!(p.integ.is_empty());
        // The PRF follows the integrity algorithm when not given.
        let p = ike("aes128-sha256-modp3072");
        assert_eq!(p.prf, vec![PrfId::HMAC_SHA2_256]);
        assert_eq!(esp("aes256gcm16").esn, vec![EsnId::NO]);
        assert_eq!(esp("aes256gcm16-ecp256-esn").ke, vec![KeMethod::ECP_256]);
        assert_eq!(
            describe(&ike("chacha20poly1305-prfsha512-ecp256").to_proposal(1, vec![])),
            "CHACHA20_POLY1305/PRF_HMAC_SHA2_512/ECP_256"
        );
    }

    #[test]
    fn bad_proposals_say_what_is_expected() {
        for (text, needle) in [
            ("aes256gcm16-prfsha256", "key exchange"),
            ("aes256-x25519", "integrity"),
            (
                "aes256gcm16-sha256-x25519",
                "AEAD cipher takes no integrity",
            ),
            (
                "aes256gcm17-prfsha256-x25519",
                "unknown algorithm \"aes256gcm17\"",
            ),
            ("prfsha256-x25519", "no encryption"),
        ] {
            let e = ProposalSpec::parse(text, ProtocolId::IKE).unwrap_err();
            assert!(e.to_string().contains(needle), "{text}: {e}");
        }
        let e = ProposalSpec::parse("aes256gcm16-prfsha256", ProtocolId::ESP).unwrap_err();
        assert!(e.to_string().contains("IKE proposals only"), "{e}");
    }

    #[test]
    fn a_proposal_demanding_an_unknown_transform_type_is_unacceptable() {
        // An additional key exchange (RFC 9370, type 6) we cannot do: refused, not ignored.
        let mut offered = ike("aes256gcm16-prfsha256-x25519").to_proposal(1, vec![]);
        offered
            .transforms
            .push(Transform::new(TransformType(6), KeMethod::CURVE25519.0));
        let ours = [ike("aes256gcm16-prfsha256-x25519")];
        let e = select(&ours, std::slice::from_ref(&offered)).unwrap_err();
        assert!(e.to_string().contains("we do not support"), "{e}");
        // Offered with NONE among its choices, it is optional: we choose NONE.
        offered.transforms.push(Transform::new(TransformType(6), 0));
        assert!(select(&ours, &[offered]).is_ok());
        // A cipher mismatch is still named as such.
        let mut other = ike("aes128-sha256-x25519").to_proposal(1, vec![]);
        other
            .transforms
            .push(Transform::new(TransformType(6), KeMethod::CURVE25519.0));
        let e = select(&ours, &[other]).unwrap_err();
        assert!(e.to_string().contains("encryption algorithm"), "{e}");
    }

    #[test]
    fn optional_pfs_is_answered_without_a_key_exchange() {
        // The peer offers KE {ECP_256, NONE} for a CHILD SA (PFS optional); we use none.
        let mut offered = esp("aes256gcm16-ecp256").to_proposal(1, vec![0, 0, 0, 1]);
        offered
            .transforms
            .push(meshsec_wire::payload::Transform::new(TransformType::KE, 0));
        let c = select(&[esp("aes256gcm16")], &[offered.clone()]).unwrap();
        assert_eq!(c.ke, None);
        // Without NONE among them, a key exchange we do not do is still refused.
        offered.transforms.pop();
        assert!(select(&[esp("aes256gcm16")], &[offered]).is_err());
    }

    #[test]
    fn responder_preference_wins() {
        // The peer prefers CBC; we prefer GCM; both offered: we pick GCM.
        let offered = [
            ike("aes128-sha256-modp3072").to_proposal(1, vec![]),
            ike("aes256gcm16-prfsha256-ecp256-x25519").to_proposal(2, vec![]),
        ];
        let ours = [
            ike("aes256gcm16-prfsha256-x25519-ecp256"),
            ike("aes128-sha256-modp3072"),
        ];
        let c = select(&ours, &offered).unwrap();
        assert_eq!(c.number, 2);
        assert_eq!(c.encr, (EncrId::AES_GCM_16, Some(256)));
        assert_eq!(
            c.ke,
            Some(KeMethod::CURVE25519),
            "our preferred group among theirs"
        );
        let back = c.to_proposal(ProtocolId::IKE, vec![]);
        assert_eq!(
            describe(&back),
            "AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519"
        );
    }

    #[test]
    fn esp_pfs_and_esn_must_agree() {
        let ours = [esp("aes256gcm16-noesn")];
        // Peer wants PFS: not acceptable to a no-PFS policy.
        let offered = [esp("aes256gcm16-x25519").to_proposal(1, vec![1, 2, 3, 4])];
        let e = select(&ours, &offered).unwrap_err();
        assert_eq!(e.first_mismatch, "DH group / key exchange method");
        let offered = [esp("aes256gcm16-esn-noesn").to_proposal(1, vec![1, 2, 3, 4])];
        let c = select(&ours, &offered).unwrap();
        assert_eq!((c.esn, c.spi), (Some(EsnId::NO), vec![1, 2, 3, 4]));
    }

    #[test]
    fn no_proposal_chosen_names_the_first_mismatch() {
        let ours = [
            ike("aes256gcm16-prfsha256-x25519"),
            ike("aes128-sha256-modp3072"),
        ];
        let offered = [ike("aes128-sha1-modp1024").to_proposal(1, vec![])];
        let e = select(&ours, &offered).unwrap_err();
        assert_eq!(
            e.to_string(),
            "NO_PROPOSAL_CHOSEN: peer offered [AES_CBC_128/PRF_HMAC_SHA1/HMAC_SHA1_96/MODP_1024]; \
             we accept [AES_GCM_16_256/PRF_HMAC_SHA2_256/CURVE25519, \
             AES_CBC_128/PRF_HMAC_SHA2_256/HMAC_SHA2_256_128/MODP_3072]; \
             first mismatch: integrity algorithm"
        );
        let offered = [ike("aes256gcm16-prfsha256-ecp384").to_proposal(1, vec![])];
        assert_eq!(
            select(&ours, &offered).unwrap_err().first_mismatch,
            "DH group / key exchange method"
        );
    }
}
