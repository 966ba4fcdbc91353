//! Attribute matching for C-FIND (PS3.4 C.2.2.2) and the response identifier built per match
//! (PS3.4 C.4.1.1.3.2, K.6.1.2.2).
//!
//! Per key, by its VR and value:
//! - **Universal** (C.2.2.2.3): a zero-length value (or only spaces) matches every entity, also
//!   those without the attribute. A value of only `*` for a VR that takes wild cards is the same
//!   (C.2.2.2.4).
//! - **Empty value** (C.2.2.2 empty value matching): the value `""` matches entities whose
//!   attribute is absent or zero-length.
//! - **Single value** (C.2.2.2.1): equality after removing the padding PS3.5 6.2 calls
//!   insignificant (trailing spaces and NULs; leading spaces except for LT, ST, UT); IS, DS and
//!   binary numbers compare as numbers. Case-sensitive, except **PN**, which the standard allows
//!   to match insensitive to case: [`FindOptions::pn_case_insensitive`] (default `true`) compares
//!   Unicode lower-case forms of both sides, because users type names in any case and DCMTK's
//!   dcmqrscp and Orthanc both answer `doe*` with `DOE^JOHN`.
//! - **List of UID** (C.2.2.2.2): a UI key with several values (backslash) matches any of them.
//!   Other VRs with several key values match when any value matches (lenient; the standard only
//!   defines lists for UIDs).
//! - **Wild card** (C.2.2.2.4): `*` (any run, also empty) and `?` (one character) in AE, CS, LO,
//!   LT, PN, SH, ST, UC, UR and UT values. Not in DA, TM, DT, UI, AS, DS, IS, AT or binary VRs,
//!   where `*` and `?` are literal characters.
//! - **Range** (C.2.2.2.5): DA, TM and DT keys `A-B`, `-B`, `A-`, and a single value meaning the
//!   interval it names (see the `dates` rules: reduced precision covers its whole interval).
//!   With [`FindOptions::combined_date_time`] (the C-FIND extended negotiation's combined
//!   date-time matching, PS3.4 C.2.2.2.5 / C.4.1.1.2) a date key and its time key (Study Date +
//!   Study Time, Series, Acquisition, Content, Scheduled / Performed Procedure Step Start,
//!   Patient's Birth) both present are one date-time range: `20060705-20060707` with
//!   `1000-1800` is 2006-07-05 10:00 through 2006-07-07 18:00; an entity without the time is
//!   matched on its date.
//! - **Sequence** (C.2.2.2.6): a sequence key with one item matches an entity when at least one
//!   item of its sequence matches every key in the query's item (recursively); the response
//!   holds the matching items, each with the keys of the query's item. A sequence key with no
//!   item, or an empty item, is universal and returns the entity's items whole.
//!
//! A non-universal key the entity lacks, or has empty, does not match (C.2.2.2).

use super::dates::{Instant, Interval, parse_da, parse_dt, parse_tm};
use super::identifier::response_charset;
use super::{Identifier, InformationModel, Level, QueryError};
use dicom_core::value::{DataSetSequence, Value};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR, header::Header};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;
use std::borrow::Cow;

/// Options of one C-FIND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindOptions {
    /// Stop after this many matches (the iterator then reports `truncated()`); `None`: no limit.
    pub max_matches: Option<usize>,
    /// Combined date-time range matching (PS3.4 C.2.2.2.5), as agreed by C-FIND extended
    /// negotiation (PS3.4 C.5.1.1.1). Default `false`.
    pub combined_date_time: bool,
    /// Match PN values insensitive to case (PS3.4 C.2.2.2.1 permits it). Default `true`.
    pub pn_case_insensitive: bool,
}

impl Default for FindOptions {
    fn default() -> Self {
        FindOptions {
            max_matches: None,
            combined_date_time: false,
            pn_case_insensitive: true,
        }
    }
}

/// A validated C-FIND identifier for an information model: the Query/Retrieve Level checked
/// (PS3.4 C.4.1.1.3.1: present, one of the model's levels), every range key parsed.
#[derive(Debug, Clone)]
pub struct FindQuery {
    identifier: Identifier,
    model: InformationModel,
    level: Option<Level>,
    charset: Option<String>,
}

