//! The embedded Map-Server and Map-Resolver (RFC 9301 sections 8.2-8.4) as a sans-IO machine.
//!
//! - Map-Server: sites with EID-prefixes per instance-ID and a shared key each. A Map-Register
//!   is accepted when one site's configured prefixes cover every record (the exact prefix, or a
//!   more-specific where the prefix accepts them) and its HMAC verifies with that site's key
//!   and algorithm; then each record is stored or refreshed per (IID, prefix) until
//!   `registration_timeout_s` passes without a refresh, and a Map-Notify answers it when the
//!   ETR asked for one (M bit).
//! - Moves: a prefix registered by one ETR and then by another ETR with other locators (a host
//!   that moved), or a new more-specific inside a prefix another ETR of the site registered
//!   (a dynamic EID that left that ETR), gets an unsolicited, signed Map-Notify carrying the
//!   new mapping to the ETR it moved away from, retransmitted every 3 s until a Map-Notify-Ack
//!   with its nonce comes back, at most 3 times.
//! - Map-Resolver: a Map-Request (from an ECM) is answered from the registrations: a proxy
//!   Map-Reply where the ETR asked for it (P bit), else the ECM is forwarded to the ETR (E bit);
//!   for an EID nobody registered, a negative Map-Reply (Natively-Forward) for the widest prefix
//!   that covers the EID and nothing registered: 1 minute inside a configured site prefix,
//!   15 minutes outside every one.
//!
//! Time is the caller's milliseconds; what to send goes into an [`Outbox`]. Memory is bounded:
//! at most [`MAX_REGISTRATIONS`] registrations and [`MAX_PENDING_NOTIFIES`] Map-Notifies
//! waiting for an Ack (both adjustable with [`MapServer::with_limits`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::IpNet;
use tracing::{debug, info, warn};

use super::{algorithm, control_transmit, eid_address, eid_prefix, Nonces, Outbox, Transmit};
use crate::config;
use crate::wire::auth::{self, Algorithm};
use crate::wire::control::{
    Action, Ecm, Locator, MapNotify, MapRegister, MapReply, MapRequest, MappingRecord, Message,
    NotifyKind, Registration, XtrId,
};
use crate::wire::{Address, LISP_CONTROL_PORT};

/// Registrations held at most; Map-Registers that would add more are refused.
pub const MAX_REGISTRATIONS: usize = 100_000;
/// Unsolicited Map-Notifies waiting for their Ack at most; beyond it they are sent once.
pub const MAX_PENDING_NOTIFIES: usize = 1024;
/// Interval between retransmissions of an unacknowledged Map-Notify (RFC 9301 section 5.7).
pub const NOTIFY_RETRANSMIT_MS: u64 = 3_000;
/// Retransmissions of an unacknowledged Map-Notify before giving up.
pub const NOTIFY_MAX_RETRANSMITS: u8 = 3;
/// TTL (minutes) of a negative Map-Reply for an EID in a configured site prefix that no ETR
/// registered (RFC 9301 section 8.2).
pub const NEGATIVE_TTL_UNREGISTERED: u32 = 1;
/// TTL (minutes) of a negative Map-Reply for an EID outside every configured site prefix.
pub const NEGATIVE_TTL_UNKNOWN: u32 = 15;

/// Counters of the Map-Server and Map-Resolver. Request counters count EID records (a
/// Map-Request usually has one).
#[derive(Debug, Default, Clone)]
pub struct MapServerStats {
    /// Map-Registers accepted.
    pub registers_accepted: u64,
    /// Records that created a registration.
    pub records_new: u64,
    /// Records that refreshed or updated a registration.
    pub records_refreshed: u64,
    /// Records with TTL 0 from their registrant: registrations withdrawn.
    pub records_withdrawn: u64,
    /// Records with TTL 0 for what another ETR registers, or nothing: ignored.
    pub withdrawals_ignored: u64,
    /// Map-Registers refused: cannot be parsed, or without records.
    pub registers_malformed: u64,
    /// Map-Registers refused: no authentication (algorithm 0).
    pub registers_not_authenticated: u64,
    /// Map-Registers refused: the HMAC does not verify with the site key, or the algorithm is
    /// not the site's.
    pub registers_bad_auth: u64,
    /// Map-Registers refused: a record outside every configured site prefix, a more-specific
    /// where none are accepted, or records of two sites.
    pub registers_unknown_site: u64,
    /// Map-Registers refused: they would exceed the registration limit.
    pub registers_too_many: u64,
    /// Map-Notifies sent in answer to Map-Registers (M bit).
    pub notifies_sent: u64,
    /// Registrations that timed out.
    pub registrations_expired: u64,
    /// Prefixes re-registered by another ETR with other locators.
    pub moves: u64,
    /// New more-specifics inside a prefix another ETR of the site registered.
    pub moves_more_specific: u64,
    /// Unsolicited Map-Notifies sent to the ETR a prefix moved away from.
    pub move_notifies_sent: u64,
    /// Of those, sent once without waiting for an Ack (too many pending).
    pub move_notifies_untracked: u64,
    /// Retransmissions of unacknowledged Map-Notifies.
    pub notify_retransmits: u64,
    /// Map-Notifies given up after the last retransmission.
    pub notify_given_up: u64,
    /// Map-Notify-Acks that matched a pending Map-Notify and verified.
    pub notify_acks: u64,
    /// Map-Notify-Acks that could not be parsed.
    pub notify_acks_malformed: u64,
    /// Map-Notify-Acks whose HMAC does not verify with the site key.
    pub notify_acks_bad_auth: u64,
    /// Map-Notify-Acks for no pending Map-Notify (late, duplicate or forged).
    pub notify_acks_unknown: u64,
    /// EID records answered with a proxy Map-Reply.
    pub requests_proxied: u64,
    /// EID records whose Map-Request was forwarded to the registered ETR.
    pub requests_forwarded: u64,
    /// EID records answered with a negative Map-Reply.
    pub requests_negative: u64,
    /// Map-Requests dropped: SMR bit (for ETRs, not a Map-Resolver).
    pub requests_smr: u64,
    /// Map-Requests dropped: RLOC-probe bit (a Map-Resolver does not answer probes).
    pub requests_probe: u64,
    /// Map-Requests (or records) dropped: no ITR-RLOC of a family we can answer.
    pub requests_no_itr_rloc: u64,
    /// Map-Requests (or records) dropped: no EID record, or an EID that is not IP.
    pub requests_malformed: u64,
    /// Messages that could not be emitted (a bug; logged).
    pub emit_errors: u64,
}

impl MapServerStats {
    /// Every counter with its name.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("registers_accepted", self.registers_accepted),
            ("records_new", self.records_new),
            ("records_refreshed", self.records_refreshed),
            ("records_withdrawn", self.records_withdrawn),
            ("withdrawals_ignored", self.withdrawals_ignored),
            ("registers_malformed", self.registers_malformed),
            (
                "registers_not_authenticated",
                self.registers_not_authenticated,
            ),
            ("registers_bad_auth", self.registers_bad_auth),
            ("registers_unknown_site", self.registers_unknown_site),
            ("registers_too_many", self.registers_too_many),
            ("notifies_sent", self.notifies_sent),
            ("registrations_expired", self.registrations_expired),
            ("moves", self.moves),
            ("moves_more_specific", self.moves_more_specific),
            ("move_notifies_sent", self.move_notifies_sent),
            ("move_notifies_untracked", self.move_notifies_untracked),
            ("notify_retransmits", self.notify_retransmits),
            ("notify_given_up", self.notify_given_up),
            ("notify_acks", self.notify_acks),
            ("notify_acks_malformed", self.notify_acks_malformed),
            ("notify_acks_bad_auth", self.notify_acks_bad_auth),
            ("notify_acks_unknown", self.notify_acks_unknown),
            ("requests_proxied", self.requests_proxied),
            ("requests_forwarded", self.requests_forwarded),
            ("requests_negative", self.requests_negative),
            ("requests_smr", self.requests_smr),
            ("requests_probe", self.requests_probe),
            ("requests_no_itr_rloc", self.requests_no_itr_rloc),
            ("requests_malformed", self.requests_malformed),
            ("emit_errors", self.emit_errors),
        ]
    }
}

/// Why a Map-Register was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reject {
    Malformed,
    NotAuthenticated,
    BadAuth,
    UnknownSite,
    TooMany,
}

impl Reject {
    fn as_str(self) -> &'static str {
        match self {
            Reject::Malformed => "malformed",
            Reject::NotAuthenticated => "not authenticated",
            Reject::BadAuth => "authentication failed",
            Reject::UnknownSite => "unknown site or out of prefix",
            Reject::TooMany => "too many registrations",
        }
    }
}

/// A configured site: its name and how its messages are signed.
#[derive(Debug, Clone)]
struct SiteState {
    name: String,
    key: Vec<u8>,
    algorithm: Algorithm,
}

/// A configured site EID-prefix.
#[derive(Debug, Clone, Copy)]
struct Configured {
    site: usize,
    accept_more_specifics: bool,
}

/// What is stored for one registered (IID, prefix).
#[derive(Debug, Clone)]
struct Registered {
    site: usize,
    /// Source address and port of the last accepted Map-Register.
    registrant: IpAddr,
    registrant_port: u16,
    /// Our address the Map-Register was sent to: what the registrant knows us by, so our
    /// Map-Notifies to it come from there.
    local: Option<IpAddr>,
    xtr_id: Option<XtrId>,
    /// The record as registered (EID, TTL, locators, map-version).
    record: MappingRecord,
    proxy_reply: bool,
    want_map_notify: bool,
    /// Key ID and algorithm the registrant signs with (used for the Map-Notifies to it).
    key_id: u8,
    algorithm: Algorithm,
    first_ms: u64,
    last_ms: u64,
    expires_ms: u64,
}

/// An unsolicited Map-Notify waiting for its Map-Notify-Ack.
#[derive(Debug, Clone)]
struct PendingNotify {
    nonce: u64,
    src: Option<IpAddr>,
    dst: IpAddr,
    dst_port: u16,
    site: usize,
    /// The registration it tells `dst` about.
    iid: u32,
    prefix: IpNet,
    /// The signed message, retransmitted as it is.
    payload: Vec<u8>,
    retransmits: u8,
    next_ms: u64,
}

/// One registration as `pxtr ctl show site` lists it.
#[derive(Debug, Clone, Copy)]
pub struct RegistrationView<'a> {
    pub site: &'a str,
    pub iid: u32,
    pub prefix: IpNet,
    /// Source address and UDP port of the last accepted Map-Register.
    pub registrant: IpAddr,
    pub registrant_port: u16,
    pub xtr_id: Option<&'a XtrId>,
    pub locators: &'a [Locator],
    /// Record TTL in minutes, as registered.
    pub ttl_min: u32,
    /// P bit: the Map-Server answers Map-Requests for it.
    pub proxy_reply: bool,
    pub want_map_notify: bool,
    pub first_registered_ms: u64,
    pub last_registered_ms: u64,
    pub expires_ms: u64,
}

