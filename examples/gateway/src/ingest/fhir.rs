//! The FHIR REST use cases (FHIR R4 http.html) on the backend-neutral store traits: create,
//! update, patch and delete (plain and conditional, `If-Match`), transaction and batch
//! Bundles, searches with `_include`/`_revinclude`, reads of versions. Each write runs
//! inside one store job, so it is durable before the surface answers; a transaction is one
//! job (all or nothing). No SQL here, no HTTP: the surface maps [`Refusal`]s and
//! [`Written`]s to responses.
//!
//! Every version of every resource is kept; a write sets `meta.versionId` and
//! `meta.lastUpdated` on the model, serialises it once, extracts its index rows from the
//! same model and stores those bytes ([`write_version`]).

use crate::search::{self, Include, Query};
use crate::store::{Current, Page, ReadTx, StoreError, StoredResource, WriteTx};
use xenrad_fhir_model::outcome::{OperationOutcome, Severity};
use xenrad_fhir_model::transaction::{Method, Plan, PlannedEntry, is_conditional_reference};
use xenrad_fhir_model::{ErrorKind, Resource, ResourceType};

/// A refused interaction: the HTTP status and the OperationOutcome that says why.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status (400, 404, 405, 409, 410, 412, 422, 500, 507).
    pub status: u16,
    /// Why.
    pub outcome: OperationOutcome,
}

impl Refusal {
    /// A refusal with one issue.
    pub fn new(status: u16, code: &'static str, msg: impl Into<String>) -> Self {
        Refusal {
            status,
            outcome: OperationOutcome::single(Severity::Error, code, msg),
        }
    }
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        let status = if e.is_full() { 507 } else { 500 };
        Refusal::new(status, "exception", e.to_string())
    }
}

/// What a write did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Resource type.
    pub resource_type: ResourceType,
    /// Logical id.
    pub id: String,
    /// The version now current.
    pub version: i64,
    /// Its lastUpdated.
    pub last_updated: String,
    /// The stored resource (`None` after a delete).
    pub body: Option<String>,
    /// 201 (created), 200 (updated, or an existing match of a conditional create), 204
    /// (deleted or nothing to delete).
    pub status: u16,
}

impl Written {
    fn of(rt: ResourceType, id: &str, s: StoredResource, status: u16) -> Self {
        Written {
            resource_type: rt,
            id: id.to_owned(),
            version: s.version,
            last_updated: s.last_updated,
            body: Some(s.body),
            status,
        }
    }
}

/// A new server-assigned id: 128 bits from the OS random source, as a UUID's text.
pub fn new_id() -> Result<String, StoreError> {
    let mut b = [0u8; 16];
    getrandom::fill(&mut b).map_err(|e| StoreError::Job(format!("OS random source: {e}")))?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().fold(String::with_capacity(32), |mut h, x| {
        let _ = std::fmt::Write::write_fmt(&mut h, format_args!("{x:02x}"));
        h
    });
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Reads a request body as a resource: JSON (strict) or XML. A syntax error, a body that is
/// not a resource, or one of an unknown type is 400; a resource that breaks the definitions
/// (unknown element, cardinality, primitive format) is 422; both with an OperationOutcome
/// whose `expression` names the element.
pub fn read_body(body: &[u8], xml: bool) -> Result<Resource<'_>, Refusal> {
    let r = if xml {
        let text = std::str::from_utf8(body)
            .map_err(|_| Refusal::new(400, "structure", "the XML body is not UTF-8"))?;
        xenrad_fhir_model::xml::from_xml(text)
    } else {
        xenrad_fhir_model::from_json(body)
    };
    r.map_err(|e| {
        let status = match e.kind {
            ErrorKind::Syntax(_)
            | ErrorKind::TooDeep
            | ErrorKind::TooLarge
            | ErrorKind::MissingResourceType
            | ErrorKind::UnknownResourceType(_) => 400,
            _ => 422,
        };
        let root = resource_type_of(body, xml);
        Refusal {
            status,
            outcome: OperationOutcome::from_error(&e, root),
        }
    })
}

