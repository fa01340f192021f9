//! The part Map-Register, Map-Notify and Map-Notify-Ack share: nonce, authentication, mapping
//! records and the optional xTR-ID / site-ID.

use super::record::{parse_records, MappingRecord};
use crate::wire::field::{Reader, Writer};
use crate::wire::Result;

/// 128-bit xTR-ID and 64-bit site-ID (present when the I bit is set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XtrId {
    pub xtr_id: [u8; 16],
    pub site_id: u64,
}

/// Nonce, key-id, authentication data, records and xTR-ID of a registration message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Registration {
    pub nonce: u64,
    /// Which of the shared keys signed the message (RFC 9301 Key ID; 0 for most deployments).
    pub key_id: u8,
    /// The HMAC (RFC 9301 Algorithm ID): 0 none, 1 HMAC-SHA-1-96, 2 HMAC-SHA-256-128 (see
    /// [`crate::wire::auth`]). Older texts call the 16-bit pair "key-id": 0x0001 and 0x0002 are
    /// key 0 with algorithm 1 or 2.
    pub algorithm_id: u8,
    /// As on the wire; [`crate::wire::auth::sign`] fills it in.
    pub auth_data: Vec<u8>,
    pub records: Vec<MappingRecord>,
    pub xtr_id: Option<XtrId>,
}

impl Registration {
    pub(crate) fn buffer_len(&self) -> usize {
        12 + self.auth_data.len()
            + self
                .records
                .iter()
                .map(MappingRecord::buffer_len)
                .sum::<usize>()
            + if self.xtr_id.is_some() { 24 } else { 0 }
    }

    /// Parses what follows the 4-byte header; `xtr` is the I bit, `count` the record count.
    pub(crate) fn parse(
        r: &mut Reader<'_>,
        count: u8,
        xtr: bool,
        what: &'static str,
    ) -> Result<Registration> {
        let nonce = r.u64("nonce")?;
        let key_id = r.u8("key-id")?;
        let algorithm_id = r.u8("algorithm-id")?;
        let auth_len = r.u16("authentication data length")?;
        let auth_data = r
            .bytes(usize::from(auth_len), "authentication data")?
            .to_vec();
        let records = parse_records(r, count, what)?;
        let xtr_id = if xtr {
            let xtr_id = r.array::<16>("xTR-ID")?;
            let site_id = r.u64("site-ID")?;
            Some(XtrId { xtr_id, site_id })
        } else {
            None
        };
        Ok(Registration {
            nonce,
            key_id,
            algorithm_id,
            auth_data,
            records,
            xtr_id,
        })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        let auth_len = u16::try_from(self.auth_data.len())
            .map_err(|_| crate::wire::Error::TooLong("authentication data"))?;
        w.u64(self.nonce, "nonce")?;
        w.u8(self.key_id, "key-id")?;
        w.u8(self.algorithm_id, "algorithm-id")?;
        w.u16(auth_len, "authentication data length")?;
        w.bytes(&self.auth_data, "authentication data")?;
        for rec in &self.records {
            rec.emit(w)?;
        }
        if let Some(x) = &self.xtr_id {
            w.bytes(&x.xtr_id, "xTR-ID")?;
            w.u64(x.site_id, "site-ID")?;
        }
        Ok(())
    }
}
