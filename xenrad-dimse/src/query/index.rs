//! The in-memory Query/Retrieve index: patients → studies → series → instances, answering
//! Patient Root and Study Root C-FIND at every level (PS3.4 C.6.1, C.6.2) and selecting the
//! instances of a C-MOVE / C-GET (PS3.4 C.4.2.2.1, C.4.3.2.1).
//!
//! Each instance's header attributes are split by level when it is inserted: patient
//! attributes (group 0010 except the Patient Study module's age, size, weight, occupation and
//! history, PS3.3 C.7.2.2) and study attributes (PS3.4 C.6.2.1.2's study keys and the usual
//! study-level attributes) are kept once per study, series attributes (C.6.1.1.4 and the
//! General Series / Equipment modules) once per series, everything else per instance. The
//! first instance of a study or series decides that level's values. A node at level L is
//! matched against the attributes of L and the levels above it, plus the computed counts and
//! lists (Number of … Related …, Modalities in Study, SOP Classes in Study; PS3.4 C.6.1.1.5).

#[cfg(feature = "fs")]
use super::QueryErrorKind;
use super::identifier::{complete_prefix, encoding_of, header_prefix, transfer_syntax, walk};
use super::matching::{
    Candidate, Compiled, FindOptions, FindQuery, build_response, finish_charset,
};
use super::{Identifier, InformationModel, Level, QueryError};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR, header::Header};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use std::collections::{BTreeSet, HashMap};
#[cfg(feature = "fs")]
use std::path::Path;
use std::path::PathBuf;

/// Binary values above this size are not kept in records (they are never query keys and
/// would make the index as large as the images).
const MAX_BINARY_VALUE: usize = 1024;

/// The level an attribute belongs to in the Q/R information models (PS3.4 C.6.1.1.2–5,
/// C.6.2.1.2–4); attributes not listed are instance (IMAGE) level.
pub(crate) fn level_of(tag: Tag) -> Level {
    match tag {
        // Patient Study module (PS3.3 C.7.2.2) attributes are study level.
        Tag(0x0010, 0x1010 | 0x1020 | 0x1030 | 0x2180 | 0x21B0 | 0x2000 | 0x21A0 | 0x21C0) => {
            Level::Study
        }
        // Patient module, and Number of Patient Related Studies/Series/Instances (PS3.4 C.6.1.1.2).
        Tag(0x0010, _) | Tag(0x0020, 0x1200 | 0x1202 | 0x1204) => Level::Patient,
        Tag(
            0x0008,
            0x0020 | 0x0030 | 0x0050 | 0x0051 | 0x0061 | 0x0062 | 0x0090 | 0x1030 | 0x1032 | 0x1048
            | 0x1060 | 0x1080 | 0x1110 | 0x1120,
        )
        | Tag(0x0020, 0x000D | 0x0010 | 0x1070 | 0x1206 | 0x1208)
        | Tag(0x0032, 0x1032 | 0x1033 | 0x1060 | 0x4000) => Level::Study,
        Tag(
            0x0008,
            0x0021 | 0x0031 | 0x0060 | 0x0070 | 0x0080 | 0x103E | 0x1010 | 0x1040 | 0x1050 | 0x1070
            | 0x1090 | 0x1111,
        )
        | Tag(0x0018, 0x0015 | 0x1030)
        | Tag(0x0020, 0x000E | 0x0011 | 0x0052 | 0x0060 | 0x1209)
        | Tag(0x0040, 0x0244 | 0x0245 | 0x0253 | 0x0254 | 0x0275) => Level::Series,
        _ => Level::Image,
    }
}

/// One stored instance as the index needs it: the retrieve facts and the header attributes.
#[derive(Debug, Clone)]
pub struct InstanceRecord {
    /// SOP Class UID (0008,0016).
    pub sop_class_uid: String,
    /// SOP Instance UID (0008,0018).
    pub sop_instance_uid: String,
    /// Transfer syntax the instance is stored in (its File Meta's (0002,0010)).
    pub transfer_syntax_uid: String,
    /// Where the instance is (a Part 10 file, or any locator your store understands).
    pub path: PathBuf,
    /// Header attributes (no Pixel Data; binary values over 1 KiB dropped).
    pub attributes: InMemDicomObject,
}

fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    obj.get(tag)
        .and_then(|e| e.to_str().ok())
        .map(|s| s.trim_end_matches(['\0', ' ']).trim_start().to_owned())
        .filter(|s| !s.is_empty())
}

fn shrink(obj: &mut InMemDicomObject) {
    let big: Vec<Tag> = obj
        .iter()
        .filter(|e| {
            e.tag() >= Tag(0x7FE0, 0x0000)
                || matches!(e.value(), dicom_core::value::Value::PixelSequence(_))
                || (matches!(
                    e.vr(),
                    VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN
                ) && e
                    .value()
                    .primitive()
                    .is_some_and(|p| p.calculate_byte_len() > MAX_BINARY_VALUE))
        })
        .map(Header::tag)
        .collect();
    for t in big {
        obj.remove_element(t);
    }
    obj.remove_element(tags::SPECIFIC_CHARACTER_SET);
}

