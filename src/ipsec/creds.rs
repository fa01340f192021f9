//! X.509 credentials of a peer with `auth = "pubkey"`: its certificate, private key and the CA
//! certificate that vouches for the far end, read from files (PEM or DER) and checked enough to
//! give a clear error before charon sees them. charon gets the files' bytes as they are
//! (`load-cert`, `load-key`); what is read here is only what pxtr must know: that a file holds
//! one certificate or one unencrypted private key, and the key's type (`load-key` needs it).

use std::path::{Path, PathBuf};

/// VICI values are at most 64 KiB; certificates and keys are a few KiB.
const MAX_FILE: u64 = 60 * 1024;

/// A credential file that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("{}: cannot read: {reason}", file.display())]
    Read { file: PathBuf, reason: String },
    #[error("{}: {reason}", file.display())]
    Format { file: PathBuf, reason: String },
}

/// The type of a private key, as `load-key` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    Rsa,
    Ecdsa,
    Ed25519,
    Ed448,
}

impl KeyType {
    pub fn as_vici(self) -> &'static str {
        match self {
            KeyType::Rsa => "rsa",
            KeyType::Ecdsa => "ecdsa",
            KeyType::Ed25519 => "ed25519",
            KeyType::Ed448 => "ed448",
        }
    }
}

/// A private key file's bytes and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateKey {
    pub kind: KeyType,
    pub data: Vec<u8>,
}

/// Reads a certificate file: one X.509 certificate, PEM or DER. Returns the file's bytes.
pub fn read_certificate(file: &Path) -> Result<Vec<u8>, Error> {
    let data = read(file)?;
    let fail = |reason: String| Error::Format {
        file: file.to_owned(),
        reason,
    };
    match pem_blocks(&data).map_err(fail)? {
        Some(blocks) => {
            let certs: Vec<&Pem> = blocks.iter().filter(|b| b.label == "CERTIFICATE").collect();
            match certs.len() {
                1 => {
                    sequence(&certs[0].der).map_err(|e| fail(format!("certificate: {e}")))?;
                    Ok(data)
                }
                0 => Err(fail(format!(
                    "no PEM certificate in it (found {})",
                    labels(&blocks)
                ))),
                n => Err(fail(format!(
                    "{n} certificates in it: give one file per certificate"
                ))),
            }
        }
        None => {
            // DER: a certificate is a SEQUENCE of the signed part, the algorithm and the
            // signature.
            let body =
                whole_sequence(&data).map_err(|e| fail(format!("neither PEM nor DER: {e}")))?;
            let (tag, _, _) = tlv(body).map_err(|e| fail(format!("not a DER certificate: {e}")))?;
            if tag != SEQUENCE {
                return Err(fail("not a DER certificate".into()));
            }
            Ok(data)
        }
    }
}

/// Reads a private key file: one unencrypted RSA, ECDSA, Ed25519 or Ed448 key, PEM or DER
/// (PKCS#1, SEC 1 or PKCS#8).
pub fn read_private_key(file: &Path) -> Result<PrivateKey, Error> {
    let data = read(file)?;
    let fail = |reason: String| Error::Format {
        file: file.to_owned(),
        reason,
    };
    let der = match pem_blocks(&data).map_err(fail)? {
        Some(blocks) => {
            if blocks
                .iter()
                .any(|b| b.label == "ENCRYPTED PRIVATE KEY" || b.encrypted)
            {
                return Err(fail(
                    "the private key is encrypted: pxtr has no passphrase to give charon; \
                     store it unencrypted and readable by root only"
                        .into(),
                ));
            }
            let keys: Vec<&Pem> = blocks
                .iter()
                .filter(|b| b.label.ends_with("PRIVATE KEY"))
                .collect();
            match keys.len() {
                1 => keys[0].der.clone(),
                0 => {
                    return Err(fail(format!(
                        "no PEM private key in it (found {})",
                        labels(&blocks)
                    )))
                }
                n => return Err(fail(format!("{n} private keys in it: give one"))),
            }
        }
        None => data.clone(),
    };
    let kind = key_type(&der).map_err(|e| fail(format!("not a private key: {e}")))?;
    Ok(PrivateKey { kind, data })
}

fn read(file: &Path) -> Result<Vec<u8>, Error> {
    let err = |reason: String| Error::Read {
        file: file.to_owned(),
        reason,
    };
    let meta = std::fs::metadata(file).map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".into()));
    }
    if meta.len() > MAX_FILE {
        return Err(err(format!(
            "{} bytes: larger than any certificate or key ({MAX_FILE} at most)",
            meta.len()
        )));
    }
    std::fs::read(file).map_err(|e| err(e.to_string()))
}

