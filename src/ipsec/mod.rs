//! IPsec toward cloud xTRs: strongSwan driven over VICI (issue #7). So far the VICI protocol
//! itself ([`vici`]).

pub mod vici;
