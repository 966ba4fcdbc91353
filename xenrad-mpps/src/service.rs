//! The service facade: one state machine behind the three doors, over any [`Store`].

use crate::attributes::tags;
use crate::codec::dimse::{self, TransferSyntaxKind};
use crate::codec::{Limits, dicom_json, seed};
use crate::dataset::Dataset;
use crate::error::{ErrorKind, MppsError, STATUS_SUCCESS};
use crate::model::{MppsInstance, PpsStatus};
use crate::state::{self, Profile};
use crate::store::{Cas, Insert, Record, Store};
use crate::uid::{validate_uid, validate_wire_uid};
use dicom_core::Tag;

/// What to do with a repeated request (modalities retry after lost responses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DuplicatePolicy {
    /// An identical repeat of the N-CREATE, or of the N-SET that made the instance final, gets the
    /// stored success response again (with [`Outcome::replay`] set). Anything else that collides is
    /// refused as in `Strict`. "Identical" means the same decoded attribute list through the same door.
    #[default]
    Idempotent,
    /// Every repeat is refused: duplicate create 0x0111 / 409; update after final 0x0110 A710 / 409.
    Strict,
}

/// Which request succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// N-CREATE / MPPS-RS create.
    Created,
    /// N-SET / MPPS-RS update.
    Updated,
}

/// A successful result.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Create or update.
    pub action: Action,
    /// True when this answers an identical repeat from the stored state (nothing was written).
    pub replay: bool,
    /// False when the update left the instance as it was (e.g. IN PROGRESS → IN PROGRESS).
    pub changed: bool,
    /// The instance as stored after the request.
    pub instance: MppsInstance,
}

impl Outcome {
    /// HTTP status: 201 for a create (also when replayed), 200 for an update (PS3.18 §15.4.3, §15.5.3).
    pub fn http_status(&self) -> u16 {
        match self.action {
            Action::Created => 201,
            Action::Updated => 200,
        }
    }

    /// DIMSE status: always Success (0x0000).
    pub fn dimse_status(&self) -> u16 {
        STATUS_SUCCESS
    }
}

/// The DIMSE N-CREATE-RSP / N-SET-RSP content computed by the service (PS3.7 §10.1.5.1, §10.1.1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct DimseResponse {
    /// Status (0000,0900).
    pub status: u16,
    /// Error ID (0000,0903), e.g. A710.
    pub error_id: Option<u16>,
    /// Error Comment (0000,0902), at most 64 characters.
    pub error_comment: Option<String>,
    /// Attribute Identifier List (0000,1005): the offending attribute for 0x0106/0x0120/0x0121.
    pub offending_attribute: Option<Tag>,
    /// The response dataset in the request's transfer syntax: the stored instance after N-CREATE,
    /// the applied attributes after N-SET; `None` on failure.
    pub dataset: Option<Vec<u8>>,
    /// True when answered from the stored state for an identical repeat.
    pub replay: bool,
    /// The instance as stored after the request (`None` on failure), so that a caller can act
    /// on it (e.g. project it) without loading the record again.
    pub instance: Option<MppsInstance>,
}

impl DimseResponse {
    fn from_error(e: &MppsError) -> Self {
        let offending = matches!(
            e.kind(),
            ErrorKind::InvalidValue
                | ErrorKind::MissingAttribute
                | ErrorKind::MissingValue
                | ErrorKind::NotAllowed
        );
        Self {
            status: e.dimse_status(),
            error_id: e.error_id(),
            error_comment: Some(e.error_comment()),
            offending_attribute: if offending { e.tag() } else { None },
            dataset: None,
            replay: false,
            instance: None,
        }
    }
}

/// How many times an update re-reads and retries after losing a compare-and-set race.
const CAS_RETRIES: usize = 16;

