//! Which payloads may (or must) appear in which message, encrypted or not (RFC 7296 §1.2–§1.5,
//! §2.6, RFC 7383, RFC 9242, RFC 9370), as one table and one checker.
//!
//! The engine checks the outer payloads of every message with [`check_outer`] before any crypto
//! work, and the decrypted inner payloads with [`check_inner`]. Error responses (a message with
//! an error Notify, or the COOKIE / INVALID_KE_PAYLOAD answer to IKE_SA_INIT) are exempt from
//! the "required" rules, since they carry only the Notify.

use core::fmt;

use crate::payload::Payload;
use crate::registry::{ExchangeType, NotifyType, PayloadType};

/// Where a payload sits: in the clear, or inside SK/SKF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// Outside encryption.
    Cleartext,
    /// Inside the Encrypted payload.
    Encrypted,
}

/// How many of one payload type a message may carry.
#[derive(Debug, Clone, Copy)]
struct Allowed {
    ty: PayloadType,
    min: u8,
    max: u8,
}

const ANY: u8 = u8::MAX;

const fn one(ty: PayloadType) -> Allowed {
    Allowed { ty, min: 1, max: 1 }
}
const fn opt(ty: PayloadType) -> Allowed {
    Allowed { ty, min: 0, max: 1 }
}
const fn many(ty: PayloadType) -> Allowed {
    Allowed {
        ty,
        min: 0,
        max: ANY,
    }
}

/// The rules for one message kind.
#[derive(Debug)]
struct MessageRules {
    /// Whether the payloads of this message live in the clear or inside SK.
    region: Region,
    allowed: &'static [Allowed],
    /// Groups whose members appear all together or not at all (e.g. SA, TSi, TSr).
    together: &'static [&'static [PayloadType]],
    /// At least one member of this set must appear (unless the message is an error response).
    one_of: &'static [PayloadType],
}

use PayloadType as P;

const SA_INIT_REQUEST: MessageRules = MessageRules {
    region: Region::Cleartext,
    allowed: &[
        one(P::SA),
        one(P::KE),
        one(P::NONCE),
        many(P::NOTIFY),
        many(P::VENDOR_ID),
    ],
    together: &[],
    one_of: &[],
};
const SA_INIT_RESPONSE: MessageRules = MessageRules {
    region: Region::Cleartext,
    allowed: &[
        one(P::SA),
        one(P::KE),
        one(P::NONCE),
        many(P::CERTREQ),
        many(P::NOTIFY),
        many(P::VENDOR_ID),
    ],
    together: &[],
    one_of: &[],
};
const AUTH_REQUEST: MessageRules = MessageRules {
    region: Region::Encrypted,
    allowed: &[
        opt(P::IDI),
        many(P::CERT),
        many(P::CERTREQ),
        opt(P::IDR),
        opt(P::AUTH),
        opt(P::EAP),
        opt(P::CP),
        opt(P::SA),
        opt(P::TSI),
        opt(P::TSR),
        many(P::NOTIFY),
        many(P::VENDOR_ID),
    ],
    together: &[&[P::SA, P::TSI, P::TSR]],
    // The first IKE_AUTH carries IDi; later EAP rounds carry EAP, the last one AUTH.
    one_of: &[P::IDI, P::AUTH, P::EAP],
};
const AUTH_RESPONSE: MessageRules = MessageRules {
    region: Region::Encrypted,
    allowed: &[
        opt(P::IDR),
        many(P::CERT),
        opt(P::AUTH),
        opt(P::EAP),
        opt(P::CP),
        opt(P::SA),
        opt(P::TSI),
        opt(P::TSR),
        many(P::NOTIFY),
        many(P::VENDOR_ID),
    ],
    together: &[&[P::SA, P::TSI, P::TSR]],
    one_of: &[P::IDR, P::AUTH, P::EAP],
};
const CREATE_CHILD: MessageRules = MessageRules {
    region: Region::Encrypted,
    allowed: &[
        one(P::SA),
        one(P::NONCE),
        opt(P::KE),
        opt(P::TSI),
        opt(P::TSR),
        many(P::NOTIFY),
        many(P::VENDOR_ID),
    ],
    // A CHILD SA carries both selectors; an IKE SA rekey neither.
    together: &[&[P::TSI, P::TSR]],
    one_of: &[],
};
const INFORMATIONAL: MessageRules = MessageRules {
    region: Region::Encrypted,
    allowed: &[
        many(P::NOTIFY),
        many(P::DELETE),
        opt(P::CP),
        many(P::VENDOR_ID),
    ],
    together: &[],
    one_of: &[],
};
const INTERMEDIATE: MessageRules = MessageRules {
    region: Region::Encrypted,
    allowed: &[opt(P::KE), many(P::NOTIFY), many(P::VENDOR_ID)],
    together: &[],
    one_of: &[],
};
const FOLLOWUP_KE: MessageRules = MessageRules {
    region: Region::Encrypted,
    allowed: &[one(P::KE), many(P::NOTIFY), many(P::VENDOR_ID)],
    together: &[],
    one_of: &[],
};