impl InstanceRecord {
    /// A record from a data set already parsed (text decoded). SOP Class and Instance UIDs are
    /// read from it; Study, Series and SOP Instance UID must be present (else
    /// [`QueryErrorKind::Malformed`]).
    pub fn from_object(
        mut attributes: InMemDicomObject,
        transfer_syntax_uid: &str,
        path: impl Into<PathBuf>,
    ) -> Result<InstanceRecord, QueryError> {
        shrink(&mut attributes);
        let need = |t: Tag, what: &str| {
            text(&attributes, t).ok_or_else(|| QueryError::malformed(format!("no {what}")).tag(t))
        };
        need(tags::STUDY_INSTANCE_UID, "Study Instance UID")?;
        need(tags::SERIES_INSTANCE_UID, "Series Instance UID")?;
        let sop_instance_uid = need(tags::SOP_INSTANCE_UID, "SOP Instance UID")?;
        let sop_class_uid = text(&attributes, tags::SOP_CLASS_UID).unwrap_or_default();
        Ok(InstanceRecord {
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid: transfer_syntax_uid.trim_end_matches(['\0', ' ']).to_owned(),
            path: path.into(),
            attributes,
        })
    }

    /// A record from the bytes of a data set in `ts_uid` — the whole data set or only its
    /// beginning (what a C-STORE SCP peeked while it streamed): elements cut off at the end, and
    /// everything from Pixel Data on, are left out. The UIDs given win over the data set's.
    pub fn from_dataset_bytes(
        bytes: &[u8],
        ts_uid: &str,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        path: impl Into<PathBuf>,
    ) -> Result<InstanceRecord, QueryError> {
        let ts = transfer_syntax(ts_uid)?;
        let enc = encoding_of(ts);
        let end = complete_prefix(bytes, enc);
        walk(&bytes[..end], enc, false)?;
        let mut obj = super::identifier::parse_checked(&bytes[..end], ts, false)?;
        obj.put(DataElement::new(
            tags::SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(sop_class_uid.trim_end_matches(['\0', ' '])),
        ));
        obj.put(DataElement::new(
            tags::SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(sop_instance_uid.trim_end_matches(['\0', ' '])),
        ));
        Self::from_object(obj, ts_uid, path)
    }

    /// A record from the first bytes of a data set of `dataset_len` bytes, as a C-STORE SCP kept
    /// them while it streamed ([`StoredInstance::head`](crate::scp::StoredInstance::head)), so
    /// the stored file need not be read again. `Ok(None)` when those bytes end before the
    /// header does (neither Pixel Data nor the end of the data set was reached, or the transfer
    /// syntax is deflated): read the header from the file then ([`from_part10_file`]).
    ///
    /// [`from_part10_file`]: Self::from_part10_file
    pub fn from_dataset_head(
        head: &[u8],
        dataset_len: u64,
        ts_uid: &str,
        sop_class_uid: &str,
        sop_instance_uid: &str,
        path: impl Into<PathBuf>,
    ) -> Result<Option<InstanceRecord>, QueryError> {
        // Deflated Explicit VR Little Endian (PS3.5 A.5): the bytes are compressed.
        if head.is_empty() || ts_uid.trim_end_matches(['\0', ' ']) == "1.2.840.10008.1.2.1.99" {
            return Ok(None);
        }
        let ts = transfer_syntax(ts_uid)?;
        let (end, at_pixels) = header_prefix(head, encoding_of(ts));
        let whole = head.len() as u64 == dataset_len && end == head.len();
        if !(at_pixels || whole) {
            return Ok(None);
        }
        Self::from_dataset_bytes(head, ts_uid, sop_class_uid, sop_instance_uid, path).map(Some)
    }

    #[cfg(feature = "fs")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fs")))]
    /// A record from a Part 10 file (read up to Pixel Data, which is never loaded).
    pub fn from_part10_file(path: &Path) -> Result<InstanceRecord, QueryError> {
        let file = dicom_object::OpenFileOptions::new()
            .read_until(tags::PIXEL_DATA)
            .open_file(path)
            .map_err(|e| QueryError::new(QueryErrorKind::Io, format!("{}: {e}", path.display())))?;
        let ts = file.meta().transfer_syntax().to_owned();
        Self::from_object(file.into_inner(), &ts, path)
    }
}

#[derive(Debug)]
struct PatientNode {
    key: (String, String),
    studies: Vec<usize>,
}

#[derive(Debug)]
struct StudyNode {
    uid: String,
    patient: usize,
    /// Patient and study level attributes of the study's first instance.
    attrs: InMemDicomObject,
    series: Vec<usize>,
}