/// The resource type a (possibly invalid) body declares, for error expressions.
fn resource_type_of(body: &[u8], xml: bool) -> Option<ResourceType> {
    let text = std::str::from_utf8(body).ok()?;
    if xml {
        let start = text.find('<').map(|i| &text[i + 1..])?;
        let start = if start.starts_with('?') {
            start.split_once("?>")?.1.trim_start().strip_prefix('<')?
        } else {
            start
        };
        let name: String = start
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        ResourceType::from_name(&name)
    } else {
        let at = text.find("\"resourceType\"")?;
        let rest = text[at + 14..]
            .trim_start()
            .strip_prefix(':')?
            .trim_start()
            .strip_prefix('"')?;
        ResourceType::from_name(rest.split('"').next()?)
    }
}

/// Gives `r` this id; an id the model refuses is a 400 `invalid`.
fn set_id(r: &mut Resource<'_>, id: String) -> Result<(), Refusal> {
    r.set_id(id)
        .map(|_| ())
        .map_err(|e| Refusal::new(400, "invalid", e.to_string()))
}

/// Validates a resource (cardinality, required bindings, primitive formats, invariants):
/// errors are 422 with the validator's OperationOutcome.
pub fn check(r: &Resource<'_>) -> Result<(), Refusal> {
    let oo = xenrad_fhir_model::validate(r);
    if oo.has_errors() {
        return Err(Refusal {
            status: 422,
            outcome: oo,
        });
    }
    Ok(())
}

/// Writes a new version of `r` after `previous` (the current version id, if any): sets its
/// `meta.versionId`/`meta.lastUpdated` on the model, serialises it once, extracts its index
/// rows from the same model, and stores both.
pub fn write_version(
    tx: &dyn WriteTx,
    r: &mut Resource<'_>,
    previous: Option<i64>,
    now: &str,
) -> Result<StoredResource, StoreError> {
    let id = r
        .id()
        .ok_or_else(|| StoreError::Job("a resource to store has no id".into()))?
        .to_owned();
    let version = previous.map_or(1, |v| v + 1);
    r.set_version(version.to_string(), now.to_owned())
        .map_err(|e| StoreError::Job(e.to_string()))?;
    let stored = StoredResource {
        version,
        last_updated: now.to_owned(),
        body: xenrad_fhir_model::to_json(r),
    };
    tx.put_resource(r.resource_type.as_str(), &id, &stored, &search::index(r))?;
    Ok(stored)
}

