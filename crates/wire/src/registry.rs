//! IANA registries of IKEv2 ("Internet Key Exchange Version 2 (IKEv2) Parameters") as open
//! newtypes.
//!
//! Each registry is a tuple struct over the wire integer with named constants for the assigned
//! values. Unknown values are representable (and survive parse → emit), which a closed `enum`
//! could not do; `name()` tells whether a value is one we know.

use core::fmt;

/// Declares an open registry newtype with named constants, `name()`, `Debug` and `Display`.
macro_rules! registry {
    (
        $(#[$meta:meta])*
        $name:ident($repr:ty) {
            $( $(#[$cmeta:meta])* $konst:ident = $val:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(pub $repr);

        impl $name {
            $( $(#[$cmeta])* pub const $konst: Self = Self($val); )*

            /// The IANA name of this value, or `None` for a value we do not know.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $val => Some(stringify!($konst)), )*
                    _ => None,
                }
            }
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                Self(v)
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> Self {
                v.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self.name() {
                    Some(n) => f.write_str(n),
                    None => write!(f, "{}({})", stringify!($name), self.0),
                }
            }
        }
    };
}

registry! {
    /// IKEv2 Exchange Types (RFC 7296 §3.1 and later RFCs).
    ExchangeType(u8) {
        /// RFC 7296.
        IKE_SA_INIT = 34,
        /// RFC 7296.
        IKE_AUTH = 35,
        /// RFC 7296.
        CREATE_CHILD_SA = 36,
        /// RFC 7296.
        INFORMATIONAL = 37,
        /// RFC 5723.
        IKE_SESSION_RESUME = 38,
        /// RFC 9838 (G-IKEv2).
        GSA_AUTH = 39,
        /// G-IKEv2.
        GSA_REGISTRATION = 40,
        /// G-IKEv2.
        GSA_REKEY = 41,
        /// RFC 9242.
        IKE_INTERMEDIATE = 43,
        /// RFC 9370.
        IKE_FOLLOWUP_KE = 44,
    }
}

registry! {
    /// IKEv2 Payload Types (RFC 7296 §3.2 and later RFCs).
    PayloadType(u8) {
        /// No Next Payload.
        NONE = 0,
        /// Security Association.
        SA = 33,
        /// Key Exchange.
        KE = 34,
        /// Identification - Initiator.
        IDI = 35,
        /// Identification - Responder.
        IDR = 36,
        /// Certificate.
        CERT = 37,
        /// Certificate Request.
        CERTREQ = 38,
        /// Authentication.
        AUTH = 39,
        /// Nonce (Ni, Nr).
        NONCE = 40,
        /// Notify.
        NOTIFY = 41,
        /// Delete.
        DELETE = 42,
        /// Vendor ID.
        VENDOR_ID = 43,
        /// Traffic Selector - Initiator.
        TSI = 44,
        /// Traffic Selector - Responder.
        TSR = 45,
        /// Encrypted and Authenticated.
        SK = 46,
        /// Configuration.
        CP = 47,
        /// Extensible Authentication.
        EAP = 48,
        /// Generic Secure Password Method (RFC 6467).
        GSPM = 49,
        /// Encrypted and Authenticated Fragment (RFC 7383).
        SKF = 53,
    }
}

impl PayloadType {
    /// The short name used in RFC 7296's message diagrams ("SA", "IDi", "N", "SK"...).
    pub fn short_name(self) -> Option<&'static str> {
        Some(match self {
            Self::SA => "SA",
            Self::KE => "KE",
            Self::IDI => "IDi",
            Self::IDR => "IDr",
            Self::CERT => "CERT",
            Self::CERTREQ => "CERTREQ",
            Self::AUTH => "AUTH",
            Self::NONCE => "Nonce",
            Self::NOTIFY => "N",
            Self::DELETE => "D",
            Self::VENDOR_ID => "V",
            Self::TSI => "TSi",
            Self::TSR => "TSr",
            Self::SK => "SK",
            Self::CP => "CP",
            Self::EAP => "EAP",
            Self::GSPM => "GSPM",
            Self::SKF => "SKF",
            _ => return None,
        })
    }
}

registry! {
    /// Security Protocol Identifiers (RFC 7296 §3.3.1).
    ProtocolId(u8) {
        /// IKE SA.
        IKE = 1,
        /// Authentication Header.
        AH = 2,
        /// Encapsulating Security Payload.
        ESP = 3,
    }
}

registry! {
    /// Transform Type Values (RFC 7296 §3.3.2, RFC 9370).
    TransformType(u8) {
        /// Encryption Algorithm.
        ENCR = 1,
        /// Pseudorandom Function.
        PRF = 2,
        /// Integrity Algorithm.
        INTEG = 3,
        /// Key Exchange Method (formerly "Diffie-Hellman Group").
        KE = 4,
        /// Extended Sequence Numbers (ESP/AH only).
        ESN = 5,
        /// Additional Key Exchange 1 (RFC 9370).
        ADDKE1 = 6,
        /// Additional Key Exchange 2.
        ADDKE2 = 7,
        /// Additional Key Exchange 3.
        ADDKE3 = 8,
        /// Additional Key Exchange 4.
        ADDKE4 = 9,
        /// Additional Key Exchange 5.
        ADDKE5 = 10,
        /// Additional Key Exchange 6.
        ADDKE6 = 11,
        /// Additional Key Exchange 7.
        ADDKE7 = 12,
    }
}

registry! {
    /// Transform Type 1 — Encryption Algorithm Transform IDs.
    EncrId(u16) {
        /// DES with 64-bit IV (obsolete).
        DES_IV64 = 1,
        /// DES (obsolete).
        DES = 2,
        /// Triple DES (RFC 2451).
        TRIPLE_DES = 3,
        /// RC5.
        RC5 = 4,
        /// IDEA.
        IDEA = 5,
        /// CAST.
        CAST = 6,
        /// Blowfish.
        BLOWFISH = 7,
        /// 3IDEA.
        TRIPLE_IDEA = 8,
        /// DES with 32-bit IV.
        DES_IV32 = 9,
        /// NULL encryption (RFC 2410); never negotiated by default.
        NULL = 11,
        /// AES-CBC (RFC 3602).
        AES_CBC = 12,
        /// AES-CTR (RFC 3686).
        AES_CTR = 13,
        /// AES-CCM with an 8-octet ICV (RFC 4309).
        AES_CCM_8 = 14,
        /// AES-CCM with a 12-octet ICV.
        AES_CCM_12 = 15,
        /// AES-CCM with a 16-octet ICV.
        AES_CCM_16 = 16,
        /// AES-GCM with an 8-octet ICV (RFC 4106).
        AES_GCM_8 = 18,
        /// AES-GCM with a 12-octet ICV.
        AES_GCM_12 = 19,
        /// AES-GCM with a 16-octet ICV (RFC 4106, RFC 5282).
        AES_GCM_16 = 20,
        /// AES-GMAC, integrity only (RFC 4543).
        NULL_AUTH_AES_GMAC = 21,
        /// Camellia-CBC (RFC 5529).
        CAMELLIA_CBC = 23,
        /// Camellia-CTR.
        CAMELLIA_CTR = 24,
        /// Camellia-CCM with an 8-octet ICV.
        CAMELLIA_CCM_8 = 25,
        /// Camellia-CCM with a 12-octet ICV.
        CAMELLIA_CCM_12 = 26,
        /// Camellia-CCM with a 16-octet ICV.
        CAMELLIA_CCM_16 = 27,
        /// ChaCha20-Poly1305 (RFC 7634).
        CHACHA20_POLY1305 = 28,
    }
}

registry! {
    /// Transform Type 2 — Pseudorandom Function Transform IDs.
    PrfId(u16) {
        /// HMAC-MD5 (obsolete).
        HMAC_MD5 = 1,
        /// HMAC-SHA1 (weak; legacy interop only).
        HMAC_SHA1 = 2,
        /// HMAC-TIGER.
        HMAC_TIGER = 3,
        /// AES-XCBC-PRF-128 (RFC 4434).
        AES128_XCBC = 4,
        /// HMAC-SHA2-256 (RFC 4868).
        HMAC_SHA2_256 = 5,
        /// HMAC-SHA2-384 (RFC 4868).
        HMAC_SHA2_384 = 6,
        /// HMAC-SHA2-512 (RFC 4868).
        HMAC_SHA2_512 = 7,
        /// AES-CMAC-PRF-128 (RFC 4615).
        AES128_CMAC = 8,
    }
}

registry! {
    /// Transform Type 3 — Integrity Algorithm Transform IDs.
    IntegId(u16) {
        /// No integrity algorithm (with AEAD ciphers).
        NONE = 0,
        /// HMAC-MD5-96 (obsolete).
        HMAC_MD5_96 = 1,
        /// HMAC-SHA1-96 (weak; legacy interop only).
        HMAC_SHA1_96 = 2,
        /// DES-MAC.
        DES_MAC = 3,
        /// KPDK-MD5.
        KPDK_MD5 = 4,
        /// AES-XCBC-96 (RFC 3566).
        AES_XCBC_96 = 5,
        /// HMAC-MD5-128.
        HMAC_MD5_128 = 6,
        /// HMAC-SHA1-160.
        HMAC_SHA1_160 = 7,
        /// AES-CMAC-96 (RFC 4494).
        AES_CMAC_96 = 8,
        /// AES-128-GMAC.
        AES_128_GMAC = 9,
        /// AES-192-GMAC.
        AES_192_GMAC = 10,
        /// AES-256-GMAC.
        AES_256_GMAC = 11,
        /// HMAC-SHA2-256-128 (RFC 4868).
        HMAC_SHA2_256_128 = 12,
        /// HMAC-SHA2-384-192 (RFC 4868).
        HMAC_SHA2_384_192 = 13,
        /// HMAC-SHA2-512-256 (RFC 4868).
        HMAC_SHA2_512_256 = 14,
    }
}

registry! {
    /// Transform Type 4 — Key Exchange Method Transform IDs (Diffie-Hellman groups and KEMs).
    KeMethod(u16) {
        /// None (no PFS in a CREATE_CHILD_SA proposal).
        NONE = 0,
        /// 768-bit MODP (obsolete).
        MODP_768 = 1,
        /// 1024-bit MODP (weak).
        MODP_1024 = 2,
        /// 1536-bit MODP (weak).
        MODP_1536 = 5,
        /// 2048-bit MODP (RFC 3526).
        MODP_2048 = 14,
        /// 3072-bit MODP (RFC 3526).
        MODP_3072 = 15,
        /// 4096-bit MODP (RFC 3526).
        MODP_4096 = 16,
        /// 6144-bit MODP (RFC 3526).
        MODP_6144 = 17,
        /// 8192-bit MODP (RFC 3526).
        MODP_8192 = 18,
        /// 256-bit random ECP group, NIST P-256 (RFC 5903).
        ECP_256 = 19,
        /// 384-bit random ECP group, NIST P-384 (RFC 5903).
        ECP_384 = 20,
        /// 521-bit random ECP group, NIST P-521 (RFC 5903).
        ECP_521 = 21,
        /// 1024-bit MODP with 160-bit prime order subgroup (RFC 5114).
        MODP_1024_160 = 22,
        /// 2048-bit MODP with 224-bit prime order subgroup (RFC 5114).
        MODP_2048_224 = 23,
        /// 2048-bit MODP with 256-bit prime order subgroup (RFC 5114).
        MODP_2048_256 = 24,
        /// 192-bit random ECP group (RFC 5114).
        ECP_192 = 25,
        /// 224-bit random ECP group (RFC 5114).
        ECP_224 = 26,
        /// brainpoolP224r1 (RFC 6954).
        BRAINPOOL_P224R1 = 27,
        /// brainpoolP256r1 (RFC 6954).
        BRAINPOOL_P256R1 = 28,
        /// brainpoolP384r1 (RFC 6954).
        BRAINPOOL_P384R1 = 29,
        /// brainpoolP512r1 (RFC 6954).
        BRAINPOOL_P512R1 = 30,
        /// Curve25519 (RFC 8031).
        CURVE25519 = 31,
        /// Curve448 (RFC 8031).
        CURVE448 = 32,
        /// ML-KEM-512 (RFC 9370 additional key exchange).
        ML_KEM_512 = 35,
        /// ML-KEM-768.
        ML_KEM_768 = 36,
        /// ML-KEM-1024.
        ML_KEM_1024 = 37,
    }
}

registry! {
    /// Transform Type 5 — Extended Sequence Numbers Transform IDs.
    EsnId(u16) {
        /// No Extended Sequence Numbers.
        NO = 0,
        /// Extended Sequence Numbers (RFC 4303 §2.2.1).
        YES = 1,
    }
}

registry! {
    /// IKEv2 Transform Attribute Types (RFC 7296 §3.3.5).
    TransformAttrType(u16) {
        /// Key Length (in bits), always in TV format.
        KEY_LENGTH = 14,
    }
}

registry! {
    /// IKEv2 Identification Payload ID Types (RFC 7296 §3.5).
    IdType(u8) {
        /// A single four-octet IPv4 address.
        IPV4_ADDR = 1,
        /// A fully qualified domain name string.
        FQDN = 2,
        /// A fully qualified RFC 822 email address string.
        RFC822_ADDR = 3,
        /// A single sixteen-octet IPv6 address.
        IPV6_ADDR = 5,
        /// The binary DER encoding of an ASN.1 X.500 Distinguished Name.
        DER_ASN1_DN = 9,
        /// The binary DER encoding of an ASN.1 X.509 GeneralName.
        DER_ASN1_GN = 10,
        /// An opaque octet stream (vendor-specific information).
        KEY_ID = 11,
        /// Fibre Channel name (RFC 4595).
        FC_NAME = 12,
        /// NULL authentication identity (RFC 7619).
        NULL = 13,
    }
}

registry! {
    /// IKEv2 Certificate Encodings (RFC 7296 §3.6).
    CertEncoding(u8) {
        /// PKCS #7 wrapped X.509 certificate.
        PKCS7 = 1,
        /// PGP Certificate.
        PGP = 2,
        /// DNS Signed Key.
        DNS_SIGNED_KEY = 3,
        /// X.509 Certificate - Signature.
        X509_SIGNATURE = 4,
        /// Kerberos Token.
        KERBEROS = 6,
        /// Certificate Revocation List (CRL).
        CRL = 7,
        /// Authority Revocation List (ARL).
        ARL = 8,
        /// SPKI Certificate.
        SPKI = 9,
        /// X.509 Certificate - Attribute.
        X509_ATTRIBUTE = 10,
        /// Raw RSA Key (deprecated).
        RAW_RSA = 11,
        /// Hash and URL of X.509 certificate.
        HASH_URL_X509_CERT = 12,
        /// Hash and URL of X.509 bundle.
        HASH_URL_X509_BUNDLE = 13,
        /// OCSP Content (RFC 4806).
        OCSP = 14,
        /// Raw Public Key (RFC 7670).
        RAW_PUBLIC_KEY = 15,
    }
}

registry! {
    /// IKEv2 Authentication Methods (RFC 7296 §3.8, RFC 7427 and others).
    AuthMethod(u8) {
        /// RSA Digital Signature (PKCS#1 v1.5 with SHA-1).
        RSA_SIG = 1,
        /// Shared Key Message Integrity Code (PSK).
        SHARED_KEY_MIC = 2,
        /// DSS Digital Signature.
        DSS_SIG = 3,
        /// ECDSA with SHA-256 on the P-256 curve (RFC 4754).
        ECDSA_SHA256_P256 = 9,
        /// ECDSA with SHA-384 on the P-384 curve.
        ECDSA_SHA384_P384 = 10,
        /// ECDSA with SHA-512 on the P-521 curve.
        ECDSA_SHA512_P521 = 11,
        /// Generic Secure Password Authentication Method (RFC 6467).
        GENERIC_SECURE_PASSWORD = 12,
        /// NULL Authentication (RFC 7619).
        NULL = 13,
        /// Digital Signature (RFC 7427).
        DIGITAL_SIGNATURE = 14,
    }
}

registry! {
    /// IKEv2 Notify Message Types (RFC 7296 §3.10.1 and later RFCs). Values below 16384 are
    /// errors, the rest status types.
    NotifyType(u16) {
        /// A critical payload was not understood.
        UNSUPPORTED_CRITICAL_PAYLOAD = 1,
        /// A message arrived for an IKE SA we do not have.
        INVALID_IKE_SPI = 4,
        /// The IKE major version is not supported.
        INVALID_MAJOR_VERSION = 5,
        /// The message was malformed.
        INVALID_SYNTAX = 7,
        /// The message ID was outside the window.
        INVALID_MESSAGE_ID = 9,
        /// ESP or AH arrived with an SPI we do not have.
        INVALID_SPI = 11,
        /// No proposal was acceptable.
        NO_PROPOSAL_CHOSEN = 14,
        /// The KE payload's group is not the one the responder wants.
        INVALID_KE_PAYLOAD = 17,
        /// Authentication failed.
        AUTHENTICATION_FAILED = 24,
        /// Only a single pair of selectors is acceptable.
        SINGLE_PAIR_REQUIRED = 34,
        /// No more CHILD SAs are accepted on this IKE SA.
        NO_ADDITIONAL_SAS = 35,
        /// No internal address could be assigned.
        INTERNAL_ADDRESS_FAILURE = 36,
        /// A CP payload was required.
        FAILED_CP_REQUIRED = 37,
        /// The traffic selectors are not acceptable.
        TS_UNACCEPTABLE = 38,
        /// A packet's selectors do not match the SA.
        INVALID_SELECTORS = 39,
        /// RFC 4555 (MOBIKE).
        UNACCEPTABLE_ADDRESSES = 40,
        /// RFC 4555 (MOBIKE).
        UNEXPECTED_NAT_DETECTED = 41,
        /// RFC 5026.
        USE_ASSIGNED_HOA = 42,
        /// A temporary condition (e.g. a rekey collision) prevented the exchange.
        TEMPORARY_FAILURE = 43,
        /// The CHILD SA named in a rekey does not exist.
        CHILD_SA_NOT_FOUND = 44,
        /// G-IKEv2.
        INVALID_GROUP_ID = 45,
        /// G-IKEv2.
        AUTHORIZATION_FAILED = 46,
        /// RFC 9242 / RFC 8019.
        STATE_NOT_FOUND = 47,
        /// The sender has no other IKE SA with this peer (reboot recovery).
        INITIAL_CONTACT = 16384,
        /// Window size of the sender.
        SET_WINDOW_SIZE = 16385,
        /// More traffic selectors would have been possible.
        ADDITIONAL_TS_POSSIBLE = 16386,
        /// IP compression is supported.
        IPCOMP_SUPPORTED = 16387,
        /// NAT detection: hash of the source address and port.
        NAT_DETECTION_SOURCE_IP = 16388,
        /// NAT detection: hash of the destination address and port.
        NAT_DETECTION_DESTINATION_IP = 16389,
        /// Stateless cookie (anti-DoS).
        COOKIE = 16390,
        /// Transport mode is requested.
        USE_TRANSPORT_MODE = 16391,
        /// HTTP certificate lookup is supported.
        HTTP_CERT_LOOKUP_SUPPORTED = 16392,
        /// This exchange rekeys the named SA.
        REKEY_SA = 16393,
        /// The sender does not want TFC padding.
        ESP_TFC_PADDING_NOT_SUPPORTED = 16394,
        /// Non-first fragments are also sent.
        NON_FIRST_FRAGMENTS_ALSO = 16395,
        /// RFC 4555.
        MOBIKE_SUPPORTED = 16396,
        /// RFC 4555.
        ADDITIONAL_IP4_ADDRESS = 16397,
        /// RFC 4555.
        ADDITIONAL_IP6_ADDRESS = 16398,
        /// RFC 4555.
        NO_ADDITIONAL_ADDRESSES = 16399,
        /// RFC 4555.
        UPDATE_SA_ADDRESSES = 16400,
        /// RFC 4555.
        COOKIE2 = 16401,
        /// RFC 4555.
        NO_NATS_ALLOWED = 16402,
        /// RFC 4478.
        AUTH_LIFETIME = 16403,
        /// RFC 4739.
        MULTIPLE_AUTH_SUPPORTED = 16404,
        /// RFC 4739.
        ANOTHER_AUTH_FOLLOWS = 16405,
        /// RFC 5685.
        REDIRECT_SUPPORTED = 16406,
        /// RFC 5685.
        REDIRECT = 16407,
        /// RFC 5685.
        REDIRECTED_FROM = 16408,
        /// RFC 5723.
        TICKET_LT_OPAQUE = 16409,
        /// RFC 5723.
        TICKET_REQUEST = 16410,
        /// RFC 5723.
        TICKET_ACK = 16411,
        /// RFC 5723.
        TICKET_NACK = 16412,
        /// RFC 5723.
        TICKET_OPAQUE = 16413,
        /// RFC 5739.
        LINK_ID = 16414,
        /// RFC 5840.
        USE_WESP_MODE = 16415,
        /// RFC 5857.
        ROHC_SUPPORTED = 16416,
        /// RFC 5998.
        EAP_ONLY_AUTHENTICATION = 16417,
        /// RFC 6023.
        CHILDLESS_IKEV2_SUPPORTED = 16418,
        /// RFC 6290.
        QUICK_CRASH_DETECTION = 16419,
        /// RFC 6311.
        IKEV2_MESSAGE_ID_SYNC_SUPPORTED = 16420,
        /// RFC 6311.
        IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED = 16421,
        /// RFC 6311.
        IKEV2_MESSAGE_ID_SYNC = 16422,
        /// RFC 6311.
        IPSEC_REPLAY_COUNTER_SYNC = 16423,
        /// RFC 6467.
        SECURE_PASSWORD_METHODS = 16424,
        /// RFC 6631.
        PSK_PERSIST = 16425,
        /// RFC 6631.
        PSK_CONFIRM = 16426,
        /// RFC 6867.
        ERX_SUPPORTED = 16427,
        /// RFC 6989 errata / 3GPP.
        IFOM_CAPABILITY = 16428,
        /// G-IKEv2.
        SENDER_REQUEST_ID = 16429,
        /// RFC 7383: IKE fragmentation is supported.
        IKEV2_FRAGMENTATION_SUPPORTED = 16430,
        /// RFC 7427: hash algorithms supported for signatures.
        SIGNATURE_HASH_ALGORITHMS = 16431,
        /// RFC 7791.
        CLONE_IKE_SA_SUPPORTED = 16432,
        /// RFC 7791.
        CLONE_IKE_SA = 16433,
        /// RFC 8019.
        PUZZLE = 16434,
        /// RFC 8784.
        USE_PPK = 16435,
        /// RFC 8784.
        PPK_IDENTITY = 16436,
        /// RFC 8784.
        NO_PPK_AUTH = 16437,
        /// RFC 9242.
        INTERMEDIATE_EXCHANGE_SUPPORTED = 16438,
        /// RFC 8983.
        IP4_ALLOWED = 16439,
        /// RFC 8983.
        IP6_ALLOWED = 16440,
        /// RFC 9370.
        ADDITIONAL_KEY_EXCHANGE = 16441,
        /// RFC 9347.
        USE_AGGFRAG = 16442,
    }
}

impl NotifyType {
    /// Error types (0–16383) say an exchange failed (RFC 7296 §3.10.1); the rest are status.
    pub fn is_error(self) -> bool {
        self.0 < 16384
    }

    /// An error type we know: an unknown one in a request MUST be ignored (RFC 7296
    /// §3.10.1), and says nothing we could report in a response either.
    pub fn is_known_error(self) -> bool {
        self.is_error() && self.name().is_some()
    }
}

registry! {
    /// IKEv2 Traffic Selector Types (RFC 7296 §3.13.1, RFC 9478).
    TsType(u8) {
        /// A range of IPv4 addresses.
        IPV4_ADDR_RANGE = 7,
        /// A range of IPv6 addresses.
        IPV6_ADDR_RANGE = 8,
        /// Fibre Channel address range (RFC 4595).
        FC_ADDR_RANGE = 9,
        /// Security label (RFC 9478).
        SECLABEL = 10,
    }
}

registry! {
    /// IKEv2 Configuration Payload CFG Types (RFC 7296 §3.15).
    CfgType(u8) {
        /// CFG_REQUEST.
        REQUEST = 1,
        /// CFG_REPLY.
        REPLY = 2,
        /// CFG_SET.
        SET = 3,
        /// CFG_ACK.
        ACK = 4,
    }
}

registry! {
    /// IKEv2 Configuration Payload Attribute Types (RFC 7296 §3.15.1 and later RFCs).
    CfgAttrType(u16) {
        /// An IPv4 address on the internal network.
        INTERNAL_IP4_ADDRESS = 1,
        /// The internal network's netmask (IPv4).
        INTERNAL_IP4_NETMASK = 2,
        /// An IPv4 DNS server.
        INTERNAL_IP4_DNS = 3,
        /// An IPv4 NetBIOS name server.
        INTERNAL_IP4_NBNS = 4,
        /// An IPv4 DHCP server.
        INTERNAL_IP4_DHCP = 6,
        /// The application version string.
        APPLICATION_VERSION = 7,
        /// An IPv6 address and prefix length on the internal network.
        INTERNAL_IP6_ADDRESS = 8,
        /// An IPv6 DNS server.
        INTERNAL_IP6_DNS = 10,
        /// An IPv6 DHCP server.
        INTERNAL_IP6_DHCP = 12,
        /// An IPv4 subnet protected by the sender.
        INTERNAL_IP4_SUBNET = 13,
        /// The attributes the sender supports.
        SUPPORTED_ATTRIBUTES = 14,
        /// An IPv6 subnet protected by the sender.
        INTERNAL_IP6_SUBNET = 15,
        /// RFC 5026.
        MIP6_HOME_PREFIX = 16,
        /// RFC 5739.
        INTERNAL_IP6_LINK = 17,
        /// RFC 5739.
        INTERNAL_IP6_PREFIX = 18,
        /// RFC 5026.
        HOME_AGENT_ADDRESS = 19,
        /// RFC 7651.
        P_CSCF_IP4_ADDRESS = 20,
        /// RFC 7651.
        P_CSCF_IP6_ADDRESS = 21,
        /// 3GPP.
        FTT_KAT = 22,
        /// 3GPP.
        EXTERNAL_SOURCE_IP4_NAT_INFO = 23,
        /// 3GPP.
        TIMEOUT_PERIOD_FOR_LIVENESS_CHECK = 24,
        /// RFC 8598.
        INTERNAL_DNS_DOMAIN = 25,
        /// RFC 8598.
        INTERNAL_DNSSEC_TA = 26,
    }
}

registry! {
    /// IKEv2 Hash Algorithms for the SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 §4).
    HashAlgorithm(u16) {
        /// SHA-1 (weak).
        SHA1 = 1,
        /// SHA2-256.
        SHA2_256 = 2,
        /// SHA2-384.
        SHA2_384 = 3,
        /// SHA2-512.
        SHA2_512 = 4,
        /// Identity (the signature algorithm hashes internally, e.g. Ed25519; RFC 8420).
        IDENTITY = 5,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_have_names_and_unknown_ones_survive() {
        assert_eq!(NotifyType(16430), NotifyType::IKEV2_FRAGMENTATION_SUPPORTED);
        assert_eq!(
            NotifyType::IKEV2_FRAGMENTATION_SUPPORTED.to_string(),
            "IKEV2_FRAGMENTATION_SUPPORTED"
        );
        assert_eq!(NotifyType(40000).name(), None);
        assert_eq!(NotifyType(40000).to_string(), "NotifyType(40000)");
        assert!(NotifyType::TS_UNACCEPTABLE.is_error());
        assert!(!NotifyType::COOKIE.is_error());
        assert_eq!(PayloadType::IDI.short_name(), Some("IDi"));
        assert_eq!(KeMethod::CURVE25519.0, 31);
    }
}
