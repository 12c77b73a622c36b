//! The per-exchange placement rules accept real messages and name what is wrong with others.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::borrow::Cow;

use meshsec_wire::payload::*;
use meshsec_wire::registry::*;
use meshsec_wire::rules::{PlacementError, Region, check_inner, check_outer};
use meshsec_wire::{Payload, PayloadBody};

fn p(body: PayloadBody<'static>) -> Payload<'static> {
    Payload::new(body)
}
fn n(ty: NotifyType) -> Payload<'static> {
    p(PayloadBody::Notify(Notify::new(ty, Vec::new())))
}
fn sa() -> Payload<'static> {
    p(PayloadBody::Sa(SaPayload {
        proposals: vec![Proposal {
            number: 1,
            protocol: ProtocolId::IKE,
            spi: Cow::Borrowed(&[]),
            transforms: vec![Transform::encr(EncrId::AES_GCM_16, Some(256))],
        }],
    }))
}
fn ke() -> Payload<'static> {
    p(PayloadBody::Ke(KePayload {
        method: KeMethod::CURVE25519,
        data: Cow::Owned(vec![9; 32]),
    }))
}
fn nonce() -> Payload<'static> {
    p(PayloadBody::Nonce(Cow::Owned(vec![7; 32])))
}
fn id_i() -> Payload<'static> {
    p(PayloadBody::IdI(Identity::Fqdn(Cow::Borrowed(b"left"))))
}
fn auth() -> Payload<'static> {
    p(PayloadBody::Auth(AuthPayload {
        method: AuthMethod::SHARED_KEY_MIC,
        data: Cow::Owned(vec![1; 32]),
    }))
}
fn ts(i: bool) -> Payload<'static> {
    let t = TsPayload::default();
    p(if i {
        PayloadBody::TsI(t)
    } else {
        PayloadBody::TsR(t)
    })
}
fn sk() -> Payload<'static> {
    p(PayloadBody::Sk(Encrypted {
        first_inner: PayloadType::IDI,
        data: Cow::Owned(vec![0; 40]),
    }))
}

const INIT: ExchangeType = ExchangeType::IKE_SA_INIT;
const AUTH: ExchangeType = ExchangeType::IKE_AUTH;

#[test]
fn ike_sa_init_needs_sa_ke_nonce_unless_it_is_an_error_answer() {
    assert_eq!(check_outer(INIT, false, &[sa(), ke(), nonce()]), Ok(()));
    assert_eq!(
        check_outer(INIT, false, &[sa(), nonce()]),
        Err(PlacementError::Missing {
            exchange: INIT,
            response: false,
            payload: PayloadType::KE
        })
    );
    // COOKIE and INVALID_KE_PAYLOAD answers carry only the notify.
    assert_eq!(check_outer(INIT, true, &[n(NotifyType::COOKIE)]), Ok(()));
    assert_eq!(
        check_outer(INIT, true, &[n(NotifyType::INVALID_KE_PAYLOAD)]),
        Ok(())
    );
    assert_eq!(
        check_outer(INIT, true, &[n(NotifyType::NO_PROPOSAL_CHOSEN)]),
        Ok(())
    );
    // ...but a request is never excused.
    assert!(check_outer(INIT, false, &[n(NotifyType::NO_PROPOSAL_CHOSEN)]).is_err());
    // The cookie goes first in the retried request.
    assert_eq!(
        check_outer(INIT, false, &[n(NotifyType::COOKIE), sa(), ke(), nonce()]),
        Ok(())
    );
    assert_eq!(
        check_outer(INIT, false, &[sa(), n(NotifyType::COOKIE), ke(), nonce()]),
        Err(PlacementError::CookieNotFirst)
    );
    assert_eq!(
        check_outer(INIT, false, &[sa(), sa(), ke(), nonce()]),
        Err(PlacementError::TooMany {
            exchange: INIT,
            response: false,
            payload: PayloadType::SA,
            max: 1
        })
    );
    assert_eq!(
        check_outer(INIT, false, &[sa(), ke(), nonce(), id_i()]),
        Err(PlacementError::Unexpected {
            exchange: INIT,
            response: false,
            payload: PayloadType::IDI,
            region: Region::Cleartext
        })
    );
}

