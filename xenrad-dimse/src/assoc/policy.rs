//! Acceptor policy: how an A-ASSOCIATE-RQ is answered (PS3.8 §7.1, PS3.7 annex D.3.3).

use crate::pdu::{
    AssociateAc, AssociateRj, AssociateRq, DICOM_APPLICATION_CONTEXT, PcResult,
    PresentationContextAc, RoleSelection, SopClassExtended, UserIdentityRq, UserInformation,
};
use std::fmt;
use std::net::IpAddr;
use subtle::{Choice, ConstantTimeEq};

/// The Storage SCP's answer to SOP Class Extended Negotiation (PS3.4 B.3.1, table B.3-2):
/// level of support 2 (full: every attribute stored, bit-preserving), digital signature
/// level 2 (signatures kept), element coercion 0 (none).
pub const STORAGE_EXTENDED_INFO: [u8; 6] = [2, 0, 2, 0, 0, 0];

/// Transfer syntax UIDs used throughout the crate (PS3.5 §10 and annex A).
pub mod ts {
    /// Implicit VR Little Endian (the default; PS3.5 A.1).
    pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
    /// Explicit VR Little Endian (PS3.5 A.2).
    pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
    /// Deflated Explicit VR Little Endian (PS3.5 A.5).
    pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
    /// Explicit VR Big Endian (retired; PS3.5 A.3).
    pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
    /// The transfer syntaxes the storage SCP accepts by default, in preference order:
    /// native ones first, then the encapsulated (compressed) ones, stored bit-preserving.
    pub const STORAGE_DEFAULT: &[&str] = &[
        EXPLICIT_VR_LE,
        IMPLICIT_VR_LE,
        DEFLATED_EXPLICIT_VR_LE,
        EXPLICIT_VR_BE,
        "1.2.840.10008.1.2.4.50",
        "1.2.840.10008.1.2.4.51",
        "1.2.840.10008.1.2.4.57",
        "1.2.840.10008.1.2.4.70",
        "1.2.840.10008.1.2.4.80",
        "1.2.840.10008.1.2.4.81",
        "1.2.840.10008.1.2.4.90",
        "1.2.840.10008.1.2.4.91",
        "1.2.840.10008.1.2.4.201",
        "1.2.840.10008.1.2.4.202",
        "1.2.840.10008.1.2.4.203",
        "1.2.840.10008.1.2.5",
    ];
}

/// SOP class UIDs the crate handles itself.
pub mod sop {
    /// Verification SOP class (C-ECHO; PS3.4 annex A).
    pub const VERIFICATION: &str = "1.2.840.10008.1.1";
    /// Modality Performed Procedure Step SOP class (PS3.4 F.7).
    pub const MPPS: &str = "1.2.840.10008.3.1.2.3.3";
    /// Prefix of the storage SOP classes (PS3.4 annex B.5).
    pub const STORAGE_PREFIX: &str = "1.2.840.10008.5.1.4.1.1.";
    /// Patient Root Query/Retrieve Information Model - FIND (PS3.4 C.6.1.3).
    pub const PATIENT_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.1.1";
    /// Patient Root Query/Retrieve Information Model - MOVE.
    pub const PATIENT_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.1.2";
    /// Patient Root Query/Retrieve Information Model - GET.
    pub const PATIENT_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.1.3";
    /// Study Root Query/Retrieve Information Model - FIND (PS3.4 C.6.2.3).
    pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";
    /// Study Root Query/Retrieve Information Model - MOVE.
    pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";
    /// Study Root Query/Retrieve Information Model - GET.
    pub const STUDY_ROOT_GET: &str = "1.2.840.10008.5.1.4.1.2.2.3";
    /// Modality Worklist Information Model - FIND (PS3.4 K.6.1.2).
    pub const MODALITY_WORKLIST_FIND: &str = "1.2.840.10008.5.1.4.31";
    /// Storage Commitment Push Model SOP class (PS3.4 J.3).
    pub const STORAGE_COMMITMENT_PUSH: &str = "1.2.840.10008.1.20.1";
    /// Well-known SOP Instance UID of Storage Commitment Push Model (PS3.4 J.3.5).
    pub const STORAGE_COMMITMENT_PUSH_INSTANCE: &str = "1.2.840.10008.1.20.1.1";
}

