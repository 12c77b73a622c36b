//! AUTH (RFC 7296 §2.15, §3.6–3.8): what we send to prove who we are — a MAC with the
//! pre-shared key, or a signature with our certificate chain in CERT payloads (RFC 7427
//! method 14, RFC 4754 methods 9–11) — and the check of what the peer sends, one place for
//! both roles.

use meshsec_crypto::sig::{self, LegacySignature, SignatureScheme};
use meshsec_crypto::{Prf, auth};
use meshsec_pki::{CertError, KeyAlgorithm, PeerCertificate};
use meshsec_wire::codec::Writer;
use meshsec_wire::payload::{AuthPayload, CertPayload, Identity, Payload, PayloadBody};
use meshsec_wire::registry::{AuthMethod, CertEncoding, HashAlgorithm};
use std::borrow::Cow;

use crate::config::{LocalAuth, PeerAuth, PeerConfig};
use crate::endpoint::Endpoint;
use crate::event::{Failure, Side};
use crate::sa::{IkeSa, PeerCertRecord, Role};

/// The ID payload body (`IDi'`/`IDr'`), as AUTH covers it.
fn id_body(id: &Identity<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = id.emit(&mut Writer::new(&mut out));
    out
}

/// Most intermediate certificates we take from a peer (webpki builds no deeper path).
const MAX_INTERMEDIATES: usize = 5;

/// The RFC 7427 scheme we sign with: the one our key makes whose hash the peer announced;
/// for RSA keys, RSASSA-PSS (RFC 8247 prefers it to PKCS#1 v1.5).
fn scheme_for(key: sig::KeyKind, peer_hashes: &[HashAlgorithm]) -> Option<SignatureScheme> {
    use SignatureScheme as S;
    let candidates: &[SignatureScheme] = match key {
        sig::KeyKind::Ed25519 => &[S::Ed25519],
        sig::KeyKind::EcdsaP256 => &[S::EcdsaP256Sha256],
        sig::KeyKind::EcdsaP384 => &[S::EcdsaP384Sha384],
        sig::KeyKind::EcdsaP521 => &[S::EcdsaP521Sha512],
        sig::KeyKind::Rsa(_) => &[S::RsaPssSha256, S::RsaPssSha384, S::RsaPssSha512],
    };
    candidates
        .iter()
        .copied()
        .find(|s| peer_hashes.contains(&s.hash()))
}

/// Whether an AUTH signature scheme fits the certificate's key.
fn fits(scheme: SignatureScheme, key: KeyAlgorithm) -> bool {
    use SignatureScheme as S;
    match key {
        KeyAlgorithm::Rsa => scheme.is_rsa(),
        KeyAlgorithm::RsaPss => scheme.is_rsa_pss(),
        KeyAlgorithm::EcdsaP256 => scheme == S::EcdsaP256Sha256,
        KeyAlgorithm::EcdsaP384 => scheme == S::EcdsaP384Sha384,
        KeyAlgorithm::EcdsaP521 => scheme == S::EcdsaP521Sha512,
        KeyAlgorithm::Ed25519 => scheme == S::Ed25519,
    }
}

/// Our CERTREQ for a peer that must show a certificate (RFC 7296 §3.7): the SHA-1 hashes of
/// our CAs' public keys, so that it picks a certificate we can validate.
pub(crate) fn certreq(cfg: &PeerConfig) -> Option<Payload<'static>> {
    let PeerAuth::Certificate(trust) = &cfg.peer_auth else {
        return None;
    };
    Some(Payload::new(PayloadBody::CertReq(CertPayload {
        encoding: CertEncoding::X509_SIGNATURE,
        data: Cow::Owned(trust.certreq()),
    })))
}

impl Endpoint {
    /// Seconds since the Unix epoch at `now_hint`, for certificate validity; an error if the
    /// caller never told us the wall clock.
    pub(crate) fn unix_now(&self) -> Result<i64, Failure> {
        let secs = i64::try_from(self.now_hint.since_epoch().as_secs()).unwrap_or(i64::MAX);
        self.unix_offset
            .map(|o| o.saturating_add(secs))
            .ok_or_else(|| Failure::Local {
                detail: "the wall clock is unknown (Endpoint::set_wall_clock was never called): \
                         no certificate can be checked"
                    .into(),
            })
    }

    /// The octets an AUTH payload covers (RFC 7296 §2.15), for our side (`ours`) or the
    /// peer's: that side's IKE_SA_INIT message, the other side's nonce, and prf(SK_p of that
    /// side, its ID payload body). Returns the PRF with them.
    fn signed_octets(&self, sa: &IkeSa, ours: bool, id: &Identity<'_>) -> Option<(Prf, Vec<u8>)> {
        let c = sa.crypto.as_ref()?;
        let initiator_side = (sa.role == Role::Initiator) == ours;
        let (sk_p, other_nonce) = if initiator_side {
            (&c.keys.sk_pi, &sa.nr)
        } else {
            (&c.keys.sk_pr, &sa.ni)
        };
        let message = if ours { &sa.our_init } else { &sa.peer_init };
        let octets = auth::signed_octets(
            message,
            other_nonce,
            c.suite.prf,
            sk_p.expose(),
            &id_body(id),
        );
        Some((c.suite.prf, octets))
    }

