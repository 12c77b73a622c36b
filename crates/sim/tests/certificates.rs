//! X.509 authentication between two engines (RFC 7296 §2.15, RFC 7427): every key type both
//! ways, intermediates, each refusal named on the side that refuses, PSK rotation without a
//! gap, and a CRL reload that tears down the revoked peer's SAs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;

use meshsec_crypto::Secret;
use meshsec_ike::{Event, Failure, LocalAuth, PeerAuth, PeerConfig};
use meshsec_node::{Command, PeerPolicy};
use meshsec_pki::testing::{Ca, Host, Key, credential, unix_now};
use meshsec_pki::{CertError, TrustStore};
use meshsec_sim::Sim;

mod common;
use common::*;

/// A's and B's certificates and what each trusts.
struct Pki {
    a: LocalAuth,
    b: LocalAuth,
    trust_a: Arc<TrustStore>,
    trust_b: Arc<TrustStore>,
}

fn pki(key_a: Key, key_b: Key) -> (Ca, Pki) {
    let ca = Ca::root("mesh CA", Key::P256);
    let a = ca.issue(&Host::new("a.test", key_a));
    let b = ca.issue(&Host::new("b.test", key_b));
    let store = Arc::new(ca.store(&[]));
    let p = Pki {
        a: LocalAuth::Certificate(Arc::new(credential(&a, ""))),
        b: LocalAuth::Certificate(Arc::new(credential(&b, ""))),
        trust_a: store.clone(),
        trust_b: store,
    };
    (ca, p)
}

fn config(me_a: bool, local: LocalAuth, trust: Arc<TrustStore>) -> PeerConfig {
    let mut c = peer_config(if me_a { B } else { A }, &side(me_a));
    c.local_auth = local;
    c.peer_auth = PeerAuth::Certificate(trust);
    c
}

fn sim_of(a: PeerConfig, b: PeerConfig) -> Sim {
    let mut s = Sim::new(vec![
        host(A, endpoint(A, 1, |_| {}), PeerPolicy::passive(a), 1),
        host(B, endpoint(B, 2, |_| {}), PeerPolicy::passive(b), 2),
    ]);
    for n in &mut s.nodes {
        n.ike_mut().set_wall_clock(Timestamp::ZERO, unix_now());
    }
    s
}

fn run(mut s: Sim) -> Sim {
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(LONG);
    s
}

/// Neither side reported a failure.
fn assert_no_failures(s: &Sim, ctx: &str) {
    for n in &s.nodes {
        assert!(failures(n).is_empty(), "{ctx}: {:?}", failures(n));
    }
}

fn certificate_failures(n: &meshsec_sim::Node) -> Vec<String> {
    failures(n).iter().map(|f| f.to_string()).collect()
}

#[test]
fn every_key_type_authenticates_both_ways() {
    for (ka, kb) in [
        (Key::P256, Key::P256),
        (Key::P384, Key::Ed25519),
        (Key::Ed25519, Key::Rsa3072),
        (Key::Rsa3072, Key::P384),
        (Key::P521, Key::P256),
    ] {
        let (_, p) = pki(ka, kb);
        let s = run(sim_of(
            config(true, p.a, p.trust_a),
            config(false, p.b, p.trust_b),
        ));
        let ctx = format!("{ka:?} / {kb:?}");
        assert_no_failures(&s, &ctx);
        assert_eq!(
            (established(&s.nodes[0]), established(&s.nodes[1])),
            (1, 1),
            "{ctx}"
        );
        assert_eq!(children(&s.nodes[0]).len(), 1, "{ctx}");
        // Each side knows the certificate the other used (status shows its expiry).
        let sas = s.nodes[0].ike().ike_sas();
        let (subject, not_after) = sas[0].peer_certificate.clone().unwrap();
        assert_eq!(subject, "CN=b.test", "{ctx}");
        assert!(not_after > unix_now(), "{ctx}");
        let sas = s.nodes[1].ike().ike_sas();
        assert_eq!(
            sas[0].peer_certificate.clone().unwrap().0,
            "CN=a.test",
            "{ctx}"
        );
    }
}