/// Implementation class UID of this library (2.25 UUID-derived root).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.186418836573329116442066328346734460733";
/// Implementation version name sent in negotiation and written to File Meta (≤ 16 chars).
pub const IMPLEMENTATION_VERSION_NAME: &str = "XENRAD_DIMSE_01";

/// How the acceptor answers association requests.
#[derive(Debug, Clone)]
pub struct AcceptorPolicy {
    /// Our AE title.
    pub ae_title: String,
    /// Reject requests whose called AE title differs from ours (PS3.8 table 9-21, reason 7).
    pub check_called_ae: bool,
    /// If set, only these calling AE titles are accepted, each optionally only from its
    /// addresses (PS3.8 table 9-21, reason 3 otherwise; see [`AllowedCaller`]).
    pub allowed_callers: Option<Vec<AllowedCaller>>,
    /// If set, User Identity Negotiation (PS3.7 D.3.3.7) is verified against these
    /// credentials (see [`UserIdentityPolicy`]). If unset, a user identity sub-item is
    /// recorded in [`Negotiated`] but not verified, and no server response is sent.
    pub user_identity: Option<UserIdentityPolicy>,
    /// Accept every storage SOP class (1.2.840.10008.5.1.4.1.1.*).
    pub accept_all_storage: bool,
    /// Further accepted abstract syntaxes (Verification is always accepted).
    pub abstract_syntaxes: Vec<String>,
    /// Accepted transfer syntaxes in our preference order.
    pub transfer_syntaxes: Vec<String>,
    /// Our maximum length receivable for P-DATA-TF PDUs (PS3.8 D.1).
    pub max_pdu: u32,
    /// Answer SCP/SCU role selection items (PS3.7 D.3.3.4): the requestor's SCU role is
    /// accepted as proposed; its SCP role only for storage SOP classes (so that this SCP can
    /// send the C-STORE sub-operations of a C-GET on the same association, PS3.4 C.4.3) and
    /// for the Storage Commitment Push Model (N-EVENT-REPORT, PS3.4 J.3.3).
    pub answer_role_selection: bool,
    /// SOP Class Extended Negotiation answer (PS3.7 D.3.3.5) for storage SOP classes the
    /// requestor sent a sub-item for; `None`: no answer (the requestor then assumes no
    /// extended behaviour). Default [`STORAGE_EXTENDED_INFO`].
    pub storage_extended_info: Option<Vec<u8>>,
    /// SOP Class Extended Negotiation answers for specific SOP classes (checked before
    /// `storage_extended_info`), as (SOP class UID, service-class application information).
    pub extended_info: Vec<(String, Vec<u8>)>,
}

impl Default for AcceptorPolicy {
    fn default() -> Self {
        Self {
            ae_title: "XENRAD".into(),
            check_called_ae: false,
            allowed_callers: None,
            user_identity: None,
            accept_all_storage: true,
            abstract_syntaxes: vec![sop::MPPS.into()],
            transfer_syntaxes: ts::STORAGE_DEFAULT
                .iter()
                .map(|s| (*s).to_string())
                .collect(),
            max_pdu: 128 * 1024,
            answer_role_selection: true,
            storage_extended_info: Some(STORAGE_EXTENDED_INFO.to_vec()),
            extended_info: Vec::new(),
        }
    }
}

/// A calling AE title allowed to associate (`--dicom-allow AE[@HOST]`), optionally bound to
/// the peer addresses its host had when the configuration was read.
///
/// PS3.8 §7.1.1.3 leaves the check of the Calling AE Title to the acceptor; binding it to a
/// host is this crate's addition, because an AE title alone is sent in clear by anyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedCaller {
    /// The calling AE title, compared exactly (leading and trailing spaces are not
    /// significant in AE values, PS3.5 table 6.2-1, and the PDU parser strips them).
    pub ae_title: String,
    /// If set, the association must come from one of these addresses (compared after
    /// mapping IPv4-mapped IPv6 addresses to IPv4).
    pub hosts: Option<Vec<IpAddr>>,
}

impl AllowedCaller {
    /// An AE title allowed from any host.
    pub fn any_host(ae_title: impl Into<String>) -> Self {
        Self {
            ae_title: ae_title.into(),
            hosts: None,
        }
    }

