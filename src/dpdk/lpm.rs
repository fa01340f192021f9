//! DPDK's longest-prefix-match tables, `rte_lpm` (IPv4, DIR-24-8) and `rte_lpm6`: the reference
//! the map-cache is benchmarked against (perf/). Lookups take `&self` (DPDK allows concurrent
//! readers), updates `&mut self` (one writer, and no reader during an update: these wrappers do
//! not set up DPDK's RCU reclamation, so sharing a table with live readers while updating it is
//! not offered).

use std::ffi::CString;
use std::ptr::NonNull;

use dpdk_sys as sys;

use super::eal::Eal;
use super::error::{check, from_rte_errno, DpdkError};

/// `rte_lpm_lookup_bulk` sets this bit in a next hop that was found.
const LPM_LOOKUP_SUCCESS: u32 = 0x0100_0000;
/// Next hops are 24 bits.
const MAX_NEXT_HOP: u32 = 0x00FF_FFFF;

fn name(n: &str) -> Result<CString, DpdkError> {
    CString::new(n)
        .map_err(|_| DpdkError::InvalidArgument(format!("LPM name {n:?} has a NUL byte")))
}

/// An IPv4 `rte_lpm` table.
pub struct Lpm4 {
    ptr: NonNull<sys::rte_lpm>,
    _eal: Eal,
}

// SAFETY: rte_lpm lookups are safe from several threads at once (&self); updates take &mut self,
// so none runs concurrently with a lookup through this handle.
unsafe impl Send for Lpm4 {}
// SAFETY: as above.
unsafe impl Sync for Lpm4 {}

impl Lpm4 {
    /// Creates a table for `max_rules` prefixes with `tbl8s` groups for prefixes longer than /24.
    pub fn new(eal: &Eal, name_: &str, max_rules: u32, tbl8s: u32) -> Result<Self, DpdkError> {
        let cname = name(name_)?;
        let config = sys::rte_lpm_config {
            max_rules,
            number_tbl8s: tbl8s,
            flags: 0,
        };
        // SAFETY: valid C string and config; EAL is up (we hold a handle).
        let ptr = unsafe { sys::rte_lpm_create(cname.as_ptr(), sys::SOCKET_ID_ANY, &config) };
        let ptr = NonNull::new(ptr).ok_or_else(|| from_rte_errno("rte_lpm_create"))?;
        Ok(Lpm4 {
            ptr,
            _eal: eal.clone(),
        })
    }

    /// Adds `ip/depth` → `next_hop` (24 bits), replacing an existing next hop.
    pub fn add(&mut self, ip: u32, depth: u8, next_hop: u32) -> Result<(), DpdkError> {
        if depth == 0 || depth > 32 || next_hop > MAX_NEXT_HOP {
            return Err(DpdkError::InvalidArgument(format!(
                "rte_lpm: depth {depth} must be 1..=32 and next hop {next_hop} 24 bits"
            )));
        }
        // SAFETY: valid table, exclusive access (&mut self).
        check("rte_lpm_add", unsafe {
            sys::rte_lpm_add(self.ptr.as_ptr(), ip, depth, next_hop)
        })
        .map(|_| ())
    }

    /// Deletes `ip/depth`.
    pub fn delete(&mut self, ip: u32, depth: u8) -> Result<(), DpdkError> {
        // SAFETY: valid table, exclusive access; DPDK checks depth.
        check("rte_lpm_delete", unsafe {
            sys::rte_lpm_delete(self.ptr.as_ptr(), ip, depth)
        })
        .map(|_| ())
    }

    /// The next hop for `ip`.
    #[inline]
    pub fn lookup(&self, ip: u32) -> Option<u32> {
        let mut hop = 0u32;
        // SAFETY: valid table; `hop` is a valid out pointer.
        let ret = unsafe { sys::rte_lpm_lookup(self.ptr.as_ptr(), ip, &mut hop) };
        (ret == 0).then_some(hop)
    }

    /// Looks up `ips` (`rte_lpm_lookup_bulk`): `out[i]` for `ips[i]`, for the shorter length.
    #[inline]
    pub fn lookup_bulk(&self, ips: &[u32], out: &mut [Option<u32>]) {
        let mut hops = [0u32; 64];
        let n = ips.len().min(out.len());
        for start in (0..n).step_by(64) {
            let end = (start + 64).min(n);
            let m = end - start;
            // SAFETY: valid table; `ips[start..end]` and `hops[..m]` hold m elements each.
            unsafe {
                sys::rte_lpm_lookup_bulk_func(
                    self.ptr.as_ptr(),
                    ips[start..end].as_ptr(),
                    hops.as_mut_ptr(),
                    m as u32,
                )
            };
            for (o, h) in out[start..end].iter_mut().zip(&hops[..m]) {
                *o = (h & LPM_LOOKUP_SUCCESS != 0).then_some(h & MAX_NEXT_HOP);
            }
        }
    }
}