impl FindQuery {
    /// Validates `identifier` for `model`. Errors are [`super::QueryErrorKind::DoesNotMatchSopClass`]
    /// (0xA900) with the offending attribute: a missing, unknown or (for the model) invalid
    /// Query/Retrieve Level, or a malformed range value.
    pub fn parse(identifier: Identifier, model: InformationModel) -> Result<FindQuery, QueryError> {
        let level = if model == InformationModel::ModalityWorklist {
            None
        } else {
            Some(query_level(&identifier, model)?)
        };
        Compiled::new(&identifier, &FindOptions::default(), None)?;
        let charset = identifier
            .get(tags::SPECIFIC_CHARACTER_SET)
            .and_then(|e| e.to_multi_str().ok().map(|v| v.join("\\")))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        Ok(FindQuery {
            identifier,
            model,
            level,
            charset,
        })
    }

    /// The identifier as received.
    pub fn identifier(&self) -> &Identifier {
        &self.identifier
    }
    /// The information model it was validated for.
    pub fn model(&self) -> InformationModel {
        self.model
    }
    /// The Query/Retrieve Level (`None` for the worklist).
    pub fn level(&self) -> Option<Level> {
        self.level
    }
    /// The query's Specific Character Set value (multiple values joined by `\`), if any.
    pub fn charset(&self) -> Option<&str> {
        self.charset.as_deref()
    }

    /// Whether one data set matches every key (PS3.4 C.2.2.2), without levels: what the
    /// worklist does per item.
    pub fn matches(&self, candidate: &InMemDicomObject, opts: &FindOptions) -> bool {
        Compiled::new(&self.identifier, opts, None).is_ok_and(|c| c.matches(candidate))
    }

    /// The response identifier for a matching data set: every key of the query filled from it
    /// (zero-length when it lacks the attribute), sequences with their matching items, and a
    /// Specific Character Set able to carry the values (the query's, else ISO_IR 192).
    pub fn response(&self, candidate: &InMemDicomObject, opts: &FindOptions) -> Identifier {
        let c = Compiled::new(&self.identifier, opts, None).unwrap_or_default();
        let mut out = build_response(&self.identifier, &c, candidate);
        finish_charset(&mut out, self.charset());
        out
    }
}

/// Query/Retrieve Level (0008,0052) of an identifier, checked against the model.
pub(crate) fn query_level(id: &Identifier, model: InformationModel) -> Result<Level, QueryError> {
    let t = tags::QUERY_RETRIEVE_LEVEL;
    let e = id
        .get(t)
        .ok_or_else(|| QueryError::mismatch("Query/Retrieve Level missing").tag(t))?;
    let s = e
        .to_str()
        .map_err(|_| QueryError::mismatch("bad Query/Retrieve Level").tag(t))?;
    let level = Level::parse(&s)
        .ok_or_else(|| QueryError::mismatch(format!("unknown level {:?}", s.trim())).tag(t))?;
    if !model.has_level(level) {
        return Err(
            QueryError::mismatch(format!("no {} level in this model", level.as_str())).tag(t),
        );
    }
    Ok(level)
}

/// Puts (or removes) Specific Character Set in a response.
pub(crate) fn finish_charset(out: &mut InMemDicomObject, query_cs: Option<&str>) {
    out.remove_element(tags::SPECIFIC_CHARACTER_SET);
    if let Some(cs) = response_charset(out, query_cs) {
        out.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::Strs(cs.split('\\').map(str::to_owned).collect()),
        ));
    }
}

/// Where a matcher reads an entity's attributes: one data set, or the layers of a hierarchy.
pub(crate) trait Candidate {
    /// The entity's element with this tag.
    fn element(&self, tag: Tag) -> Option<&InMemElement>;
}

impl Candidate for InMemDicomObject {
    fn element(&self, tag: Tag) -> Option<&InMemElement> {
        self.get(tag)
    }
}

/// The date/time attribute pairs of combined date-time matching (PS3.4 C.2.2.2.5).
const DATE_TIME_PAIRS: &[(Tag, Tag)] = &[
    (tags::STUDY_DATE, tags::STUDY_TIME),
    (tags::SERIES_DATE, tags::SERIES_TIME),
    (tags::ACQUISITION_DATE, tags::ACQUISITION_TIME),
    (tags::CONTENT_DATE, tags::CONTENT_TIME),
    (tags::PATIENT_BIRTH_DATE, tags::PATIENT_BIRTH_TIME),
    (
        tags::SCHEDULED_PROCEDURE_STEP_START_DATE,
        tags::SCHEDULED_PROCEDURE_STEP_START_TIME,
    ),
    (
        tags::SCHEDULED_PROCEDURE_STEP_END_DATE,
        tags::SCHEDULED_PROCEDURE_STEP_END_TIME,
    ),
    (
        tags::PERFORMED_PROCEDURE_STEP_START_DATE,
        tags::PERFORMED_PROCEDURE_STEP_START_TIME,
    ),
];