    /// Parses `AE` or `AE@HOST`. HOST is an IP address (an IPv6 one optionally in
    /// brackets) or a name given to `resolve`, which returns its addresses (the caller
    /// decides how, e.g. the system resolver at configuration time; negotiation itself does
    /// no I/O). The split is at the last `@`.
    pub fn parse<E: fmt::Display>(
        spec: &str,
        resolve: impl FnOnce(&str) -> Result<Vec<IpAddr>, E>,
    ) -> Result<Self, String> {
        let (ae, host) = match spec.rsplit_once('@') {
            Some((ae, host)) => (ae, Some(host)),
            None => (spec, None),
        };
        let ae = ae.trim();
        // PS3.5 table 6.2-1: an AE value is 1-16 characters, no backslash or control
        // characters, and not only spaces.
        if ae.is_empty() || ae.len() > 16 || ae.chars().any(|c| c == '\\' || c.is_control()) {
            return Err(format!("{spec:?}: an AE title is 1 to 16 characters"));
        }
        let hosts = match host {
            None => None,
            Some(h) => {
                let h = h.trim();
                let bare = h
                    .strip_prefix('[')
                    .and_then(|x| x.strip_suffix(']'))
                    .unwrap_or(h);
                if bare.is_empty() {
                    return Err(format!("{spec:?}: empty host after '@'"));
                }
                let addrs = match bare.parse::<IpAddr>() {
                    Ok(ip) => vec![ip],
                    Err(_) => resolve(bare).map_err(|e| format!("{spec:?}: {bare}: {e}"))?,
                };
                if addrs.is_empty() {
                    return Err(format!("{spec:?}: {bare} has no address"));
                }
                Some(addrs.into_iter().map(|a| a.to_canonical()).collect())
            }
        };
        Ok(Self {
            ae_title: ae.to_string(),
            hosts,
        })
    }

    fn host_matches(&self, peer: Option<IpAddr>) -> bool {
        match (&self.hosts, peer) {
            (None, _) => true,
            (Some(hosts), Some(p)) => hosts.contains(&p.to_canonical()),
            // Bound to a host but the transport gave no address: refuse.
            (Some(_), None) => false,
        }
    }
}

impl fmt::Display for AllowedCaller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.ae_title)?;
        if let Some(h) = &self.hosts {
            let list: Vec<String> = h.iter().map(ToString::to_string).collect();
            write!(f, "@{}", list.join(","))?;
        }
        Ok(())
    }
}

/// One configured user for User Identity Negotiation (PS3.7 D.3.3.7).
#[derive(Clone, PartialEq, Eq)]
pub struct UserCredential {
    /// The user name (primary field).
    pub username: Vec<u8>,
    /// The passcode (secondary field of identity type 2). `None`: the user name alone
    /// identifies the user, with type 1 or with type 2 and any passcode.
    pub passcode: Option<Vec<u8>>,
}