#[derive(Debug)]
struct SeriesNode {
    uid: String,
    study: usize,
    attrs: InMemDicomObject,
    instances: Vec<usize>,
}

#[derive(Debug)]
struct InstanceNode {
    series: usize,
    record: InstanceRecord,
}

/// The Q/R index (see the module docs of [`crate::query`] for an example).
///
/// Insert records as instances are stored, query with [`find`](Self::find) (or a resumable
/// [`FindCursor`]) and [`retrieve`](Self::retrieve). Node ids are stable: a cursor keeps working
/// across inserts made between its steps (new nodes appended after its position are seen).
#[derive(Debug, Default)]
pub struct QueryIndex {
    patients: Vec<Option<PatientNode>>,
    studies: Vec<Option<StudyNode>>,
    series: Vec<Option<SeriesNode>>,
    instances: Vec<Option<InstanceNode>>,
    patient_by_key: HashMap<(String, String), usize>,
    study_by_uid: HashMap<String, usize>,
    series_by_uid: HashMap<String, usize>,
    instance_by_uid: HashMap<String, usize>,
}

/// What [`QueryIndex::index_dir`] did.
#[derive(Debug, Default)]
pub struct IndexReport {
    /// Instances indexed.
    pub indexed: usize,
    /// Files skipped because they are not Part 10 (no `DICM` at byte 128).
    pub skipped: usize,
    /// Part 10 files that could not be read or lack the unique keys, with why.
    pub failed: Vec<(PathBuf, QueryError)>,
}

fn split_levels(attrs: &InMemDicomObject) -> [InMemDicomObject; 3] {
    let mut out = [
        InMemDicomObject::new_empty(),
        InMemDicomObject::new_empty(),
        InMemDicomObject::new_empty(),
    ];
    for e in attrs.iter() {
        match level_of(e.tag()) {
            Level::Patient | Level::Study => out[0].put(e.clone()),
            Level::Series => out[1].put(e.clone()),
            Level::Image => out[2].put(e.clone()),
        };
    }
    out
}

impl QueryIndex {
    /// An empty index.
    pub fn new() -> QueryIndex {
        QueryIndex::default()
    }

    /// Number of instances.
    pub fn len(&self) -> usize {
        self.instance_by_uid.len()
    }

    /// Whether the index has no instance.
    pub fn is_empty(&self) -> bool {
        self.instance_by_uid.is_empty()
    }

    /// Adds an instance; a record with a SOP Instance UID already present replaces it (the
    /// SCP stores the same UID again by replacing the file). The study and series attributes
    /// stay those of the first instance seen; a record without Study, Series or SOP Instance
    /// UID is refused (and the index left as it was).
    pub fn insert(&mut self, record: InstanceRecord) -> Result<(), QueryError> {
        let study_uid = text(&record.attributes, tags::STUDY_INSTANCE_UID).ok_or_else(|| {
            QueryError::malformed("no Study Instance UID").tag(tags::STUDY_INSTANCE_UID)
        })?;
        let series_uid = text(&record.attributes, tags::SERIES_INSTANCE_UID).ok_or_else(|| {
            QueryError::malformed("no Series Instance UID").tag(tags::SERIES_INSTANCE_UID)
        })?;
        if record.sop_instance_uid.is_empty() {
            return Err(QueryError::malformed("no SOP Instance UID").tag(tags::SOP_INSTANCE_UID));
        }
        // The same instance stored again in the same series: replaced in place (no new slot,
        // so an SCP that keeps re-receiving instances does not grow the index).
        if let Some(&i) = self.instance_by_uid.get(&record.sop_instance_uid) {
            let same_place = self
                .instances
                .get(i)
                .and_then(Option::as_ref)
                .and_then(|n| self.series.get(n.series)?.as_ref())
                .is_some_and(|se| {
                    se.uid == series_uid
                        && self
                            .studies
                            .get(se.study)
                            .and_then(Option::as_ref)
                            .is_some_and(|st| st.uid == study_uid)
                });
            if same_place && let Some(Some(node)) = self.instances.get_mut(i) {
                let [_, _, image_attrs] = split_levels(&record.attributes);
                node.record = InstanceRecord {
                    attributes: image_attrs,
                    ..record
                };
                return Ok(());
            }
        }
        self.remove(&record.sop_instance_uid);
        let [study_attrs, series_attrs, image_attrs] = split_levels(&record.attributes);
        let pkey = (
            text(&record.attributes, tags::PATIENT_ID).unwrap_or_default(),
            text(&record.attributes, tags::ISSUER_OF_PATIENT_ID).unwrap_or_default(),
        );
        let study = if let Some(&s) = self.study_by_uid.get(&study_uid) {
            s
        } else {
            let p = if let Some(&p) = self.patient_by_key.get(&pkey) {
                p
            } else {
                self.patients.push(Some(PatientNode {
                    key: pkey.clone(),
                    studies: Vec::new(),
                }));
                self.patient_by_key.insert(pkey, self.patients.len() - 1);
                self.patients.len() - 1
            };
            self.studies.push(Some(StudyNode {
                uid: study_uid.clone(),
                patient: p,
                attrs: study_attrs,
                series: Vec::new(),
            }));
            let s = self.studies.len() - 1;
            if let Some(Some(pn)) = self.patients.get_mut(p) {
                pn.studies.push(s);
            }
            self.study_by_uid.insert(study_uid, s);
            s
        };
        let series = if let Some(&s) = self.series_by_uid.get(&series_uid) {
            s
        } else {
            self.series.push(Some(SeriesNode {
                uid: series_uid.clone(),
                study,
                attrs: series_attrs,
                instances: Vec::new(),
            }));
            let s = self.series.len() - 1;
            if let Some(Some(st)) = self.studies.get_mut(study) {
                st.series.push(s);
            }
            self.series_by_uid.insert(series_uid, s);
            s
        };
        let uid = record.sop_instance_uid.clone();
        let mut record = record;
        record.attributes = image_attrs;
        self.instances.push(Some(InstanceNode { series, record }));
        let i = self.instances.len() - 1;
        if let Some(Some(se)) = self.series.get_mut(series) {
            se.instances.push(i);
        }
        self.instance_by_uid.insert(uid, i);
        Ok(())
    }