/// Whether `body` (written by the model with `version`/`last_updated` as its `meta`) has the
/// same content as `previous`: the model writes `meta` right after `id` with `versionId` and
/// `lastUpdated` first, so the two texts are compared around those two values (no parse).
/// Anything unexpected (a `meta.id`, a deleted row's empty body) counts as a change.
pub fn same_content(
    previous: &StoredResource,
    body: &str,
    version: i64,
    last_updated: &str,
) -> bool {
    let head = |v: i64, lu: &str| format!(r#""meta":{{"versionId":"{v}","lastUpdated":"{lu}""#);
    let (a, b) = (
        head(previous.version, &previous.last_updated),
        head(version, last_updated),
    );
    match (previous.body.find(&a), body.find(&b)) {
        (Some(i), Some(j)) => {
            previous.body[..i] == body[..j] && previous.body[i + a.len()..] == body[j + b.len()..]
        }
        _ => false,
    }
}

/// `If-Match: W/"3"` (or `"3"`, `3`) → 3.
pub fn parse_etag(v: &str) -> Option<i64> {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .ok()
}

/// Ids of live `rt` resources matching a conditional query; at most 2 (enough to tell 0, 1
/// and many). Parameters not executed make the condition unusable: 412.
pub fn matching(tx: &dyn ReadTx, rt: ResourceType, query: &str) -> Result<Vec<String>, Refusal> {
    let mut q = search::parse(rt, query).map_err(|oo| Refusal {
        status: 400,
        outcome: oo,
    })?;
    if !q.unknown.is_empty() {
        return Err(Refusal::new(
            412,
            "not-supported",
            format!(
                "conditional parameters not executed: {}",
                q.unknown.join(", ")
            ),
        ));
    }
    if q.criteria.is_empty() {
        return Err(Refusal::new(
            412,
            "invalid",
            "a condition needs at least one search parameter",
        ));
    }
    q.count = 2;
    q.offset = 0;
    q.no_total = true;
    Ok(tx
        .search(rt.as_str(), &q)?
        .rows
        .into_iter()
        .map(|(id, _)| id)
        .collect())
}

/// `POST /{type}`: validates, assigns `id`, stores version 1 (201). With `If-None-Exist`, a
/// single match is answered instead (200), several are 412.
pub fn create(
    tx: &dyn WriteTx,
    mut r: Resource<'_>,
    if_none_exist: Option<&str>,
    id: &str,
    now: &str,
) -> Result<Written, Refusal> {
    let rt = r.resource_type;
    if let Some(cond) = if_none_exist {
        match matching(tx, rt, cond)?.as_slice() {
            [] => {}
            [one] => {
                let s = tx
                    .resource(rt.as_str(), one)?
                    .ok_or_else(|| Refusal::new(500, "exception", "match vanished"))?;
                return Ok(Written::of(rt, one, s, 200));
            }
            _ => {
                return Err(Refusal::new(
                    412,
                    "multiple-matches",
                    format!("If-None-Exist {cond:?} matches several {rt}"),
                ));
            }
        }
    }
    set_id(&mut r, id.to_owned())?;
    check(&r)?;
    let s = write_version(tx, &mut r, None, now)?;
    Ok(Written::of(rt, id, s, 201))
}

/// `PUT /{type}/{id}`: the body's id must be the URL's; `If-Match` must name the current
/// version (412 otherwise); an unknown or deleted id is created (201, update-as-create).
pub fn update(
    tx: &dyn WriteTx,
    rt: ResourceType,
    id: &str,
    mut r: Resource<'_>,
    if_match: Option<&str>,
    now: &str,
) -> Result<Written, Refusal> {
    if r.resource_type != rt {
        return Err(Refusal::new(
            400,
            "invalid",
            format!("a {} sent to /{rt}", r.resource_type),
        ));
    }
    match r.id() {
        Some(b) if b == id => {}
        Some(b) => {
            return Err(Refusal::new(
                400,
                "invalid",
                format!("the body's id {b:?} is not the URL's {id:?}"),
            ));
        }
        None => {
            return Err(Refusal::new(
                400,
                "required",
                "an update needs the resource's id",
            ));
        }
    }
    check(&r)?;
    let current = tx.current(rt.as_str(), id)?;
    if let Some(m) = if_match {
        let live = match &current {
            Some(Current::Live(s)) => Some(s.version),
            _ => None,
        };
        if parse_etag(m).is_none() || parse_etag(m) != live {
            return Err(Refusal::new(
                412,
                "conflict",
                format!("If-Match {m} does not name the current version of {rt}/{id}"),
            ));
        }
    }
    let (previous, status) = match &current {
        None => (None, 201),
        Some(Current::Deleted { version, .. }) => (Some(*version), 201),
        Some(Current::Live(s)) => (Some(s.version), 200),
    };
    let s = write_version(tx, &mut r, previous, now)?;
    Ok(Written::of(rt, id, s, status))
}

/// `PUT /{type}?params`: no match creates (with the body's id, or a new one), one match is
/// updated, several are 412.
pub fn update_conditional(
    tx: &dyn WriteTx,
    rt: ResourceType,
    query: &str,
    mut r: Resource<'_>,
    if_match: Option<&str>,
    new: &str,
    now: &str,
) -> Result<Written, Refusal> {
    match matching(tx, rt, query)?.as_slice() {
        [] => {
            let id = r.id().map_or_else(|| new.to_owned(), str::to_owned);
            set_id(&mut r, id.clone())?;
            update(tx, rt, &id, r, if_match, now)
        }
        [one] => {
            if r.id().is_some_and(|b| b != one) {
                return Err(Refusal::new(
                    400,
                    "invalid",
                    format!("the body's id is not the match {one:?}"),
                ));
            }
            set_id(&mut r, one.clone())?;
            update(tx, rt, one, r, if_match, now)
        }
        _ => Err(Refusal::new(
            412,
            "multiple-matches",
            format!("{query:?} matches several {rt}"),
        )),
    }
}

/// `PATCH /{type}/{id}` with a JSON Patch document (or a JSON Merge Patch object): applied to the current version's stored
/// JSON, read back strictly and validated like any write; `If-Match` as for updates. A
/// failed `test` operation or a patched resource that breaks the definitions is 422.
pub fn patch(
    tx: &dyn WriteTx,
    rt: ResourceType,
    id: &str,
    patch: &[u8],
    if_match: Option<&str>,
    now: &str,
) -> Result<Written, Refusal> {
    let current = match tx.current(rt.as_str(), id)? {
        Some(Current::Live(s)) => s,
        Some(Current::Deleted { .. }) => {
            return Err(Refusal::new(
                410,
                "deleted",
                format!("{rt}/{id} is deleted"),
            ));
        }
        None => {
            return Err(Refusal::new(
                404,
                "not-found",
                format!("{rt}/{id} is not known"),
            ));
        }
    };
    if let Some(m) = if_match
        && parse_etag(m) != Some(current.version)
    {
        return Err(Refusal::new(
            412,
            "conflict",
            format!("If-Match {m} does not name the current version"),
        ));
    }
    // a JSON Patch is an array of operations; an object is a JSON Merge Patch (RFC 7386)
    let merge = patch.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
    let patched = if merge {
        xenrad_fhir_model::patch::merge(current.body.as_bytes(), patch)
    } else {
        xenrad_fhir_model::patch::apply(current.body.as_bytes(), patch)
    };
    let patched = patched.map_err(|e| {
        let mut oo = OperationOutcome::new();
        oo.push(
            Severity::Error,
            if e.test_failed {
                "conflict"
            } else {
                "processing"
            },
            e.message.clone(),
            Some((&e.pointer, Some(rt))),
        );
        Refusal {
            status: if e.op.is_none() { 400 } else { 422 },
            outcome: oo,
        }
    })?;
    let mut r = read_body(patched.as_bytes(), false).map_err(|mut f| {
        f.status = 422;
        f
    })?;
    if r.resource_type != rt || r.id() != Some(id) {
        return Err(Refusal::new(
            422,
            "invalid",
            "a patch may not change the resource type or id",
        ));
    }
    check(&r)?;
    let s = write_version(tx, &mut r, Some(current.version), now)?;
    Ok(Written::of(rt, id, s, 200))
}

/// `DELETE /{type}/{id}`: records the delete as a version (a read then answers 410); deleting
/// what is unknown or already deleted changes nothing (204).
pub fn delete(tx: &dyn WriteTx, rt: ResourceType, id: &str, now: &str) -> Result<Written, Refusal> {
    match tx.current(rt.as_str(), id)? {
        Some(Current::Live(s)) => {
            let version = s.version + 1;
            tx.delete_resource(rt.as_str(), id, version, now)?;
            Ok(Written {
                resource_type: rt,
                id: id.to_owned(),
                version,
                last_updated: now.to_owned(),
                body: None,
                status: 200,
            })
        }
        other => Ok(Written {
            resource_type: rt,
            id: id.to_owned(),
            version: other.as_ref().map_or(0, Current::version),
            last_updated: now.to_owned(),
            body: None,
            status: 204,
        }),
    }
}

/// `DELETE /{type}?params`: one match is deleted, none changes nothing, several are 412
/// (conditional delete `single`).
pub fn delete_conditional(
    tx: &dyn WriteTx,
    rt: ResourceType,
    query: &str,
    now: &str,
) -> Result<Written, Refusal> {
    match matching(tx, rt, query)?.as_slice() {
        [] => Ok(Written {
            resource_type: rt,
            id: String::new(),
            version: 0,
            last_updated: now.to_owned(),
            body: None,
            status: 204,
        }),
        [one] => delete(tx, rt, one, now),
        _ => Err(Refusal::new(
            412,
            "multiple-matches",
            format!("{query:?} matches several {rt}"),
        )),
    }
}

/// One response entry of a transaction or batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryResult {
    /// Position in the request Bundle.
    pub index: usize,
    /// `response.status` (`201 Created`).
    pub status: String,
    /// `response.location` (`Patient/1/_history/1`).
    pub location: Option<String>,
    /// `response.etag`.
    pub etag: Option<String>,
    /// `response.lastModified`.
    pub last_modified: Option<String>,
    /// The resource (writes, reads) or a searchset Bundle (searches), JSON.
    pub resource: Option<String>,
    /// `response.outcome` (OperationOutcome JSON) of a refused batch entry.
    pub outcome: Option<String>,
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        412 => "Precondition Failed",
        422 => "Unprocessable Entity",
        _ => "Error",
    }
}