const OPEN_LO: Instant = (0, 0);
const OPEN_HI: Instant = (u32::MAX, u64::MAX);

#[derive(Debug, Clone)]
enum Tok {
    Star,
    One,
    Lit(char),
}

#[derive(Debug, Clone)]
enum Pattern {
    Exact(String),
    Glob(Vec<Tok>),
    Number(f64),
}

#[derive(Debug, Clone)]
enum M {
    Universal,
    Empty,
    Values(Vec<Pattern>),
    Range(Vec<Interval>),
    Sequence(Box<Compiled>),
    /// Combined date-time (date tag is the key's tag, time tag here).
    DateTime {
        time: Tag,
        lo: Instant,
        hi: Instant,
        date_lo: u32,
        date_hi: u32,
    },
}

#[derive(Debug, Clone)]
struct Key {
    tag: Tag,
    vr: VR,
    fold: bool,
    m: M,
}

/// The query level and the level of each tag: keys below the level are not matched.
pub(crate) type Restrict = (Level, fn(Tag) -> Level);

/// A compiled identifier: its keys as matchers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Compiled {
    keys: Vec<Key>,
    /// Keys not matched (e.g. below the query level), by tag, kept for sequence responses.
    subs: Vec<(Tag, Compiled)>,
}

/// VRs in which `*` and `?` are wild cards (PS3.4 C.2.2.2.4).
fn wildcard_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::AE | VR::CS | VR::LO | VR::LT | VR::PN | VR::SH | VR::ST | VR::UC | VR::UR | VR::UT
    )
}

fn numeric_vr(vr: VR) -> bool {
    matches!(
        vr,
        VR::IS | VR::DS | VR::US | VR::SS | VR::UL | VR::SL | VR::FL | VR::FD | VR::SV | VR::UV
    )
}

/// Removes the padding PS3.5 6.2 calls insignificant.
fn norm(vr: VR, s: &str) -> &str {
    let s = s.trim_end_matches([' ', '\0']);
    if matches!(vr, VR::LT | VR::ST | VR::UT) {
        s
    } else {
        s.trim_start_matches(' ')
    }
}

fn fold_str(s: &str, fold: bool) -> Cow<'_, str> {
    if fold && s.chars().any(char::is_uppercase) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

/// Text values of an element (none for sequences and binary blobs); borrowed for text.
fn values(e: &InMemElement) -> Cow<'_, [String]> {
    match e.value() {
        Value::Primitive(PrimitiveValue::Empty) | Value::Sequence(_) | Value::PixelSequence(_) => {
            Cow::Borrowed(&[])
        }
        Value::Primitive(p) => match e.vr() {
            VR::OB | VR::OW | VR::OF | VR::OD | VR::OL | VR::OV | VR::UN => Cow::Borrowed(&[]),
            _ => p.to_multi_str(),
        },
    }
}

fn is_empty_element(e: &InMemElement) -> bool {
    match e.value() {
        Value::Sequence(s) => s.items().is_empty(),
        Value::PixelSequence(_) => false,
        Value::Primitive(_) => values(e).iter().all(|v| norm(e.vr(), v).is_empty()),
    }
}

impl Compiled {
    /// Compiles an identifier's keys. `restrict`: the query level and the level of each tag;
    /// keys below the query level are not matched (treated as universal; PS3.4 C.4.1.2.1 says
    /// a hierarchical identifier has none, we are lenient and return them zero-length).
    pub(crate) fn new(
        id: &InMemDicomObject,
        opts: &FindOptions,
        restrict: Option<Restrict>,
    ) -> Result<Compiled, QueryError> {
        Self::compile(id, opts, restrict, 0)
    }