fn rules_for(exchange: ExchangeType, response: bool) -> Option<&'static MessageRules> {
    Some(match (exchange, response) {
        (ExchangeType::IKE_SA_INIT, false) => &SA_INIT_REQUEST,
        (ExchangeType::IKE_SA_INIT, true) => &SA_INIT_RESPONSE,
        (ExchangeType::IKE_AUTH, false) => &AUTH_REQUEST,
        (ExchangeType::IKE_AUTH, true) => &AUTH_RESPONSE,
        (ExchangeType::CREATE_CHILD_SA, _) => &CREATE_CHILD,
        (ExchangeType::INFORMATIONAL, _) => &INFORMATIONAL,
        (ExchangeType::IKE_INTERMEDIATE, _) => &INTERMEDIATE,
        (ExchangeType::IKE_FOLLOWUP_KE, _) => &FOLLOWUP_KE,
        _ => return None,
    })
}

/// Why a message's payloads are not acceptable for its exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlacementError {
    /// We have no rules for this exchange type (we do not speak it).
    UnknownExchange(ExchangeType),
    /// A required payload is absent.
    Missing {
        /// The message's exchange.
        exchange: ExchangeType,
        /// Whether the message is a response.
        response: bool,
        /// The missing payload (or, for "one of", the first of the set).
        payload: PayloadType,
    },
    /// A payload that this message may not carry (in this region).
    Unexpected {
        /// The message's exchange.
        exchange: ExchangeType,
        /// Whether the message is a response.
        response: bool,
        /// The payload found.
        payload: PayloadType,
        /// Where it was found.
        region: Region,
    },
    /// More instances of a payload than allowed.
    TooMany {
        /// The message's exchange.
        exchange: ExchangeType,
        /// Whether the message is a response.
        response: bool,
        /// The repeated payload.
        payload: PayloadType,
        /// How many are allowed.
        max: u8,
    },
    /// Some but not all payloads of a group that belongs together (e.g. SA without TSi/TSr).
    Incomplete {
        /// The message's exchange.
        exchange: ExchangeType,
        /// Whether the message is a response.
        response: bool,
        /// One payload that is present.
        present: PayloadType,
        /// One payload of the group that is missing.
        missing: PayloadType,
    },
    /// A message of an encrypted exchange whose outer payloads are not exactly one SK or SKF.
    NotEncrypted(ExchangeType),
    /// A COOKIE notify that is not the first payload of an IKE_SA_INIT request (RFC 7296 §2.6).
    CookieNotFirst,
}

/// A payload type in RFC 7296's notation ("TSi", "N"), or its number if we have no name.
struct Named(PayloadType);

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.short_name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for PlacementError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = |response: &bool| if *response { "response" } else { "request" };
        match self {
            PlacementError::UnknownExchange(x) => write!(f, "unsupported exchange type {x}"),
            PlacementError::Missing {
                exchange,
                response,
                payload,
            } => write!(
                f,
                "{exchange} {} lacks a required {payload} payload",
                kind(response)
            ),
            PlacementError::Unexpected {
                exchange,
                response,
                payload,
                region,
            } => write!(
                f,
                "{exchange} {} must not carry a {} payload {}",
                kind(response),
                Named(*payload),
                match region {
                    Region::Cleartext => "in the clear",
                    Region::Encrypted => "inside SK",
                }
            ),
            PlacementError::TooMany {
                exchange,
                response,
                payload,
                max,
            } => write!(
                f,
                "{exchange} {} carries more than {max} {} payload(s)",
                kind(response),
                Named(*payload)
            ),
            PlacementError::Incomplete {
                exchange,
                response,
                present,
                missing,
            } => write!(
                f,
                "{exchange} {} has {} but not {} (they come together)",
                kind(response),
                Named(*present),
                Named(*missing)
            ),
            PlacementError::NotEncrypted(x) => {
                write!(
                    f,
                    "{x} message must consist of exactly one SK or SKF payload"
                )
            }
            PlacementError::CookieNotFirst => {
                f.write_str("COOKIE notify must be the first payload of IKE_SA_INIT")
            }
        }
    }
}