impl EntryResult {
    fn written(index: usize, w: &Written) -> Self {
        let has_version = w.version > 0 && !w.id.is_empty();
        EntryResult {
            index,
            status: format!("{} {}", w.status, reason(w.status)),
            location: has_version
                .then(|| format!("{}/{}/_history/{}", w.resource_type, w.id, w.version)),
            etag: has_version.then(|| format!("W/\"{}\"", w.version)),
            last_modified: has_version.then(|| w.last_updated.clone()),
            resource: w.body.clone(),
            outcome: None,
        }
    }

    /// A refused batch entry.
    pub fn refused(index: usize, r: &Refusal) -> Self {
        EntryResult {
            index,
            status: format!("{} {}", r.status, reason(r.status)),
            location: None,
            etag: None,
            last_modified: None,
            resource: None,
            outcome: Some(r.outcome.to_json()),
        }
    }
}

/// Where an entry's resource is (planned id) once conditional creates and updates are
/// resolved: `fullUrl` → `Type/id`.
fn resolve_ids(
    tx: &dyn WriteTx,
    plan: &mut Plan<'_>,
    ids: &mut [Option<String>],
) -> Result<Vec<(String, String)>, Refusal> {
    let mut map = Vec::new();
    for (k, e) in plan.entries.iter_mut().enumerate() {
        let Some(rt) = e.request.target.resource_type else {
            continue;
        };
        let id = match e.request.method {
            Method::Post => {
                let existing = match &e.request.if_none_exist {
                    Some(cond) => match matching(tx, rt, cond)
                        .map_err(|r| at(e.index, r))?
                        .as_slice()
                    {
                        [] => None,
                        [one] => Some(one.clone()),
                        _ => {
                            return Err(at(
                                e.index,
                                Refusal::new(
                                    412,
                                    "multiple-matches",
                                    format!("ifNoneExist {cond:?} matches several {rt}"),
                                ),
                            ));
                        }
                    },
                    None => None,
                };
                match existing {
                    Some(found) => {
                        // answered with the existing resource, not created
                        e.request.if_none_exist = Some(format!("_id={found}"));
                        Some(found)
                    }
                    None => Some(new_id()?),
                }
            }
            Method::Put => match (&e.request.target.id, &e.request.target.query) {
                (Some(id), _) => Some(id.clone()),
                (None, Some(q)) => {
                    match matching(tx, rt, q).map_err(|r| at(e.index, r))?.as_slice() {
                        [] => Some(
                            e.resource
                                .as_ref()
                                .and_then(|r| r.id())
                                .map_or_else(new_id, |i| Ok(i.to_owned()))?,
                        ),
                        [one] => Some(one.clone()),
                        _ => {
                            return Err(at(
                                e.index,
                                Refusal::new(
                                    412,
                                    "multiple-matches",
                                    format!("{q:?} matches several {rt}"),
                                ),
                            ));
                        }
                    }
                }
                _ => None,
            },
            _ => e.request.target.id.clone(),
        };
        if let (Some(full), Some(id)) = (&e.full_url, &id) {
            map.push((full.clone(), format!("{rt}/{id}")));
        }
        ids[k] = id;
    }
    Ok(map)
}