    fn compile(
        id: &InMemDicomObject,
        opts: &FindOptions,
        restrict: Option<Restrict>,
        depth: usize,
    ) -> Result<Compiled, QueryError> {
        let mut c = Compiled::default();
        for e in id.iter() {
            let tag = e.tag();
            if tag == tags::SPECIFIC_CHARACTER_SET
                || tag == tags::QUERY_RETRIEVE_LEVEL
                || tag.0 == 0x0000
                || tag.0 == 0x0002
            {
                continue;
            }
            let below = restrict.is_some_and(|(level, of)| of(tag) > level);
            let vr = e.vr();
            let fold = vr == VR::PN && opts.pn_case_insensitive;
            let m = if let Value::Sequence(seq) = e.value() {
                match seq.items().first() {
                    None => M::Universal,
                    Some(item) => {
                        if depth >= 16 {
                            return Err(
                                QueryError::mismatch("sequence keys nested too deeply").tag(tag)
                            );
                        }
                        let sub = Self::compile(item, opts, None, depth + 1)?;
                        if sub.keys.is_empty() {
                            c.subs.push((tag, sub));
                            M::Universal
                        } else {
                            c.subs.push((tag, sub.clone()));
                            M::Sequence(Box::new(sub))
                        }
                    }
                }
            } else {
                compile_values(tag, vr, &values(e), fold)?
            };
            let m = if below { M::Universal } else { m };
            if !matches!(m, M::Universal) {
                c.keys.push(Key { tag, vr, fold, m });
            }
        }
        if opts.combined_date_time {
            c.combine_date_time();
        }
        Ok(c)
    }

    /// Replaces a date key and its time key, both single ranges, by one date-time range.
    fn combine_date_time(&mut self) {
        for &(dt, tt) in DATE_TIME_PAIRS {
            let find = |keys: &[Key], t: Tag| {
                keys.iter()
                    .position(|k| k.tag == t && matches!(&k.m, M::Range(r) if r.len() == 1))
            };
            let (Some(di), Some(ti)) = (find(&self.keys, dt), find(&self.keys, tt)) else {
                continue;
            };
            let (M::Range(d), M::Range(t)) = (&self.keys[di].m, &self.keys[ti].m) else {
                continue;
            };
            let ((dlo, _), (dhi, _)) = d[0];
            let ((_, tlo), (_, thi)) = t[0];
            let t_open_lo = t[0].0 == OPEN_LO;
            let t_open_hi = t[0].1 == OPEN_HI;
            let lo = if d[0].0 == OPEN_LO {
                OPEN_LO
            } else {
                (dlo, if t_open_lo { 0 } else { tlo })
            };
            let hi = if d[0].1 == OPEN_HI {
                OPEN_HI
            } else {
                (dhi, if t_open_hi { u64::MAX } else { thi })
            };
            self.keys[di].m = M::DateTime {
                time: tt,
                lo,
                hi,
                date_lo: if d[0].0 == OPEN_LO { 0 } else { dlo },
                date_hi: if d[0].1 == OPEN_HI { u32::MAX } else { dhi },
            };
            self.keys.remove(ti);
        }
    }

    /// Whether the candidate matches every key.
    pub(crate) fn matches<C: Candidate + ?Sized>(&self, cand: &C) -> bool {
        self.keys.iter().all(|k| k.matches(cand))
    }

    fn sub(&self, tag: Tag) -> Option<&Compiled> {
        self.subs.iter().find(|(t, _)| *t == tag).map(|(_, c)| c)
    }
}

fn compile_values(tag: Tag, vr: VR, raw: &[String], fold: bool) -> Result<M, QueryError> {
    let vals: Vec<&str> = raw.iter().map(|v| norm(vr, v)).collect();
    if vals.iter().all(|v| v.is_empty()) {
        return Ok(M::Universal);
    }
    if vals.len() == 1 && vals[0] == "\"\"" {
        return Ok(M::Empty);
    }
    match vr {
        VR::DA | VR::TM | VR::DT => {
            let mut ranges = Vec::with_capacity(vals.len());
            for v in vals {
                ranges.push(parse_range(vr, v).ok_or_else(|| {
                    QueryError::mismatch(format!("bad {vr:?} range {v:?}")).tag(tag)
                })?);
            }
            Ok(M::Range(ranges))
        }
        _ => {
            let wild = wildcard_vr(vr);
            if wild && vals.iter().any(|v| v.chars().all(|c| c == '*')) {
                // C.2.2.2.4: a value of only "*" is universal matching.
                return Ok(M::Universal);
            }
            let pats = vals
                .iter()
                .map(|v| {
                    let v = fold_str(v, fold).into_owned();
                    if wild && v.contains(['*', '?']) {
                        Pattern::Glob(
                            v.chars()
                                .map(|c| match c {
                                    '*' => Tok::Star,
                                    '?' => Tok::One,
                                    c => Tok::Lit(c),
                                })
                                .collect(),
                        )
                    } else if numeric_vr(vr) {
                        v.trim()
                            .parse::<f64>()
                            .map_or(Pattern::Exact(v.clone()), Pattern::Number)
                    } else {
                        Pattern::Exact(v)
                    }
                })
                .collect();
            Ok(M::Values(pats))
        }
    }
}