    /// Removes an instance (and the series, study, patient it leaves empty); `false` when the
    /// UID is not indexed.
    pub fn remove(&mut self, sop_instance_uid: &str) -> bool {
        let Some(i) = self.instance_by_uid.remove(sop_instance_uid) else {
            return false;
        };
        let Some(node) = self.instances.get_mut(i).and_then(Option::take) else {
            return true;
        };
        let se = node.series;
        let Some(Some(series)) = self.series.get_mut(se) else {
            return true;
        };
        series.instances.retain(|&x| x != i);
        if !series.instances.is_empty() {
            return true;
        }
        let st = series.study;
        let uid = std::mem::take(&mut series.uid);
        self.series[se] = None;
        self.series_by_uid.remove(&uid);
        let Some(Some(study)) = self.studies.get_mut(st) else {
            return true;
        };
        study.series.retain(|&x| x != se);
        if !study.series.is_empty() {
            return true;
        }
        let p = study.patient;
        let uid = std::mem::take(&mut study.uid);
        self.studies[st] = None;
        self.study_by_uid.remove(&uid);
        if let Some(Some(patient)) = self.patients.get_mut(p) {
            patient.studies.retain(|&x| x != st);
            if patient.studies.is_empty() {
                let key = std::mem::take(&mut patient.key);
                self.patients[p] = None;
                self.patient_by_key.remove(&key);
            }
        }
        true
    }