impl Drop for Lpm4 {
    fn drop(&mut self) {
        // SAFETY: no lookup can be running (we own the table); EAL is still up (we hold it).
        unsafe { sys::rte_lpm_free(self.ptr.as_ptr()) };
    }
}

/// An IPv6 `rte_lpm6` table.
pub struct Lpm6 {
    ptr: NonNull<sys::rte_lpm6>,
    _eal: Eal,
}

// SAFETY: as for Lpm4.
unsafe impl Send for Lpm6 {}
// SAFETY: as for Lpm4.
unsafe impl Sync for Lpm6 {}

impl Lpm6 {
    /// Creates a table for `max_rules` prefixes with `tbl8s` groups.
    pub fn new(eal: &Eal, name_: &str, max_rules: u32, tbl8s: u32) -> Result<Self, DpdkError> {
        let cname = name(name_)?;
        let config = sys::rte_lpm6_config {
            max_rules,
            number_tbl8s: tbl8s,
            flags: 0,
        };
        // SAFETY: valid C string and config; EAL is up.
        let ptr = unsafe { sys::rte_lpm6_create(cname.as_ptr(), sys::SOCKET_ID_ANY, &config) };
        let ptr = NonNull::new(ptr).ok_or_else(|| from_rte_errno("rte_lpm6_create"))?;
        Ok(Lpm6 {
            ptr,
            _eal: eal.clone(),
        })
    }

    /// Adds `ip/depth` → `next_hop` (21 bits in DPDK 22.11), replacing an existing one.
    pub fn add(&mut self, ip: [u8; 16], depth: u8, next_hop: u32) -> Result<(), DpdkError> {
        if depth == 0 || depth > 128 || next_hop > MAX_NEXT_HOP {
            return Err(DpdkError::InvalidArgument(format!(
                "rte_lpm6: depth {depth} must be 1..=128 and next hop {next_hop} 24 bits"
            )));
        }
        // SAFETY: valid table, exclusive access; `ip` is 16 readable bytes.
        check("rte_lpm6_add", unsafe {
            sys::rte_lpm6_add(self.ptr.as_ptr(), ip.as_ptr(), depth, next_hop)
        })
        .map(|_| ())
    }

    /// Deletes `ip/depth`.
    pub fn delete(&mut self, ip: [u8; 16], depth: u8) -> Result<(), DpdkError> {
        // SAFETY: as for add.
        check("rte_lpm6_delete", unsafe {
            sys::rte_lpm6_delete(self.ptr.as_ptr(), ip.as_ptr(), depth)
        })
        .map(|_| ())
    }

    /// The next hop for `ip`.
    #[inline]
    pub fn lookup(&self, ip: &[u8; 16]) -> Option<u32> {
        let mut hop = 0u32;
        // SAFETY: valid table; `ip` is 16 readable bytes; `hop` a valid out pointer.
        let ret = unsafe { sys::rte_lpm6_lookup(self.ptr.as_ptr(), ip.as_ptr(), &mut hop) };
        (ret == 0).then_some(hop)
    }

    /// Looks up `ips` (`rte_lpm6_lookup_bulk_func`): `out[i]` for `ips[i]`.
    #[inline]
    pub fn lookup_bulk(&self, ips: &[[u8; 16]], out: &mut [Option<u32>]) {
        let mut hops = [0i32; 64];
        let n = ips.len().min(out.len());
        for start in (0..n).step_by(64) {
            let end = (start + 64).min(n);
            let m = end - start;
            // SAFETY: valid table; m addresses and m hop slots. DPDK 22.11 declares the address
            // array non-const but only reads it.
            unsafe {
                sys::rte_lpm6_lookup_bulk_func(
                    self.ptr.as_ptr(),
                    ips[start..end].as_ptr() as *mut [u8; 16],
                    hops.as_mut_ptr(),
                    m as u32,
                )
            };
            for (o, h) in out[start..end].iter_mut().zip(&hops[..m]) {
                *o = u32::try_from(*h).ok();
            }
        }
    }
}

impl Drop for Lpm6 {
    fn drop(&mut self) {
        // SAFETY: as for Lpm4.
        unsafe { sys::rte_lpm6_free(self.ptr.as_ptr()) };
    }
}