impl fmt::Debug for UserCredential {
    // Never prints the passcode.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserCredential")
            .field("username", &String::from_utf8_lossy(&self.username))
            .field("passcode", &self.passcode.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// How User Identity Negotiation (PS3.7 D.3.3.7) is verified.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserIdentityPolicy {
    /// The accepted users.
    pub users: Vec<UserCredential>,
    /// Refuse requests without a user identity sub-item. A sub-item that is sent is
    /// verified either way.
    pub required: bool,
}

impl UserIdentityPolicy {
    /// Parses a users file: one user per line, `username:passcode` (split at the first
    /// `:`, so a passcode may contain `:`) or `username` alone; blank lines and lines
    /// starting with `#` are skipped; a trailing CR is ignored. Errors name the line, never
    /// its content.
    pub fn parse_users(text: &str) -> Result<Vec<UserCredential>, String> {
        let mut users = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, pass) = match line.split_once(':') {
                Some((n, p)) => (n, Some(p)),
                None => (line, None),
            };
            // PS3.7 D.3.3.7.1: the primary field is at most 65535 bytes (2-byte length).
            if name.is_empty() || name.len() > 0xFFFF || pass.is_some_and(|p| p.len() > 0xFFFF) {
                return Err(format!(
                    "line {}: empty or too long user name or passcode",
                    i + 1
                ));
            }
            users.push(UserCredential {
                username: name.as_bytes().to_vec(),
                passcode: pass.map(|p| p.as_bytes().to_vec()),
            });
        }
        Ok(users)
    }

    /// Verifies a user identity sub-item (PS3.7 D.3.3.7.1): identity types 1 (username)
    /// and 2 (username and passcode) against the configured users, compared in constant
    /// time (every user is compared; the `subtle` comparison still returns early on a
    /// length difference, which reveals lengths only). Other types (Kerberos, SAML, JWT)
    /// cannot be verified here and are refused.
    pub fn verify(&self, id: &UserIdentityRq<'_>) -> Result<(), RefusalReason> {
        if !matches!(id.identity_type, 1 | 2) {
            return Err(RefusalReason::IdentityTypeUnsupported {
                identity_type: id.identity_type,
            });
        }
        let mut ok = Choice::from(0);
        for u in &self.users {
            let name = u.username.as_slice().ct_eq(id.primary);
            let pass = match &u.passcode {
                Some(p) => {
                    p.as_slice().ct_eq(id.secondary) & Choice::from(u8::from(id.identity_type == 2))
                }
                None => Choice::from(1),
            };
            ok |= name & pass;
        }
        if bool::from(ok) {
            Ok(())
        } else {
            Err(RefusalReason::IdentityRejected {
                identity_type: id.identity_type,
                username: String::from_utf8_lossy(id.primary).into_owned(),
            })
        }
    }
}

/// Why an association request was refused; [`Refusal::rj`] gives the A-ASSOCIATE-RJ sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalReason {
    /// Protocol version bit 0 not set (PS3.8 §9.3.2).
    ProtocolVersion(u16),
    /// An application context other than the DICOM one (PS3.7 annex A.2.1).
    ApplicationContext(String),
    /// The called AE title is not ours.
    CalledAe,
    /// The calling AE title is not on the allow-list.
    CallingAe,
    /// The calling AE title is allowed, but not from this peer address.
    PeerHost,
    /// User identity is required and the request has none.
    IdentityMissing,
    /// A user identity type this acceptor cannot verify (3 Kerberos, 4 SAML, 5 JWT, or
    /// an unknown one).
    IdentityTypeUnsupported {
        /// The identity type sent.
        identity_type: u8,
    },
    /// Unknown user, or wrong passcode (which one is not told).
    IdentityRejected {
        /// The identity type sent (1 or 2).
        identity_type: u8,
        /// The user name sent (lossily decoded); the passcode is never kept.
        username: String,
    },
}

/// A refused association request, for the application to log: who asked, from where, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Calling AE title of the request.
    pub calling_ae: String,
    /// Called AE title of the request.
    pub called_ae: String,
    /// The peer address handed to negotiation, if any.
    pub peer: Option<IpAddr>,
    /// Why.
    pub reason: RefusalReason,
}