    #[cfg(feature = "fs")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fs")))]
    /// Indexes every Part 10 file under `dir`, recursively (directories whose name starts with
    /// `.`, such as the store's journal, are skipped). Non-DICOM files are counted, not errors.
    pub fn index_dir(&mut self, dir: &Path) -> IndexReport {
        let mut report = IndexReport::default();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let entries = match std::fs::read_dir(&d) {
                Ok(e) => e,
                Err(e) => {
                    report.failed.push((
                        d.clone(),
                        QueryError::new(QueryErrorKind::Io, format!("{}: {e}", d.display())),
                    ));
                    continue;
                }
            };
            let mut files = Vec::new();
            for e in entries.flatten() {
                let p = e.path();
                let hidden = e.file_name().to_string_lossy().starts_with('.');
                match e.file_type() {
                    Ok(t) if t.is_dir() && !hidden => stack.push(p),
                    Ok(t) if t.is_file() && !hidden => files.push(p),
                    _ => {}
                }
            }
            files.sort();
            for p in files {
                if !is_part10(&p) {
                    report.skipped += 1;
                    continue;
                }
                match InstanceRecord::from_part10_file(&p).and_then(|r| self.insert(r)) {
                    Ok(()) => report.indexed += 1,
                    Err(e) => report.failed.push((p, e)),
                }
            }
        }
        report
    }

    /// The C-FIND matches of `query` (Patient Root or Study Root; a worklist query matches
    /// nothing here), lazily, in insertion order of the level's entities.
    pub fn find<'a>(&'a self, query: &FindQuery, opts: &FindOptions) -> FindMatches<'a> {
        FindMatches {
            index: self,
            cursor: self.find_cursor(query.clone(), opts.clone()),
        }
    }

    /// A resumable C-FIND: call [`FindCursor::next_match`] with the index each time, e.g. one
    /// pending response per call while holding a read lock only for that call.
    pub fn find_cursor(&self, query: FindQuery, opts: FindOptions) -> FindCursor {
        let level = query.level();
        let compiled =
            level.and_then(|l| Compiled::new(query.identifier(), &opts, Some((l, level_of))).ok());
        let plan = match (level, &compiled) {
            (Some(l), Some(_)) => self.plan(query.identifier(), l),
            _ => Plan::List(Vec::new()),
        };
        let (computed, computed_match) =
            level.map_or((false, false), |l| wants_computed(query.identifier(), l));
        FindCursor {
            query,
            compiled: compiled.unwrap_or_default(),
            opts,
            plan,
            pos: 0,
            emitted: 0,
            truncated: false,
            computed,
            computed_match,
        }
    }

    /// Narrows the nodes to visit by the UID list of the deepest unique key present (PS3.4
    /// C.4.1.2.1 hierarchical search); full matching still runs on each.
    fn plan(&self, id: &Identifier, level: Level) -> Plan {
        let uids = |t: Tag| -> Option<Vec<String>> {
            let e = id.get(t)?;
            let v: Vec<String> = e
                .to_multi_str()
                .ok()?
                .iter()
                .map(|s| s.trim_end_matches(['\0', ' ']).trim_start().to_owned())
                .filter(|s| !s.is_empty())
                .collect();
            (!v.is_empty()).then_some(v)
        };
        let levels = [
            (Level::Image, tags::SOP_INSTANCE_UID),
            (Level::Series, tags::SERIES_INSTANCE_UID),
            (Level::Study, tags::STUDY_INSTANCE_UID),
        ];
        for (l, t) in levels {
            if l > level {
                continue;
            }
            let Some(list) = uids(t) else { continue };
            let mut nodes: Vec<usize> = list
                .iter()
                .filter_map(|u| match l {
                    Level::Image => self.instance_by_uid.get(u),
                    Level::Series => self.series_by_uid.get(u),
                    _ => self.study_by_uid.get(u),
                })
                .copied()
                .collect();
            nodes.sort_unstable();
            nodes.dedup();
            // Descend to the query level.
            let mut cur = l;
            while cur < level {
                nodes = match cur {
                    Level::Study => nodes
                        .iter()
                        .filter_map(|&s| self.studies.get(s)?.as_ref())
                        .flat_map(|s| s.series.iter().copied())
                        .collect(),
                    _ => nodes
                        .iter()
                        .filter_map(|&s| self.series.get(s)?.as_ref())
                        .flat_map(|s| s.instances.iter().copied())
                        .collect(),
                };
                cur = match cur {
                    Level::Study => Level::Series,
                    _ => Level::Image,
                };
            }
            return Plan::List(nodes);
        }
        Plan::Scan
    }

    fn level_len(&self, level: Level) -> usize {
        match level {
            Level::Patient => self.patients.len(),
            Level::Study => self.studies.len(),
            Level::Series => self.series.len(),
            Level::Image => self.instances.len(),
        }
    }

    /// The layers of node `id` at `level` (deepest first), or `None` for a removed node.
    fn layers(&self, level: Level, id: usize) -> Option<Layers<'_>> {
        let mut l = Layers {
            parts: [None, None, None],
            patient_first_study: None,
            computed: None,
        };
        let study_of = |s: usize| self.studies.get(s)?.as_ref();
        let series_of = |s: usize| self.series.get(s)?.as_ref();
        match level {
            Level::Patient => {
                let p = self.patients.get(id)?.as_ref()?;
                let s = study_of(*p.studies.first()?)?;
                l.patient_first_study = Some(&s.attrs);
            }
            Level::Study => {
                l.parts[2] = Some(&study_of(id)?.attrs);
            }
            Level::Series => {
                let se = series_of(id)?;
                l.parts[1] = Some(&se.attrs);
                l.parts[2] = Some(&study_of(se.study)?.attrs);
            }
            Level::Image => {
                let i = self.instances.get(id)?.as_ref()?;
                let se = series_of(i.series)?;
                l.parts[0] = Some(&i.record.attributes);
                l.parts[1] = Some(&se.attrs);
                l.parts[2] = Some(&study_of(se.study)?.attrs);
            }
        }
        Some(l)
    }

    /// Computed attributes of a node (PS3.4 C.6.1.1.2–4, C.6.2.1.2–3).
    fn computed(&self, level: Level, id: usize) -> InMemDicomObject {
        let mut o = InMemDicomObject::new_empty();
        let is =
            |t: Tag, n: usize| DataElement::new(t, VR::IS, PrimitiveValue::from(n.to_string()));
        let series_of = |s: &usize| self.series.get(*s).and_then(Option::as_ref);
        let study_of = |s: &usize| self.studies.get(*s).and_then(Option::as_ref);
        match level {
            Level::Patient => {
                if let Some(Some(p)) = self.patients.get(id) {
                    let studies: Vec<&StudyNode> = p.studies.iter().filter_map(study_of).collect();
                    let series: Vec<&SeriesNode> = studies
                        .iter()
                        .flat_map(|s| s.series.iter().filter_map(series_of))
                        .collect();
                    let n: usize = series.iter().map(|s| s.instances.len()).sum();
                    o.put(is(tags::NUMBER_OF_PATIENT_RELATED_STUDIES, studies.len()));
                    o.put(is(tags::NUMBER_OF_PATIENT_RELATED_SERIES, series.len()));
                    o.put(is(tags::NUMBER_OF_PATIENT_RELATED_INSTANCES, n));
                }
            }
            Level::Study => {
                if let Some(Some(s)) = self.studies.get(id) {
                    let series: Vec<&SeriesNode> = s.series.iter().filter_map(series_of).collect();
                    let n: usize = series.iter().map(|s| s.instances.len()).sum();
                    let mods: BTreeSet<String> = series
                        .iter()
                        .filter_map(|s| text(&s.attrs, tags::MODALITY))
                        .collect();
                    let classes: BTreeSet<String> = series
                        .iter()
                        .flat_map(|s| s.instances.iter())
                        .filter_map(|i| self.instances.get(*i)?.as_ref())
                        .map(|i| i.record.sop_class_uid.clone())
                        .filter(|c| !c.is_empty())
                        .collect();
                    o.put(is(tags::NUMBER_OF_STUDY_RELATED_SERIES, series.len()));
                    o.put(is(tags::NUMBER_OF_STUDY_RELATED_INSTANCES, n));
                    if !mods.is_empty() {
                        o.put(DataElement::new(
                            tags::MODALITIES_IN_STUDY,
                            VR::CS,
                            PrimitiveValue::Strs(mods.into_iter().collect()),
                        ));
                    }
                    if !classes.is_empty() {
                        o.put(DataElement::new(
                            tags::SOP_CLASSES_IN_STUDY,
                            VR::UI,
                            PrimitiveValue::Strs(classes.into_iter().collect()),
                        ));
                    }
                }
            }
            Level::Series => {
                if let Some(Some(s)) = self.series.get(id) {
                    o.put(is(
                        tags::NUMBER_OF_SERIES_RELATED_INSTANCES,
                        s.instances.len(),
                    ));
                }
            }
            Level::Image => {}
        }
        o
    }

    /// The instances a C-MOVE or C-GET identifier selects (PS3.4 C.4.2.2.1, C.4.3.2.1): its
    /// Query/Retrieve Level and the unique keys at that level and above (UID lists allowed;
    /// Patient ID at PATIENT level). The unique key of the retrieve level must be present and
    /// non-empty (else 0xA900); other keys are ignored, as a hierarchical retrieve has none.
    /// Returned whole rather than lazily: the SCP needs the count up front for the
    /// Number of Remaining Sub-operations (PS3.4 C.4.2.1.6).
    pub fn retrieve(
        &self,
        identifier: &Identifier,
        model: InformationModel,
    ) -> Result<Vec<RetrieveItem>, QueryError> {
        if model == InformationModel::ModalityWorklist {
            return Err(QueryError::mismatch("the worklist model has no retrieve"));
        }
        let level = super::matching::query_level(identifier, model)?;
        let unique = |l: Level| match l {
            Level::Patient => tags::PATIENT_ID,
            Level::Study => tags::STUDY_INSTANCE_UID,
            Level::Series => tags::SERIES_INSTANCE_UID,
            Level::Image => tags::SOP_INSTANCE_UID,
        };
        let key_tag = unique(level);
        let present = identifier.get(key_tag).is_some_and(|e| {
            e.to_multi_str()
                .is_ok_and(|v| v.iter().any(|s| !s.trim_matches(['\0', ' ']).is_empty()))
        });
        if !present {
            return Err(QueryError::mismatch(format!(
                "no unique key for {} retrieve",
                level.as_str()
            ))
            .tag(key_tag));
        }
        // Only the unique keys at the retrieve level and above take part.
        let mut keys = InMemDicomObject::new_empty();
        keys.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from(level.as_str()),
        ));
        for l in [Level::Patient, Level::Study, Level::Series, Level::Image] {
            if l > level || (l == Level::Patient && model == InformationModel::StudyRoot) {
                continue;
            }
            if let Some(e) = identifier.get(unique(l)) {
                let vals: Vec<String> = e
                    .to_multi_str()
                    .map(std::borrow::Cow::into_owned)
                    .unwrap_or_default();
                // A retrieve's keys are literal values: no wild cards (PS3.4 C.4.2.2.1).
                if vals.iter().any(|v| v.contains(['*', '?'])) {
                    return Err(QueryError::mismatch("wild card in a retrieve key").tag(unique(l)));
                }
                keys.put(DataElement::new(
                    unique(l),
                    if l == Level::Patient { VR::LO } else { VR::UI },
                    PrimitiveValue::Strs(vals.into()),
                ));
            }
        }
        let query = FindQuery::parse(keys, model)?;
        let opts = FindOptions {
            pn_case_insensitive: false,
            ..FindOptions::default()
        };
        let mut cursor = self.find_cursor(query, opts);
        let mut out = Vec::new();
        while let Some(id) = cursor.next_node(self) {
            self.collect_instances(level, id, &mut out);
        }
        Ok(out)
    }

    fn collect_instances(&self, level: Level, id: usize, out: &mut Vec<RetrieveItem>) {
        match level {
            Level::Patient => {
                if let Some(Some(p)) = self.patients.get(id) {
                    for &s in &p.studies {
                        self.collect_instances(Level::Study, s, out);
                    }
                }
            }
            Level::Study => {
                if let Some(Some(s)) = self.studies.get(id) {
                    for &se in &s.series {
                        self.collect_instances(Level::Series, se, out);
                    }
                }
            }
            Level::Series => {
                if let Some(Some(se)) = self.series.get(id) {
                    for &i in &se.instances {
                        self.collect_instances(Level::Image, i, out);
                    }
                }
            }
            Level::Image => {
                if let Some(Some(i)) = self.instances.get(id) {
                    out.push(RetrieveItem {
                        sop_class_uid: i.record.sop_class_uid.clone(),
                        sop_instance_uid: i.record.sop_instance_uid.clone(),
                        transfer_syntax_uid: i.record.transfer_syntax_uid.clone(),
                        path: i.record.path.clone(),
                    });
                }
            }
        }
    }
}