/// `A-B`, `A-`, `-B` or `A` for DA, TM, DT (PS3.4 C.2.2.2.5).
fn parse_range(vr: VR, v: &str) -> Option<Interval> {
    let one = |s: &str| -> Option<Interval> {
        match vr {
            VR::DA => parse_da(s).map(|(lo, hi)| ((lo, 0), (hi, u64::MAX))),
            VR::TM => parse_tm(s).map(|(lo, hi)| ((0, lo), (0, hi))),
            _ => parse_dt(s),
        }
    };
    if let Some(iv) = one(v) {
        return Some(iv);
    }
    // Try each '-' as the separator (a DT offset may contain '-' too).
    for (i, _) in v.match_indices('-') {
        let (a, b) = (v[..i].trim(), v[i + 1..].trim());
        let lo = if a.is_empty() {
            Some(OPEN_LO)
        } else {
            one(a).map(|x| x.0)
        };
        let hi = if b.is_empty() {
            Some(OPEN_HI)
        } else {
            one(b).map(|x| x.1)
        };
        if let (Some(lo), Some(hi)) = (lo, hi)
            && !(a.is_empty() && b.is_empty())
        {
            return Some((lo, hi));
        }
    }
    None
}

/// The instant a stored DA/TM/DT value stands for (start of its interval).
fn point(vr: VR, s: &str) -> Option<Instant> {
    match vr {
        VR::DA => parse_da(s).map(|(lo, _)| (lo, 0)),
        VR::TM => parse_tm(s).map(|(lo, _)| (0, lo)),
        VR::DT => parse_dt(s).map(|(lo, _)| lo),
        _ => None,
    }
}

/// Glob match (`*`, `?`) over characters (not bytes), iterative with one backtrack point:
/// O(n·m), no recursion.
fn glob(p: &[Tok], s: &str) -> bool {
    let (mut pi, mut si) = (0, 0); // si: byte index, always on a char boundary
    let mut star: Option<(usize, usize)> = None;
    let char_at = |i: usize| s.get(i..).and_then(|t| t.chars().next());
    while let Some(c) = char_at(si) {
        match p.get(pi) {
            Some(Tok::Star) => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(Tok::One) => {
                pi += 1;
                si += c.len_utf8();
            }
            Some(Tok::Lit(l)) if *l == c => {
                pi += 1;
                si += c.len_utf8();
            }
            _ => match star {
                Some((sp, ss)) => {
                    let next = ss + char_at(ss).map_or(1, char::len_utf8);
                    pi = sp + 1;
                    si = next;
                    star = Some((sp, next));
                }
                None => return false,
            },
        }
    }
    p[pi.min(p.len())..].iter().all(|t| matches!(t, Tok::Star))
}

impl Key {
    fn matches<C: Candidate + ?Sized>(&self, cand: &C) -> bool {
        let e = cand.element(self.tag);
        match &self.m {
            M::Universal => true,
            M::Empty => e.is_none_or(is_empty_element),
            M::Sequence(sub) => e
                .and_then(|e| e.items())
                .is_some_and(|items| items.iter().any(|i| sub.matches(i))),
            M::Values(pats) => {
                let Some(e) = e else { return false };
                let vr = e.vr();
                values(e).iter().any(|raw| {
                    let v = norm(vr, raw);
                    if v.is_empty() {
                        return false;
                    }
                    let v = fold_str(v, self.fold);
                    pats.iter().any(|p| match p {
                        Pattern::Exact(x) => *x == *v,
                        // Exact numeric equality is the single value rule for numbers.
                        #[allow(clippy::float_cmp)]
                        Pattern::Number(n) => v.trim().parse::<f64>().is_ok_and(|x| x == *n),
                        Pattern::Glob(toks) => glob(toks, &v),
                    })
                })
            }
            M::Range(ranges) => {
                let Some(e) = e else { return false };
                let vr = self.vr;
                values(e).iter().any(|raw| {
                    point(vr, norm(vr, raw))
                        .is_some_and(|pt| ranges.iter().any(|(lo, hi)| *lo <= pt && pt <= *hi))
                })
            }
            M::DateTime {
                time,
                lo,
                hi,
                date_lo,
                date_hi,
            } => {
                let Some(date) = e
                    .and_then(|e| values(e).first().and_then(|d| parse_da(norm(VR::DA, d))))
                    .map(|(d, _)| d)
                else {
                    return false;
                };
                let t = cand
                    .element(*time)
                    .and_then(|e| values(e).first().and_then(|t| parse_tm(norm(VR::TM, t))))
                    .map(|(t, _)| t);
                match t {
                    Some(t) => *lo <= (date, t) && (date, t) <= *hi,
                    None => *date_lo <= date && date <= *date_hi,
                }
            }
        }
    }
}