/// The MPPS service: state machine + codecs over a [`Store`].
///
/// ```
/// use xenrad_mpps::{Mpps, MemoryStore, PpsStatus};
/// let mpps = Mpps::new(MemoryStore::new());
/// let body = br#"{"sop_instance_uid":"1.2.3.4.5","study_uid":"1.2.3.4.5.6","status":"IN PROGRESS"}"#;
/// let created = mpps.ingest_seed_json(body).unwrap();
/// assert_eq!((created.http_status(), created.replay), (201, false));
/// // A modality retry of the same create is answered from the store (idempotent default).
/// assert!(mpps.ingest_seed_json(body).unwrap().replay);
/// let done = br#"{"sop_instance_uid":"1.2.3.4.5","study_uid":"1.2.3.4.5.6","status":"COMPLETED"}"#;
/// assert_eq!(mpps.ingest_seed_json(done).unwrap().instance.status(), Some(PpsStatus::Completed));
/// let late = br#"{"sop_instance_uid":"1.2.3.4.5","study_uid":"1.2.3.4.5.6","status":"DISCONTINUED"}"#;
/// let err = mpps.ingest_seed_json(late).unwrap_err();
/// assert_eq!((err.http_status(), err.dimse_status(), err.error_id()), (409, 0x0110, Some(0xA710)));
/// let json = mpps.get_dicom_json("1.2.3.4.5").unwrap();
/// assert!(std::str::from_utf8(&json).unwrap().contains(r#""00400252":{"vr":"CS","Value":["COMPLETED"]}"#));
/// ```
#[derive(Debug)]
pub struct Mpps<S> {
    store: S,
    policy: DuplicatePolicy,
    limits: Limits,
}

impl<S: Store> Mpps<S> {
    /// A service with the idempotent duplicate policy and default limits.
    pub fn new(store: S) -> Self {
        Self {
            store,
            policy: DuplicatePolicy::default(),
            limits: Limits::default(),
        }
    }