    /// Our CERT payloads (certificate authentication) and AUTH payload for `cfg` on `sa`.
    pub(crate) fn our_auth_payloads(
        &self,
        sa: &IkeSa,
        cfg: &PeerConfig,
    ) -> Result<Vec<Payload<'static>>, Failure> {
        let local = |detail: String| Failure::Local { detail };
        let (prf, octets) = self
            .signed_octets(sa, true, &cfg.local_id)
            .ok_or_else(|| local("no keys to compute our AUTH with".into()))?;
        let credential = match &cfg.local_auth {
            LocalAuth::Psk => {
                if cfg.psk.is_empty() {
                    return Err(local(
                        "no pre-shared key is configured for this peer".into(),
                    ));
                }
                let mac = auth::psk_auth(prf, cfg.psk.expose(), &octets);
                return Ok(vec![Payload::new(PayloadBody::Auth(AuthPayload {
                    method: AuthMethod::SHARED_KEY_MIC,
                    data: Cow::Owned(mac.expose().to_vec()),
                }))]);
            }
            LocalAuth::Certificate(c) => c,
        };
        let key = &credential.key;
        let (method, data) = match scheme_for(key.kind(), &sa.peer_hashes) {
            Some(scheme) => {
                let signature = key
                    .sign(scheme, &octets)
                    .map_err(|e| local(e.to_string()))?;
                let data = sig::encode_digital_signature(scheme, &signature);
                (AuthMethod::DIGITAL_SIGNATURE, data)
            }
            // The peer announced no hash our key can use (or no RFC 7427 at all): ECDSA keys
            // have their own methods (RFC 4754). RSA method 1 would need SHA-1 signing, which
            // aws-lc-rs does not offer, and Ed25519 exists only in RFC 7427: those keys send
            // RFC 7427 anyway (strongSwan verifies it even with signature_authentication = no,
            // tested), and a peer that cannot says AUTHENTICATION_FAILED.
            None => match key.sign_legacy(&octets) {
                Some(signed) => {
                    let (legacy, signature) = signed.map_err(|e| local(e.to_string()))?;
                    let method = match legacy {
                        LegacySignature::EcdsaP256Sha256 => AuthMethod::ECDSA_SHA256_P256,
                        LegacySignature::EcdsaP384Sha384 => AuthMethod::ECDSA_SHA384_P384,
                        LegacySignature::EcdsaP521Sha512 => AuthMethod::ECDSA_SHA512_P521,
                        LegacySignature::RsaPkcs1Sha1 => AuthMethod::RSA_SIG,
                    };
                    (method, signature)
                }
                None => {
                    let scheme = scheme_for(
                        key.kind(),
                        &[HashAlgorithm::SHA2_256, HashAlgorithm::IDENTITY],
                    )
                    .ok_or_else(|| {
                        local(format!("no signature scheme for a {} key", key.kind()))
                    })?;
                    let signature = key
                        .sign(scheme, &octets)
                        .map_err(|e| local(e.to_string()))?;
                    (
                        AuthMethod::DIGITAL_SIGNATURE,
                        sig::encode_digital_signature(scheme, &signature),
                    )
                }
            },
        };
        let mut out: Vec<Payload<'static>> = credential
            .chain
            .iter()
            .map(|der| {
                Payload::new(PayloadBody::Cert(CertPayload {
                    encoding: CertEncoding::X509_SIGNATURE,
                    data: Cow::Owned(der.clone()),
                }))
            })
            .collect();
        out.push(Payload::new(PayloadBody::Auth(AuthPayload {
            method,
            data: Cow::Owned(data),
        })));
        Ok(out)
    }

    /// Checks the peer's AUTH (and its certificate, when it must show one) in `payloads` for
    /// `peer_id`: `Some` record when it authenticated with a certificate.
    pub(crate) fn verify_peer(
        &self,
        sa: &IkeSa,
        cfg: &PeerConfig,
        peer_id: &Identity<'_>,
        payloads: &[Payload<'_>],
    ) -> Result<Option<PeerCertRecord>, Failure> {
        let auth = payloads
            .iter()
            .find_map(|p| match &p.body {
                PayloadBody::Auth(a) => Some(a),
                _ => None,
            })
            .ok_or(Failure::Protocol {
                detail: "IKE_AUTH without an AUTH payload".into(),
            })?;
        let (prf, octets) =
            self.signed_octets(sa, false, peer_id)
                .ok_or_else(|| Failure::Local {
                    detail: "no keys to check the peer's AUTH with".into(),
                })?;
        match (&cfg.peer_auth, auth.method) {
            (PeerAuth::Psk { also }, AuthMethod::SHARED_KEY_MIC) => {
                // An empty key is no key: anyone could compute a MAC with it.
                let matches = std::iter::once(&cfg.psk)
                    .chain(also)
                    .filter(|k| !k.is_empty())
                    .any(|k| auth::verify_psk_auth(prf, k.expose(), &octets, &auth.data).is_ok());
                if matches {
                    Ok(None)
                } else {
                    Err(Failure::AuthenticationFailed { side: Side::Local })
                }
            }
            (PeerAuth::Psk { .. }, used) => Err(Failure::AuthMethodMismatch {
                required: "a pre-shared key",
                used,
            }),
            (PeerAuth::Certificate(_), AuthMethod::SHARED_KEY_MIC) => {
                Err(Failure::AuthMethodMismatch {
                    required: "a certificate",
                    used: AuthMethod::SHARED_KEY_MIC,
                })
            }
            (PeerAuth::Certificate(trust), method) => {
                // The peer's own certificate and at most MAX_INTERMEDIATES others, each once:
                // an unauthenticated sender gets no more path building than a real chain
                // needs.
                let mut chain: Vec<&[u8]> = Vec::new();
                for p in payloads {
                    if let PayloadBody::Cert(c) = &p.body
                        && c.encoding == CertEncoding::X509_SIGNATURE
                        && !chain.contains(&c.data.as_ref())
                    {
                        if chain.len() > MAX_INTERMEDIATES {
                            return Err(Failure::Certificate(CertError::ChainTooLong {
                                max: MAX_INTERMEDIATES,
                            }));
                        }
                        chain.push(c.data.as_ref());
                    }
                }
                let cert = trust
                    .verify(&chain, peer_id, self.unix_now()?)
                    .map_err(Failure::Certificate)?;
                verify_signature(&cert, method, &octets, &auth.data)?;
                Ok(Some(PeerCertRecord {
                    chain: chain.iter().map(|c| c.to_vec()).collect(),
                    cert,
                }))
            }
        }
    }

    /// The IKE SAs with `peer` whose authentication no longer holds under its current
    /// configuration (after a reload changed its credentials), with the reason: a peer
    /// certificate that does not validate any more (revoked by a new CRL, its CA removed,
    /// expired). Keys and methods that changed leave SAs alone: they matter at the next
    /// authentication, which is what makes rotation and migration gap-free.
    pub(crate) fn invalidated_sas(
        &self,
        peer: crate::event::PeerId,
    ) -> Vec<(meshsec_types::IkeSpi, Failure)> {
        let Some(cfg) = self.peers.get(peer) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (spi, sa) in self.sas.iter() {
            if sa.peer != Some(peer) || sa.state != crate::sa::State::Established {
                continue;
            }
            let verdict = match (&cfg.peer_auth, &sa.peer_certificate) {
                (PeerAuth::Certificate(trust), Some(record)) => {
                    let chain: Vec<&[u8]> = record.chain.iter().map(Vec::as_slice).collect();
                    // Without a clock nothing can be judged: the SA stays.
                    self.unix_now().map_or(Ok(()), |now| {
                        trust
                            .verify(&chain, &cfg.remote_id, now)
                            .map(|_| ())
                            .map_err(Failure::Certificate)
                    })
                }
                // A change of method (PSK to certificates or back) is like a new key: the next
                // authentication uses it, so that hosts can migrate one after the other.
                _ => Ok(()),
            };
            if let Err(f) = verdict {
                out.push((*spi, f));
            }
        }
        out
    }
}

