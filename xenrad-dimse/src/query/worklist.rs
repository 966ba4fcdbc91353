//! Modality Worklist source (PS3.4 K.6): items loaded from a directory, as DCMTK's wlmscpfs
//! serves its folder, answered with the matching of [`super::matching`] (sequence matching on
//! the Scheduled Procedure Step Sequence (0040,0100) included).

use super::identifier::response_charset;
use super::matching::{Compiled, FindOptions, FindQuery, build_response};
use super::{Identifier, InformationModel};
#[cfg(feature = "fs")]
use super::{QueryError, QueryErrorKind};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
#[cfg(feature = "fs")]
use std::path::Path;
use std::path::PathBuf;

/// One worklist item and the file it came from.
#[derive(Debug, Clone)]
pub struct WorklistItem {
    /// Source file (for logs), or any label.
    pub source: PathBuf,
    /// The item's attributes (text decoded).
    pub attributes: InMemDicomObject,
}

/// The worklist: items answered by C-FIND of the Modality Worklist Information Model.
///
/// ```
/// use xenrad_dimse::query::{FindOptions, FindQuery, InformationModel, Worklist, WorklistItem, identifier_from_pairs};
/// # fn main() -> Result<(), xenrad_dimse::query::QueryError> {
/// let mut wl = Worklist::new();
/// wl.insert(WorklistItem {
///     source: "item1.json".into(),
///     attributes: identifier_from_pairs(&[
///         ("PatientName", "Doe^Jane"), ("PatientID", "P7"), ("AccessionNumber", "A100"),
///         ("ScheduledProcedureStepSequence.Modality", "MR"),
///         ("ScheduledProcedureStepSequence.ScheduledStationAETitle", "MR1"),
///         ("ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate", "20240105"),
///     ])?,
/// });
/// let q = FindQuery::parse(identifier_from_pairs(&[
///     ("PatientName", ""), ("AccessionNumber", ""),
///     ("ScheduledProcedureStepSequence.Modality", "MR"),
///     ("ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate", "20240101-20240131"),
/// ])?, InformationModel::ModalityWorklist)?;
/// assert_eq!(wl.find(&q, &FindOptions::default()).count(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug, Default, Clone)]
pub struct Worklist {
    items: Vec<WorklistItem>,
}

impl Worklist {
    /// An empty worklist.
    pub fn new() -> Worklist {
        Worklist::default()
    }

    #[cfg(feature = "fs")]
    #[cfg_attr(docsrs, doc(cfg(feature = "fs")))]
    /// Loads every item under `dir` (not recursive): `*.json` files hold DICOM JSON (PS3.18
    /// F.2: one object, or an array of objects), `*.wl` and `*.dcm` files are Part 10 (or a
    /// bare Explicit VR Little Endian data set, as `dump2dcm` without meta writes). Files that
    /// fail are returned with why; others are ignored.
    pub fn load_dir(dir: &Path) -> Result<(Worklist, Vec<(PathBuf, QueryError)>), QueryError> {
        let mut wl = Worklist::new();
        let mut failed = Vec::new();
        let rd = std::fs::read_dir(dir)
            .map_err(|e| QueryError::new(QueryErrorKind::Io, format!("{}: {e}", dir.display())))?;
        let mut files: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for p in files {
            let ext = p
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            let res = match ext.as_deref() {
                Some("json") => load_json(&p),
                Some("wl" | "dcm") => load_part10(&p).map(|o| vec![o]),
                _ => continue,
            };
            match res {
                Ok(objs) => {
                    for attributes in objs {
                        wl.items.push(WorklistItem {
                            source: p.clone(),
                            attributes,
                        });
                    }
                }
                Err(e) => failed.push((p, e)),
            }
        }
        Ok((wl, failed))
    }

    /// Adds an item.
    pub fn insert(&mut self, item: WorklistItem) {
        self.items.push(item);
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there is no item.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The items.
    pub fn items(&self) -> &[WorklistItem] {
        &self.items
    }

    /// The worklist C-FIND matches of `query` (PS3.4 K.6.1.2), lazily: for each matching
    /// item, the query's keys filled from it (sequence items filtered by sequence matching)
    /// with a Specific Character Set able to carry them. A query validated for another model
    /// matches nothing.
    pub fn find<'a>(&'a self, query: &FindQuery, opts: &FindOptions) -> WorklistMatches<'a> {
        let compiled = (query.model() == InformationModel::ModalityWorklist)
            .then(|| Compiled::new(query.identifier(), opts, None).ok())
            .flatten();
        WorklistMatches {
            items: &self.items,
            pos: if compiled.is_some() {
                0
            } else {
                self.items.len()
            },
            compiled: compiled.unwrap_or_default(),
            query: query.clone(),
            limit: opts.max_matches,
            emitted: 0,
            truncated: false,
        }
    }
}

#[cfg(feature = "fs")]
fn load_json(p: &Path) -> Result<Vec<InMemDicomObject>, QueryError> {
    let io = |e: String| QueryError::new(QueryErrorKind::Io, format!("{}: {e}", p.display()));
    let text = std::fs::read_to_string(p).map_err(|e| io(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| io(e.to_string()))?;
    let values = match v {
        serde_json::Value::Array(a) => a,
        o => vec![o],
    };
    values
        .into_iter()
        .map(|v| dicom_json::from_value::<InMemDicomObject>(v).map_err(|e| io(e.to_string())))
        .collect()
}

#[cfg(feature = "fs")]
fn load_part10(p: &Path) -> Result<InMemDicomObject, QueryError> {
    let io = |e: String| QueryError::new(QueryErrorKind::Io, format!("{}: {e}", p.display()));
    match dicom_object::open_file(p) {
        Ok(f) => Ok(f.into_inner()),
        Err(first) => {
            // A bare data set (no preamble, no meta), Explicit VR Little Endian.
            let bytes = std::fs::read(p).map_err(|e| io(e.to_string()))?;
            super::identifier::decode_identifier(&bytes, "1.2.840.10008.1.2.1")
                .map_err(|_| io(first.to_string()))
        }
    }
}

/// The lazy iterator of [`Worklist::find`].
#[derive(Debug)]
pub struct WorklistMatches<'a> {
    items: &'a [WorklistItem],
    pos: usize,
    compiled: Compiled,
    query: FindQuery,
    limit: Option<usize>,
    emitted: usize,
    truncated: bool,
}

impl WorklistMatches<'_> {
    /// Whether the match limit stopped the search with matches left.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl Iterator for WorklistMatches<'_> {
    type Item = Identifier;
    fn next(&mut self) -> Option<Identifier> {
        while let Some(item) = self.items.get(self.pos) {
            self.pos += 1;
            if !self.compiled.matches(&item.attributes) {
                continue;
            }
            if self.limit.is_some_and(|m| self.emitted >= m) {
                self.truncated = true;
                self.pos = self.items.len();
                return None;
            }
            self.emitted += 1;
            let mut out = build_response(self.query.identifier(), &self.compiled, &item.attributes);
            out.remove_element(tags::QUERY_RETRIEVE_LEVEL);
            out.remove_element(tags::SPECIFIC_CHARACTER_SET);
            if let Some(cs) = response_charset(&out, self.query.charset()) {
                out.put(DataElement::new(
                    tags::SPECIFIC_CHARACTER_SET,
                    VR::CS,
                    PrimitiveValue::Strs(cs.split('\\').map(str::to_owned).collect()),
                ));
            }
            return Some(out);
        }
        None
    }
}