    /// Sets the duplicate-delivery policy.
    #[must_use]
    pub fn with_policy(mut self, policy: DuplicatePolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets the decoder limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The duplicate policy in force.
    pub fn policy(&self) -> DuplicatePolicy {
        self.policy
    }

    // ---- seed JSON door (POST /ingest) ----

    /// `POST /ingest`: one endpoint for both steps. A body with status IN PROGRESS is an N-CREATE;
    /// COMPLETED or DISCONTINUED is an N-SET (404 if the instance is unknown). Any other status is
    /// refused as an invalid create (400 / 0x0106). See [`crate::codec::seed`] for what the format
    /// cannot carry.
    pub fn ingest_seed_json(&self, body: &[u8]) -> Result<Outcome, MppsError> {
        let req = seed::decode(body, &self.limits)?;
        match PpsStatus::parse(&req.status) {
            Some(s) if s.is_final() => self.seed_set_req(&req),
            _ => self.seed_create_req(&req),
        }
    }

    /// Seed body as an explicit N-CREATE.
    pub fn seed_create(&self, body: &[u8]) -> Result<Outcome, MppsError> {
        self.seed_create_req(&seed::decode(body, &self.limits)?)
    }

    /// Seed body as an explicit N-SET.
    pub fn seed_set(&self, body: &[u8]) -> Result<Outcome, MppsError> {
        self.seed_set_req(&seed::decode(body, &self.limits)?)
    }

    fn seed_create_req(&self, req: &seed::SeedRequest<'_>) -> Result<Outcome, MppsError> {
        self.create(
            &req.sop_instance_uid,
            &req.to_create_dataset(),
            Profile::Seed,
        )
    }

    fn seed_set_req(&self, req: &seed::SeedRequest<'_>) -> Result<Outcome, MppsError> {
        self.update_with(&req.sop_instance_uid, Profile::Seed, |rec| {
            let stored = MppsInstance {
                sop_instance_uid: String::new(),
                attributes: rec.attributes.clone(),
            };
            req.to_set_dataset(stored.study_instance_uid())
        })
    }

    // ---- DICOM JSON door (MPPS-RS, PS3.18 §15) ----

    /// `POST .../modality-performed-procedure-steps/{uid}`: create from DICOM JSON.
    pub fn create_dicom_json(&self, uid: &str, body: &[u8]) -> Result<Outcome, MppsError> {
        let ds = strip_sop_uids(dicom_json::decode(body, &self.limits)?, uid)?;
        self.create(uid, &ds, Profile::Full)
    }

    /// `POST .../{uid}?update` (or `.../{uid}/update`): update from DICOM JSON.
    pub fn update_dicom_json(&self, uid: &str, body: &[u8]) -> Result<Outcome, MppsError> {
        let ds = strip_sop_uids(dicom_json::decode(body, &self.limits)?, uid)?;
        self.update(uid, &ds, Profile::Full)
    }

    /// `GET .../{uid}`: the instance as DICOM JSON (`application/dicom+json`), 404 if unknown.
    pub fn get_dicom_json(&self, uid: &str) -> Result<Vec<u8>, MppsError> {
        Ok(dicom_json::encode_instance(&self.get(uid)?))
    }

    /// The stored instance.
    pub fn get(&self, uid: &str) -> Result<MppsInstance, MppsError> {
        let rec = self.load(uid)?.ok_or_else(|| no_such(uid))?;
        Ok(MppsInstance {
            sop_instance_uid: rec.sop_instance_uid,
            attributes: rec.attributes,
        })
    }

    // ---- DIMSE door ----

    /// N-CREATE: `uid` is the Affected SOP Instance UID (one trailing NUL pad tolerated; when the SCU
    /// sent none, the caller assigns one, PS3.7 §10.1.5.1.1), `data` the dataset in the negotiated
    /// transfer syntax.
    pub fn n_create_dataset(
        &self,
        uid: &str,
        data: &[u8],
        ts: TransferSyntaxKind,
    ) -> DimseResponse {
        let result = wire_uid(uid).and_then(|uid| {
            let ds = strip_sop_uids(dimse::decode(data, ts, &self.limits)?, uid)?;
            let out = self.create(uid, &ds, Profile::Full)?;
            let bytes = dimse::encode(&out.instance.attributes, ts)?;
            Ok((out, bytes))
        });
        dimse_response(result)
    }

    /// N-SET: `uid` is the Requested SOP Instance UID; the response carries the applied attributes.
    pub fn n_set_dataset(&self, uid: &str, data: &[u8], ts: TransferSyntaxKind) -> DimseResponse {
        let result = wire_uid(uid).and_then(|uid| {
            let ds = strip_sop_uids(dimse::decode(data, ts, &self.limits)?, uid)?;
            let out = self.update(uid, &ds, Profile::Full)?;
            let bytes = dimse::encode(&ds, ts)?;
            Ok((out, bytes))
        });
        dimse_response(result)
    }

    // ---- the state machine over the store ----

    /// N-CREATE of an attribute list (any door).
    pub fn create(&self, uid: &str, req: &Dataset, profile: Profile) -> Result<Outcome, MppsError> {
        check_uid(uid)?;
        let attributes = state::validate_create(req, profile)?;
        let record = Record {
            sop_instance_uid: uid.to_owned(),
            attributes: attributes.clone(),
            create_request: req.clone(),
            final_request: None,
            version: 1,
        };
        match self.store.insert_new(record).map_err(storage)? {
            Insert::Inserted => Ok(Outcome {
                action: Action::Created,
                replay: false,
                changed: true,
                instance: MppsInstance {
                    sop_instance_uid: uid.to_owned(),
                    attributes,
                },
            }),
            Insert::Exists(existing) => {
                if self.policy == DuplicatePolicy::Idempotent && existing.create_request == *req {
                    Ok(Outcome {
                        action: Action::Created,
                        replay: true,
                        changed: false,
                        instance: MppsInstance {
                            sop_instance_uid: existing.sop_instance_uid,
                            attributes: existing.attributes,
                        },
                    })
                } else {
                    Err(MppsError::at(
                        ErrorKind::DuplicateInstance,
                        &[tags::SOP_INSTANCE_UID],
                        format!("MPPS instance {uid} exists already"),
                    ))
                }
            }
        }
    }

    /// N-SET of an attribute list (any door).
    pub fn update(&self, uid: &str, req: &Dataset, profile: Profile) -> Result<Outcome, MppsError> {
        self.update_with(uid, profile, |_| req.clone())
    }

    fn update_with(
        &self,
        uid: &str,
        profile: Profile,
        build: impl Fn(&Record) -> Dataset,
    ) -> Result<Outcome, MppsError> {
        check_uid(uid)?;
        for _ in 0..CAS_RETRIES {
            let rec = self.load(uid)?.ok_or_else(|| no_such(uid))?;
            let req = build(&rec);
            let instance = |attributes| MppsInstance {
                sop_instance_uid: uid.to_owned(),
                attributes,
            };
            if self.policy == DuplicatePolicy::Idempotent
                && rec.final_request.as_ref() == Some(&req)
            {
                return Ok(Outcome {
                    action: Action::Updated,
                    replay: true,
                    changed: false,
                    instance: instance(rec.attributes),
                });
            }
            let effect = state::apply_set(&rec.attributes, &req, profile)?;
            if !effect.changed {
                return Ok(Outcome {
                    action: Action::Updated,
                    replay: false,
                    changed: false,
                    instance: instance(rec.attributes),
                });
            }
            let version = rec.version;
            let next = Record {
                attributes: effect.attributes.clone(),
                final_request: effect.status.is_final().then(|| req.clone()),
                version: version + 1,
                ..rec
            };
            match self.store.compare_and_set(next, version).map_err(storage)? {
                Cas::Swapped => {
                    return Ok(Outcome {
                        action: Action::Updated,
                        replay: false,
                        changed: true,
                        instance: instance(effect.attributes),
                    });
                }
                Cas::Stale => {}
            }
        }
        Err(MppsError::new(
            ErrorKind::Storage,
            format!("MPPS instance {uid}: too many concurrent updates"),
        ))
    }

    fn load(&self, uid: &str) -> Result<Option<Record>, MppsError> {
        self.store.load(uid).map_err(storage)
    }
}

fn storage(e: crate::store::StoreError) -> MppsError {
    MppsError::storage(e)
}

fn no_such(uid: &str) -> MppsError {
    MppsError::at(
        ErrorKind::NoSuchInstance,
        &[tags::SOP_INSTANCE_UID],
        format!("no MPPS instance {uid}"),
    )
}

fn check_uid(uid: &str) -> Result<(), MppsError> {
    validate_uid(uid).map_err(|e| {
        MppsError::at(
            ErrorKind::InvalidValue,
            &[tags::SOP_INSTANCE_UID],
            format!("SOP Instance UID: {e}"),
        )
    })
}

fn wire_uid(uid: &str) -> Result<&str, MppsError> {
    validate_wire_uid(uid).map_err(|e| {
        MppsError::at(
            ErrorKind::InvalidValue,
            &[tags::SOP_INSTANCE_UID],
            format!("SOP Instance UID: {e}"),
        )
    })
}

/// Removes SOP Class / SOP Instance UID from a request body; they must agree with the SOP class and
/// the UID of the URL or command if present.
fn strip_sop_uids(mut ds: Dataset, uid: &str) -> Result<Dataset, MppsError> {
    if let Some(el) = ds.remove(tags::SOP_INSTANCE_UID)
        && el.first_str().is_some_and(|s| s != uid)
    {
        return Err(MppsError::at(
            ErrorKind::InvalidValue,
            &[tags::SOP_INSTANCE_UID],
            "SOP Instance UID in the body differs from the addressed instance",
        ));
    }
    if let Some(el) = ds.remove(tags::SOP_CLASS_UID)
        && el
            .first_str()
            .is_some_and(|s| s != crate::model::MPPS_SOP_CLASS_UID)
    {
        return Err(MppsError::at(
            ErrorKind::InvalidValue,
            &[tags::SOP_CLASS_UID],
            "SOP Class UID is not MPPS",
        ));
    }
    Ok(ds)
}

fn dimse_response(result: Result<(Outcome, Vec<u8>), MppsError>) -> DimseResponse {
    match result {
        Ok((out, bytes)) => DimseResponse {
            status: STATUS_SUCCESS,
            error_id: None,
            error_comment: None,
            offending_attribute: None,
            dataset: Some(bytes),
            replay: out.replay,
            instance: Some(out.instance),
        },
        Err(e) => DimseResponse::from_error(&e),
    }
}