/// A refusal of one entry: its expression names the entry.
fn at(index: usize, mut r: Refusal) -> Refusal {
    for i in &mut r.outcome.issues {
        i.diagnostics = format!("Bundle.entry[{index}]: {}", i.diagnostics);
        if i.expression.is_empty() {
            i.expression.push(format!("Bundle.entry[{index}]"));
        } else {
            for e in &mut i.expression {
                *e = format!("Bundle.entry[{index}].resource.{e}");
            }
        }
    }
    r
}

/// Runs a `transaction` Bundle inside one store job: conditional creates/updates and
/// conditional references are resolved first, `fullUrl` references (`urn:uuid:` …) are
/// rewritten to the ids the server assigns, then the entries run in the specification's
/// order (DELETE, POST, PUT/PATCH, GET). The first refusal fails the whole job (the caller's
/// store job then rolls everything back), naming the entry.
pub fn transaction(
    tx: &dyn WriteTx,
    mut plan: Plan<'_>,
    now: &str,
) -> Result<Vec<EntryResult>, Refusal> {
    let mut ids = vec![None; plan.entries.len()];
    let map = resolve_ids(tx, &mut plan, &mut ids)?;
    // conditional references and fullUrl references, in every resource of the Bundle
    for e in &mut plan.entries {
        let index = e.index;
        let Some(r) = e.resource.as_mut() else {
            continue;
        };
        let mut failure = None;
        xenrad_fhir_model::transaction::rewrite_references(r, &mut |reference| {
            if let Some((_, to)) = map.iter().find(|(from, _)| from == reference) {
                return Some(to.clone());
            }
            if is_conditional_reference(reference) && failure.is_none() {
                let (t, q) = reference.split_once('?').unwrap_or_default();
                let rt = ResourceType::from_name(t)?;
                match matching(tx, rt, q) {
                    Ok(found) if found.len() == 1 => return Some(format!("{rt}/{}", found[0])),
                    Ok(found) => {
                        failure = Some(Refusal::new(
                            412,
                            "not-found",
                            format!(
                                "conditional reference {reference:?} matches {} resources",
                                found.len()
                            ),
                        ));
                    }
                    Err(r) => failure = Some(r),
                }
            }
            None
        });
        if let Some(f) = failure {
            return Err(at(index, f));
        }
    }
    let mut results = Vec::with_capacity(plan.entries.len());
    for (k, e) in plan.entries.into_iter().enumerate() {
        let index = e.index;
        let r = run_entry(tx, e, ids[k].as_deref(), now).map_err(|r| at(index, r))?;
        results.push(r);
    }
    results.sort_by_key(|r| r.index);
    Ok(results)
}