#[test]
fn an_rsa_chain_with_an_intermediate_is_fragmented_and_reassembled() {
    let root = Ca::root("root", Key::P384);
    let int = root.intermediate("intermediate", Key::Rsa3072);
    let a = int.issue(&Host::new("a.test", Key::Rsa3072));
    let b = int.issue(&Host::new("b.test", Key::Rsa3072));
    let store = Arc::new(root.store(&[]));
    let la = LocalAuth::Certificate(Arc::new(credential(&a, &int.pem)));
    let lb = LocalAuth::Certificate(Arc::new(credential(&b, &int.pem)));
    let s = run(sim_of(
        config(true, la, store.clone()),
        config(false, lb, store),
    ));
    assert_no_failures(&s, "RSA chain through an intermediate");
    assert_eq!(established(&s.nodes[1]), 1);
}

/// B refuses A's certificate for `reason`; A hears AUTHENTICATION_FAILED.
fn refused(a_host: Host, ca_for_a: &Ca, trust_b: TrustStore, expect: &str) {
    let b_ca = Ca::root("mesh CA", Key::P256);
    let a = ca_for_a.issue(&a_host);
    let b = b_ca.issue(&Host::new("b.test", Key::P256));
    let s = run(sim_of(
        config(
            true,
            LocalAuth::Certificate(Arc::new(credential(&a, ""))),
            Arc::new(b_ca.store(&[])),
        ),
        config(
            false,
            LocalAuth::Certificate(Arc::new(credential(&b, ""))),
            Arc::new(trust_b),
        ),
    ));
    let on_b = certificate_failures(&s.nodes[1]);
    assert!(
        on_b.iter().any(|f| f.contains(expect)),
        "B should say {expect:?}: {on_b:?}"
    );
    assert_eq!(established(&s.nodes[1]), 0);
    let on_a = certificate_failures(&s.nodes[0]);
    assert!(
        on_a.iter()
            .any(|f| f.starts_with("AUTHENTICATION_FAILED: the peer could not verify our AUTH")),
        "{on_a:?}"
    );
}

#[test]
fn each_certificate_refusal_is_named_by_the_refusing_side() {
    let ca = Ca::root("mesh CA", Key::P256);
    let mut expired = Host::new("a.test", Key::P256);
    expired.valid_from = -40 * 86_400;
    expired.valid_for = 10 * 86_400;
    refused(
        expired,
        &ca,
        ca.store(&[]),
        "\"CN=a.test\" expired: valid until",
    );

    let mut future = Host::new("a.test", Key::P256);
    future.valid_from = 5 * 86_400;
    refused(
        future,
        &ca,
        ca.store(&[]),
        "\"CN=a.test\" is not yet valid: valid from",
    );

    let other = Ca::root("rogue CA", Key::P256);
    refused(
        Host::new("a.test", Key::P256),
        &other,
        ca.store(&[]),
        "unknown CA: certificate \"CN=a.test\" is issued by \"CN=rogue CA\"",
    );

    refused(
        Host::new("someone-else.test", Key::P256),
        &ca,
        ca.store(&[]),
        "the peer's identity fqdn:a.test is not in its certificate, which holds subject \"CN=someone-else.test\", fqdn:someone-else.test",
    );

    let mut no_sign = Host::new("a.test", Key::P256);
    no_sign.digital_signature = false;
    refused(no_sign, &ca, ca.store(&[]), "may not sign for IKE");
}