/// The embedded Map-Server and Map-Resolver.
#[derive(Debug)]
pub struct MapServer {
    sites: Vec<SiteState>,
    /// Configured site prefixes by (IID, prefix).
    configured: BTreeMap<(u32, IpNet), Configured>,
    /// Registrations by (IID, prefix); every one here is live once [`MapServer::expire`] ran.
    registrations: BTreeMap<(u32, IpNet), Registered>,
    /// (expiry, IID, prefix) of every registration, earliest first.
    expiries: BTreeSet<(u64, u32, IpNet)>,
    pending: Vec<PendingNotify>,
    nonces: Nonces,
    /// Our address the message being handled was sent to (see the `_at` entry points).
    local: Option<IpAddr>,
    timeout_ms: u64,
    max_registrations: usize,
    max_pending: usize,
    reply_ipv4: bool,
    reply_ipv6: bool,
    pub stats: MapServerStats,
}

/// What the Map-Resolver does for one EID record.
enum Resolution {
    Proxy(MappingRecord),
    Forward(IpAddr),
    Negative(MappingRecord),
}

impl MapServer {
    /// A Map-Server for the configured sites (config validation has checked them: keys set,
    /// prefixes valid and configured once).
    pub fn new(cfg: &config::MapServer, nonces: Nonces) -> MapServer {
        let mut sites = Vec::with_capacity(cfg.sites.len());
        let mut configured = BTreeMap::new();
        for (i, s) in cfg.sites.iter().enumerate() {
            sites.push(SiteState {
                name: s.name.clone(),
                key: s.key.as_bytes().to_vec(),
                algorithm: algorithm(s.key_id),
            });
            for p in &s.eid_prefixes {
                configured
                    .entry((p.iid, p.prefix.trunc()))
                    .or_insert(Configured {
                        site: i,
                        accept_more_specifics: p.accept_more_specifics,
                    });
            }
        }
        MapServer {
            sites,
            configured,
            registrations: BTreeMap::new(),
            expiries: BTreeSet::new(),
            pending: Vec::new(),
            nonces,
            local: None,
            timeout_ms: u64::from(cfg.registration_timeout_s) * 1000,
            max_registrations: MAX_REGISTRATIONS,
            max_pending: MAX_PENDING_NOTIFIES,
            reply_ipv4: true,
            reply_ipv6: true,
            stats: MapServerStats::default(),
        }
    }

    /// The sites now (live reload): their keys, prefixes and the registration timeout.
    /// Registrations stay where their prefix still belongs to the site that registered it (a
    /// changed key applies to the next Map-Register); those of removed sites, or of prefixes no
    /// longer in their site, go at once, with the Map-Notifies pending about them. Returns
    /// how many registrations went.
    pub fn reconfigure(&mut self, cfg: &config::MapServer) -> usize {
        let fresh = MapServer::new(cfg, Nonces::seeded(0));
        let old_names: Vec<String> = self.sites.iter().map(|s| s.name.clone()).collect();
        let site_now = |old: usize| -> Option<usize> {
            fresh.sites.iter().position(|s| s.name == old_names[old])
        };
        let mut removed = 0;
        let keys: Vec<(u32, IpNet)> = self.registrations.keys().copied().collect();
        for (iid, prefix) in keys {
            let r = &self.registrations[&(iid, prefix)];
            let stays = site_now(r.site).filter(|s| fresh.site_of(iid, prefix) == Ok(*s));
            match stays {
                Some(s) => {
                    if let Some(r) = self.registrations.get_mut(&(iid, prefix)) {
                        r.site = s;
                    }
                }
                None => {
                    let r = self.registrations.remove(&(iid, prefix));
                    if let Some(r) = r {
                        self.expiries.remove(&(r.expires_ms, iid, prefix));
                        info!(site = %old_names[r.site], iid, %prefix, registrant = %r.registrant,
                            "registration removed: its site or prefix is no longer configured");
                    }
                    removed += 1;
                }
            }
        }
        self.pending.retain_mut(|p| {
            match site_now(p.site).filter(|_| self.registrations.contains_key(&(p.iid, p.prefix))) {
                Some(s) => {
                    p.site = s;
                    true
                }
                None => false,
            }
        });
        self.sites = fresh.sites;
        self.configured = fresh.configured;
        self.timeout_ms = fresh.timeout_ms;
        removed
    }

    /// Other bounds on registrations and pending Map-Notifies.
    pub fn with_limits(mut self, max_registrations: usize, max_pending_notifies: usize) -> Self {
        self.max_registrations = max_registrations;
        self.max_pending = max_pending_notifies;
        self
    }

    /// The address families we have an RLOC in, so can send Map-Replies from (default both):
    /// a Map-Reply goes to the first ITR-RLOC of one of them.
    pub fn set_reply_families(&mut self, ipv4: bool, ipv6: bool) {
        self.reply_ipv4 = ipv4;
        self.reply_ipv6 = ipv6;
    }

    /// [`MapServer::on_map_register`] for a Map-Register sent to our address `local`: what
    /// we send about it comes from there (an ETR accepts Map-Notifies only from the address it
    /// registers to).
    pub fn on_map_register_at(
        &mut self,
        local: IpAddr,
        src: IpAddr,
        src_port: u16,
        msg: &[u8],
        now_ms: u64,
        out: &mut Outbox,
    ) {
        self.local = Some(local);
        self.on_map_register(src, src_port, msg, now_ms, out);
        self.local = None;
    }

    /// [`MapServer::on_map_request`] for a request sent to our address `local`: replies and
    /// forwarded requests come from there.
    pub fn on_map_request_at(
        &mut self,
        local: IpAddr,
        ecm: &Ecm,
        request: &MapRequest,
        now_ms: u64,
        out: &mut Outbox,
    ) {
        self.local = Some(local);
        self.on_map_request(ecm, request, now_ms, out);
        self.local = None;
    }

    /// A Map-Register from `src`:`src_port` (RFC 9301 section 8.2). Refused ones are counted
    /// and logged and change nothing.
    pub fn on_map_register(
        &mut self,
        src: IpAddr,
        src_port: u16,
        msg: &[u8],
        now_ms: u64,
        out: &mut Outbox,
    ) {
        self.expire(now_ms);
        if let Err((reason, detail)) = self.register(src, src_port, msg, now_ms, out) {
            let c = match reason {
                Reject::Malformed => &mut self.stats.registers_malformed,
                Reject::NotAuthenticated => &mut self.stats.registers_not_authenticated,
                Reject::BadAuth => &mut self.stats.registers_bad_auth,
                Reject::UnknownSite => &mut self.stats.registers_unknown_site,
                Reject::TooMany => &mut self.stats.registers_too_many,
            };
            *c += 1;
            warn!(
                %src,
                src_port,
                reason = reason.as_str(),
                "Map-Register refused: {detail}"
            );
        }
    }

    fn register(
        &mut self,
        src: IpAddr,
        src_port: u16,
        msg: &[u8],
        now_ms: u64,
        out: &mut Outbox,
    ) -> Result<(), (Reject, String)> {
        let reg = MapRegister::parse(msg).map_err(|e| (Reject::Malformed, e.to_string()))?;
        let r = &reg.registration;
        if r.records.is_empty() {
            return Err((Reject::Malformed, "no records".into()));
        }
        if r.algorithm_id == 0 {
            return Err((
                Reject::NotAuthenticated,
                "algorithm 0 (no authentication)".into(),
            ));
        }
        // One HMAC covers the message, so every record must belong to one site.
        let mut site = None;
        let mut keys = Vec::with_capacity(r.records.len());
        for rec in &r.records {
            let (iid, prefix) = eid_prefix(&rec.eid, rec.mask_len).ok_or_else(|| {
                (
                    Reject::UnknownSite,
                    format!("EID {:?} is not an IP prefix", rec.eid),
                )
            })?;
            let s = self
                .site_of(iid, prefix)
                .map_err(|d| (Reject::UnknownSite, d))?;
            match site {
                None => site = Some(s),
                Some(first) if first != s => {
                    return Err((
                        Reject::UnknownSite,
                        format!(
                            "records of sites {} and {}",
                            self.sites[first].name, self.sites[s].name
                        ),
                    ))
                }
                Some(_) => {}
            }
            keys.push((iid, prefix));
        }
        let site = site.unwrap_or_default();
        let st = &self.sites[site];
        let alg = auth::verify(msg, &st.key).map_err(|e| match e {
            crate::wire::Error::NotAuthenticated => (Reject::NotAuthenticated, e.to_string()),
            e => (Reject::BadAuth, format!("site {}: {e}", st.name)),
        })?;
        if alg != st.algorithm {
            return Err((
                Reject::BadAuth,
                format!(
                    "signed with {alg:?}; site {} uses {:?}",
                    st.name, st.algorithm
                ),
            ));
        }
        let new: BTreeSet<_> = keys
            .iter()
            .filter(|k| !self.registrations.contains_key(*k))
            .collect();
        if self.registrations.len() + new.len() > self.max_registrations {
            return Err((
                Reject::TooMany,
                format!(
                    "{} new prefixes; {} of at most {} registered",
                    new.len(),
                    self.registrations.len(),
                    self.max_registrations
                ),
            ));
        }

        self.stats.registers_accepted += 1;
        if reg.want_map_notify {
            let notify = Message::MapNotify(MapNotify {
                kind: NotifyKind::Notify,
                rtr: reg.rtr,
                registration: Registration {
                    nonce: r.nonce,
                    key_id: r.key_id,
                    algorithm_id: alg.id(),
                    auth_data: Vec::new(),
                    records: r.records.clone(),
                    xtr_id: r.xtr_id,
                },
            });
            match auth::emit_signed(&notify, alg, &self.sites[site].key) {
                Ok(payload) => {
                    self.stats.notifies_sent += 1;
                    out.transmits
                        .push(notify_transmit(self.local, src, src_port, payload));
                }
                Err(e) => {
                    self.stats.emit_errors += 1;
                    warn!(%src, "Map-Notify not emitted: {e}");
                }
            }
        }
        for (rec, (iid, prefix)) in r.records.iter().zip(keys) {
            if rec.ttl == 0 {
                self.withdraw(iid, prefix, src, r.xtr_id.as_ref());
                continue;
            }
            let entry = Registered {
                site,
                registrant: src,
                registrant_port: src_port,
                local: self.local,
                xtr_id: r.xtr_id,
                record: rec.clone(),
                proxy_reply: reg.proxy_reply,
                want_map_notify: reg.want_map_notify,
                key_id: r.key_id,
                algorithm: alg,
                first_ms: now_ms,
                last_ms: now_ms,
                expires_ms: now_ms.saturating_add(self.timeout_ms),
            };
            self.store(iid, prefix, entry, now_ms, out);
        }
        Ok(())
    }

