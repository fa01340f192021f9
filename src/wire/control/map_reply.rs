//! Map-Reply (type 2): the mappings for the EIDs a Map-Request asked about.

use super::record::{parse_records, MappingRecord};
use super::{count, finish, header, MessageType};
use crate::wire::field::{Reader, Writer};
use crate::wire::Result;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapReply {
    /// P: a reply to an RLOC-probe.
    pub probe: bool,
    /// E: the sender can echo nonces.
    pub echo_nonce_capable: bool,
    /// S: security (LISP-SEC) information follows.
    pub security: bool,
    pub nonce: u64,
    pub records: Vec<MappingRecord>,
}

impl MapReply {
    pub fn buffer_len(&self) -> usize {
        12 + self
            .records
            .iter()
            .map(MappingRecord::buffer_len)
            .sum::<usize>()
    }

    pub fn parse(bytes: &[u8]) -> Result<MapReply> {
        let mut r = Reader::new(bytes);
        let (b0, _mid, n) = header(&mut r)?;
        let nonce = r.u64("nonce")?;
        let records = parse_records(&mut r, n, "Map-Reply")?;
        Ok(MapReply {
            probe: b0 & 0x08 != 0,
            echo_nonce_capable: b0 & 0x04 != 0,
            security: b0 & 0x02 != 0,
            nonce,
            records,
        })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        let b0 = ((MessageType::MapReply as u8) << 4)
            | (u8::from(self.probe) << 3)
            | (u8::from(self.echo_nonce_capable) << 2)
            | (u8::from(self.security) << 1);
        w.u8(b0, "header")?;
        w.u16(0, "header")?;
        w.u8(count(self.records.len(), "record list")?, "header")?;
        w.u64(self.nonce, "nonce")?;
        for rec in &self.records {
            rec.emit(&mut w)?;
        }
        Ok(finish(&w))
    }
}