#[test]
fn a_revoked_certificate_is_refused() {
    let ca = Ca::root("mesh CA", Key::P256);
    // Issue A's certificate first to know what to revoke: the helper issues again, so revoke
    // by building the CRL from this one and handing the same host spec... the serial differs,
    // so build the scenario by hand.
    let a = ca.issue(&Host::new("a.test", Key::P256));
    let b = ca.issue(&Host::new("b.test", Key::P256));
    let crl = ca.crl(&[&a.der]);
    let s = run(sim_of(
        config(
            true,
            LocalAuth::Certificate(Arc::new(credential(&a, ""))),
            Arc::new(ca.store(&[])),
        ),
        config(
            false,
            LocalAuth::Certificate(Arc::new(credential(&b, ""))),
            Arc::new(ca.store(&[crl])),
        ),
    ));
    let on_b = certificate_failures(&s.nodes[1]);
    assert!(
        on_b.iter().any(|f| f.contains("\"CN=a.test\" (serial ")
            && f.contains("is revoked by a configured CRL")),
        "{on_b:?}"
    );
}

#[test]
fn a_peer_using_a_psk_where_a_certificate_is_required_is_told_apart() {
    let (_, p) = pki(Key::P256, Key::P256);
    // A signs with its PSK; B requires a certificate.
    let mut a = config(true, LocalAuth::Psk, p.trust_a);
    a.peer_auth = PeerAuth::Psk { also: Vec::new() };
    let b = config(false, p.b, p.trust_b);
    let s = run(sim_of(a, b));
    let on_b = certificate_failures(&s.nodes[1]);
    assert!(
        on_b.iter().any(|f| f.contains(
            "the peer authenticated with a pre-shared key (AUTH method 2), but we require a certificate of it"
        )),
        "{on_b:?}"
    );
}

#[test]
fn a_garbage_cert_payload_is_a_named_refusal_not_a_panic() {
    let (ca, p) = pki(Key::P256, Key::P256);
    // A's "certificate" is truncated: its credential is built from a good one, then its
    // chain cut in half (what a broken peer or a fuzzer sends).
    let a = ca.issue(&Host::new("a.test", Key::P256));
    let mut cred = credential(&a, "");
    let half = cred.chain[0].len() / 2;
    cred.chain[0].truncate(half);
    let s = run(sim_of(
        config(true, LocalAuth::Certificate(Arc::new(cred)), p.trust_a),
        config(false, p.b, p.trust_b),
    ));
    let on_b = certificate_failures(&s.nodes[1]);
    assert!(
        on_b.iter().any(|f| f.contains("certificate 0 of the peer's chain is not a DER X.509 certificate")),
        "{on_b:?}"
    );
}

#[test]
fn a_chain_longer_than_any_path_is_refused_before_it_is_parsed() {
    let (ca, p) = pki(Key::P256, Key::P256);
    let a = ca.issue(&Host::new("a.test", Key::P256));
    // Six other CA certificates after A's own: more than a path we build can use.
    let extra: String = (0..6)
        .map(|i| Ca::root(&format!("filler {i}"), Key::P256).pem)
        .collect();
    let s = run(sim_of(
        config(
            true,
            LocalAuth::Certificate(Arc::new(credential(&a, &extra))),
            p.trust_a,
        ),
        config(false, p.b, p.trust_b),
    ));
    let on_b = certificate_failures(&s.nodes[1]);
    assert!(
        on_b.iter()
            .any(|f| f.contains("the peer sent more than 5 intermediate certificates")),
        "{on_b:?}"
    );
    assert_eq!(established(&s.nodes[1]), 0);
}