/// The response for a candidate: each key of `query` filled from it (PS3.4 C.4.1.1.3.2).
pub(crate) fn build_response<C: Candidate + ?Sized>(
    query: &InMemDicomObject,
    compiled: &Compiled,
    cand: &C,
) -> InMemDicomObject {
    let mut out = InMemDicomObject::new_empty();
    for k in query.iter() {
        let tag = k.tag();
        if tag == tags::SPECIFIC_CHARACTER_SET || tag.0 == 0x0000 || tag.0 == 0x0002 {
            continue;
        }
        let found = cand.element(tag);
        if let Value::Sequence(q) = k.value() {
            let items: Vec<InMemDicomObject> =
                match (found.and_then(|e| e.items()), q.items().first()) {
                    (None, _) => Vec::new(),
                    (Some(items), None) => items.to_vec(),
                    (Some(items), Some(qi)) => match compiled.sub(tag) {
                        Some(sub) if qi.iter().next().is_some() => items
                            .iter()
                            .filter(|i| sub.matches(*i))
                            .map(|i| build_response(qi, sub, i))
                            .collect(),
                        _ => items.to_vec(),
                    },
                };
            out.put(DataElement::new(
                tag,
                VR::SQ,
                DataSetSequence::new(items, Length::UNDEFINED),
            ));
            continue;
        }
        match found {
            Some(e) if !matches!(e.value(), Value::Sequence(_)) => {
                out.put(e.clone());
            }
            _ => {
                out.put(DataElement::new(tag, k.vr(), PrimitiveValue::Empty));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(p: &str) -> Vec<Tok> {
        p.chars()
            .map(|c| match c {
                '*' => Tok::Star,
                '?' => Tok::One,
                c => Tok::Lit(c),
            })
            .collect()
    }
    fn g(p: &str, s: &str) -> bool {
        glob(&toks(p), s)
    }

    #[test]
    fn glob_rules() {
        assert!(g("*", ""));
        assert!(g("A*", "A"));
        assert!(g("A*B", "AxxB"));
        assert!(!g("A*B", "AxxBx"));
        assert!(g("A*B*", "AxxBx"));
        assert!(g("?", "é"));
        assert!(!g("?", "éé"));
        assert!(g("*a*a*a*", "xaxaxa"));
        assert!(!g("*a*a*a*b", "xaxaxa"));
        assert!(g("D?e^*", "Doe^John"));
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(
            parse_range(VR::DA, "20060705-20060707"),
            Some(((20_060_705, 0), (20_060_707, u64::MAX)))
        );
        assert_eq!(parse_range(VR::DA, "-20060707").unwrap().0, OPEN_LO);
        assert_eq!(parse_range(VR::DA, "20060705-").unwrap().1, OPEN_HI);
        assert_eq!(parse_range(VR::DA, "-"), None);
        assert_eq!(parse_range(VR::DA, "2006-07-05"), None);
        assert_eq!(parse_range(VR::DA, "20061305"), None);
        // TM reduced precision: "-1100" includes 11:00:59.999999.
        let (_, hi) = parse_range(VR::TM, "-1100").unwrap();
        assert_eq!(hi, (0, (11 * 3600 + 59) * 1_000_000 + 999_999));
        // DT with a negative offset on both ends.
        let (lo, hi) = parse_range(VR::DT, "20060101-0500-20060102-0500").unwrap();
        assert_eq!(lo, (20_060_101, 0));
        assert_eq!(hi.0, 20_060_102);
    }
}