    /// A record with TTL 0: its registrant withdraws it (a host that left the site). From
    /// anyone else it changes nothing.
    fn withdraw(&mut self, iid: u32, prefix: IpNet, src: IpAddr, xtr_id: Option<&XtrId>) {
        let same =
            self.registrations
                .get(&(iid, prefix))
                .is_some_and(|old| match (&old.xtr_id, xtr_id) {
                    (Some(a), Some(b)) => a == b,
                    _ => old.registrant == src,
                });
        if !same {
            self.stats.withdrawals_ignored += 1;
            debug!(iid, %prefix, %src, "TTL-0 record for a registration it does not hold: ignored");
            return;
        }
        if let Some(old) = self.registrations.remove(&(iid, prefix)) {
            self.expiries.remove(&(old.expires_ms, iid, prefix));
            self.stats.records_withdrawn += 1;
            info!(site = %self.sites[old.site].name, iid, %prefix, registrant = %src, "EID-prefix withdrawn (TTL 0)");
        }
    }

    /// Stores one accepted record, notifying the ETR it moved away from.
    fn store(
        &mut self,
        iid: u32,
        prefix: IpNet,
        mut entry: Registered,
        now_ms: u64,
        out: &mut Outbox,
    ) {
        // The registrant has it (again): what it was told about it moving away is moot.
        self.pending
            .retain(|p| !(p.dst == entry.registrant && p.iid == iid && p.prefix == prefix));
        let site = self.sites[entry.site].name.clone();
        match self.registrations.get(&(iid, prefix)) {
            Some(old) => {
                self.expiries.remove(&(old.expires_ms, iid, prefix));
                if moved(old, &entry) {
                    self.stats.moves += 1;
                    info!(
                        site = %site,
                        iid,
                        %prefix,
                        from = %old.registrant,
                        to = %entry.registrant,
                        "EID-prefix moved to another ETR"
                    );
                    let old = old.clone();
                    self.notify_moved(&old, iid, prefix, &entry.record, now_ms, out);
                } else {
                    entry.first_ms = old.first_ms;
                    debug!(site = %site, iid, %prefix, registrant = %entry.registrant, "registration refreshed");
                }
                self.stats.records_refreshed += 1;
            }
            None => {
                self.stats.records_new += 1;
                info!(site = %site, iid, %prefix, registrant = %entry.registrant, "EID-prefix registered");
                // A more-specific of a prefix another ETR of the site registered: the EIDs
                // in it left that ETR.
                let covering: Vec<(IpNet, Registered)> = (0..prefix.prefix_len())
                    .rev()
                    .filter_map(|len| {
                        let c = trunc(prefix.addr(), len);
                        let r = self.registrations.get(&(iid, c))?;
                        (r.site == entry.site && moved(r, &entry)).then(|| (c, r.clone()))
                    })
                    .collect();
                for (c, old) in covering {
                    self.stats.moves_more_specific += 1;
                    info!(
                        site = %site,
                        iid,
                        %prefix,
                        inside = %c,
                        from = %old.registrant,
                        to = %entry.registrant,
                        "more-specific registered inside another ETR's prefix"
                    );
                    self.notify_moved(&old, iid, prefix, &entry.record, now_ms, out);
                }
            }
        }
        self.expiries.insert((entry.expires_ms, iid, prefix));
        self.registrations.insert((iid, prefix), entry);
    }

    /// Sends `old`'s registrant an unsolicited Map-Notify with the new `record` of
    /// `iid`/`prefix`, and keeps it for retransmission until acknowledged.
    fn notify_moved(
        &mut self,
        old: &Registered,
        iid: u32,
        prefix: IpNet,
        record: &MappingRecord,
        now_ms: u64,
        out: &mut Outbox,
    ) {
        let nonce = self.nonces.next();
        let notify = Message::MapNotify(MapNotify {
            kind: NotifyKind::Notify,
            rtr: false,
            registration: Registration {
                nonce,
                key_id: old.key_id,
                algorithm_id: old.algorithm.id(),
                auth_data: Vec::new(),
                records: vec![record.clone()],
                xtr_id: old.xtr_id,
            },
        });
        let payload = match auth::emit_signed(&notify, old.algorithm, &self.sites[old.site].key) {
            Ok(p) => p,
            Err(e) => {
                self.stats.emit_errors += 1;
                warn!(dst = %old.registrant, "Map-Notify not emitted: {e}");
                return;
            }
        };
        self.stats.move_notifies_sent += 1;
        out.transmits.push(notify_transmit(
            old.local,
            old.registrant,
            old.registrant_port,
            payload.clone(),
        ));
        // A newer notify about the same prefix to the same ETR replaces an older one.
        self.pending
            .retain(|p| !(p.dst == old.registrant && p.iid == iid && p.prefix == prefix));
        if self.pending.len() >= self.max_pending {
            self.stats.move_notifies_untracked += 1;
            warn!(
                dst = %old.registrant,
                iid,
                %prefix,
                pending = self.pending.len(),
                "too many Map-Notifies waiting for an Ack: this one is not retransmitted"
            );
            return;
        }
        self.pending.push(PendingNotify {
            nonce,
            src: old.local,
            dst: old.registrant,
            dst_port: old.registrant_port,
            site: old.site,
            iid,
            prefix,
            payload,
            retransmits: 0,
            next_ms: now_ms.saturating_add(NOTIFY_RETRANSMIT_MS),
        });
    }

    /// A Map-Notify-Ack from `src`: ends the retransmission of the Map-Notify with its nonce
    /// once its HMAC verifies with the site's key. (`now_ms` and `out` keep the shape of the
    /// other inputs; an Ack sends nothing.)
    pub fn on_map_notify_ack(&mut self, src: IpAddr, msg: &[u8], now_ms: u64, out: &mut Outbox) {
        let _ = (now_ms, out);
        let ack = match MapNotify::parse(msg) {
            Ok(m) if m.kind == NotifyKind::Ack => m,
            Ok(_) => {
                self.stats.notify_acks_malformed += 1;
                warn!(%src, "Map-Notify where a Map-Notify-Ack was expected");
                return;
            }
            Err(e) => {
                self.stats.notify_acks_malformed += 1;
                warn!(%src, "Map-Notify-Ack not parsed: {e}");
                return;
            }
        };
        let nonce = ack.registration.nonce;
        let Some(i) = self.pending.iter().position(|p| p.nonce == nonce) else {
            self.stats.notify_acks_unknown += 1;
            debug!(%src, nonce = format_args!("{nonce:#018x}"), "Map-Notify-Ack for no pending Map-Notify");
            return;
        };
        let p = &self.pending[i];
        match auth::verify(msg, &self.sites[p.site].key) {
            Ok(_) => {
                self.stats.notify_acks += 1;
                debug!(%src, iid = p.iid, prefix = %p.prefix, "Map-Notify acknowledged");
                self.pending.remove(i);
            }
            Err(e) => {
                self.stats.notify_acks_bad_auth += 1;
                warn!(%src, site = %self.sites[p.site].name, "Map-Notify-Ack refused: {e}");
            }
        }
    }

    /// A Map-Request that arrived in `ecm` (RFC 9301 section 8.3; the runtime parsed both).
    pub fn on_map_request(
        &mut self,
        ecm: &Ecm,
        request: &MapRequest,
        now_ms: u64,
        out: &mut Outbox,
    ) {
        self.expire(now_ms);
        let from = ecm.inner.src;
        if request.smr {
            self.stats.requests_smr += 1;
            debug!(%from, "SMR sent to the Map-Resolver dropped");
            return;
        }
        if request.probe {
            self.stats.requests_probe += 1;
            debug!(%from, "RLOC-probe sent to the Map-Resolver dropped");
            return;
        }
        if request.records.is_empty() {
            self.stats.requests_malformed += 1;
            debug!(%from, "Map-Request without EID records dropped");
            return;
        }
        let mut replies = Vec::new();
        let mut forwards: Vec<IpAddr> = Vec::new();
        let mut proxied = 0;
        let mut negative = 0;
        for rec in &request.records {
            let Some((iid, eid)) = eid_prefix(&rec.eid, rec.mask_len) else {
                self.stats.requests_malformed += 1;
                debug!(%from, eid = ?rec.eid, "Map-Request for a non-IP EID dropped");
                continue;
            };
            match self.resolve(iid, eid) {
                Resolution::Proxy(r) => {
                    proxied += 1;
                    replies.push(r);
                }
                Resolution::Negative(r) => {
                    negative += 1;
                    replies.push(r);
                }
                Resolution::Forward(etr) => {
                    self.stats.requests_forwarded += 1;
                    if !forwards.contains(&etr) {
                        forwards.push(etr);
                    }
                }
            }
        }
        for etr in forwards {
            // E: forwarded by a Map-Server to an ETR (RFC 9301 section 5.8); the inner headers
            // and the Map-Request stay as the ITR sent them, so the ETR answers the ITR.
            let fwd = Message::Ecm(Ecm {
                security: false,
                ddt: false,
                to_etr: true,
                to_ms: false,
                inner: ecm.inner,
                message: ecm.message.clone(),
            });
            self.send(etr, LISP_CONTROL_PORT, &fwd, out);
        }
        if replies.is_empty() {
            return;
        }
        let Some(itr) = self.reply_rloc(request) else {
            self.stats.requests_no_itr_rloc += proxied + negative;
            debug!(%from, itr_rlocs = ?request.itr_rlocs, "Map-Request without a usable ITR-RLOC dropped");
            return;
        };
        self.stats.requests_proxied += proxied;
        self.stats.requests_negative += negative;
        let reply = Message::MapReply(MapReply {
            probe: false,
            echo_nonce_capable: false,
            security: false,
            nonce: request.nonce,
            records: replies,
        });
        let port = match ecm.inner.src_port {
            0 => LISP_CONTROL_PORT,
            p => p,
        };
        self.send(itr, port, &reply, out);
    }

    /// Expires registrations and retransmits (or gives up on) unacknowledged Map-Notifies.
    pub fn on_timer(&mut self, now_ms: u64, out: &mut Outbox) {
        self.expire(now_ms);
        let mut i = 0;
        while i < self.pending.len() {
            let p = &mut self.pending[i];
            if p.next_ms > now_ms {
                i += 1;
                continue;
            }
            if p.retransmits >= NOTIFY_MAX_RETRANSMITS {
                self.stats.notify_given_up += 1;
                warn!(
                    dst = %p.dst,
                    iid = p.iid,
                    prefix = %p.prefix,
                    "Map-Notify not acknowledged after {} retransmissions: given up",
                    p.retransmits
                );
                self.pending.remove(i);
                continue;
            }
            p.retransmits += 1;
            p.next_ms = now_ms.saturating_add(NOTIFY_RETRANSMIT_MS);
            self.stats.notify_retransmits += 1;
            out.transmits
                .push(notify_transmit(p.src, p.dst, p.dst_port, p.payload.clone()));
            i += 1;
        }
    }