impl std::error::Error for PlacementError {}

/// True if the message only reports a failure (or asks for a retry) and so need not carry the
/// payloads its exchange normally requires.
fn is_error_answer(payloads: &[Payload<'_>]) -> bool {
    payloads.iter().filter_map(Payload::as_notify).any(|n| {
        n.ty.is_error() || n.ty == NotifyType::COOKIE || n.ty == NotifyType::INVALID_KE_PAYLOAD
    })
}

/// Checks the payloads outside any encryption.
///
/// For IKE_SA_INIT these are all its payloads; for every later exchange the message must be
/// exactly one SK or SKF payload (everything else belongs inside, RFC 7296 §3.14).
pub fn check_outer(
    exchange: ExchangeType,
    response: bool,
    payloads: &[Payload<'_>],
) -> Result<(), PlacementError> {
    let rules = rules_for(exchange, response).ok_or(PlacementError::UnknownExchange(exchange))?;
    match rules.region {
        Region::Cleartext => check(exchange, response, rules, payloads, Region::Cleartext),
        Region::Encrypted => match payloads {
            [p] if matches!(p.payload_type(), P::SK | P::SKF) => Ok(()),
            _ => Err(PlacementError::NotEncrypted(exchange)),
        },
    }
}

/// Checks the decrypted payloads of an encrypted exchange.
pub fn check_inner(
    exchange: ExchangeType,
    response: bool,
    payloads: &[Payload<'_>],
) -> Result<(), PlacementError> {
    let rules = rules_for(exchange, response).ok_or(PlacementError::UnknownExchange(exchange))?;
    if rules.region == Region::Cleartext {
        // IKE_SA_INIT has no encrypted part: any inner payload is out of place.
        return match payloads.first() {
            None => Ok(()),
            Some(p) => Err(PlacementError::Unexpected {
                exchange,
                response,
                payload: p.payload_type(),
                region: Region::Encrypted,
            }),
        };
    }
    check(exchange, response, rules, payloads, Region::Encrypted)
}

fn check(
    exchange: ExchangeType,
    response: bool,
    rules: &MessageRules,
    payloads: &[Payload<'_>],
    region: Region,
) -> Result<(), PlacementError> {
    let count = |ty: PayloadType| payloads.iter().filter(|p| p.payload_type() == ty).count();
    for p in payloads {
        let ty = p.payload_type();
        if matches!(p.body, crate::PayloadBody::Unknown { .. }) {
            continue; // unknown non-critical payloads are skipped (RFC 7296 §2.5)
        }
        let Some(rule) = rules.allowed.iter().find(|a| a.ty == ty) else {
            return Err(PlacementError::Unexpected {
                exchange,
                response,
                payload: ty,
                region,
            });
        };
        if rule.max != ANY && count(ty) > usize::from(rule.max) {
            return Err(PlacementError::TooMany {
                exchange,
                response,
                payload: ty,
                max: rule.max,
            });
        }
    }
    if exchange == ExchangeType::IKE_SA_INIT && !response {
        let cookie_at = payloads
            .iter()
            .position(|p| p.as_notify().is_some_and(|n| n.ty == NotifyType::COOKIE));
        if cookie_at.is_some_and(|i| i != 0) {
            return Err(PlacementError::CookieNotFirst);
        }
    }
    let error_answer = response && is_error_answer(payloads);
    if !error_answer {
        if let Some(missing) = rules
            .allowed
            .iter()
            .find(|a| count(a.ty) < usize::from(a.min))
        {
            return Err(PlacementError::Missing {
                exchange,
                response,
                payload: missing.ty,
            });
        }
        if let Some(first) = rules.one_of.first()
            && rules.one_of.iter().all(|ty| count(*ty) == 0)
        {
            return Err(PlacementError::Missing {
                exchange,
                response,
                payload: *first,
            });
        }
        for group in rules.together {
            let present = group.iter().find(|ty| count(**ty) > 0);
            let missing = group.iter().find(|ty| count(**ty) == 0);
            if let (Some(present), Some(missing)) = (present, missing) {
                return Err(PlacementError::Incomplete {
                    exchange,
                    response,
                    present: *present,
                    missing: *missing,
                });
            }
        }
    }
    Ok(())
}