#[test]
fn psk_rotation_one_host_after_the_other_never_fails_an_authentication() {
    let old = "the old pre-shared key, 32 octets";
    let new = "the new pre-shared key, 32 octets";
    let cfg = |me_a: bool, sign: &str, also: &[&str]| {
        let mut c = peer_config(if me_a { B } else { A }, &side(me_a));
        c.psk = Secret::from_slice(sign.as_bytes());
        c.peer_auth = PeerAuth::Psk {
            also: also
                .iter()
                .map(|k| Secret::from_slice(k.as_bytes()))
                .collect(),
        };
        c
    };
    // Each step of the rotation, as both hosts are configured at that moment: every
    // authentication in between succeeds, whichever side initiates.
    // (what, (A signs with, A also accepts), (B signs with, B also accepts))
    type Keys<'a> = (&'a str, &'a [&'a str]);
    let steps: [(&str, Keys<'_>, Keys<'_>); 5] = [
        ("before", (old, &[]), (old, &[])),
        ("A accepts the new key", (old, &[new]), (old, &[])),
        ("B accepts the new key", (old, &[new]), (old, &[new])),
        ("A signs with the new key", (new, &[old]), (old, &[new])),
        ("B signs with the new key", (new, &[old]), (new, &[old])),
    ];
    for (what, (a_sign, a_also), (b_sign, b_also)) in steps {
        for initiator in [0usize, 1] {
            let mut s = sim_of(cfg(true, a_sign, a_also), cfg(false, b_sign, b_also));
            s.nodes[initiator]
                .ike_mut()
                .initiate(Timestamp::ZERO, PEER)
                .unwrap();
            s.run(LONG);
            assert!(
                failures(&s.nodes[0]).is_empty() && failures(&s.nodes[1]).is_empty(),
                "{what}, initiator {initiator}: {:?} / {:?}",
                failures(&s.nodes[0]),
                failures(&s.nodes[1])
            );
            assert_eq!(established(&s.nodes[1 - initiator]), 1, "{what}");
        }
    }
    // Skipping the "accept" step is what fails (and is named): A signs with a key B does not
    // know.
    let mut s = sim_of(cfg(true, new, &[old]), cfg(false, old, &[]));
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(LONG);
    assert!(
        failures(&s.nodes[1])
            .iter()
            .any(|f| matches!(f, Failure::AuthenticationFailed { .. }))
    );
}

#[test]
fn a_crl_reload_tears_down_the_revoked_peers_sas() {
    let ca = Ca::root("mesh CA", Key::P256);
    let a = ca.issue(&Host::new("a.test", Key::P256));
    let b = ca.issue(&Host::new("b.test", Key::P256));
    let b_cfg = |crls: Vec<Vec<u8>>| {
        config(
            false,
            LocalAuth::Certificate(Arc::new(credential(&b, ""))),
            Arc::new(ca.store(&crls)),
        )
    };
    let mut s = sim_of(
        config(
            true,
            LocalAuth::Certificate(Arc::new(credential(&a, ""))),
            Arc::new(ca.store(&[])),
        ),
        b_cfg(Vec::new()),
    );
    s.nodes[0]
        .ike_mut()
        .initiate(Timestamp::ZERO, PEER)
        .unwrap();
    s.run(Timestamp::from_secs(5));
    assert_eq!(s.nodes[1].ike().established_with(PEER), 1);
    // B reloads with a CRL that revokes A; a CRL that revokes someone else changes nothing.
    let other = ca.issue(&Host::new("c.test", Key::P256));
    let now = Timestamp::from_secs(5);
    let keep = PeerPolicy::passive(b_cfg(vec![ca.crl(&[&other.der])]));
    s.nodes[1]
        .host
        .handle_command(
            now,
            Command::UpdatePeer {
                peer: PEER,
                policy: keep,
            },
        )
        .unwrap();
    s.run(Timestamp::from_secs(7));
    assert_eq!(s.nodes[1].ike().established_with(PEER), 1);
    let revoke = PeerPolicy::passive(b_cfg(vec![ca.crl(&[&a.der])]));
    let now = Timestamp::from_secs(7);
    s.nodes[1]
        .host
        .handle_command(
            now,
            Command::UpdatePeer {
                peer: PEER,
                policy: revoke,
            },
        )
        .unwrap();
    // Within a second (one round trip here) both sides have no SA left.
    s.run(Timestamp::from_secs(8));
    assert_eq!(s.nodes[1].ike().ike_sa_count(), 0);
    assert_eq!(s.nodes[0].ike().ike_sa_count(), 0);
    let revoked = s.nodes[1].events.iter().any(|e| {
        matches!(e, Event::Failed { failure: Failure::Certificate(CertError::Revoked { subject, .. }), .. } if subject == "CN=a.test")
    });
    assert!(revoked, "{:?}", failures(&s.nodes[1]));
}