/// Checks the peer's AUTH signature with its certificate's key.
fn verify_signature(
    cert: &PeerCertificate,
    method: AuthMethod,
    octets: &[u8],
    data: &[u8],
) -> Result<(), Failure> {
    let invalid = |detail: String| Failure::SignatureInvalid {
        subject: cert.subject.clone(),
        detail,
    };
    let key = cert.algorithm;
    let legacy = match (method, key) {
        (AuthMethod::DIGITAL_SIGNATURE, _) => None,
        (AuthMethod::RSA_SIG, KeyAlgorithm::Rsa) => Some(LegacySignature::RsaPkcs1Sha1),
        (AuthMethod::ECDSA_SHA256_P256, KeyAlgorithm::EcdsaP256) => {
            Some(LegacySignature::EcdsaP256Sha256)
        }
        (AuthMethod::ECDSA_SHA384_P384, KeyAlgorithm::EcdsaP384) => {
            Some(LegacySignature::EcdsaP384Sha384)
        }
        (AuthMethod::ECDSA_SHA512_P521, KeyAlgorithm::EcdsaP521) => {
            Some(LegacySignature::EcdsaP521Sha512)
        }
        (m, k) => {
            return Err(invalid(format!(
                "AUTH method {} ({}) does not fit its {k:?} key",
                m.0,
                crate::event::auth_method_name(m)
            )));
        }
    };
    if let Some(legacy) = legacy {
        return legacy
            .verify(&cert.public_key, octets, data)
            .map_err(|e| invalid(e.to_string()));
    }
    let (scheme, signature) =
        sig::decode_digital_signature(data).map_err(|e| invalid(e.to_string()))?;
    if !fits(scheme, key) {
        return Err(invalid(format!(
            "the AUTH signature is {scheme:?}, which a {key:?} key cannot make"
        )));
    }
    sig::verify(scheme, &cert.public_key, octets, signature).map_err(|e| invalid(e.to_string()))
}