impl Refusal {
    /// The A-ASSOCIATE-RJ answering this refusal (PS3.8 §9.3.4, table 9-21).
    pub fn rj(&self) -> AssociateRj {
        let (result, source, reason) = match &self.reason {
            // Service-provider (ACSE) source, reason 2: protocol version not supported.
            RefusalReason::ProtocolVersion(_) => (1, 2, 2),
            // Service-user source, reason 2: application context name not supported.
            RefusalReason::ApplicationContext(_) => (1, 1, 2),
            // Service-user, reason 7: called AE title not recognized.
            RefusalReason::CalledAe => (1, 1, 7),
            // Service-user, reason 3: calling AE title not recognized. An AE title that is
            // allowed but comes from another host is answered the same way, so that a
            // peer learns nothing about the allow-list.
            RefusalReason::CallingAe | RefusalReason::PeerHost => (1, 1, 3),
            // Table 9-21 has no user identity reason. Rejected-permanent (retrying with the
            // same credentials cannot succeed), service-user (the application refused),
            // reason 1 "no-reason-given": the closest the standard offers, and it tells an
            // unauthenticated peer nothing. (pynetdicom answers rejected-transient,
            // service-provider ACSE, no-reason-given; DCMTK tools print either the same.)
            RefusalReason::IdentityMissing
            | RefusalReason::IdentityTypeUnsupported { .. }
            | RefusalReason::IdentityRejected { .. } => (1, 1, 1),
        };
        AssociateRj {
            result,
            source,
            reason,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "association from {:?}", self.calling_ae)?;
        if let Some(p) = self.peer {
            write!(f, " at {p}")?;
        }
        write!(f, " to {:?} refused: ", self.called_ae)?;
        match &self.reason {
            RefusalReason::ProtocolVersion(v) => write!(f, "protocol version {v:#06x}"),
            RefusalReason::ApplicationContext(c) => write!(f, "application context {c}"),
            RefusalReason::CalledAe => f.write_str("called AE title not ours"),
            RefusalReason::CallingAe => f.write_str("calling AE title not allowed"),
            RefusalReason::PeerHost => f.write_str("calling AE title not allowed from this host"),
            RefusalReason::IdentityMissing => f.write_str("user identity required, none sent"),
            RefusalReason::IdentityTypeUnsupported { identity_type } => {
                write!(f, "user identity type {identity_type} not supported")
            }
            RefusalReason::IdentityRejected {
                identity_type,
                username,
            } => write!(
                f,
                "user identity (type {identity_type}) for user {username:?} not accepted"
            ),
        }?;
        let rj = self.rj();
        write!(
            f,
            " (A-ASSOCIATE-RJ result {} source {} reason {})",
            rj.result, rj.source, rj.reason
        )
    }
}

impl std::error::Error for Refusal {}

/// An accepted presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedContext {
    /// Presentation context ID.
    pub id: u8,
    /// Abstract syntax (SOP class) UID.
    pub abstract_syntax: String,
    /// Negotiated transfer syntax UID.
    pub transfer_syntax: String,
}

/// The outcome of a successful negotiation, owned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Negotiated {
    /// Calling (peer) AE title.
    pub calling_ae: String,
    /// Called AE title.
    pub called_ae: String,
    /// Accepted presentation contexts.
    pub contexts: Vec<AcceptedContext>,
    /// The peer's maximum length receivable (0 = unlimited).
    pub peer_max_pdu: u32,
    /// Our maximum length receivable.
    pub our_max_pdu: u32,
    /// The peer's implementation class UID.
    pub peer_implementation_class_uid: Option<String>,
    /// The peer's implementation version name.
    pub peer_implementation_version_name: Option<String>,
    /// The user identity primary field, if the peer sent one.
    pub user_identity: Option<Vec<u8>>,
    /// The user identity type (PS3.7 D.3.3.7: 1 username, 2 username+passcode, 3 Kerberos,
    /// 4 SAML, 5 JWT), if the peer sent one.
    pub user_identity_type: Option<u8>,
    /// True when the user identity was verified against [`AcceptorPolicy::user_identity`].
    pub user_identity_verified: bool,
    /// The peer address handed to negotiation, if any.
    pub peer: Option<IpAddr>,
    /// SOP Class Extended Negotiation answers we sent, as (SOP class UID, information).
    pub extended: Vec<(String, Vec<u8>)>,
    /// SOP classes for which the association requestor takes the SCP role, as accepted in
    /// SCP/SCU role selection (PS3.7 D.3.3.4): e.g. the storage SOP classes a C-GET SCU
    /// receives its instances in.
    pub requestor_scp_roles: Vec<String>,
}

impl Negotiated {
    /// The accepted context with this ID.
    pub fn context(&self, id: u8) -> Option<&AcceptedContext> {
        self.contexts.iter().find(|c| c.id == id)
    }
    /// The first accepted context for an abstract syntax.
    pub fn context_for(&self, abstract_syntax: &str) -> Option<&AcceptedContext> {
        self.contexts
            .iter()
            .find(|c| c.abstract_syntax == abstract_syntax)
    }
    /// True when the requestor accepted the SCP role for this SOP class (PS3.7 D.3.3.4).
    pub fn requestor_is_scp(&self, sop_class_uid: &str) -> bool {
        self.requestor_scp_roles.iter().any(|c| c == sop_class_uid)
    }
}