#[cfg(feature = "fs")]
fn is_part10(p: &Path) -> bool {
    use std::io::Read;
    let mut b = [0u8; 132];
    std::fs::File::open(p)
        .and_then(|mut f| f.read_exact(&mut b))
        .is_ok()
        && &b[128..] == b"DICM"
}

/// Whether the query asks for computed attributes of its level or above: `(for the
/// response, for matching)` — only a key with a value needs them before the match.
fn wants_computed(id: &Identifier, level: Level) -> (bool, bool) {
    let mut out = (false, false);
    for e in id.iter() {
        if matches!(
            e.tag(),
            Tag(0x0020, 0x1200 | 0x1202 | 0x1204 | 0x1206 | 0x1208 | 0x1209)
                | Tag(0x0008, 0x0061 | 0x0062)
        ) && level_of(e.tag()) <= level
        {
            out.0 = true;
            let valued = e
                .to_multi_str()
                .is_ok_and(|v| v.iter().any(|s| !s.trim_matches([' ', '\0']).is_empty()));
            out.1 |= valued;
        }
    }
    out
}

/// An instance to send for a C-MOVE / C-GET.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrieveItem {
    /// SOP Class UID (the C-STORE sub-operation's Affected SOP Class).
    pub sop_class_uid: String,
    /// SOP Instance UID.
    pub sop_instance_uid: String,
    /// The transfer syntax the stored file is in.
    pub transfer_syntax_uid: String,
    /// The file (or locator) the record was made from.
    pub path: PathBuf,
}