/// One entry of a transaction or batch; `id` is the id planned for it.
pub fn run_entry(
    tx: &dyn WriteTx,
    e: PlannedEntry<'_>,
    id: Option<&str>,
    now: &str,
) -> Result<EntryResult, Refusal> {
    let t = &e.request.target;
    let index = e.index;
    let rt = t.resource_type;
    let need_rt =
        || rt.ok_or_else(|| Refusal::new(400, "invalid", "the request URL names no resource type"));
    let w = match e.request.method {
        Method::Post => {
            let r = e
                .resource
                .ok_or_else(|| Refusal::new(400, "required", "POST without a resource"))?;
            let cond = e.request.if_none_exist.as_deref();
            let id = match id {
                Some(i) => i.to_owned(),
                None => new_id()?,
            };
            create(tx, r, cond, &id, now)?
        }
        Method::Put => {
            let rt = need_rt()?;
            let mut r = e
                .resource
                .ok_or_else(|| Refusal::new(400, "required", "PUT without a resource"))?;
            let id = id.ok_or_else(|| Refusal::new(400, "invalid", "PUT needs an id"))?;
            if r.id().is_none() {
                r.set_id(id.to_owned())
                    .map_err(|x| Refusal::new(400, "invalid", x.to_string()))?;
            }
            update(tx, rt, id, r, e.request.if_match.as_deref(), now)?
        }
        Method::Patch => {
            let rt = need_rt()?;
            let r = e
                .resource
                .ok_or_else(|| Refusal::new(400, "required", "PATCH without a Binary"))?;
            let data = r
                .node
                .str("data")
                .ok_or_else(|| Refusal::new(400, "required", "PATCH Binary without data"))?;
            let bytes = base64_decode(data)
                .ok_or_else(|| Refusal::new(400, "invalid", "Binary.data is not base64"))?;
            let id = match (id, &t.query) {
                (Some(i), _) => i.to_owned(),
                (None, Some(q)) => match matching(tx, rt, q)?.as_slice() {
                    [one] => one.clone(),
                    [] => {
                        return Err(Refusal::new(
                            404,
                            "not-found",
                            format!("{q:?} matches nothing"),
                        ));
                    }
                    _ => {
                        return Err(Refusal::new(
                            412,
                            "multiple-matches",
                            format!("{q:?} matches several"),
                        ));
                    }
                },
                _ => return Err(Refusal::new(400, "invalid", "PATCH needs an id")),
            };
            patch(tx, rt, &id, &bytes, e.request.if_match.as_deref(), now)?
        }
        Method::Delete => {
            let rt = need_rt()?;
            match (&t.id, &t.query) {
                (Some(id), _) => delete(tx, rt, id, now)?,
                (None, Some(q)) => delete_conditional(tx, rt, q, now)?,
                _ => {
                    return Err(Refusal::new(
                        400,
                        "invalid",
                        "DELETE needs an id or conditions",
                    ));
                }
            }
        }
        Method::Get | Method::Head => return read_entry(tx, index, &e.request.target),
    };
    Ok(EntryResult::written(index, &w))
}

