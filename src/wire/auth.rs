//! Authentication of Map-Register, Map-Notify and Map-Notify-Ack (RFC 9301 section 5.6):
//! an HMAC over the whole message with the authentication data field zeroed.
//!
//! The 16-bit field after the nonce is RFC 9301's Key ID (8 bits: which shared key) and
//! Algorithm ID (8 bits): 1 is HMAC-SHA-1-96 and 2 HMAC-SHA-256-128 — what older texts and
//! Wireshark call "key-id 1" and "key-id 2" (key 0). Deployed xTRs (OOR, lispers.net,
//! IOS-XE) put the whole HMAC output on the wire (20 bytes for SHA-1, 32 for SHA-256), so pxtr
//! sends that; it accepts the whole output or the truncated 96/128 bits, compared in constant
//! time.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::control::{Message, MessageType};
use super::{Error, Result};

/// Offset of the key-id in a registration message (after the 4-byte header and the nonce); the
/// algorithm-id follows it.
const KEY_ID_OFFSET: usize = 12;
/// Offset of the authentication data.
const AUTH_OFFSET: usize = 16;

/// The HMAC algorithms, by RFC 9301 Algorithm ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Key-id 1.
    HmacSha1_96,
    /// Key-id 2.
    HmacSha256_128,
}

impl Algorithm {
    /// The algorithm of an Algorithm ID.
    pub fn from_id(id: u8) -> Result<Algorithm> {
        match id {
            1 => Ok(Algorithm::HmacSha1_96),
            2 => Ok(Algorithm::HmacSha256_128),
            0 => Err(Error::NotAuthenticated),
            k => Err(Error::UnsupportedAlgorithm(k)),
        }
    }

    /// Its Algorithm ID.
    pub fn id(self) -> u8 {
        match self {
            Algorithm::HmacSha1_96 => 1,
            Algorithm::HmacSha256_128 => 2,
        }
    }

    /// Bytes pxtr puts on the wire (the whole HMAC output, as deployed xTRs do).
    pub fn auth_len(self) -> usize {
        match self {
            Algorithm::HmacSha1_96 => 20,
            Algorithm::HmacSha256_128 => 32,
        }
    }

    /// The truncated length the algorithm's name gives (96 or 128 bits), also accepted.
    fn truncated_len(self) -> usize {
        match self {
            Algorithm::HmacSha1_96 => 12,
            Algorithm::HmacSha256_128 => 16,
        }
    }
}

/// (key-id, algorithm-id, authentication data length) of a registration message.
fn registration_message(msg: &[u8]) -> Result<(u8, u8, usize)> {
    match MessageType::of(msg)? {
        MessageType::MapRegister | MessageType::MapNotify | MessageType::MapNotifyAck => {}
        other => return Err(Error::UnknownType(other as u8)),
    }
    if msg.len() < AUTH_OFFSET {
        return Err(Error::Truncated("authentication header"));
    }
    let key_id = msg[KEY_ID_OFFSET];
    let algorithm_id = msg[KEY_ID_OFFSET + 1];
    let len = usize::from(u16::from_be_bytes([
        msg[KEY_ID_OFFSET + 2],
        msg[KEY_ID_OFFSET + 3],
    ]));
    if msg.len() < AUTH_OFFSET + len {
        return Err(Error::Truncated("authentication data"));
    }
    Ok((key_id, algorithm_id, len))
}

/// The algorithm of a registration message and the length of its authentication data, which
/// must be the whole HMAC output or its truncated 96/128 bits.
fn algorithm_and_len(msg: &[u8]) -> Result<(Algorithm, usize)> {
    let (_key_id, algorithm_id, len) = registration_message(msg)?;
    let alg = Algorithm::from_id(algorithm_id)?;
    if len != alg.auth_len() && len != alg.truncated_len() {
        return Err(Error::AuthLength {
            algorithm: algorithm_id,
            got: len,
            expected: alg.auth_len(),
        });
    }
    Ok((alg, len))
}

