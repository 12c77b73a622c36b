//! Path validation and the identity binding: each way a certificate is refused gets its own
//! message, naming the certificate and what is wrong (dates, CA, serial, identities).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::borrow::Cow;

use meshsec_pki::testing::{Ca, Host, Key, credential, unix_now};
use meshsec_pki::{CertError, KeyAlgorithm, TrustStore};
use meshsec_wire::payload::Identity;

fn fqdn(s: &str) -> Identity<'static> {
    Identity::Fqdn(Cow::Owned(s.as_bytes().to_vec()))
}

#[test]
fn every_key_type_validates_with_its_identities() {
    let ca = Ca::root("test CA", Key::P256);
    let store = ca.store(&[]);
    for (key, alg) in [
        (Key::P256, KeyAlgorithm::EcdsaP256),
        (Key::P384, KeyAlgorithm::EcdsaP384),
        (Key::P521, KeyAlgorithm::EcdsaP521),
        (Key::Ed25519, KeyAlgorithm::Ed25519),
        (Key::Rsa3072, KeyAlgorithm::Rsa),
    ] {
        let mut h = Host::new("h1.mesh", key);
        h.addresses = vec!["192.0.2.1".parse().unwrap()];
        let c = ca.issue(&h);
        let v = store
            .verify(&[&c.der], &fqdn("h1.mesh"), unix_now())
            .unwrap();
        assert_eq!(v.algorithm, alg);
        assert_eq!(v.subject, "CN=h1.mesh");
        // The address is an identity of the certificate too, and case does not matter.
        store
            .verify(
                &[&c.der],
                &Identity::Ipv4("192.0.2.1".parse().unwrap()),
                unix_now(),
            )
            .unwrap();
        store
            .verify(&[&c.der], &fqdn("H1.Mesh"), unix_now())
            .unwrap();
    }
}

#[test]
fn an_intermediate_in_the_chain_leads_to_the_root() {
    let root = Ca::root("root", Key::P384);
    let int = root.intermediate("intermediate", Key::Rsa3072);
    let c = int.issue(&Host::new("h2.mesh", Key::Rsa3072));
    let store = root.store(&[]);
    store
        .verify(&[&c.der, &int.der], &fqdn("h2.mesh"), unix_now())
        .unwrap();
    // Without the intermediate, the chain stops short of any configured CA.
    let e = store
        .verify(&[&c.der], &fqdn("h2.mesh"), unix_now())
        .unwrap_err();
    assert!(
        matches!(&e, CertError::UnknownCa { issuer, .. } if issuer == "CN=intermediate"),
        "{e}"
    );
}