    /// When [`MapServer::on_timer`] has something to do next.
    pub fn next_timer(&self) -> Option<u64> {
        let expiry = self.expiries.first().map(|e| e.0);
        let notify = self.pending.iter().map(|p| p.next_ms).min();
        match (expiry, notify) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The registrations, by IID and prefix.
    pub fn registrations(&self) -> impl Iterator<Item = RegistrationView<'_>> + '_ {
        self.registrations
            .iter()
            .map(|(&(iid, prefix), r)| self.view(iid, prefix, r))
    }

    /// The registration of exactly `iid`/`prefix`.
    pub fn registration(&self, iid: u32, prefix: IpNet) -> Option<RegistrationView<'_>> {
        let prefix = prefix.trunc();
        self.registrations
            .get(&(iid, prefix))
            .map(|r| self.view(iid, prefix, r))
    }

    /// Registrations held.
    pub fn registration_count(&self) -> usize {
        self.registrations.len()
    }

    /// Unsolicited Map-Notifies waiting for their Ack.
    pub fn pending_notifies(&self) -> usize {
        self.pending.len()
    }

    fn view<'a>(&'a self, iid: u32, prefix: IpNet, r: &'a Registered) -> RegistrationView<'a> {
        RegistrationView {
            site: &self.sites[r.site].name,
            iid,
            prefix,
            registrant: r.registrant,
            registrant_port: r.registrant_port,
            xtr_id: r.xtr_id.as_ref(),
            locators: &r.record.locators,
            ttl_min: r.record.ttl,
            proxy_reply: r.proxy_reply,
            want_map_notify: r.want_map_notify,
            first_registered_ms: r.first_ms,
            last_registered_ms: r.last_ms,
            expires_ms: r.expires_ms,
        }
    }

    /// Removes the registrations whose time is up.
    fn expire(&mut self, now_ms: u64) {
        while let Some(&(at, iid, prefix)) = self.expiries.first() {
            if at > now_ms {
                break;
            }
            self.expiries.remove(&(at, iid, prefix));
            if let Some(r) = self.registrations.remove(&(iid, prefix)) {
                self.stats.registrations_expired += 1;
                info!(
                    site = %self.sites[r.site].name,
                    iid,
                    %prefix,
                    registrant = %r.registrant,
                    "registration expired"
                );
            }
        }
    }

    /// The site a record of `iid`/`prefix` belongs to: that of the longest configured prefix
    /// covering it, which must be the prefix itself or accept more-specifics.
    fn site_of(&self, iid: u32, prefix: IpNet) -> Result<usize, String> {
        let Some((c, conf)) = longest(&self.configured, iid, prefix) else {
            return Err(format!(
                "{prefix} (IID {iid}) is in no configured site prefix"
            ));
        };
        if c == prefix || conf.accept_more_specifics {
            Ok(conf.site)
        } else {
            Err(format!(
                "{prefix} (IID {iid}) is more specific than {c} of site {}, which does not accept more-specifics",
                self.sites[conf.site].name
            ))
        }
    }

    /// The Map-Resolver's answer for `iid`/`eid`.
    fn resolve(&self, iid: u32, eid: IpNet) -> Resolution {
        if let Some((_, r)) = longest(&self.registrations, iid, eid) {
            if !r.proxy_reply {
                return Resolution::Forward(r.registrant);
            }
            // RFC 9301 section 5.4: a Map-Server replying as a proxy must not set the A bit;
            // no locator is local to us, none answers a probe.
            let mut record = r.record.clone();
            record.authoritative = false;
            for l in &mut record.locators {
                l.local = false;
                l.probed = false;
            }
            return Resolution::Proxy(record);
        }
        let (prefix, ttl) = match longest(&self.configured, iid, eid) {
            // In a site prefix: the widest part around the EID that holds no registration
            // (nor another, more specific, site prefix).
            Some((c, _)) => (
                widest_free(eid, c.prefix_len(), |cand| {
                    within(&self.registrations, iid, cand).next().is_none()
                        && within(&self.configured, iid, cand).all(|(k, _)| k.1 == c)
                }),
                NEGATIVE_TTL_UNREGISTERED,
            ),
            // Outside the mapping system: the widest prefix around the EID that overlaps no
            // site prefix of the instance.
            None => (
                widest_free(eid, 0, |cand| {
                    within(&self.configured, iid, cand).next().is_none()
                }),
                NEGATIVE_TTL_UNKNOWN,
            ),
        };
        Resolution::Negative(MappingRecord {
            ttl,
            action: Action::NativelyForward,
            // Only an ETR sets A (RFC 9301 section 5.4).
            authoritative: false,
            map_version: 0,
            eid: eid_address(iid, prefix.network()),
            mask_len: prefix.prefix_len(),
            locators: Vec::new(),
        })
    }

    /// The first ITR-RLOC of a family we have an RLOC in.
    fn reply_rloc(&self, request: &MapRequest) -> Option<IpAddr> {
        request
            .itr_rlocs
            .iter()
            .filter_map(Address::ip)
            .find(|ip| match ip {
                IpAddr::V4(_) => self.reply_ipv4,
                IpAddr::V6(_) => self.reply_ipv6,
            })
    }

    fn send(&mut self, dst: IpAddr, dst_port: u16, msg: &Message, out: &mut Outbox) {
        match msg.to_vec() {
            Ok(payload) => out.transmits.push(Transmit {
                src: self.local,
                dst,
                src_port: LISP_CONTROL_PORT,
                dst_port,
                payload,
            }),
            Err(e) => {
                self.stats.emit_errors += 1;
                warn!(%dst, "{:?} not emitted: {e}", msg.message_type());
            }
        }
    }
}

/// A Map-Notify to a registrant, to the UDP port its Map-Register came from (4342 for an
/// ETR on the standard port; an ephemeral port or one a NAT chose otherwise).
fn notify_transmit(src: Option<IpAddr>, dst: IpAddr, port: u16, payload: Vec<u8>) -> Transmit {
    Transmit {
        dst_port: if port == 0 { LISP_CONTROL_PORT } else { port },
        ..control_transmit(src, dst, payload)
    }
}

/// Whether `new` registers what `old` had from another ETR with other locators (a move): the
/// registrants differ (by xTR-ID when both sent one, else by source address) and so do their
/// locator sets. Two ETRs of a multihomed site register the same locators: not a move; an ETR
/// that changes its own RLOCs: not a move either.
fn moved(old: &Registered, new: &Registered) -> bool {
    let same_etr = match (&old.xtr_id, &new.xtr_id) {
        (Some(a), Some(b)) => a == b,
        _ => old.registrant == new.registrant,
    };
    !same_etr && !same_locators(&old.record.locators, &new.record.locators)
}

/// Whether two locator lists hold the same RLOC addresses (order and attributes aside).
fn same_locators(a: &[Locator], b: &[Locator]) -> bool {
    a.iter().all(|l| b.iter().any(|m| m.address == l.address))
        && b.iter().all(|l| a.iter().any(|m| m.address == l.address))
}

/// `ip`/`len` with the host bits cleared.
fn trunc(ip: IpAddr, len: u8) -> IpNet {
    IpNet::new(ip, len)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| IpNet::from(ip))
}

/// The longest key of `map` in instance `iid` that covers `net` (equal or less specific).
fn longest<V>(map: &BTreeMap<(u32, IpNet), V>, iid: u32, net: IpNet) -> Option<(IpNet, &V)> {
    (0..=net.prefix_len()).rev().find_map(|len| {
        let c = trunc(net.addr(), len);
        map.get(&(iid, c)).map(|v| (c, v))
    })
}

/// The entries of `map` in instance `iid` inside `cand` (equal or more specific).
fn within<V>(
    map: &BTreeMap<(u32, IpNet), V>,
    iid: u32,
    cand: IpNet,
) -> impl Iterator<Item = (&(u32, IpNet), &V)> {
    // Keys order by (address, length): everything inside `cand` lies between its first
    // address with length 0 and its last address with the longest length.
    let lo = IpNet::new(cand.network(), 0).unwrap_or(cand);
    let hi = IpNet::new(cand.broadcast(), cand.max_prefix_len()).unwrap_or(cand);
    map.range((iid, lo)..=(iid, hi))
        .filter(move |(k, _)| k.1.prefix_len() >= cand.prefix_len())
}

