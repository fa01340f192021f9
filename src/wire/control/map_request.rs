//! Map-Request (type 1): asks for the mapping of EIDs; also used for SMRs and RLOC-probes.

use super::record::{EidRecord, MappingRecord};
use super::registration::XtrId;
use super::{count, finish, header, MessageType};
use crate::wire::address::Address;
use crate::wire::field::{Reader, Writer};
use crate::wire::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapRequest {
    /// A: authoritative (set by an ITR asking for a fresh answer).
    pub authoritative: bool,
    /// P: an RLOC-probe.
    pub probe: bool,
    /// S: a Solicit-Map-Request (SMR).
    pub smr: bool,
    /// p: sent by a PITR.
    pub pitr: bool,
    /// s: SMR-invoked (the Map-Request an SMR triggers).
    pub smr_invoked: bool,
    /// R: reserved in RFC 9301; kept as received.
    pub reserved_r: bool,
    /// L: the sender is an xTR of the same site.
    pub local_xtr: bool,
    /// D: do not send a Map-Reply (SMR procedure).
    pub dont_map_reply: bool,
    pub nonce: u64,
    /// The EID of the host that caused the request (`Address::None` when there is none).
    pub source_eid: Address,
    /// Where the Map-Reply is to go (at least one).
    pub itr_rlocs: Vec<Address>,
    pub records: Vec<EidRecord>,
    /// The sender's own mapping (the M bit).
    pub map_reply: Option<MappingRecord>,
    /// xTR-ID and site-ID (the I bit).
    pub xtr_id: Option<XtrId>,
}

impl MapRequest {
    /// A plain Map-Request (no flag set) for `records`, answered to `itr_rlocs`.
    pub fn new(
        nonce: u64,
        source_eid: Address,
        itr_rlocs: Vec<Address>,
        records: Vec<EidRecord>,
    ) -> MapRequest {
        MapRequest {
            authoritative: false,
            probe: false,
            smr: false,
            pitr: false,
            smr_invoked: false,
            reserved_r: false,
            local_xtr: false,
            dont_map_reply: false,
            nonce,
            source_eid,
            itr_rlocs,
            records,
            map_reply: None,
            xtr_id: None,
        }
    }

    pub fn buffer_len(&self) -> usize {
        12 + self.source_eid.buffer_len()
            + self
                .itr_rlocs
                .iter()
                .map(Address::buffer_len)
                .sum::<usize>()
            + self
                .records
                .iter()
                .map(EidRecord::buffer_len)
                .sum::<usize>()
            + self.map_reply.as_ref().map_or(0, MappingRecord::buffer_len)
            + if self.xtr_id.is_some() { 24 } else { 0 }
    }

    pub fn parse(bytes: &[u8]) -> Result<MapRequest> {
        let mut r = Reader::new(bytes);
        let (b0, mid, n) = header(&mut r)?;
        let irc = usize::from(mid & 0x1f) + 1;
        let nonce = r.u64("nonce")?;
        let source_eid = Address::parse(&mut r)?;
        // Each ITR-RLOC takes at least 2 bytes, each record at least 4.
        if irc * 2 > r.remaining() {
            return Err(Error::ItrRlocCountOverrun);
        }
        let mut itr_rlocs = Vec::with_capacity(irc);
        for _ in 0..irc {
            itr_rlocs.push(Address::parse(&mut r).map_err(|e| match e {
                Error::Truncated(_) => Error::ItrRlocCountOverrun,
                e => e,
            })?);
        }
        if usize::from(n) * 4 > r.remaining() {
            return Err(Error::RecordCountOverrun("Map-Request"));
        }
        let mut records = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            records.push(EidRecord::parse(&mut r).map_err(|e| match e {
                Error::Truncated(_) => Error::RecordCountOverrun("Map-Request"),
                e => e,
            })?);
        }
        let map_reply = if b0 & 0x04 != 0 {
            Some(MappingRecord::parse(&mut r)?)
        } else {
            None
        };
        let xtr_id = if mid & 0x1000 != 0 {
            let xtr_id = r.array::<16>("xTR-ID")?;
            let site_id = r.u64("site-ID")?;
            Some(XtrId { xtr_id, site_id })
        } else {
            None
        };
        Ok(MapRequest {
            authoritative: b0 & 0x08 != 0,
            probe: b0 & 0x02 != 0,
            smr: b0 & 0x01 != 0,
            pitr: mid & 0x8000 != 0,
            smr_invoked: mid & 0x4000 != 0,
            reserved_r: mid & 0x2000 != 0,
            local_xtr: mid & 0x0040 != 0,
            dont_map_reply: mid & 0x0020 != 0,
            nonce,
            source_eid,
            itr_rlocs,
            records,
            map_reply,
            xtr_id,
        })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if self.itr_rlocs.is_empty() {
            return Err(Error::NoItrRloc);
        }
        if self.itr_rlocs.len() > 32 {
            return Err(Error::TooLong("ITR-RLOC list"));
        }
        let irc = (self.itr_rlocs.len() - 1) as u16;
        let mut w = Writer::new(buf);
        let b0 = ((MessageType::MapRequest as u8) << 4)
            | (u8::from(self.authoritative) << 3)
            | (u8::from(self.map_reply.is_some()) << 2)
            | (u8::from(self.probe) << 1)
            | u8::from(self.smr);
        let mid = (u16::from(self.pitr) << 15)
            | (u16::from(self.smr_invoked) << 14)
            | (u16::from(self.reserved_r) << 13)
            | (u16::from(self.xtr_id.is_some()) << 12)
            | (u16::from(self.local_xtr) << 6)
            | (u16::from(self.dont_map_reply) << 5)
            | irc;
        w.u8(b0, "header")?;
        w.u16(mid, "header")?;
        w.u8(count(self.records.len(), "record list")?, "header")?;
        w.u64(self.nonce, "nonce")?;
        self.source_eid.emit(&mut w)?;
        for a in &self.itr_rlocs {
            a.emit(&mut w)?;
        }
        for rec in &self.records {
            rec.emit(&mut w)?;
        }
        if let Some(m) = &self.map_reply {
            m.emit(&mut w)?;
        }
        if let Some(x) = &self.xtr_id {
            w.bytes(&x.xtr_id, "xTR-ID")?;
            w.u64(x.site_id, "site-ID")?;
        }
        Ok(finish(&w))
    }
}