/// The Key ID of a received Map-Register, Map-Notify or Map-Notify-Ack: which shared key to
/// verify it with.
pub fn key_id(msg: &[u8]) -> Result<u8> {
    Ok(registration_message(msg)?.0)
}

/// An HMAC keyed with `key` over `parts`, in order.
fn hmac_over<M: Mac + KeyInit>(key: &[u8], parts: &[&[u8]]) -> M {
    // HMAC accepts keys of any length (long ones are hashed), so this cannot fail.
    let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
    }
    m
}

fn mac_of(alg: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    match alg {
        Algorithm::HmacSha1_96 => hmac_over::<Hmac<Sha1>>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::HmacSha256_128 => hmac_over::<Hmac<Sha256>>(key, parts)
            .finalize()
            .into_bytes()
            .to_vec(),
    }
}

/// Fills in the authentication data of an emitted Map-Register, Map-Notify or Map-Notify-Ack
/// whose key-id field names the algorithm and whose authentication data field is as long as the
/// whole HMAC output (what peers expect) or its truncated 96/128 bits.
pub fn sign(msg: &mut [u8], key: &[u8]) -> Result<()> {
    let (alg, len) = algorithm_and_len(msg)?;
    msg[AUTH_OFFSET..AUTH_OFFSET + len].fill(0);
    let mac = mac_of(alg, key, &[msg]);
    msg[AUTH_OFFSET..AUTH_OFFSET + len].copy_from_slice(&mac[..len]);
    Ok(())
}

/// Emits a Map-Register, Map-Notify or Map-Notify-Ack authenticated with `alg` and `key`:
/// sets the algorithm-id and authentication data of a copy of `msg` (its key-id is kept),
/// emits it and signs it.
pub fn emit_signed(msg: &Message, alg: Algorithm, key: &[u8]) -> Result<Vec<u8>> {
    let mut msg = msg.clone();
    let reg = match &mut msg {
        Message::MapRegister(m) => &mut m.registration,
        Message::MapNotify(m) => &mut m.registration,
        other => return Err(Error::UnknownType(other.message_type() as u8)),
    };
    reg.algorithm_id = alg.id();
    reg.auth_data = vec![0u8; alg.auth_len()];
    let mut out = msg.to_vec()?;
    sign(&mut out, key)?;
    Ok(out)
}

/// Verifies the authentication data of a received Map-Register, Map-Notify or Map-Notify-Ack
/// with `key`, in constant time. Returns the algorithm used.
pub fn verify(msg: &[u8], key: &[u8]) -> Result<Algorithm> {
    let (alg, len) = algorithm_and_len(msg)?;
    let zeros = [0u8; 32];
    let received = &msg[AUTH_OFFSET..AUTH_OFFSET + len];
    let parts: [&[u8]; 3] = [
        &msg[..AUTH_OFFSET],
        &zeros[..len],
        &msg[AUTH_OFFSET + len..],
    ];
    let ok = match alg {
        Algorithm::HmacSha1_96 => {
            hmac_over::<Hmac<Sha1>>(key, &parts).verify_truncated_left(received)
        }
        Algorithm::HmacSha256_128 => {
            hmac_over::<Hmac<Sha256>>(key, &parts).verify_truncated_left(received)
        }
    }
    .is_ok();
    if ok {
        Ok(alg)
    } else {
        Err(Error::AuthFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2202_and_rfc4231_vectors() {
        // RFC 2202 test case 2 (HMAC-SHA-1) and RFC 4231 test case 2 (HMAC-SHA-256).
        let sha1 = mac_of(
            Algorithm::HmacSha1_96,
            b"Jefe",
            &[b"what do ya want ", b"for nothing?"],
        );
        assert_eq!(sha1[..4], [0xef, 0xfc, 0xdf, 0x6a]);
        let sha256 = mac_of(
            Algorithm::HmacSha256_128,
            b"Jefe",
            &[b"what do ya want for nothing?"],
        );
        assert_eq!(sha256[..4], [0x5b, 0xdc, 0xc1, 0x46]);
    }
}
