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

/// The RFC 7427 scheme we sign with: the one our key makes whose hash the peer announced;
/// for RSA keys, RSASSA-PSS (RFC 8247 prefers it to PKCS#1 v1.5).
fn scheme_for(key: sig::KeyKind, peer_hashes: &[HashAlgorithm]) -> Option<SignatureScheme> {
    use SignatureScheme as S;
    let candidates: &[SignatureScheme] = match key {
        sig::KeyKind::Ed25519 => &[S::Ed25519],
        sig::KeyKind::EcdsaP256 => &[S::EcdsaP256Sha256],
        sig::KeyKind::EcdsaP384 => &[S::EcdsaP384Sha384],
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
        KeyAlgorithm::Rsa => matches!(
            scheme,
            S::RsaPkcs1Sha256
                | S::RsaPkcs1Sha384
                | S::RsaPkcs1Sha512
                | S::RsaPssSha256
                | S::RsaPssSha384
                | S::RsaPssSha512
        ),
        KeyAlgorithm::RsaPss => {
            matches!(scheme, S::RsaPssSha256 | S::RsaPssSha384 | S::RsaPssSha512)
        }
        KeyAlgorithm::EcdsaP256 => scheme == S::EcdsaP256Sha256,
        KeyAlgorithm::EcdsaP384 => scheme == S::EcdsaP384Sha384,
        KeyAlgorithm::EcdsaP521 => false,
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
    /// Seconds since the Unix epoch at `now_hint`, for certificate validity.
    pub(crate) fn unix_now(&self) -> i64 {
        let secs = i64::try_from(self.now_hint.since_epoch().as_secs()).unwrap_or(i64::MAX);
        self.unix_offset.saturating_add(secs)
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
            // have their own methods; for the others RFC 7427 is all there is.
            None => match key.sign_legacy(&octets) {
                Some(signed) => {
                    let (legacy, signature) = signed.map_err(|e| local(e.to_string()))?;
                    let method = match legacy {
                        LegacySignature::EcdsaP384Sha384 => AuthMethod::ECDSA_SHA384_P384,
                        _ => AuthMethod::ECDSA_SHA256_P256,
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
        let (_, octets) = self
            .signed_octets(sa, false, peer_id)
            .ok_or_else(|| Failure::Local {
                detail: "no keys to check the peer's AUTH with".into(),
            })?;
        let prf = sa.crypto.as_ref().map(|c| c.suite.prf);
        match (&cfg.peer_auth, auth.method) {
            (PeerAuth::Psk { also }, AuthMethod::SHARED_KEY_MIC) => {
                let prf = prf.ok_or(Failure::AuthenticationFailed { side: Side::Local })?;
                let matches = std::iter::once(&cfg.psk)
                    .chain(also)
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
                let chain: Vec<&[u8]> = payloads
                    .iter()
                    .filter_map(|p| match &p.body {
                        PayloadBody::Cert(c) if c.encoding == CertEncoding::X509_SIGNATURE => {
                            Some(c.data.as_ref())
                        }
                        _ => None,
                    })
                    .collect();
                let cert = trust
                    .verify(&chain, peer_id, self.unix_now())
                    .map_err(Failure::Certificate)?;
                verify_signature(&cert, method, &octets, &auth.data)?;
                Ok(Some(PeerCertRecord {
                    chain: chain.iter().map(|c| c.to_vec()).collect(),
                    cert,
                }))
            }
        }
    }

    /// Validates the certificate of every established IKE SA with `peer` again (our CAs or
    /// CRLs changed): the SAs whose certificate is now revoked, with the reason.
    pub(crate) fn revoked_sas(
        &self,
        peer: crate::event::PeerId,
    ) -> Vec<(meshsec_types::IkeSpi, Failure)> {
        let Some(PeerAuth::Certificate(trust)) = self.peers.get(peer).map(|c| &c.peer_auth) else {
            return Vec::new();
        };
        let Some(cfg) = self.peers.get(peer) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (spi, sa) in self.sas.iter() {
            if sa.peer != Some(peer) {
                continue;
            }
            let Some(record) = &sa.peer_certificate else {
                continue;
            };
            let chain: Vec<&[u8]> = record.chain.iter().map(Vec::as_slice).collect();
            if let Err(e @ CertError::Revoked { .. }) =
                trust.verify(&chain, &cfg.remote_id, self.unix_now())
            {
                out.push((*spi, Failure::Certificate(e)));
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