#[test]
fn refusals_name_their_reason() {
    let ca = Ca::root("mesh CA", Key::P256);
    let store = ca.store(&[]);
    let now = unix_now();
    let check = |h: &Host, id: &str| {
        let c = ca.issue(h);
        store.verify(&[&c.der], &fqdn(id), now).unwrap_err()
    };

    let mut expired = Host::new("old.mesh", Key::P256);
    expired.valid_from = -40 * 86_400;
    expired.valid_for = 10 * 86_400;
    let e = check(&expired, "old.mesh");
    assert!(matches!(e, CertError::Expired { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("\"CN=old.mesh\" expired: valid until") && msg.contains(", now "),
        "{msg}"
    );

    let mut future = Host::new("new.mesh", Key::P256);
    future.valid_from = 10 * 86_400;
    let e = check(&future, "new.mesh");
    assert!(matches!(e, CertError::NotYetValid { .. }), "{e}");
    assert!(
        e.to_string().contains("is not yet valid: valid from"),
        "{e}"
    );

    let e = check(&Host::new("h1.mesh", Key::P256), "h9.mesh");
    assert_eq!(
        e.to_string(),
        "the peer's identity fqdn:h9.mesh is not in its certificate, which holds subject \"CN=h1.mesh\", fqdn:h1.mesh"
    );

    let mut no_sign = Host::new("h1.mesh", Key::P256);
    no_sign.digital_signature = false;
    let e = check(&no_sign, "h1.mesh");
    assert!(matches!(e, CertError::KeyUsage { .. }), "{e}");
    assert!(e.to_string().contains("neither digitalSignature"), "{e}");

    let mut mail = Host::new("h1.mesh", Key::P256);
    mail.email_only_eku = true;
    let e = check(&mail, "h1.mesh");
    assert!(matches!(e, CertError::KeyUsage { .. }), "{e}");
    assert!(e.to_string().contains("ExtendedKeyUsage"), "{e}");

    // Another CA's certificate.
    let other = Ca::root("other CA", Key::P256);
    let c = other.issue(&Host::new("h1.mesh", Key::P256));
    let e = store.verify(&[&c.der], &fqdn("h1.mesh"), now).unwrap_err();
    assert_eq!(
        e.to_string(),
        "unknown CA: certificate \"CN=h1.mesh\" is issued by \"CN=other CA\", which does not lead to any configured CA (\"CN=mesh CA\")"
    );

    // Garbage and truncation never panic and say which certificate.
    let good = ca.issue(&Host::new("h1.mesh", Key::P256));
    for bad in [
        &good.der[..good.der.len() / 2],
        &b"not a certificate"[..],
        &[][..],
    ] {
        let e = store.verify(&[bad], &fqdn("h1.mesh"), now).unwrap_err();
        assert!(matches!(e, CertError::Malformed { position: 0, .. }), "{e}");
    }
    assert_eq!(
        store.verify(&[], &fqdn("h1.mesh"), now).unwrap_err(),
        CertError::Missing
    );
}

#[test]
fn a_crl_revokes_only_what_it_lists() {
    let ca = Ca::root("mesh CA", Key::P256);
    let h1 = ca.issue(&Host::new("h1.mesh", Key::P256));
    let h2 = ca.issue(&Host::new("h2.mesh", Key::P256));
    let crl = ca.crl(&[&h1.der]);
    let store = ca.store(&[crl]);
    let e = store
        .verify(&[&h1.der], &fqdn("h1.mesh"), unix_now())
        .unwrap_err();
    assert!(
        matches!(&e, CertError::Revoked { subject, .. } if subject == "CN=h1.mesh"),
        "{e}"
    );
    assert!(
        e.to_string().contains("is revoked by a configured CRL"),
        "{e}"
    );
    store
        .verify(&[&h2.der], &fqdn("h2.mesh"), unix_now())
        .unwrap();
    // A CRL signed by another CA is refused when the store is built... or rather, does not
    // apply to our CA's certificates: webpki finds no CRL for their issuer.
    let other = Ca::root("other", Key::P256);
    let foreign = ca.store(&[other.crl(&[&h2.der])]);
    foreign
        .verify(&[&h2.der], &fqdn("h2.mesh"), unix_now())
        .unwrap();
}

#[test]
fn certreq_hashes_the_anchors_public_keys() {
    let a = Ca::root("a", Key::P256);
    let b = Ca::root("b", Key::Ed25519);
    let store = TrustStore::new(&[a.der.clone(), b.der.clone()], &[]).unwrap();
    let req = store.certreq();
    assert_eq!(req.len(), 40);
    // A host certificate is not a CA.
    let h = a.issue(&Host::new("h.mesh", Key::P256));
    let e = TrustStore::new(&[h.der], &[]).unwrap_err();
    assert!(e.contains("is not a CA certificate"), "{e}");
}

#[test]
fn our_credential_must_match_its_key() {
    let ca = Ca::root("mesh CA", Key::P256);
    let h1 = ca.issue(&Host::new("h1.mesh", Key::P256));
    let h2 = ca.issue(&Host::new("h2.mesh", Key::P256));
    let c = credential(&h1, "");
    assert!(c.holds(&fqdn("h1.mesh")));
    assert!(!c.holds(&fqdn("h2.mesh")));
    let e =
        meshsec_pki::Credential::from_pem(h1.pem.as_bytes(), h2.key_pem.as_bytes()).unwrap_err();
    assert!(e.contains("does not belong to the certificate"), "{e}");
}
