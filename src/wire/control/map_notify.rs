//! Map-Notify (type 4) and Map-Notify-Ack (type 5): the Map-Server confirms or announces a
//! registration; the xTR acknowledges.

use super::registration::Registration;
use super::{count, finish, header, MessageType};
use crate::wire::field::{Reader, Writer};
use crate::wire::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyKind {
    Notify,
    Ack,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapNotify {
    pub kind: NotifyKind,
    /// R: to or from an RTR.
    pub rtr: bool,
    pub registration: Registration,
}

impl MapNotify {
    pub fn buffer_len(&self) -> usize {
        4 + self.registration.buffer_len()
    }

    pub fn parse(bytes: &[u8]) -> Result<MapNotify> {
        let kind = match MessageType::of(bytes)? {
            MessageType::MapNotify => NotifyKind::Notify,
            MessageType::MapNotifyAck => NotifyKind::Ack,
            other => return Err(Error::UnknownType(other as u8)),
        };
        let mut r = Reader::new(bytes);
        let (b0, _mid, n) = header(&mut r)?;
        let what = if kind == NotifyKind::Notify {
            "Map-Notify"
        } else {
            "Map-Notify-Ack"
        };
        let registration = Registration::parse(&mut r, n, b0 & 0x08 != 0, what)?;
        Ok(MapNotify {
            kind,
            rtr: b0 & 0x04 != 0,
            registration,
        })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let t = match self.kind {
            NotifyKind::Notify => MessageType::MapNotify,
            NotifyKind::Ack => MessageType::MapNotifyAck,
        };
        let mut w = Writer::new(buf);
        let b0 = ((t as u8) << 4)
            | (u8::from(self.registration.xtr_id.is_some()) << 3)
            | (u8::from(self.rtr) << 2);
        w.u8(b0, "header")?;
        w.u16(0, "header")?;
        w.u8(
            count(self.registration.records.len(), "record list")?,
            "header",
        )?;
        self.registration.emit(&mut w)?;
        Ok(finish(&w))
    }
}