fn labels(blocks: &[Pem]) -> String {
    if blocks.is_empty() {
        return "nothing".into();
    }
    blocks
        .iter()
        .map(|b| b.label.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One PEM block: its label, whether its headers say it is encrypted (the old OpenSSL
/// `Proc-Type: 4,ENCRYPTED`), and its DER content.
struct Pem {
    label: String,
    encrypted: bool,
    der: Vec<u8>,
}

/// The PEM blocks of `data`; `None` when it has no PEM boundary at all (so it may be DER).
fn pem_blocks(data: &[u8]) -> Result<Option<Vec<Pem>>, String> {
    let Ok(text) = std::str::from_utf8(data) else {
        return Ok(None);
    };
    if !text.contains("-----BEGIN ") {
        return Ok(None);
    }
    let mut blocks = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        let mut encrypted = false;
        let mut closed = false;
        for l in lines.by_ref() {
            if l == end {
                closed = true;
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.trim() == "Proc-Type" && v.contains("ENCRYPTED") {
                    encrypted = true;
                }
                continue;
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(format!("PEM block {label:?} has no end line"));
        }
        let der = base64(&b64).ok_or_else(|| format!("PEM block {label:?} is not base64"))?;
        blocks.push(Pem {
            label: label.to_owned(),
            encrypted,
            der,
        });
    }
    Ok(Some(blocks))
}

/// Decodes standard base64 (RFC 4648, padded or not); `None` on any other character.
fn base64(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const SEQUENCE: u8 = 0x30;

/// One DER element: its tag, its content and what follows it.
fn tlv(b: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (&tag, rest) = b.split_first().ok_or("truncated")?;
    let (&first, rest) = rest.split_first().ok_or("truncated")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("bad length".into());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("truncated".into());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

/// The content of `b` when it is exactly one DER SEQUENCE.
fn whole_sequence(b: &[u8]) -> Result<&[u8], String> {
    let (tag, body, rest) = tlv(b)?;
    if tag != SEQUENCE {
        return Err("does not start with a SEQUENCE".into());
    }
    if !rest.is_empty() {
        return Err("bytes after the end of the DER structure".into());
    }
    Ok(body)
}

fn sequence(b: &[u8]) -> Result<(), String> {
    whole_sequence(b).map(|_| ())
}

/// The type of a DER private key: PKCS#1 RSAPrivateKey (version, then INTEGERs), SEC 1
/// ECPrivateKey (version, then the key as an OCTET STRING) or PKCS#8 PrivateKeyInfo (version,
/// then the algorithm's SEQUENCE, whose OID says the type).
fn key_type(der: &[u8]) -> Result<KeyType, String> {
    let body = whole_sequence(der)?;
    let (tag, _, rest) = tlv(body)?;
    if tag != INTEGER {
        return Err("no version".into());
    }
    let (tag, alg, _) = tlv(rest)?;
    match tag {
        INTEGER => Ok(KeyType::Rsa),
        OCTET_STRING => Ok(KeyType::Ecdsa),
        SEQUENCE => {
            let (tag, oid, _) = tlv(alg)?;
            if tag != OID {
                return Err("no algorithm identifier".into());
            }
            match oid {
                // 1.2.840.113549.1.1.1 rsaEncryption
                [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01] => Ok(KeyType::Rsa),
                // 1.2.840.10045.2.1 id-ecPublicKey
                [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01] => Ok(KeyType::Ecdsa),
                // 1.3.101.112 id-Ed25519, 1.3.101.113 id-Ed448
                [0x2b, 0x65, 0x70] => Ok(KeyType::Ed25519),
                [0x2b, 0x65, 0x71] => Ok(KeyType::Ed448),
                _ => Err(
                    "a key type strongSwan cannot sign IKE with (RSA, ECDSA, Ed25519, Ed448)"
                        .into(),
                ),
            }
        }
        _ => Err("unknown structure".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, data: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, data).unwrap();
        p
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pxtr-creds-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn b64(der: &[u8]) -> String {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut s = String::new();
        for c in der.chunks(3) {
            let n = c.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)) << (8 * (3 - c.len()));
            for i in 0..=c.len() {
                s.push(A[(n >> (18 - 6 * i)) as usize & 63] as char);
            }
            for _ in c.len()..3 {
                s.push('=');
            }
        }
        s
    }

    fn pem(label: &str, der: &[u8]) -> Vec<u8> {
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            b64(der)
        )
        .into_bytes()
    }

    // Minimal DER structures of each key layout (the numbers are not real keys; only the
    // structure matters here).
    const RSA_PKCS1: &[u8] = &[0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x05];
    const EC_SEC1: &[u8] = &[0x30, 0x07, 0x02, 0x01, 0x01, 0x04, 0x02, 0xab, 0xcd];
    const RSA_PKCS8: &[u8] = &[
        0x30, 0x16, 0x02, 0x01, 0x00, 0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
        0x01, 0x01, 0x01, 0x05, 0x00, 0x04, 0x02, 0x30, 0x00,
    ];
    const ED25519_PKCS8: &[u8] = &[
        0x30, 0x0e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x02, 0x04,
        0x00,
    ];
    const DSA_PKCS8: &[u8] = &[
        0x30, 0x14, 0x02, 0x01, 0x00, 0x30, 0x0b, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x38, 0x04,
        0x01, 0x05, 0x00, 0x04, 0x02, 0x02, 0x00,
    ];

    #[test]
    fn key_types_come_from_the_structure_in_pem_and_der() {
        let d = tmp("keys");
        for (name, data, want) in [
            ("rsa1.pem", pem("RSA PRIVATE KEY", RSA_PKCS1), KeyType::Rsa),
            ("rsa1.der", RSA_PKCS1.to_vec(), KeyType::Rsa),
            ("ec.pem", pem("EC PRIVATE KEY", EC_SEC1), KeyType::Ecdsa),
            ("rsa8.pem", pem("PRIVATE KEY", RSA_PKCS8), KeyType::Rsa),
            ("rsa8.der", RSA_PKCS8.to_vec(), KeyType::Rsa),
            (
                "ed.pem",
                pem("PRIVATE KEY", ED25519_PKCS8),
                KeyType::Ed25519,
            ),
        ] {
            let k = read_private_key(&write(&d, name, &data)).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(k.kind, want, "{name}");
            assert_eq!(k.data, data, "{name}: the file's bytes go to charon");
        }
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn unusable_keys_say_why_and_name_the_file() {
        let d = tmp("badkeys");
        let enc = write(
            &d,
            "enc.pem",
            &pem("ENCRYPTED PRIVATE KEY", &[0x30, 0x03, 0x02, 0x01, 0x00]),
        );
        let e = read_private_key(&enc).unwrap_err().to_string();
        assert!(e.contains("enc.pem") && e.contains("encrypted"), "{e}");
        let mut old = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n\n".to_vec();
        old.extend_from_slice(b64(RSA_PKCS1).as_bytes());
        old.extend_from_slice(b"\n-----END RSA PRIVATE KEY-----\n");
        let e = read_private_key(&write(&d, "old.pem", &old)).unwrap_err();
        assert!(e.to_string().contains("encrypted"), "{e}");
        let e = read_private_key(&write(&d, "dsa.pem", &pem("PRIVATE KEY", DSA_PKCS8)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("dsa.pem") && e.contains("RSA, ECDSA"), "{e}");
        let e = read_private_key(&write(&d, "cert.pem", &pem("CERTIFICATE", RSA_PKCS1)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no PEM private key") && e.contains("CERTIFICATE"),
            "{e}"
        );
        let e = read_private_key(&write(&d, "junk", b"hello, world\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("junk: not a private key"), "{e}");
        let e = read_private_key(&d.join("missing.pem")).unwrap_err();
        assert!(
            matches!(&e, Error::Read { file, .. } if file.ends_with("missing.pem")),
            "{e}"
        );
        let e = read_private_key(&d).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn certificates_are_one_pem_or_der_certificate() {
        let d = tmp("certs");
        let cert = [0x30, 0x04, 0x30, 0x02, 0x05, 0x00];
        let one = pem("CERTIFICATE", &cert);
        assert_eq!(read_certificate(&write(&d, "c.pem", &one)), Ok(one.clone()));
        assert_eq!(
            read_certificate(&write(&d, "c.der", &cert)),
            Ok(cert.to_vec())
        );
        let two = [one.clone(), one].concat();
        let e = read_certificate(&write(&d, "two.pem", &two))
            .unwrap_err()
            .to_string();
        assert!(e.contains("2 certificates"), "{e}");
        let e = read_certificate(&write(&d, "key.pem", &pem("RSA PRIVATE KEY", RSA_PKCS1)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("key.pem: no PEM certificate"), "{e}");
        let e = read_certificate(&write(&d, "x.der", &[0x30, 0x05, 0x02]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("x.der: neither PEM nor DER"), "{e}");
        let e = read_certificate(&write(
            &d,
            "cut.pem",
            b"-----BEGIN CERTIFICATE-----\nMAA=\n",
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("no end line"), "{e}");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn base64_decodes_and_refuses_other_characters() {
        assert_eq!(base64("aGVsbG8="), Some(b"hello".to_vec()));
        assert_eq!(base64("aGVs\nbG8"), Some(b"hello".to_vec()));
        assert_eq!(base64("aGVs*G8="), None);
    }

    #[test]
    fn der_lengths_never_panic() {
        for b in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x82, 0xff],
            &[0x30, 0x82, 0xff, 0xff, 0x00],
            &[0x30, 0x80],
        ] {
            assert!(key_type(b).is_err());
            assert!(whole_sequence(b).is_err());
        }
    }
}
