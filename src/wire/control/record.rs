//! Mapping records and locator records (RFC 9301 section 5.4), shared by Map-Reply,
//! Map-Register and Map-Notify, and the EID records of a Map-Request.

use crate::wire::address::Address;
use crate::wire::field::{Reader, Writer};
use crate::wire::{Error, Result};

/// What to do with packets for an EID prefix that has no usable locator (ACT field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    NoAction,
    NativelyForward,
    SendMapRequest,
    DropNoReason,
    DropPolicyDenied,
    DropAuthFailure,
    /// A value this version does not know (kept so it can be passed on).
    Other(u8),
}

impl Action {
    pub fn from_bits(v: u8) -> Action {
        match v {
            0 => Action::NoAction,
            1 => Action::NativelyForward,
            2 => Action::SendMapRequest,
            3 => Action::DropNoReason,
            4 => Action::DropPolicyDenied,
            5 => Action::DropAuthFailure,
            v => Action::Other(v & 7),
        }
    }

    pub fn bits(self) -> u8 {
        match self {
            Action::NoAction => 0,
            Action::NativelyForward => 1,
            Action::SendMapRequest => 2,
            Action::DropNoReason => 3,
            Action::DropPolicyDenied => 4,
            Action::DropAuthFailure => 5,
            Action::Other(v) => v & 7,
        }
    }
}

/// One RLOC of a mapping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Locator {
    /// Unicast priority: lower is preferred; 255 means "not for unicast".
    pub priority: u8,
    /// Unicast weight among locators of the same priority.
    pub weight: u8,
    pub m_priority: u8,
    pub m_weight: u8,
    /// L: the locator is local to the registering/replying xTR.
    pub local: bool,
    /// p: the reply is an RLOC-probe reply from this locator.
    pub probed: bool,
    /// R: the locator is reachable.
    pub reachable: bool,
    pub address: Address,
}

impl Locator {
    /// A reachable unicast locator with the given priority and weight.
    pub fn new(address: Address, priority: u8, weight: u8) -> Locator {
        Locator {
            priority,
            weight,
            m_priority: 255,
            m_weight: 0,
            local: false,
            probed: false,
            reachable: true,
            address,
        }
    }

    fn buffer_len(&self) -> usize {
        6 + self.address.buffer_len()
    }

    fn parse(r: &mut Reader<'_>) -> Result<Locator> {
        let priority = r.u8("locator")?;
        let weight = r.u8("locator")?;
        let m_priority = r.u8("locator")?;
        let m_weight = r.u8("locator")?;
        let flags = r.u16("locator flags")?;
        // An unknown LCAF locator is kept opaque: the record stays usable without it.
        let address = Address::parse(r)?;
        Ok(Locator {
            priority,
            weight,
            m_priority,
            m_weight,
            local: flags & 0x4 != 0,
            probed: flags & 0x2 != 0,
            reachable: flags & 0x1 != 0,
            address,
        })
    }

    fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        w.u8(self.priority, "locator")?;
        w.u8(self.weight, "locator")?;
        w.u8(self.m_priority, "locator")?;
        w.u8(self.m_weight, "locator")?;
        let flags = (u16::from(self.local) << 2)
            | (u16::from(self.probed) << 1)
            | u16::from(self.reachable);
        w.u16(flags, "locator flags")?;
        self.address.emit(w)
    }
}

/// A mapping record: an EID prefix and its locators (empty for a negative mapping).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MappingRecord {
    /// Minutes the mapping may be cached.
    pub ttl: u32,
    pub action: Action,
    /// A: authoritative (from the ETR or the Map-Server proxying for it).
    pub authoritative: bool,
    /// 12-bit map-version (0: not versioned).
    pub map_version: u16,
    pub eid: Address,
    pub mask_len: u8,
    pub locators: Vec<Locator>,
}

impl MappingRecord {
    pub(crate) fn buffer_len(&self) -> usize {
        10 + self.eid.buffer_len() + self.locators.iter().map(Locator::buffer_len).sum::<usize>()
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<MappingRecord> {
        let ttl = r.u32("mapping record")?;
        let count = r.u8("mapping record")?;
        let mask_len = r.u8("mapping record")?;
        let act = r.u16("mapping record")?;
        let version = r.u16("mapping record")?;
        let eid = Address::parse(r)?;
        eid.check_mask(mask_len)?;
        // Each locator takes at least 8 bytes: refuse counts the message cannot hold before
        // allocating for them.
        if usize::from(count) * 8 > r.remaining() {
            return Err(Error::LocatorCountOverrun);
        }
        let mut locators = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            locators.push(Locator::parse(r).map_err(|e| match e {
                Error::Truncated(_) => Error::LocatorCountOverrun,
                e => e,
            })?);
        }
        Ok(MappingRecord {
            ttl,
            action: Action::from_bits((act >> 13) as u8),
            authoritative: act & 0x1000 != 0,
            map_version: version & 0x0fff,
            eid,
            mask_len,
            locators,
        })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        let count =
            u8::try_from(self.locators.len()).map_err(|_| Error::TooLong("locator list"))?;
        self.eid.check_mask(self.mask_len)?;
        w.u32(self.ttl, "mapping record")?;
        w.u8(count, "mapping record")?;
        w.u8(self.mask_len, "mapping record")?;
        w.u16(
            (u16::from(self.action.bits()) << 13) | (u16::from(self.authoritative) << 12),
            "mapping record",
        )?;
        w.u16(self.map_version & 0x0fff, "mapping record")?;
        self.eid.emit(w)?;
        for l in &self.locators {
            l.emit(w)?;
        }
        Ok(())
    }
}

/// Parses `count` mapping records, mapping a short message to a record-count error.
pub(crate) fn parse_records(
    r: &mut Reader<'_>,
    count: u8,
    what: &'static str,
) -> Result<Vec<MappingRecord>> {
    // A record is at least 12 bytes (header and an AFI): refuse impossible counts up front.
    if usize::from(count) * 12 > r.remaining() {
        return Err(Error::RecordCountOverrun(what));
    }
    let mut records = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        records.push(MappingRecord::parse(r).map_err(|e| match e {
            Error::Truncated(_) => Error::RecordCountOverrun(what),
            e => e,
        })?);
    }
    Ok(records)
}

/// An EID record of a Map-Request: the prefix asked about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EidRecord {
    pub mask_len: u8,
    pub eid: Address,
}

impl EidRecord {
    pub(crate) fn buffer_len(&self) -> usize {
        2 + self.eid.buffer_len()
    }

    pub(crate) fn parse(r: &mut Reader<'_>) -> Result<EidRecord> {
        let _reserved = r.u8("EID record")?;
        let mask_len = r.u8("EID record")?;
        let eid = Address::parse(r)?;
        eid.check_mask(mask_len)?;
        Ok(EidRecord { mask_len, eid })
    }

    pub(crate) fn emit(&self, w: &mut Writer<'_>) -> Result<()> {
        self.eid.check_mask(self.mask_len)?;
        w.u8(0, "EID record")?;
        w.u8(self.mask_len, "EID record")?;
        self.eid.emit(w)
    }
}