impl AcceptorPolicy {
    /// Our SOP Class Extended Negotiation answer for an accepted SOP class, if any.
    pub fn extended_answer(&self, sop_class_uid: &str) -> Option<&[u8]> {
        if let Some((_, info)) = self.extended_info.iter().find(|(c, _)| c == sop_class_uid) {
            return Some(info);
        }
        if sop_class_uid.starts_with(sop::STORAGE_PREFIX) {
            return self.storage_extended_info.as_deref();
        }
        None
    }

    /// The association-level checks; `Ok(true)` when a user identity was verified.
    fn admit(&self, rq: &AssociateRq<'_>, peer: Option<IpAddr>) -> Result<bool, RefusalReason> {
        // PS3.8 §9.3.2: protocol version bit 0 must be set.
        if rq.protocol_version & 1 == 0 {
            return Err(RefusalReason::ProtocolVersion(rq.protocol_version));
        }
        // PS3.7 annex A.2.1: the DICOM application context name.
        if rq.application_context != DICOM_APPLICATION_CONTEXT {
            return Err(RefusalReason::ApplicationContext(
                rq.application_context.to_string(),
            ));
        }
        // PS3.8 §7.1.1.4: the called AE title must designate us.
        if self.check_called_ae && rq.called_ae != self.ae_title {
            return Err(RefusalReason::CalledAe);
        }
        // PS3.8 §7.1.1.3: the calling AE title, here bound to the peer address if
        // configured so.
        if let Some(allowed) = &self.allowed_callers {
            let mut by_title = allowed.iter().filter(|a| a.ae_title == rq.calling_ae);
            let mut known = false;
            if !by_title.any(|a| {
                known = true;
                a.host_matches(peer)
            }) {
                return Err(if known {
                    RefusalReason::PeerHost
                } else {
                    RefusalReason::CallingAe
                });
            }
        }
        // PS3.7 D.3.3.7: user identity, verified when configured.
        let Some(ids) = &self.user_identity else {
            return Ok(false);
        };
        match rq.user.user_identity_rq {
            Some(id) => ids.verify(&id).map(|()| true),
            None if ids.required => Err(RefusalReason::IdentityMissing),
            None => Ok(false),
        }
    }

    fn accepts_abstract(&self, uid: &str) -> bool {
        uid == sop::VERIFICATION
            || (self.accept_all_storage && uid.starts_with(sop::STORAGE_PREFIX))
            || self.abstract_syntaxes.iter().any(|a| a == uid)
    }

