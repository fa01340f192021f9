//! LISP wire formats (RFC 9300 data plane, RFC 9301 control plane), pure and without I/O.
//!
//! Style (smoltcp's): the data-path formats are zero-copy views over byte slices plus small
//! `Copy` representations, with no allocation; control messages parse into owned `Repr`s
//! (the control core may allocate) and emit into caller-sized buffers. Parsing never panics and
//! never reads out of bounds: every malformed input maps to its own [`Error`] so counters and
//! logs can say why a packet was dropped.

pub mod address;
pub mod auth;
pub mod checksum;
pub mod control;
pub mod data;
pub mod encap;
mod field;

pub use address::{Address, Afi, LcafType};
pub use data::{DataHeader, DataRepr};

/// UDP port of LISP data (encapsulated) packets.
pub const LISP_DATA_PORT: u16 = 4341;
/// UDP port of LISP control messages.
pub const LISP_CONTROL_PORT: u16 = 4342;

/// Why bytes could not be parsed (or a message emitted). One variant per cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("truncated: {0} is cut short")]
    Truncated(&'static str),
    #[error("unknown LISP control message type {0}")]
    UnknownType(u8),
    #[error("unsupported AFI {0}")]
    BadAfi(u16),
    #[error("unsupported LCAF type {0} where an address is required")]
    UnsupportedLcaf(u8),
    #[error("LCAF instance-ID nested inside another instance-ID")]
    NestedLcaf,
    #[error("LCAF length {length} does not match its content ({content} bytes)")]
    LcafLength { length: u16, content: usize },
    #[error("{0} record count says more records than the message holds")]
    RecordCountOverrun(&'static str),
    #[error("locator count says more locators than the record holds")]
    LocatorCountOverrun,
    #[error("ITR-RLOC count says more ITR-RLOCs than the message holds")]
    ItrRlocCountOverrun,
    #[error("a Map-Request needs at least one ITR-RLOC")]
    NoItrRloc,
    #[error("EID mask length {mask_len} is longer than the {max}-bit address")]
    MaskLength { mask_len: u8, max: u8 },
    #[error("authentication data is {got} bytes; algorithm {algorithm} needs {expected}")]
    AuthLength {
        algorithm: u8,
        got: usize,
        expected: usize,
    },
    #[error("authentication data does not verify")]
    AuthFailed,
    #[error(
        "authentication algorithm {0} is not supported (1: HMAC-SHA-1-96, 2: HMAC-SHA-256-128)"
    )]
    UnsupportedAlgorithm(u8),
    #[error("the message is not authenticated (algorithm 0)")]
    NotAuthenticated,
    #[error("the LISP data header's K bits say the payload is encrypted (RFC 8061), which pxtr does not do")]
    EncryptedPayload,
    #[error("instance-ID {0} does not fit the data header's 24 bits")]
    IidTooLarge(u32),
    #[error("{0} is too long to encode")]
    TooLong(&'static str),
    #[error("IP version {0} where 4 or 6 was expected")]
    IpVersion(u8),
    #[error("bad IPv4 header length")]
    Ipv4HeaderLength,
    #[error("IP total length disagrees with the packet")]
    IpLength,
    #[error("bad IPv4 header checksum")]
    Ipv4Checksum,
    #[error("fragmented outer packet")]
    Fragment,
    #[error("not UDP (IP protocol {0})")]
    NotUdp(u8),
    #[error("UDP length disagrees with the packet")]
    UdpLength,
    #[error("bad UDP checksum")]
    UdpChecksum,
    #[error("UDP destination port {0} is not LISP's")]
    NotLispPort(u16),
    #[error("both N (nonce) and V (map-version) are set in a LISP data header")]
    NonceAndVersion,
    #[error("the inner packet's TTL is exhausted")]
    TtlExpired,
    #[error("ECN: congestion marked on a packet whose sender does not do ECN (RFC 6040 drop)")]
    EcnDrop,
    #[error("the buffer has no room for {0}")]
    NoRoom(&'static str),
}

/// Result of the wire layer.
pub type Result<T> = core::result::Result<T, Error>;