/// The attributes of a node: computed ones, then instance, series, study (with patient)
/// levels, deepest first.
struct Layers<'a> {
    parts: [Option<&'a InMemDicomObject>; 3],
    patient_first_study: Option<&'a InMemDicomObject>,
    computed: Option<InMemDicomObject>,
}

impl Candidate for Layers<'_> {
    fn element(&self, tag: Tag) -> Option<&InMemElement> {
        if let Some(c) = &self.computed
            && let Some(e) = c.get(tag)
        {
            return Some(e);
        }
        if let Some(p) = self.patient_first_study {
            // PATIENT level: only patient attributes of the patient's first study.
            return if level_of(tag) == Level::Patient {
                p.get(tag)
            } else {
                None
            };
        }
        self.parts.iter().flatten().find_map(|o| o.get(tag))
    }
}

enum Plan {
    Scan,
    List(Vec<usize>),
}

/// A C-FIND in progress over a [`QueryIndex`], resumable: it holds its position, not a borrow.
///
/// How an SCP answers a C-FIND-RQ with it:
///
/// ```
/// use xenrad_dimse::query::*;
///
/// /// A C-FIND-RQ's data set in transfer syntax `ts`: the pending responses, or a failure status.
/// fn on_c_find(index: &QueryIndex, bytes: &[u8], ts: &str, sop_class: &str) -> Result<Vec<Vec<u8>>, QueryError> {
///     let model = InformationModel::from_sop_class(sop_class).expect("negotiated a FIND class");
///     let query = FindQuery::parse(decode_identifier(bytes, ts)?, model)?; // Err: e.status(), e.error_comment()
///     let mut cursor = index.find_cursor(query, FindOptions::default());
///     let mut pending = Vec::new();
///     while let Some(rsp) = cursor.next_match(index) {  // one pending C-FIND-RSP (0xFF00) each;
///         pending.push(encode_identifier(&rsp, ts)?);   // on C-CANCEL drop the cursor (0xFE00)
///     }
///     Ok(pending)
/// }
/// let rq = identifier_from_pairs(&[("QueryRetrieveLevel", "STUDY"), ("StudyInstanceUID", "")]).unwrap();
/// let bytes = encode_identifier(&rq, "1.2.840.10008.1.2").unwrap();
/// let index = QueryIndex::new();
/// assert!(on_c_find(&index, &bytes, "1.2.840.10008.1.2", "1.2.840.10008.5.1.4.1.2.2.1").unwrap().is_empty());
/// let e = on_c_find(&index, &bytes[..9], "1.2.840.10008.1.2", "1.2.840.10008.5.1.4.1.2.2.1").unwrap_err();
/// assert_eq!(e.status(), 0xC000);
/// ```
pub struct FindCursor {
    query: FindQuery,
    compiled: Compiled,
    opts: FindOptions,
    plan: Plan,
    pos: usize,
    emitted: usize,
    truncated: bool,
    /// Computed attributes wanted in responses / needed for matching.
    computed: bool,
    computed_match: bool,
}

