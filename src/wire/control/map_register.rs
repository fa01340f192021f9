//! Map-Register (type 3): an ETR registers its EID prefixes with a Map-Server.

use super::registration::Registration;
use super::{count, finish, header, MessageType};
use crate::wire::field::{Reader, Writer};
use crate::wire::Result;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MapRegister {
    /// P: ask the Map-Server to answer Map-Requests for these EIDs itself (proxy Map-Reply).
    pub proxy_reply: bool,
    /// S: security (LISP-SEC) information follows.
    pub security: bool,
    /// R: sent by a re-encapsulating tunnel router (RTR).
    pub rtr: bool,
    /// M: want a Map-Notify back.
    pub want_map_notify: bool,
    pub registration: Registration,
}

impl MapRegister {
    pub fn buffer_len(&self) -> usize {
        4 + self.registration.buffer_len()
    }

    pub fn parse(bytes: &[u8]) -> Result<MapRegister> {
        let mut r = Reader::new(bytes);
        let (b0, mid, n) = header(&mut r)?;
        let xtr = b0 & 0x02 != 0;
        let registration = Registration::parse(&mut r, n, xtr, "Map-Register")?;
        Ok(MapRegister {
            proxy_reply: b0 & 0x08 != 0,
            security: b0 & 0x04 != 0,
            rtr: b0 & 0x01 != 0,
            want_map_notify: mid & 0x0001 != 0,
            registration,
        })
    }

    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let mut w = Writer::new(buf);
        let b0 = ((MessageType::MapRegister as u8) << 4)
            | (u8::from(self.proxy_reply) << 3)
            | (u8::from(self.security) << 2)
            | (u8::from(self.registration.xtr_id.is_some()) << 1)
            | u8::from(self.rtr);
        w.u8(b0, "header")?;
        w.u16(u16::from(self.want_map_notify), "header")?;
        w.u8(
            count(self.registration.records.len(), "record list")?,
            "header",
        )?;
        self.registration.emit(&mut w)?;
        Ok(finish(&w))
    }
}