/// GET inside a Bundle: a read, a vread or a search (answered with a searchset Bundle).
fn read_entry(
    tx: &dyn ReadTx,
    index: usize,
    t: &xenrad_fhir_model::transaction::Target,
) -> Result<EntryResult, Refusal> {
    let rt = t.resource_type.ok_or_else(|| {
        Refusal::new(
            400,
            "not-supported",
            "only reads and type searches are supported in a Bundle",
        )
    })?;
    let ok = |s: StoredResource| EntryResult {
        index,
        status: "200 OK".into(),
        location: None,
        etag: Some(format!("W/\"{}\"", s.version)),
        last_modified: Some(s.last_updated),
        resource: Some(s.body),
        outcome: None,
    };
    match (&t.id, &t.version) {
        (Some(id), Some(v)) => {
            let v: i64 = v
                .parse()
                .map_err(|_| Refusal::new(404, "not-found", "no such version"))?;
            match tx.version(rt.as_str(), id, v)? {
                Some(h) if h.body.is_some() => Ok(ok(StoredResource {
                    version: h.version,
                    last_updated: h.last_updated,
                    body: h.body.unwrap_or_default(),
                })),
                Some(_) => Err(Refusal::new(
                    410,
                    "deleted",
                    format!("{rt}/{id} version {v} is a delete"),
                )),
                None => Err(Refusal::new(
                    404,
                    "not-found",
                    format!("{rt}/{id} has no version {v}"),
                )),
            }
        }
        (Some(id), None) => match tx.current(rt.as_str(), id)? {
            Some(Current::Live(s)) => Ok(ok(s)),
            Some(Current::Deleted { .. }) => Err(Refusal::new(
                410,
                "deleted",
                format!("{rt}/{id} is deleted"),
            )),
            None => Err(Refusal::new(
                404,
                "not-found",
                format!("{rt}/{id} is not known"),
            )),
        },
        (None, _) => {
            let raw = t.query.clone().unwrap_or_default();
            let q = search::parse(rt, &raw).map_err(|oo| Refusal {
                status: 400,
                outcome: oo,
            })?;
            let found = search_with_includes(tx, rt, &q)?;
            let paging = xenrad_fhir_model::bundle::Paging {
                base: format!("{rt}?{raw}"),
                offset: q.offset,
                count: q.count,
                total: Some(found.page.total),
            };
            let mut w = xenrad_fhir_model::bundle::BundleWriter::new(
                "searchset",
                Some(found.page.total),
                &paging.links(),
            );
            for (id, s) in &found.page.rows {
                let full = format!("{rt}/{id}");
                w.entry(&xenrad_fhir_model::bundle::RawEntry {
                    full_url: Some(&full),
                    resource: Some(&s.body),
                    search_mode: Some(xenrad_fhir_model::bundle::EntryMode::Match),
                    ..Default::default()
                });
            }
            Ok(EntryResult {
                index,
                status: "200 OK".into(),
                location: None,
                etag: None,
                last_modified: None,
                resource: Some(w.finish()),
                outcome: None,
            })
        }
    }
}

/// Standard base64 (RFC 4648 §4), padding optional, whitespace ignored.
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' | b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    Some(out)
}

/// A search page and what `_include`/`_revinclude` add to it.
#[derive(Debug, Default)]
pub struct Found {
    /// The matches.
    pub page: Page,
    /// Included resources: type, id and stored version (each once, none of the matches).
    pub included: Vec<(ResourceType, String, StoredResource)>,
}

/// Most resources `_include`/`_revinclude` add to one page.
pub const MAX_INCLUDED: usize = 1000;
/// Most `:iterate` rounds.
const MAX_ITERATE: usize = 4;

/// The reference parameter codes an include follows (`*` = every executed reference
/// parameter of the source type).
fn include_params(i: &Include) -> Vec<&'static str> {
    match i.param {
        Some(p) => vec![p],
        None => search::params_for(i.source)
            .into_iter()
            .filter(|d| d.kind == xenrad_fhir_model::schema::SearchParamType::Reference)
            .map(|d| d.code)
            .collect(),
    }
}