/// The widest prefix around `eid`, no shorter than `min_len`, that `free` accepts (the EID's
/// host prefix when none is).
fn widest_free(eid: IpNet, min_len: u8, free: impl Fn(IpNet) -> bool) -> IpNet {
    (min_len..=eid.max_prefix_len())
        .map(|len| trunc(eid.addr(), len))
        .find(|&cand| free(cand))
        .unwrap_or_else(|| IpNet::from(eid.addr()))
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::config::{KeyId, Site, SitePrefix};
    use crate::control::ip_address;
    use crate::wire::control::{EcmInner, EidRecord};

    const ETR1: &str = "192.0.2.1";
    const ETR2: &str = "198.51.100.1";
    const ITR: &str = "203.0.113.9";
    /// The inner UDP source port of the test ECMs (where Map-Replies go).
    const ITR_PORT: u16 = 43000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn site(name: &str, key_id: KeyId, key: &str, prefixes: &[(u32, &str, bool)]) -> Site {
        Site {
            name: name.into(),
            key_id,
            key: key.into(),
            eid_prefixes: prefixes
                .iter()
                .map(|&(iid, p, more)| SitePrefix {
                    iid,
                    prefix: net(p),
                    accept_more_specifics: more,
                })
                .collect(),
        }
    }

    fn server(timeout_s: u32, sites: Vec<Site>) -> MapServer {
        let cfg = config::MapServer {
            enabled: true,
            registration_timeout_s: timeout_s,
            sites,
            ..config::MapServer::default()
        };
        MapServer::new(&cfg, Nonces::seeded(7))
    }

    /// Site "a" (HMAC-SHA-1-96, "key-a"): 10.1.0.0/16 with more-specifics; 10.5.0.0/16 without.
    /// Site "b" (HMAC-SHA-256-128, "key-b"): 10.2.0.0/16.
    fn two_sites() -> MapServer {
        server(
            180,
            vec![
                site(
                    "a",
                    KeyId::HmacSha1_96,
                    "key-a",
                    &[(0, "10.1.0.0/16", true), (0, "10.5.0.0/16", false)],
                ),
                site(
                    "b",
                    KeyId::HmacSha256_128,
                    "key-b",
                    &[(0, "10.2.0.0/16", false)],
                ),
            ],
        )
    }

    fn record(iid: u32, prefix: &str, rlocs: &[&str]) -> MappingRecord {
        let n = net(prefix);
        MappingRecord {
            ttl: 1440,
            action: Action::NoAction,
            authoritative: true,
            map_version: 0,
            eid: eid_address(iid, n.network()),
            mask_len: n.prefix_len(),
            locators: rlocs
                .iter()
                .map(|r| {
                    let mut l = Locator::new(ip_address(ip(r)), 1, 100);
                    l.local = true;
                    l
                })
                .collect(),
        }
    }

    /// A Map-Register's fields besides its records.
    #[derive(Clone, Copy)]
    struct Opts {
        nonce: u64,
        alg: Option<Algorithm>,
        want_notify: bool,
        proxy: bool,
        xtr: Option<XtrId>,
        key_id: u8,
    }

    fn opts(alg: Algorithm) -> Opts {
        Opts {
            nonce: 0x1111,
            alg: Some(alg),
            want_notify: false,
            proxy: false,
            xtr: None,
            key_id: 0,
        }
    }

    const SHA1: Algorithm = Algorithm::HmacSha1_96;
    const SHA256: Algorithm = Algorithm::HmacSha256_128;

    fn register_msg(records: Vec<MappingRecord>, o: Opts, key: &str) -> Vec<u8> {
        let m = Message::MapRegister(MapRegister {
            proxy_reply: o.proxy,
            security: false,
            rtr: false,
            want_map_notify: o.want_notify,
            registration: Registration {
                nonce: o.nonce,
                key_id: o.key_id,
                algorithm_id: 0,
                auth_data: Vec::new(),
                records,
                xtr_id: o.xtr,
            },
        });
        match o.alg {
            Some(a) => auth::emit_signed(&m, a, key.as_bytes()).unwrap(),
            None => m.to_vec().unwrap(),
        }
    }

    #[test]
    fn a_reload_keeps_valid_registrations_and_drops_the_rest() {
        let mut ms = two_sites();
        // Site a: a more-specific of 10.1.0.0/16 and 10.5.0.0/16; site b: 10.2.0.0/16.
        reg_a(&mut ms, "10.1.1.5/32", ETR1, opts(SHA1), 1_000);
        reg_a(&mut ms, "10.5.0.0/16", ETR1, opts(SHA1), 1_000);
        let mut out = Outbox::default();
        let msg = register_msg(
            vec![record(0, "10.2.0.0/16", &[ETR2])],
            opts(SHA256),
            "key-b",
        );
        ms.on_map_register(ip(ETR2), 4342, &msg, 1_000, &mut out);
        assert_eq!(ms.registration_count(), 3);
        // New file: site a keeps 10.1.0.0/16 with a new key and loses 10.5.0.0/16; site b is
        // gone; site c is new; registrations live 60 s now.
        let cfg = config::MapServer {
            enabled: true,
            registration_timeout_s: 60,
            sites: vec![
                site(
                    "c",
                    KeyId::HmacSha256_128,
                    "key-c",
                    &[(0, "10.3.0.0/16", false)],
                ),
                site(
                    "a",
                    KeyId::HmacSha1_96,
                    "key-a2",
                    &[(0, "10.1.0.0/16", true)],
                ),
            ],
            ..config::MapServer::default()
        };
        assert_eq!(ms.reconfigure(&cfg), 2);
        let kept: Vec<(String, IpNet)> = ms
            .registrations()
            .map(|r| (r.site.to_string(), r.prefix))
            .collect();
        assert_eq!(kept, vec![("a".to_string(), net("10.1.1.5/32"))]);
        // The old key no longer authenticates; the new one does, and the new timeout applies.
        let out = reg_a(&mut ms, "10.1.1.6/32", ETR1, opts(SHA1), 2_000);
        assert!(out.transmits.is_empty());
        assert_eq!(ms.stats.registers_bad_auth, 1);
        assert!(ms.registration(0, net("10.1.1.6/32")).is_none());
        let mut out = Outbox::default();
        let msg = register_msg(
            vec![record(0, "10.1.1.6/32", &[ETR1])],
            opts(SHA1),
            "key-a2",
        );
        ms.on_map_register(ip(ETR1), 4342, &msg, 2_000, &mut out);
        let r = ms.registration(0, net("10.1.1.6/32")).expect("registered");
        assert_eq!(r.expires_ms, 62_000);
        // The new site takes registrations; the removed one does not.
        let mut out = Outbox::default();
        let msg = register_msg(
            vec![record(0, "10.3.0.0/16", &[ETR2])],
            opts(SHA256),
            "key-c",
        );
        ms.on_map_register(ip(ETR2), 4342, &msg, 2_000, &mut out);
        assert!(ms.registration(0, net("10.3.0.0/16")).is_some());
        let msg = register_msg(
            vec![record(0, "10.2.0.0/16", &[ETR2])],
            opts(SHA256),
            "key-b",
        );
        ms.on_map_register(ip(ETR2), 4342, &msg, 2_000, &mut out);
        assert!(ms.registration(0, net("10.2.0.0/16")).is_none());
        // Expiry bookkeeping followed the removals: nothing stale fires later.
        ms.on_timer(1_000_000, &mut Outbox::default());
        assert_eq!(ms.registration_count(), 0);
    }

    /// Registers `prefix` -> `rloc` from `rloc` (site a's key); returns the outbox.
    fn reg_a(ms: &mut MapServer, prefix: &str, rloc: &str, o: Opts, now: u64) -> Outbox {
        let mut out = Outbox::default();
        let msg = register_msg(vec![record(0, prefix, &[rloc])], o, "key-a");
        ms.on_map_register(ip(rloc), 4342, &msg, now, &mut out);
        out
    }

    fn ack_msg(nonce: u64, key: &str) -> Vec<u8> {
        let m = Message::MapNotify(MapNotify {
            kind: NotifyKind::Ack,
            rtr: false,
            registration: Registration {
                nonce,
                key_id: 0,
                algorithm_id: 0,
                auth_data: Vec::new(),
                records: vec![record(0, "10.1.1.5/32", &[ETR2])],
                xtr_id: None,
            },
        });
        auth::emit_signed(&m, SHA1, key.as_bytes()).unwrap()
    }

    fn notify_of(t: &Transmit) -> MapNotify {
        match Message::parse(&t.payload).unwrap() {
            Message::MapNotify(n) => n,
            other => panic!("expected a Map-Notify, got {other:?}"),
        }
    }

    fn reply_of(t: &Transmit) -> MapReply {
        match Message::parse(&t.payload).unwrap() {
            Message::MapReply(r) => r,
            other => panic!("expected a Map-Reply, got {other:?}"),
        }
    }

    /// A Map-Request for `eid` in `iid` in an ECM, as the runtime hands them over (parsed back
    /// from bytes).
    fn request(iid: u32, eid: &str, itr_rlocs: &[&str], nonce: u64) -> (Ecm, MapRequest) {
        let e = ip(eid);
        let req = MapRequest::new(
            nonce,
            Address::None,
            itr_rlocs.iter().map(|a| ip_address(ip(a))).collect(),
            vec![EidRecord {
                mask_len: if e.is_ipv4() { 32 } else { 128 },
                eid: eid_address(iid, e),
            }],
        );
        ecm_of(req, e)
    }

    fn ecm_of(req: MapRequest, eid: IpAddr) -> (Ecm, MapRequest) {
        let src = if eid.is_ipv4() {
            ip("10.9.9.9")
        } else {
            ip("2001:db8:9::9")
        };
        let ecm = Message::Ecm(Ecm {
            security: false,
            ddt: false,
            to_etr: false,
            to_ms: false,
            inner: EcmInner {
                src,
                dst: eid,
                src_port: ITR_PORT,
                dst_port: LISP_CONTROL_PORT,
                ttl: 64,
                ipv4_id: 7,
                dont_fragment: false,
                udp_checksum: true,
            },
            message: Message::MapRequest(req).to_vec().unwrap(),
        });
        let Message::Ecm(ecm) = Message::parse(&ecm.to_vec().unwrap()).unwrap() else {
            unreachable!()
        };
        let Message::MapRequest(req) = ecm.message().unwrap() else {
            unreachable!()
        };
        (ecm, req)
    }

    fn ask(ms: &mut MapServer, iid: u32, eid: &str, now: u64) -> Outbox {
        let (ecm, req) = request(iid, eid, &[ITR], 0xabcd);
        let mut out = Outbox::default();
        ms.on_map_request(&ecm, &req, now, &mut out);
        out
    }

    /// (prefix, TTL) of the one negative Map-Reply in `out`, checking its form.
    fn negative(out: &Outbox, iid: u32) -> (IpNet, u32) {
        assert_eq!(out.transmits.len(), 1, "{out:?}");
        let r = reply_of(&out.transmits[0]);
        assert_eq!(r.nonce, 0xabcd);
        assert_eq!(r.records.len(), 1);
        let rec = &r.records[0];
        assert_eq!(rec.action, Action::NativelyForward);
        assert!(rec.locators.is_empty());
        assert!(!rec.authoritative);
        let (i, p) = eid_prefix(&rec.eid, rec.mask_len).unwrap();
        assert_eq!(i, iid);
        (p, rec.ttl)
    }

    #[test]
    fn registrations_with_key_id_1_and_2_are_accepted_and_notified() {
        let mut ms = two_sites();
        // Key-id 1 (HMAC-SHA-1-96), want-map-notify, RFC 9301 Key ID 3.
        let recs = vec![record(0, "10.1.0.0/16", &[ETR1])];
        let o = Opts {
            want_notify: true,
            key_id: 3,
            ..opts(SHA1)
        };
        let mut out = Outbox::default();
        ms.on_map_register(
            ip(ETR1),
            61000,
            &register_msg(recs.clone(), o, "key-a"),
            5,
            &mut out,
        );
        assert_eq!(ms.stats.registers_accepted, 1);
        assert_eq!(out.transmits.len(), 1);
        let t = &out.transmits[0];
        // Back to the port the Map-Register came from.
        assert_eq!(
            (t.src, t.dst, t.src_port, t.dst_port),
            (None, ip(ETR1), 4342, 61000)
        );
        let n = notify_of(t);
        assert_eq!(n.kind, NotifyKind::Notify);
        assert_eq!(n.registration.nonce, 0x1111);
        assert_eq!((n.registration.key_id, n.registration.algorithm_id), (3, 1));
        assert_eq!(n.registration.records, recs);
        assert_eq!(auth::verify(&t.payload, b"key-a"), Ok(SHA1));
        assert!(auth::verify(&t.payload, b"key-b").is_err());
        let v = ms.registration(0, net("10.1.0.0/16")).unwrap();
        assert_eq!(v.site, "a");
        assert_eq!((v.registrant, v.registrant_port), (ip(ETR1), 61000));
        assert_eq!(v.locators, &recs[0].locators[..]);
        assert_eq!(v.ttl_min, 1440);
        assert!(v.want_map_notify && !v.proxy_reply);
        assert_eq!((v.first_registered_ms, v.expires_ms), (5, 180_005));

        // Key-id 2 (HMAC-SHA-256-128) with an xTR-ID, echoed in the Map-Notify.
        let xtr = XtrId {
            xtr_id: [9; 16],
            site_id: 77,
        };
        let recs = vec![record(0, "10.2.0.0/16", &[ETR2])];
        let o = Opts {
            want_notify: true,
            xtr: Some(xtr),
            nonce: 0x2222,
            ..opts(SHA256)
        };
        let mut out = Outbox::default();
        ms.on_map_register(
            ip(ETR2),
            4342,
            &register_msg(recs.clone(), o, "key-b"),
            6,
            &mut out,
        );
        assert_eq!(ms.stats.registers_accepted, 2);
        let n = notify_of(&out.transmits[0]);
        assert_eq!(out.transmits[0].dst, ip(ETR2));
        assert_eq!(n.registration.nonce, 0x2222);
        assert_eq!(n.registration.algorithm_id, 2);
        assert_eq!(n.registration.xtr_id, Some(xtr));
        assert_eq!(n.registration.records, recs);
        assert_eq!(
            auth::verify(&out.transmits[0].payload, b"key-b"),
            Ok(SHA256)
        );
        assert_eq!(ms.registration(0, net("10.2.0.0/16")).unwrap().site, "b");
        assert_eq!(ms.registration_count(), 2);
        assert_eq!(ms.stats.notifies_sent, 2);

        // Without the M bit: no Map-Notify.
        let out = reg_a(&mut ms, "10.1.7.0/24", ETR1, opts(SHA1), 7);
        assert!(out.transmits.is_empty());
        assert_eq!(ms.registration_count(), 3);
    }

    #[test]
    fn wrong_key_is_refused_and_changes_nothing() {
        let mut ms = two_sites();
        let o = Opts {
            want_notify: true,
            ..opts(SHA1)
        };
        let mut out = Outbox::default();
        let msg = register_msg(vec![record(0, "10.1.1.0/24", &[ETR1])], o, "key-b");
        ms.on_map_register(ip(ETR1), 4342, &msg, 0, &mut out);
        assert_eq!(ms.stats.registers_bad_auth, 1);
        assert_eq!(ms.stats.registers_accepted, 0);
        assert_eq!(ms.registration_count(), 0);
        assert!(out.is_empty());

        // A forged move of a registered prefix neither moves it nor notifies anybody.
        reg_a(&mut ms, "10.1.1.0/24", ETR1, opts(SHA1), 0);
        let msg = register_msg(vec![record(0, "10.1.1.0/24", &[ETR2])], o, "not-the-key");
        ms.on_map_register(ip(ETR2), 4342, &msg, 10, &mut out);
        assert!(out.is_empty());
        assert_eq!(ms.stats.registers_bad_auth, 2);
        let v = ms.registration(0, net("10.1.1.0/24")).unwrap();
        assert_eq!((v.registrant, v.last_registered_ms), (ip(ETR1), 0));
        assert_eq!(ms.stats.moves, 0);
        assert_eq!(ms.pending_notifies(), 0);
    }

    #[test]
    fn another_algorithm_than_the_sites_is_refused() {
        let mut ms = two_sites();
        // Site a uses HMAC-SHA-1-96; the right key with HMAC-SHA-256 is still refused.
        let out = reg_a(&mut ms, "10.1.1.0/24", ETR1, opts(SHA256), 0);
        assert!(out.is_empty());
        assert_eq!(ms.stats.registers_bad_auth, 1);
        assert_eq!(ms.registration_count(), 0);
    }

    #[test]
    fn unauthenticated_and_malformed_registers_are_refused() {
        let mut ms = two_sites();
        let mut out = Outbox::default();
        let o = Opts {
            alg: None,
            want_notify: true,
            ..opts(SHA1)
        };
        let msg = register_msg(vec![record(0, "10.1.1.0/24", &[ETR1])], o, "");
        assert_eq!(msg[13], 0, "algorithm 0");
        ms.on_map_register(ip(ETR1), 4342, &msg, 0, &mut out);
        assert_eq!(ms.stats.registers_not_authenticated, 1);

        let good = register_msg(vec![record(0, "10.1.1.0/24", &[ETR1])], opts(SHA1), "key-a");
        ms.on_map_register(ip(ETR1), 4342, &good[..good.len() - 3], 0, &mut out);
        ms.on_map_register(ip(ETR1), 4342, &[0x30], 0, &mut out);
        let empty = register_msg(Vec::new(), opts(SHA1), "key-a");
        ms.on_map_register(ip(ETR1), 4342, &empty, 0, &mut out);
        assert_eq!(ms.stats.registers_malformed, 3);
        assert!(out.is_empty());
        assert_eq!(ms.registration_count(), 0);
        assert_eq!(ms.stats.registers_accepted, 0);
    }

    #[test]
    fn out_of_prefix_and_mixed_site_registers_are_refused() {
        let mut ms = two_sites();
        for (iid, p) in [(0, "10.3.0.0/16"), (0, "10.0.0.0/8"), (5, "10.1.0.0/16")] {
            let msg = register_msg(vec![record(iid, p, &[ETR1])], opts(SHA1), "key-a");
            ms.on_map_register(ip(ETR1), 4342, &msg, 0, &mut Outbox::default());
        }
        assert_eq!(ms.stats.registers_unknown_site, 3);
        // Records of two sites in one message (one key cannot sign for both).
        let msg = register_msg(
            vec![
                record(0, "10.1.0.0/16", &[ETR1]),
                record(0, "10.2.0.0/16", &[ETR1]),
            ],
            opts(SHA1),
            "key-a",
        );
        ms.on_map_register(ip(ETR1), 4342, &msg, 0, &mut Outbox::default());
        assert_eq!(ms.stats.registers_unknown_site, 4);
        assert_eq!(ms.registration_count(), 0);
        // Two records of one site are fine.
        let msg = register_msg(
            vec![
                record(0, "10.1.0.0/16", &[ETR1]),
                record(0, "10.5.0.0/16", &[ETR1]),
            ],
            opts(SHA1),
            "key-a",
        );
        ms.on_map_register(ip(ETR1), 4342, &msg, 0, &mut Outbox::default());
        assert_eq!(ms.registration_count(), 2);
    }

    #[test]
    fn more_specifics_only_where_the_site_prefix_accepts_them() {
        let mut ms = two_sites();
        reg_a(&mut ms, "10.1.5.7/32", ETR1, opts(SHA1), 0);
        assert!(ms.registration(0, net("10.1.5.7/32")).is_some());
        reg_a(&mut ms, "10.5.5.7/32", ETR1, opts(SHA1), 0);
        assert!(ms.registration(0, net("10.5.5.7/32")).is_none());
        assert_eq!(ms.stats.registers_unknown_site, 1);
        reg_a(&mut ms, "10.5.0.0/16", ETR1, opts(SHA1), 0);
        assert!(ms.registration(0, net("10.5.0.0/16")).is_some());
        assert_eq!(ms.stats.registers_accepted, 2);
    }

    #[test]
    fn a_ttl_zero_record_withdraws_only_its_registrants_registration() {
        let mut ms = server(
            180,
            vec![site(
                "a",
                KeyId::HmacSha1_96,
                "key-a",
                &[(0, "10.1.0.0/16", true)],
            )],
        );
        reg_a(&mut ms, "10.1.1.20/32", ETR1, opts(SHA1), 0);
        let withdraw = |ms: &mut MapServer, from: &str| {
            let mut rec = record(0, "10.1.1.20/32", &[from]);
            rec.ttl = 0;
            let msg = register_msg(vec![rec], opts(SHA1), "key-a");
            let mut out = Outbox::default();
            ms.on_map_register(ip(from), 4342, &msg, 1, &mut out);
        };
        // Another ETR cannot withdraw it.
        withdraw(&mut ms, ETR2);
        assert_eq!(ms.registration_count(), 1);
        assert_eq!(ms.stats.withdrawals_ignored, 1);
        withdraw(&mut ms, ETR1);
        assert_eq!(ms.registration_count(), 0);
        assert_eq!(ms.stats.records_withdrawn, 1);
        assert_eq!(ms.next_timer(), None, "its expiry went with it");
        // Asked about now: negative, as unregistered space of the site.
        let (p, ttl) = negative(&ask(&mut ms, 0, "10.1.1.20", 2), 0);
        assert_eq!((p, ttl), (net("10.1.0.0/16"), 1));
    }

    #[test]
    fn registrations_expire_after_the_timeout_and_not_before() {
        let mut ms = server(
            60,
            vec![site(
                "a",
                KeyId::HmacSha1_96,
                "key-a",
                &[(0, "10.1.0.0/16", true)],
            )],
        );
        assert_eq!(ms.next_timer(), None);
        reg_a(&mut ms, "10.1.1.0/24", ETR1, opts(SHA1), 1_000);
        assert_eq!(ms.next_timer(), Some(61_000));
        let mut out = Outbox::default();
        ms.on_timer(60_999, &mut out);
        assert_eq!(ms.registration_count(), 1);
        // Still answered (forwarded) just before the deadline...
        assert_eq!(
            ask(&mut ms, 0, "10.1.1.1", 60_999).transmits[0].dst,
            ip(ETR1)
        );
        // ...and negative from the deadline on, even before the timer ran.
        let (p, ttl) = negative(&ask(&mut ms, 0, "10.1.1.1", 61_000), 0);
        assert_eq!((p, ttl), (net("10.1.0.0/16"), 1));
        assert_eq!(ms.registration_count(), 0);
        assert_eq!(ms.stats.registrations_expired, 1);
        ms.on_timer(61_000, &mut out);
        assert_eq!(ms.stats.registrations_expired, 1);
        assert_eq!(ms.next_timer(), None);
        assert!(out.is_empty());
    }

    #[test]
    fn a_refresh_extends_the_registration() {
        let mut ms = server(
            60,
            vec![site(
                "a",
                KeyId::HmacSha1_96,
                "key-a",
                &[(0, "10.1.0.0/16", true)],
            )],
        );
        reg_a(&mut ms, "10.1.1.0/24", ETR1, opts(SHA1), 0);
        reg_a(&mut ms, "10.1.1.0/24", ETR1, opts(SHA1), 50_000);
        assert_eq!(ms.next_timer(), Some(110_000));
        let mut out = Outbox::default();
        ms.on_timer(60_000, &mut out);
        let v = ms.registration(0, net("10.1.1.0/24")).expect("refreshed");
        assert_eq!(
            (v.first_registered_ms, v.last_registered_ms, v.expires_ms),
            (0, 50_000, 110_000)
        );
        assert_eq!((ms.stats.records_new, ms.stats.records_refreshed), (1, 1));
        assert_eq!(ms.stats.moves, 0);
        ms.on_timer(110_000, &mut out);
        assert_eq!(ms.registration_count(), 0);
        assert!(out.is_empty());
    }

    /// ETR1 registers host 10.1.1.5, then ETR2 does: returns the unsolicited Map-Notify to
    /// ETR1 (sent at 10 s).
    fn moved_host(ms: &mut MapServer) -> Transmit {
        reg_a(ms, "10.1.1.5/32", ETR1, opts(SHA1), 0);
        let out = reg_a(ms, "10.1.1.5/32", ETR2, opts(SHA1), 10_000);
        assert_eq!(ms.stats.moves, 1);
        assert_eq!(out.transmits.len(), 1, "{out:?}");
        out.transmits[0].clone()
    }

    #[test]
    fn notifies_leave_from_the_address_the_registrant_registered_to() {
        let mut ms = two_sites();
        let (ms1, ms2) = (ip("192.0.2.10"), ip("192.0.2.11"));
        let mut o = opts(SHA1);
        o.want_notify = true;
        let msg = register_msg(vec![record(0, "10.1.1.5/32", &[ETR1])], o, "key-a");
        let mut out = Outbox::default();
        ms.on_map_register_at(ms1, ip(ETR1), 4342, &msg, 0, &mut out);
        assert_eq!(out.transmits[0].src, Some(ms1), "the solicited Map-Notify");
        // ETR2 registers the host through our other address: the move notify to ETR1 and
        // its retransmission still come from the address ETR1 knows.
        let msg = register_msg(vec![record(0, "10.1.1.5/32", &[ETR2])], opts(SHA1), "key-a");
        let mut out = Outbox::default();
        ms.on_map_register_at(ms2, ip(ETR2), 4342, &msg, 10, &mut out);
        let to_etr1: Vec<_> = out.transmits.iter().filter(|t| t.dst == ip(ETR1)).collect();
        assert_eq!(to_etr1.len(), 1);
        assert_eq!(to_etr1[0].src, Some(ms1));
        let mut out = Outbox::default();
        ms.on_timer(10 + NOTIFY_RETRANSMIT_MS, &mut out);
        assert_eq!(out.transmits.len(), 1);
        assert_eq!(out.transmits[0].src, Some(ms1));
        // Map-Requests: answered and forwarded from the address they were sent to.
        let (ecm, req) = request(0, "10.1.1.5", &[ITR], 7);
        let mut out = Outbox::default();
        ms.on_map_request_at(ms2, &ecm, &req, 20, &mut out);
        assert_eq!(out.transmits[0].src, Some(ms2));
        assert_eq!(out.transmits[0].dst, ip(ETR2));
    }

    #[test]
    fn a_move_notifies_the_old_registrant_until_it_acks() {
        let mut ms = two_sites();
        let t = moved_host(&mut ms);
        assert_eq!(
            (t.src, t.dst, t.src_port, t.dst_port),
            (None, ip(ETR1), 4342, 4342)
        );
        let n = notify_of(&t);
        assert_eq!(n.kind, NotifyKind::Notify);
        assert_eq!(
            n.registration.records,
            vec![record(0, "10.1.1.5/32", &[ETR2])]
        );
        assert_eq!(auth::verify(&t.payload, b"key-a"), Ok(SHA1));
        let nonce = n.registration.nonce;
        assert_ne!(nonce, 0x1111, "a nonce of its own");
        assert_eq!(
            ms.registration(0, net("10.1.1.5/32")).unwrap().registrant,
            ip(ETR2)
        );
        assert_eq!(ms.pending_notifies(), 1);
        assert_eq!(ms.next_timer(), Some(13_000));

        let mut out = Outbox::default();
        ms.on_timer(12_999, &mut out);
        assert!(out.is_empty());
        ms.on_timer(13_000, &mut out);
        assert_eq!(out.transmits, vec![t.clone()], "the same message again");
        assert_eq!(ms.stats.notify_retransmits, 1);
        assert_eq!(ms.next_timer(), Some(16_000));

        // An Ack with another key or another nonce does not stop it.
        ms.on_map_notify_ack(ip(ETR1), &ack_msg(nonce, "key-b"), 14_000, &mut out);
        ms.on_map_notify_ack(ip(ETR1), &ack_msg(nonce ^ 1, "key-a"), 14_000, &mut out);
        ms.on_map_notify_ack(ip(ETR1), &[0x50, 0], 14_000, &mut out);
        assert_eq!(
            (
                ms.stats.notify_acks_bad_auth,
                ms.stats.notify_acks_unknown,
                ms.stats.notify_acks_malformed
            ),
            (1, 1, 1)
        );
        assert_eq!(ms.pending_notifies(), 1);

        ms.on_map_notify_ack(ip(ETR1), &ack_msg(nonce, "key-a"), 14_000, &mut out);
        assert_eq!(ms.stats.notify_acks, 1);
        assert_eq!(ms.pending_notifies(), 0);
        out.clear();
        ms.on_timer(16_000, &mut out);
        ms.on_timer(30_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(
            ms.next_timer(),
            Some(190_000),
            "only the registration's expiry"
        );
    }

    #[test]
    fn an_unacknowledged_notify_is_given_up_after_three_retransmissions() {
        let mut ms = two_sites();
        let t = moved_host(&mut ms);
        let mut out = Outbox::default();
        for at in [13_000, 16_000, 19_000] {
            ms.on_timer(at - 1, &mut out);
            assert!(out.is_empty());
            ms.on_timer(at, &mut out);
            assert_eq!(out.transmits, vec![t.clone()], "at {at}");
            out.clear();
        }
        assert_eq!(ms.stats.notify_retransmits, 3);
        assert_eq!(ms.next_timer(), Some(22_000));
        ms.on_timer(22_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(ms.stats.notify_given_up, 1);
        assert_eq!(ms.pending_notifies(), 0);
        // A late Ack is for nothing pending.
        let nonce = notify_of(&t).registration.nonce;
        ms.on_map_notify_ack(ip(ETR1), &ack_msg(nonce, "key-a"), 23_000, &mut out);
        assert_eq!((ms.stats.notify_acks, ms.stats.notify_acks_unknown), (0, 1));
    }

    #[test]
    fn the_host_moving_back_cancels_the_pending_notify() {
        let mut ms = two_sites();
        moved_host(&mut ms);
        // ETR1 registers the host again: ETR2 is told, and ETR1 no longer is.
        let out = reg_a(&mut ms, "10.1.1.5/32", ETR1, opts(SHA1), 11_000);
        assert_eq!(out.transmits.len(), 1);
        assert_eq!(out.transmits[0].dst, ip(ETR2));
        assert_eq!(ms.pending_notifies(), 1);
        let mut out = Outbox::default();
        ms.on_timer(14_000, &mut out);
        assert_eq!(out.transmits.len(), 1);
        assert_eq!(out.transmits[0].dst, ip(ETR2), "{out:?}");
    }

    #[test]
    fn a_more_specific_inside_another_etrs_prefix_notifies_that_etr() {
        let mut ms = two_sites();
        reg_a(&mut ms, "10.1.1.0/24", ETR1, opts(SHA1), 0);
        // ETR1's own host route inside its prefix: nothing to tell.
        let out = reg_a(&mut ms, "10.1.1.6/32", ETR1, opts(SHA1), 0);
        assert!(out.is_empty());
        let out = reg_a(&mut ms, "10.1.1.5/32", ETR2, opts(SHA1), 1_000);
        assert_eq!(out.transmits.len(), 1);
        assert_eq!(out.transmits[0].dst, ip(ETR1));
        let n = notify_of(&out.transmits[0]);
        assert_eq!(
            n.registration.records,
            vec![record(0, "10.1.1.5/32", &[ETR2])]
        );
        assert_eq!(auth::verify(&out.transmits[0].payload, b"key-a"), Ok(SHA1));
        assert_eq!(ms.stats.moves_more_specific, 1);
        assert_eq!(ms.pending_notifies(), 1);
        // ETR1 keeps its prefix; ETR2's refreshes tell nobody again.
        assert_eq!(
            ms.registration(0, net("10.1.1.0/24")).unwrap().registrant,
            ip(ETR1)
        );
        let out = reg_a(&mut ms, "10.1.1.5/32", ETR2, opts(SHA1), 60_000);
        assert!(out.is_empty());
        assert_eq!(ms.stats.moves_more_specific, 1);
    }

    #[test]
    fn the_same_etr_or_the_same_locators_is_not_a_move() {
        let mut ms = two_sites();
        let x = |b| XtrId {
            xtr_id: [b; 16],
            site_id: 1,
        };
        let ox = |b| Opts {
            xtr: Some(x(b)),
            ..opts(SHA1)
        };
        reg_a(&mut ms, "10.1.1.0/24", ETR1, ox(1), 0);
        // Same xTR-ID from another address with other RLOCs: the ETR changed its RLOCs.
        let out = reg_a(&mut ms, "10.1.1.0/24", ETR2, ox(1), 1_000);
        assert!(out.is_empty());
        // Another ETR of a multihomed site registering the same RLOCs.
        let mut out = Outbox::default();
        let msg = register_msg(vec![record(0, "10.1.1.0/24", &[ETR2])], ox(2), "key-a");
        ms.on_map_register(ip("192.0.2.200"), 4342, &msg, 2_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(ms.stats.moves, 0);
        assert_eq!(
            ms.registration(0, net("10.1.1.0/24"))
                .unwrap()
                .first_registered_ms,
            0
        );
        // Another xTR-ID with other RLOCs: a move, told to the last registrant.
        let out = reg_a(&mut ms, "10.1.1.0/24", ETR1, ox(3), 3_000);
        assert_eq!(ms.stats.moves, 1);
        assert_eq!(out.transmits[0].dst, ip("192.0.2.200"));
        // The notify carries the old registrant's xTR-ID.
        assert_eq!(notify_of(&out.transmits[0]).registration.xtr_id, Some(x(2)));
        assert_eq!(
            ms.registration(0, net("10.1.1.0/24"))
                .unwrap()
                .first_registered_ms,
            3_000
        );
    }

    #[test]
    fn a_map_request_for_a_proxied_prefix_gets_a_map_reply_from_us() {
        let mut ms = two_sites();
        let o = Opts {
            proxy: true,
            ..opts(SHA1)
        };
        reg_a(&mut ms, "10.1.1.0/24", ETR1, o, 0);
        let out = ask(&mut ms, 0, "10.1.1.7", 5);
        assert_eq!(out.transmits.len(), 1);
        let t = &out.transmits[0];
        assert_eq!(
            (t.src, t.dst, t.src_port, t.dst_port),
            (None, ip(ITR), 4342, ITR_PORT)
        );
        let r = reply_of(t);
        assert_eq!(r.nonce, 0xabcd);
        assert!(!r.probe);
        let mut expected = record(0, "10.1.1.0/24", &[ETR1]);
        expected.authoritative = false;
        expected.locators[0].local = false;
        assert_eq!(r.records, vec![expected]);
        assert_eq!(ms.stats.requests_proxied, 1);
        assert_eq!(ms.stats.requests_forwarded, 0);
    }

    #[test]
    fn a_map_request_for_a_registered_prefix_is_forwarded_to_the_etr() {
        let mut ms = two_sites();
        reg_a(&mut ms, "10.1.1.0/24", ETR1, opts(SHA1), 0);
        // The longest match wins: a host route of ETR2 inside ETR1's prefix.
        reg_a(&mut ms, "10.1.1.9/32", ETR2, opts(SHA1), 0);
        let (ecm, req) = request(0, "10.1.1.7", &[ITR], 0x5151);
        let mut out = Outbox::default();
        ms.on_map_request(&ecm, &req, 5, &mut out);
        assert_eq!(out.transmits.len(), 1);
        let t = &out.transmits[0];
        assert_eq!(
            (t.src, t.dst, t.src_port, t.dst_port),
            (None, ip(ETR1), 4342, 4342)
        );
        let Message::Ecm(fwd) = Message::parse(&t.payload).unwrap() else {
            panic!("an ECM")
        };
        assert!(fwd.to_etr, "E bit: to the ETR");
        assert!(!fwd.to_ms && !fwd.ddt && !fwd.security);
        assert_eq!(fwd.inner, ecm.inner);
        assert_eq!(fwd.message, ecm.message);
        let Message::MapRequest(inner) = fwd.message().unwrap() else {
            panic!("a Map-Request inside")
        };
        assert_eq!(inner.nonce, 0x5151);
        assert_eq!(ms.stats.requests_forwarded, 1);

        let out = ask(&mut ms, 0, "10.1.1.9", 6);
        assert_eq!(out.transmits[0].dst, ip(ETR2));
        assert_eq!(ms.stats.requests_forwarded, 2);
    }

    #[test]
    fn negative_replies_cover_the_widest_free_ipv4_prefix() {
        let mut ms = server(
            180,
            vec![site(
                "a",
                KeyId::HmacSha1_96,
                "key-a",
                &[(0, "10.1.0.0/16", true)],
            )],
        );
        // Configured, nothing registered: the whole site prefix, 1 minute.
        assert_eq!(
            negative(&ask(&mut ms, 0, "10.1.3.4", 0), 0),
            (net("10.1.0.0/16"), 1)
        );
        reg_a(&mut ms, "10.1.2.0/24", ETR1, opts(SHA1), 0);
        let cases = [
            ("10.1.3.4", "10.1.3.0/24", 1),
            ("10.1.200.1", "10.1.128.0/17", 1),
            ("10.1.0.1", "10.1.0.0/23", 1),
            ("192.168.1.1", "128.0.0.0/1", 15),
            ("10.2.3.4", "10.2.0.0/15", 15),
            ("10.0.0.1", "10.0.0.0/16", 15),
        ];
        for (eid, prefix, ttl) in cases {
            assert_eq!(
                negative(&ask(&mut ms, 0, eid, 0), 0),
                (net(prefix), ttl),
                "{eid}"
            );
        }
        // Another instance has no site prefix at all.
        assert_eq!(
            negative(&ask(&mut ms, 4, "10.1.3.4", 0), 4),
            (net("0.0.0.0/0"), 15)
        );
        assert_eq!(ms.stats.requests_negative, 8);
    }

    #[test]
    fn negative_replies_cover_the_widest_free_ipv6_prefix() {
        let mut ms = server(
            180,
            vec![site(
                "a",
                KeyId::HmacSha1_96,
                "key-a",
                &[(7, "2001:db8:1::/48", true), (7, "10.1.0.0/16", true)],
            )],
        );
        let cases = [
            ("2001:db8:1:5::1", "2001:db8:1::/48", 1),
            ("2001:db8:2::1", "2001:db8:2::/47", 15),
            ("3000::1", "3000::/4", 15),
        ];
        for (eid, prefix, ttl) in cases {
            let (ecm, req) = request(7, eid, &["2001:db8:ff::1"], 0xabcd);
            let mut out = Outbox::default();
            ms.on_map_request(&ecm, &req, 0, &mut out);
            assert_eq!(out.transmits[0].dst, ip("2001:db8:ff::1"));
            assert_eq!(negative(&out, 7), (net(prefix), ttl), "{eid}");
        }
        // A host route registered in the IPv6 prefix narrows the 1-minute answer around it.
        let mut out = Outbox::default();
        let msg = register_msg(
            vec![record(7, "2001:db8:1::10/128", &[ETR1])],
            opts(SHA1),
            "key-a",
        );
        ms.on_map_register(ip(ETR1), 4342, &msg, 0, &mut out);
        let (ecm, req) = request(7, "2001:db8:1:8000::1", &[ITR], 0xabcd);
        ms.on_map_request(&ecm, &req, 0, &mut out);
        assert_eq!(negative(&out, 7), (net("2001:db8:1:8000::/49"), 1));
    }

    #[test]
    fn smrs_probes_and_requests_without_a_usable_itr_rloc_are_dropped() {
        let mut ms = two_sites();
        let mut out = Outbox::default();
        let (_, mut req) = request(0, "10.1.1.1", &[ITR], 1);
        req.smr = true;
        let (ecm, req) = ecm_of(req, ip("10.1.1.1"));
        ms.on_map_request(&ecm, &req, 0, &mut out);
        let (_, mut req) = request(0, "10.1.1.1", &[ITR], 1);
        req.probe = true;
        let (ecm, req) = ecm_of(req, ip("10.1.1.1"));
        ms.on_map_request(&ecm, &req, 0, &mut out);
        assert_eq!((ms.stats.requests_smr, ms.stats.requests_probe), (1, 1));
        assert!(out.is_empty());

        // Only IPv4 RLOCs here: an IPv6-only ITR cannot be answered...
        ms.set_reply_families(true, false);
        let (ecm, req) = request(0, "10.1.1.1", &["2001:db8::1"], 1);
        ms.on_map_request(&ecm, &req, 0, &mut out);
        assert!(out.is_empty());
        assert_eq!(ms.stats.requests_no_itr_rloc, 1);
        assert_eq!(ms.stats.requests_negative, 0);
        // ...and one with both gets the answer at its first IPv4 ITR-RLOC.
        let (ecm, req) = request(0, "10.1.1.1", &["2001:db8::1", ITR, "192.0.2.99"], 1);
        ms.on_map_request(&ecm, &req, 0, &mut out);
        assert_eq!(out.transmits.len(), 1);
        assert_eq!(out.transmits[0].dst, ip(ITR));
        assert_eq!(ms.stats.requests_negative, 1);

        // No EID record, or a non-IP one.
        let (_, mut req) = request(0, "10.1.1.1", &[ITR], 1);
        req.records.clear();
        let (ecm, req) = ecm_of(req, ip("10.1.1.1"));
        out.clear();
        ms.on_map_request(&ecm, &req, 0, &mut out);
        let (_, mut req) = request(0, "10.1.1.1", &[ITR], 1);
        req.records[0] = EidRecord {
            mask_len: 48,
            eid: Address::Mac([2, 0, 0, 0, 0, 1]),
        };
        let (ecm, req) = ecm_of(req, ip("10.1.1.1"));
        ms.on_map_request(&ecm, &req, 0, &mut out);
        assert_eq!(ms.stats.requests_malformed, 2);
        assert!(out.is_empty());
    }

    #[test]
    fn registrations_are_bounded() {
        let mut ms = two_sites().with_limits(2, MAX_PENDING_NOTIFIES);
        reg_a(&mut ms, "10.1.0.1/32", ETR1, opts(SHA1), 0);
        reg_a(&mut ms, "10.1.0.2/32", ETR1, opts(SHA1), 0);
        let out = reg_a(
            &mut ms,
            "10.1.0.3/32",
            ETR1,
            Opts {
                want_notify: true,
                ..opts(SHA1)
            },
            0,
        );
        assert!(out.is_empty(), "no Map-Notify for a refused Map-Register");
        assert_eq!(ms.stats.registers_too_many, 1);
        assert_eq!(ms.registration_count(), 2);
        // A refresh still fits; one new record among known ones does not, and nothing of
        // that message is stored.
        reg_a(&mut ms, "10.1.0.2/32", ETR1, opts(SHA1), 1_000);
        assert_eq!(ms.stats.registers_accepted, 3);
        let msg = register_msg(
            vec![
                record(0, "10.1.0.1/32", &[ETR1]),
                record(0, "10.1.0.4/32", &[ETR1]),
            ],
            opts(SHA1),
            "key-a",
        );
        ms.on_map_register(ip(ETR1), 4342, &msg, 2_000, &mut Outbox::default());
        assert_eq!(ms.stats.registers_too_many, 2);
        assert_eq!(
            ms.registration(0, net("10.1.0.1/32"))
                .unwrap()
                .last_registered_ms,
            0
        );
        assert_eq!(ms.registrations().count(), 2);
    }

    #[test]
    fn pending_notifies_are_bounded() {
        let mut ms = two_sites().with_limits(100, 1);
        for h in ["10.1.1.1/32", "10.1.1.2/32"] {
            reg_a(&mut ms, h, ETR1, opts(SHA1), 0);
        }
        for h in ["10.1.1.1/32", "10.1.1.2/32"] {
            let out = reg_a(&mut ms, h, ETR2, opts(SHA1), 0);
            assert_eq!(out.transmits.len(), 1, "sent even when not tracked");
        }
        assert_eq!(ms.pending_notifies(), 1);
        assert_eq!(ms.stats.move_notifies_sent, 2);
        assert_eq!(ms.stats.move_notifies_untracked, 1);
    }

    #[test]
    fn counters_name_every_statistic() {
        let mut ms = two_sites();
        moved_host(&mut ms);
        let c = ms.stats.counters();
        assert_eq!(c.len(), 30);
        let names: BTreeSet<_> = c.iter().map(|(n, _)| *n).collect();
        assert_eq!(names.len(), c.len(), "unique names");
        let get = |n: &str| c.iter().find(|(k, _)| *k == n).unwrap().1;
        assert_eq!(get("registers_accepted"), 2);
        assert_eq!(get("moves"), 1);
        assert_eq!(get("move_notifies_sent"), 1);
    }
}