    /// Answers an association request: the A-ASSOCIATE-AC to send (borrowing the request
    /// and the policy) with the owned negotiation result, or the refusal (whose
    /// [`Refusal::rj`] is the A-ASSOCIATE-RJ to send). `peer` is the transport's peer
    /// address, handed in by the adapter (negotiation does no I/O); it is needed only when
    /// an [`AllowedCaller`] is bound to a host.
    ///
    /// Checks in order: protocol version, application context, called AE title, calling AE
    /// title and host, user identity (PS3.7 D.3.3.7).
    pub fn negotiate<'a, 'p: 'a, 'r: 'a>(
        &'p self,
        rq: &AssociateRq<'r>,
        peer: Option<IpAddr>,
    ) -> Result<(AssociateAc<'a>, Negotiated), Refusal> {
        let verified = self.admit(rq, peer).map_err(|reason| Refusal {
            calling_ae: rq.calling_ae.to_string(),
            called_ae: rq.called_ae.to_string(),
            peer,
            reason,
        })?;
        let mut neg = Negotiated {
            calling_ae: rq.calling_ae.to_string(),
            called_ae: rq.called_ae.to_string(),
            peer_max_pdu: rq.user.max_pdu_length.unwrap_or(0),
            our_max_pdu: self.max_pdu,
            peer_implementation_class_uid: rq.user.implementation_class_uid.map(str::to_string),
            peer_implementation_version_name: rq
                .user
                .implementation_version_name
                .map(str::to_string),
            user_identity: rq.user.user_identity_rq.map(|u| u.primary.to_vec()),
            user_identity_type: rq.user.user_identity_rq.map(|u| u.identity_type),
            user_identity_verified: verified,
            peer,
            contexts: Vec::new(),
            extended: Vec::new(),
            requestor_scp_roles: Vec::new(),
        };
        let mut pcs = Vec::with_capacity(rq.presentation_contexts.len());
        for pc in &rq.presentation_contexts {
            // PS3.8 §9.3.3.2: the acceptor picks one transfer syntax, here in our order.
            let (result, ts) = if self.accepts_abstract(pc.abstract_syntax) {
                match self
                    .transfer_syntaxes
                    .iter()
                    .find(|t| pc.transfer_syntaxes.contains(&t.as_str()))
                {
                    Some(t) => (PcResult::Acceptance, t.as_str()),
                    None => (PcResult::TransferSyntaxesNotSupported, ""),
                }
            } else {
                (PcResult::AbstractSyntaxNotSupported, "")
            };
            if result == PcResult::Acceptance {
                neg.contexts.push(AcceptedContext {
                    id: pc.id,
                    abstract_syntax: pc.abstract_syntax.to_string(),
                    transfer_syntax: ts.to_string(),
                });
            }
            pcs.push(PresentationContextAc {
                id: pc.id,
                result,
                // PS3.8 table 9-18: a rejected context still carries a transfer syntax sub-item.
                transfer_syntax: if ts.is_empty() {
                    ts::IMPLICIT_VR_LE
                } else {
                    ts
                },
            });
        }
        let mut user = UserInformation {
            max_pdu_length: Some(self.max_pdu),
            implementation_class_uid: Some(IMPLEMENTATION_CLASS_UID),
            implementation_version_name: Some(IMPLEMENTATION_VERSION_NAME),
            ..UserInformation::default()
        };
        // PS3.7 D.3.3.3: we perform one operation at a time.
        if rq.user.async_ops_window.is_some() {
            user.async_ops_window = Some((1, 1));
        }
        // PS3.7 D.3.3.4: answer role selection for the SOP classes we accepted.
        if self.answer_role_selection {
            for r in &rq.user.role_selections {
                if neg
                    .contexts
                    .iter()
                    .any(|c| c.abstract_syntax == r.sop_class_uid)
                {
                    // The requestor as SCP: storage (C-GET sub-operations, PS3.4 C.4.3.1)
                    // and storage commitment (N-EVENT-REPORT to it, PS3.4 J.3.3).
                    let scp_role = r.scp_role
                        && (r.sop_class_uid.starts_with(sop::STORAGE_PREFIX)
                            || r.sop_class_uid == sop::STORAGE_COMMITMENT_PUSH);
                    if scp_role {
                        neg.requestor_scp_roles.push(r.sop_class_uid.to_string());
                    }
                    user.role_selections.push(RoleSelection {
                        sop_class_uid: r.sop_class_uid,
                        scu_role: r.scu_role,
                        scp_role,
                    });
                }
            }
        }
        // PS3.7 D.3.3.5: SOP Class Extended Negotiation is answered only for sub-items the
        // requestor sent, for SOP classes we accepted, and only when we have an answer.
        for e in &rq.user.sop_class_extended {
            if !neg
                .contexts
                .iter()
                .any(|c| c.abstract_syntax == e.sop_class_uid)
                || user
                    .sop_class_extended
                    .iter()
                    .any(|x| x.sop_class_uid == e.sop_class_uid)
            {
                continue;
            }
            if let Some(info) = self.extended_answer(e.sop_class_uid) {
                user.sop_class_extended.push(SopClassExtended {
                    sop_class_uid: e.sop_class_uid,
                    info,
                });
                neg.extended
                    .push((e.sop_class_uid.to_string(), info.to_vec()));
            }
        }
        // PS3.7 D.3.3.7.2: the User Identity server response is sent only when the requestor
        // asked for a positive response and the identity was verified; for types 1 and 2
        // the server response field is empty (zero length). An identity that was not
        // verified (no user identity policy) gets no response, so the requestor does not
        // take it as authenticated.
        if verified
            && let Some(id) = rq.user.user_identity_rq
            && id.positive_response_requested
        {
            user.user_identity_ac = Some(&[]);
        }
        Ok((
            AssociateAc {
                protocol_version: 1,
                called_ae: rq.called_ae,
                calling_ae: rq.calling_ae,
                application_context: DICOM_APPLICATION_CONTEXT,
                presentation_contexts: pcs,
                user,
            },
            neg,
        ))
    }
}
