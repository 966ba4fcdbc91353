//! Acceptor policy: how an A-ASSOCIATE-RQ is answered (PS3.8 §7.1, PS3.7 annex D.3.3).

use crate::pdu::{
    AssociateAc, AssociateRj, AssociateRq, DICOM_APPLICATION_CONTEXT, PcResult,
    PresentationContextAc, RoleSelection, SopClassExtended, UserInformation,
};

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
    /// If set, only these calling AE titles are accepted (reason 3 otherwise).
    pub allowed_calling_aes: Option<Vec<String>>,
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
            allowed_calling_aes: None,
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

    fn accepts_abstract(&self, uid: &str) -> bool {
        uid == sop::VERIFICATION
            || (self.accept_all_storage && uid.starts_with(sop::STORAGE_PREFIX))
            || self.abstract_syntaxes.iter().any(|a| a == uid)
    }

    /// Answers an association request: the A-ASSOCIATE-AC to send (borrowing the request
    /// and the policy) with the owned negotiation result, or the A-ASSOCIATE-RJ.
    pub fn negotiate<'a, 'p: 'a, 'r: 'a>(
        &'p self,
        rq: &AssociateRq<'r>,
    ) -> Result<(AssociateAc<'a>, Negotiated), AssociateRj> {
        // PS3.8 §9.3.2: protocol version bit 0 must be set.
        if rq.protocol_version & 1 == 0 {
            return Err(AssociateRj {
                result: 1,
                source: 2,
                reason: 2,
            });
        }
        if rq.application_context != DICOM_APPLICATION_CONTEXT {
            return Err(AssociateRj {
                result: 1,
                source: 1,
                reason: 2,
            });
        }
        if self.check_called_ae && rq.called_ae != self.ae_title {
            return Err(AssociateRj {
                result: 1,
                source: 1,
                reason: 7,
            });
        }
        if let Some(allowed) = &self.allowed_calling_aes
            && !allowed.iter().any(|a| a == rq.calling_ae)
        {
            return Err(AssociateRj {
                result: 1,
                source: 1,
                reason: 3,
            });
        }
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
        // PS3.7 D.3.3.7: a positive response when asked (empty server response for 1/2).
        if let Some(id) = rq.user.user_identity_rq
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