#[test]
fn later_exchanges_must_be_encrypted() {
    assert_eq!(check_outer(AUTH, false, &[sk()]), Ok(()));
    assert_eq!(
        check_outer(AUTH, false, &[id_i(), auth()]),
        Err(PlacementError::NotEncrypted(AUTH))
    );
    assert_eq!(
        check_outer(ExchangeType::INFORMATIONAL, true, &[]),
        Err(PlacementError::NotEncrypted(ExchangeType::INFORMATIONAL))
    );
    assert_eq!(
        check_outer(ExchangeType(99), false, &[sk()]),
        Err(PlacementError::UnknownExchange(ExchangeType(99)))
    );
    // Nothing of IKE_SA_INIT is encrypted.
    assert!(matches!(
        check_inner(INIT, false, &[sa()]),
        Err(PlacementError::Unexpected {
            region: Region::Encrypted,
            ..
        })
    ));
}

#[test]
fn ike_auth_contents() {
    let full = [
        id_i(),
        auth(),
        sa(),
        ts(true),
        ts(false),
        n(NotifyType::INITIAL_CONTACT),
    ];
    assert_eq!(check_inner(AUTH, false, &full), Ok(()));
    // Childless IKE_AUTH (RFC 6023) is fine.
    assert_eq!(check_inner(AUTH, false, &[id_i(), auth()]), Ok(()));
    // SA without selectors is not.
    assert_eq!(
        check_inner(AUTH, false, &[id_i(), auth(), sa()]),
        Err(PlacementError::Incomplete {
            exchange: AUTH,
            response: false,
            present: PayloadType::SA,
            missing: PayloadType::TSI
        })
    );
    // A request with neither identity, AUTH nor EAP.
    assert!(matches!(
        check_inner(AUTH, false, &[n(NotifyType::INITIAL_CONTACT)]),
        Err(PlacementError::Missing {
            payload: PayloadType::IDI,
            ..
        })
    ));
    // An authentication failure answer.
    assert_eq!(
        check_inner(AUTH, true, &[n(NotifyType::AUTHENTICATION_FAILED)]),
        Ok(())
    );
    // KE has no place in IKE_AUTH.
    assert!(matches!(
        check_inner(AUTH, true, &[id_i(), ke()]),
        Err(PlacementError::Unexpected {
            payload: PayloadType::IDI,
            ..
        })
    ));
}

#[test]
fn create_child_sa_and_informational_contents() {
    let cc = ExchangeType::CREATE_CHILD_SA;
    // CHILD SA with PFS, and an IKE SA rekey without selectors.
    assert_eq!(
        check_inner(cc, false, &[sa(), nonce(), ke(), ts(true), ts(false)]),
        Ok(())
    );
    assert_eq!(check_inner(cc, false, &[sa(), nonce(), ke()]), Ok(()));
    assert!(matches!(
        check_inner(cc, false, &[sa(), nonce(), ts(true)]),
        Err(PlacementError::Incomplete { .. })
    ));
    assert_eq!(
        check_inner(cc, true, &[n(NotifyType::TEMPORARY_FAILURE)]),
        Ok(())
    );
    let info = ExchangeType::INFORMATIONAL;
    assert_eq!(check_inner(info, false, &[]), Ok(()));
    assert_eq!(
        check_inner(info, false, &[p(PayloadBody::Delete(Delete::esp(&[1, 2])))]),
        Ok(())
    );
    assert!(matches!(
        check_inner(info, false, &[sa()]),
        Err(PlacementError::Unexpected {
            payload: PayloadType::SA,
            ..
        })
    ));
    // Unknown non-critical payloads are skipped everywhere.
    let unknown = p(PayloadBody::Unknown {
        ty: PayloadType(200),
        data: Cow::Borrowed(&[]),
    });
    assert_eq!(check_inner(info, true, &[unknown]), Ok(()));
}

#[test]
fn errors_read_well() {
    let e = check_inner(AUTH, false, &[id_i(), auth(), sa()]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "IKE_AUTH request has SA but not TSi (they come together)"
    );
}