impl std::fmt::Debug for FindCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FindCursor")
            .field("level", &self.query.level())
            .field("pos", &self.pos)
            .field("emitted", &self.emitted)
            .field("truncated", &self.truncated)
            .finish_non_exhaustive()
    }
}

impl FindCursor {
    /// The next matching node id, or `None` when done or at the limit.
    fn next_node(&mut self, index: &QueryIndex) -> Option<usize> {
        let level = self.query.level()?;
        if self.query.model() == InformationModel::ModalityWorklist {
            return None;
        }
        loop {
            let id = match &self.plan {
                Plan::Scan => {
                    if self.pos >= index.level_len(level) {
                        return None;
                    }
                    self.pos
                }
                Plan::List(ids) => *ids.get(self.pos)?,
            };
            self.pos += 1;
            let Some(mut layers) = index.layers(level, id) else {
                continue;
            };
            if self.computed_match {
                layers.computed = Some(index.computed(level, id));
            }
            if self.compiled.matches(&layers) {
                if self.opts.max_matches.is_some_and(|m| self.emitted >= m) {
                    self.truncated = true;
                    return None;
                }
                self.emitted += 1;
                return Some(id);
            }
        }
    }

    /// The next match's response identifier (PS3.4 C.4.1.1.3.2): the query's keys filled from
    /// the entity, Query/Retrieve Level, the unique keys of the level and above, and Specific
    /// Character Set when the values need one. `None` when done, or when the limit was reached
    /// ([`truncated`](Self::truncated) then says so).
    pub fn next_match(&mut self, index: &QueryIndex) -> Option<Identifier> {
        let id = self.next_node(index)?;
        let level = self.query.level()?;
        let mut layers = index.layers(level, id)?;
        if self.computed {
            layers.computed = Some(index.computed(level, id));
        }
        let mut out = build_response(self.query.identifier(), &self.compiled, &layers);
        out.put(DataElement::new(
            tags::QUERY_RETRIEVE_LEVEL,
            VR::CS,
            PrimitiveValue::from(level.as_str()),
        ));
        let mut uniques = vec![];
        if self.query.model() == InformationModel::PatientRoot {
            uniques.push((tags::PATIENT_ID, VR::LO));
        }
        if level >= Level::Study {
            uniques.push((tags::STUDY_INSTANCE_UID, VR::UI));
        }
        if level >= Level::Series {
            uniques.push((tags::SERIES_INSTANCE_UID, VR::UI));
        }
        if level >= Level::Image {
            uniques.push((tags::SOP_INSTANCE_UID, VR::UI));
        }
        for (t, vr) in uniques {
            if out
                .get(t)
                .is_none_or(|e| e.to_str().is_ok_and(|s| s.trim().is_empty()))
            {
                match layers.element(t) {
                    Some(e) => out.put(e.clone()),
                    None => out.put(DataElement::new(t, vr, PrimitiveValue::Empty)),
                };
            }
        }
        finish_charset(&mut out, self.query.charset());
        Some(out)
    }

    /// Matches returned so far.
    pub fn emitted(&self) -> usize {
        self.emitted
    }

    /// Whether the match limit stopped the search with matches left.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

/// The lazy iterator of [`QueryIndex::find`]: one response identifier per match.
#[derive(Debug)]
pub struct FindMatches<'a> {
    index: &'a QueryIndex,
    cursor: FindCursor,
}

impl FindMatches<'_> {
    /// Whether the match limit stopped the search with matches left.
    pub fn truncated(&self) -> bool {
        self.cursor.truncated()
    }
}

impl Iterator for FindMatches<'_> {
    type Item = Identifier;
    fn next(&mut self) -> Option<Identifier> {
        self.cursor.next_match(self.index)
    }
}
