//! The LISP data header: parse never panics; what parses re-emits to the same representation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxtr::wire::{DataHeader, DataRepr};

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = DataHeader::new_checked(data) {
        if let Ok(r) = DataRepr::parse(&h) {
            let mut b = [0u8; 8];
            r.emit(&mut b).expect("a parsed header re-emits");
            assert_eq!(
                DataRepr::parse(&DataHeader::new_checked(&b[..]).unwrap()).unwrap(),
                r
            );
        }
    }
});