/// Runs a search and its `_include`/`_revinclude` (with `:iterate` over what they added).
pub fn search_with_includes(
    tx: &dyn ReadTx,
    rt: ResourceType,
    q: &Query,
) -> Result<Found, StoreError> {
    let page = tx.search(rt.as_str(), q)?;
    let mut found = Found {
        page,
        included: Vec::new(),
    };
    if q.include.is_empty() && q.revinclude.is_empty() {
        return Ok(found);
    }
    let mut seen: Vec<String> = found
        .page
        .rows
        .iter()
        .map(|(id, _)| format!("{rt}/{id}"))
        .collect();
    let mut frontier: Vec<(ResourceType, String)> = found
        .page
        .rows
        .iter()
        .map(|(id, _)| (rt, id.clone()))
        .collect();
    for round in 0..MAX_ITERATE {
        let mut added: Vec<(ResourceType, String)> = Vec::new();
        let mut add = |t: ResourceType,
                       id: String,
                       found: &mut Found,
                       seen: &mut Vec<String>|
         -> Result<(), StoreError> {
            let key = format!("{t}/{id}");
            if seen.contains(&key) || found.included.len() >= MAX_INCLUDED {
                return Ok(());
            }
            seen.push(key);
            if let Some(s) = tx.resource(t.as_str(), &id)? {
                found.included.push((t, id.clone(), s));
                added.push((t, id));
            }
            Ok(())
        };
        for inc in q.include.iter().filter(|i| round == 0 || i.iterate) {
            let ids: Vec<String> = frontier
                .iter()
                .filter(|(t, _)| *t == inc.source)
                .map(|(_, id)| id.clone())
                .collect();
            let params = include_params(inc);
            for (_, key) in tx.references_from(inc.source.as_str(), &ids, &params)? {
                let Some((t, id)) = key.split_once('/') else {
                    continue;
                };
                let Some(t) = ResourceType::from_name(t) else {
                    continue;
                };
                if inc.target.is_some_and(|want| want != t) {
                    continue;
                }
                add(t, id.to_owned(), &mut found, &mut seen)?;
            }
        }
        for inc in q.revinclude.iter().filter(|i| round == 0 || i.iterate) {
            let targets: Vec<String> = frontier.iter().map(|(t, id)| format!("{t}/{id}")).collect();
            let params = include_params(inc);
            for id in tx.referring(inc.source.as_str(), &params, &targets)? {
                add(inc.source, id, &mut found, &mut seen)?;
            }
        }
        let iterate = q.include.iter().chain(&q.revinclude).any(|i| i.iterate);
        if added.is_empty() || !iterate {
            break;
        }
        frontier = added;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_etags_base64() {
        let a = new_id().unwrap();
        assert_eq!(a.len(), 36);
        assert!(xenrad_fhir_model::transaction::is_id(&a));
        assert_ne!(a, new_id().unwrap());
        assert_eq!(parse_etag("W/\"3\""), Some(3));
        assert_eq!(parse_etag("\"12\""), Some(12));
        assert_eq!(parse_etag("x"), None);
        assert_eq!(
            base64_decode("W3sib3AiOiJ0ZXN0In1d").unwrap(),
            br#"[{"op":"test"}]"#
        );
    }

    #[test]
    fn body_errors_are_400_or_422_with_expressions() {
        let e = read_body(b"{not json", false).unwrap_err();
        assert_eq!(e.status, 400);
        let e = read_body(br#"{"resourceType":"Patient","gender":7}"#, false).unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(e.outcome.issues[0].expression, ["Patient.gender"]);
        let e = read_body(br#"{"resourceType":"Patient","shoe":1}"#, false).unwrap_err();
        assert_eq!(e.outcome.issues[0].expression, ["Patient.shoe"]);
        let r = read_body(
            br#"<Patient xmlns="http://hl7.org/fhir"><gender value="robot"/></Patient>"#,
            true,
        )
        .unwrap();
        let e = check(&r).unwrap_err();
        assert_eq!(
            (e.status, e.outcome.issues[0].expression[0].as_str()),
            (422, "Patient.gender")
        );
    }
}
