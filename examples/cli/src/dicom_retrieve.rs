//! `xenrad dicom move` (C-MOVE SCU), `xenrad dicom get` (C-GET SCU), `xenrad dicom commit`
//! (Storage Commitment SCU) and the retrieve/commitment side of `xenrad dicom scp`
//! (`--peer`): C-MOVE/C-GET over the `--qr` index, storage commitment for what is stored.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use xenrad_dimse::assoc::policy::{sop, ts};
use xenrad_dimse::dimse::status;
use xenrad_dimse::net::{ClientConfig, Peers, RetrieveConfig, RetrieveOutcome};
use xenrad_dimse::query::{InformationModel, QueryError, decode_identifier, encode_identifier};
use xenrad_dimse::scp::commitment::{CommitmentRequest, CommitmentResult, SopRef, reason};
use xenrad_dimse::scp::retrieve::{Part10Source, RetrieveInstance};
use xenrad_dimse::scp::{Handler, QueryFinal, QueryRequest, StoredInstance};
use xenrad_dimse::store::{FileSink, FsyncPolicy};

use super::CliResult;
use super::dicom::{TlsArgs, connect};
use super::dicom_query::{QueryArgs, QueryServices, Root, ScpHandler};

/// Storage SOP classes `xenrad dicom get` offers to receive (with the SCP role, PS3.7
/// D.3.3.4) unless `--storage-class` names others: the common image, SR, RT and document
/// classes (PS3.4 B.5).
pub const GET_STORAGE_CLASSES: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.1",      // CR
    "1.2.840.10008.5.1.4.1.1.1.1",    // DX for presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  // DX for processing
    "1.2.840.10008.5.1.4.1.1.1.2",    // MG for presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  // MG for processing
    "1.2.840.10008.5.1.4.1.1.2",      // CT
    "1.2.840.10008.5.1.4.1.1.2.1",    // Enhanced CT
    "1.2.840.10008.5.1.4.1.1.3.1",    // US multi-frame
    "1.2.840.10008.5.1.4.1.1.4",      // MR
    "1.2.840.10008.5.1.4.1.1.4.1",    // Enhanced MR
    "1.2.840.10008.5.1.4.1.1.6.1",    // US
    "1.2.840.10008.5.1.4.1.1.7",      // Secondary Capture
    "1.2.840.10008.5.1.4.1.1.7.4",    // Multi-frame true color SC
    "1.2.840.10008.5.1.4.1.1.9.1.1",  // 12-lead ECG
    "1.2.840.10008.5.1.4.1.1.11.1",   // Grayscale Softcopy Presentation State
    "1.2.840.10008.5.1.4.1.1.12.1",   // XA
    "1.2.840.10008.5.1.4.1.1.12.2",   // RF
    "1.2.840.10008.5.1.4.1.1.20",     // NM
    "1.2.840.10008.5.1.4.1.1.66",     // Raw Data
    "1.2.840.10008.5.1.4.1.1.66.4",   // Segmentation
    "1.2.840.10008.5.1.4.1.1.77.1.4", // VL Photographic
    "1.2.840.10008.5.1.4.1.1.88.11",  // Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  // Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  // Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.59",  // Key Object Selection
    "1.2.840.10008.5.1.4.1.1.104.1",  // Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.128",    // PET
    "1.2.840.10008.5.1.4.1.1.481.1",  // RT Image
    "1.2.840.10008.5.1.4.1.1.481.2",  // RT Dose
    "1.2.840.10008.5.1.4.1.1.481.3",  // RT Structure Set
    "1.2.840.10008.5.1.4.1.1.481.5",  // RT Plan
];

fn move_class(root: Root) -> &'static str {
    match root {
        Root::Patient => sop::PATIENT_ROOT_MOVE,
        Root::Study => sop::STUDY_ROOT_MOVE,
    }
}

fn get_class(root: Root) -> &'static str {
    match root {
        Root::Patient => sop::PATIENT_ROOT_GET,
        Root::Study => sop::STUDY_ROOT_GET,
    }
}

/// The final response as one JSON line: status, counts, failed UIDs, error comment.
fn summary(o: &RetrieveOutcome) -> String {
    let c = o.response.counts.unwrap_or_default();
    let mut v = serde_json::json!({
        "status": format!("0x{:04X}", o.response.status),
        "completed": c.completed,
        "failed": c.failed,
        "warning": c.warning,
        "failed_uids": o.failed_uids,
    });
    if o.response.status == status::CANCEL {
        v["remaining"] = c.remaining.into();
    }
    if let Some(e) = &o.response.error_comment {
        v["error_comment"] = e.clone().into();
    }
    v.to_string()
}

fn exit_for(st: u16) -> ExitCode {
    if st == status::SUCCESS {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `xenrad dicom move`: C-MOVE (PS3.4 C.4.2) of what the keys select to `dest`; prints the
/// final sub-operation counts as one JSON line; exits 0 on 0x0000, 1 otherwise.
pub async fn move_(args: &QueryArgs, dest: &str) -> CliResult {
    let sop_class = move_class(args.root);
    let identifier = args.identifier(false)?;
    let addr = format!("{}:{}", args.host, args.port);
    let mut a = connect(&addr, &args.client_config(&[sop_class]), &args.tls).await?;
    let ts_uid = a
        .accepted_transfer_syntax(sop_class)
        .ok_or_else(|| format!("{addr} accepted no context for {sop_class}"))?
        .to_string();
    let bytes = Bytes::from(encode_identifier(&identifier, &ts_uid)?);
    let o = a.move_(sop_class, dest, bytes, |_| true).await?;
    a.release().await?;
    println!("{}", summary(&o));
    Ok(exit_for(o.response.status))
}

/// `xenrad dicom get`: C-GET (PS3.4 C.4.3) of what the keys select; the instances arrive on
/// the same association (SCP role proposed for `storage_classes`) and are written as Part 10
/// files into `out` (each fsynced before it is answered unless `no_fsync`); prints one `received CLASS UID PATH` line per instance, then the final
/// counts as one JSON line; exits 0 on 0x0000, 1 otherwise.
pub async fn get(
    args: &QueryArgs,
    out: &Path,
    storage_classes: &[String],
    no_fsync: bool,
) -> CliResult {
    std::fs::create_dir_all(out)?;
    let sop_class = get_class(args.root);
    let identifier = args.identifier(false)?;
    let addr = format!("{}:{}", args.host, args.port);
    let classes: Vec<String> = if storage_classes.is_empty() {
        GET_STORAGE_CLASSES
            .iter()
            .map(|s| (*s).to_string())
            .collect()
    } else {
        storage_classes.to_vec()
    };
    let mut cfg = args.client_config(&[sop_class]);
    for c in &classes {
        cfg.contexts.push((
            c.clone(),
            vec![ts::EXPLICIT_VR_LE.into(), ts::IMPLICIT_VR_LE.into()],
        ));
    }
    let roles: Vec<(String, bool, bool)> =
        classes.iter().map(|c| (c.clone(), false, true)).collect();
    let mut a = connect_roles(&addr, &cfg, &roles, &args.tls).await?;
    let ts_uid = a
        .accepted_transfer_syntax(sop_class)
        .ok_or_else(|| format!("{addr} accepted no context for {sop_class}"))?
        .to_string();
    let bytes = Bytes::from(encode_identifier(&identifier, &ts_uid)?);
    // Each instance durable on its own (fdatasync, rename, directory fsync) before its
    // C-STORE-RSP, unless --no-fsync; no journal folder in the output directory.
    let sink = FileSink::new(out).with_fsync(if no_fsync {
        FsyncPolicy::None
    } else {
        FsyncPolicy::Durable
    });
    let o = a.get(sop_class, bytes, &sink, |_| true).await?;
    a.release().await?;
    for (class, uid, path) in &o.received {
        println!("received {class} {uid} {}", path.display());
    }
    println!("{}", summary(&o));
    Ok(exit_for(o.response.status))
}

async fn connect_roles(
    addr: &str,
    cfg: &ClientConfig,
    roles: &[(String, bool, bool)],
    tls: &TlsArgs,
) -> Result<xenrad_dimse::net::ScuAssociation, Box<dyn std::error::Error + Send + Sync>> {
    if tls.enabled() {
        // Role selection over TLS is not wired in the CLI: refuse rather than negotiate
        // an association the peer cannot send the instances on.
        return Err("xenrad dicom get over DICOM TLS is not supported".into());
    }
    Ok(xenrad_dimse::net::ScuAssociation::connect_with_roles(addr, cfg, roles).await?)
}

/// A Transaction UID (PS3.4 J.3.2.1.1): `2.25.` and a 128-bit number from the clock, the
/// process ID and a counter (PS3.5 B.2).
fn transaction_uid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let v = (nanos << 40)
        ^ (u128::from(std::process::id()) << 16)
        ^ u128::from(N.fetch_add(1, Ordering::Relaxed));
    format!("2.25.{v}")
}

/// `xenrad dicom commit`: Storage Commitment (PS3.4 J.3) of the instances in `files`;
/// prints `committed UID` or `failed UID 0xNNNN` per instance; exits 0 when all were
/// committed, 1 otherwise.
#[allow(clippy::too_many_arguments)]
pub async fn commit(
    host: &str,
    port: u16,
    aet: &str,
    call: &str,
    files: &[PathBuf],
    wait: Duration,
    tls: &TlsArgs,
) -> CliResult {
    let mut references = Vec::new();
    for f in files {
        let src = Part10Source::open(f)?;
        references.push(SopRef {
            sop_class_uid: src.sop_class_uid,
            sop_instance_uid: src.sop_instance_uid,
        });
    }
    let req = CommitmentRequest {
        transaction_uid: transaction_uid(),
        references,
    };
    let cfg = ClientConfig {
        calling_ae: aet.into(),
        called_ae: call.into(),
        contexts: vec![(
            sop::STORAGE_COMMITMENT_PUSH.into(),
            vec![ts::EXPLICIT_VR_LE.into(), ts::IMPLICIT_VR_LE.into()],
        )],
        max_pdu: 128 * 1024,
        timeouts: xenrad_dimse::assoc::Timeouts::default(),
    };
    let addr = format!("{host}:{port}");
    let mut a = connect(&addr, &cfg, tls).await?;
    let r = a.commit(&req, wait).await?;
    a.release().await?;
    let failed: HashMap<&str, u16> = r
        .failed
        .iter()
        .map(|(x, c)| (x.sop_instance_uid.as_str(), *c))
        .collect();
    let committed: std::collections::HashSet<&str> = r
        .committed
        .iter()
        .map(|x| x.sop_instance_uid.as_str())
        .collect();
    let mut all = true;
    for x in &req.references {
        let uid = x.sop_instance_uid.as_str();
        if committed.contains(uid) {
            println!("committed {uid}");
        } else {
            all = false;
            // Neither list: the SCP did not answer for it (processing failure).
            let code = failed
                .get(uid)
                .copied()
                .unwrap_or(reason::PROCESSING_FAILURE);
            println!("failed {uid} 0x{code:04X}");
        }
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Parses `--peer AE=HOST:PORT` options into the server's retrieve configuration.
pub fn retrieve_config(
    peers: &[String],
    max_sub_associations: usize,
) -> Result<RetrieveConfig, String> {
    let mut table = Peers::new();
    for p in peers {
        let (ae, addr) = Peers::parse_entry(p)?;
        table.insert(ae, addr);
    }
    Ok(RetrieveConfig {
        peers: table,
        max_sub_associations,
        ..RetrieveConfig::default()
    })
}

/// The instances `xenrad dicom scp` holds for storage commitment: SOP Instance UID →
/// (SOP Class UID, file), from the Part 10 files under `--out` at start and every instance
/// stored since.
#[derive(Debug, Default)]
pub struct Held {
    map: RwLock<HashMap<String, (String, PathBuf)>>,
}

impl Held {
    /// Reads the File Meta of every Part 10 file under `dir` (the journal folder and
    /// temporary files skipped).
    pub fn scan(dir: &Path) -> Self {
        let held = Self::default();
        let mut stack = vec![dir.to_path_buf()];
        let mut map = held
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(d) = stack.pop() {
            let Ok(rd) = std::fs::read_dir(&d) else {
                continue;
            };
            for e in rd.flatten() {
                let p = e.path();
                let hidden = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'));
                if hidden {
                    continue;
                }
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(src) = Part10Source::open(&p) {
                    map.insert(src.sop_instance_uid, (src.sop_class_uid, p));
                }
            }
        }
        drop(map);
        held
    }

    fn stored(&self, inst: &StoredInstance) {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(
                inst.sop_instance_uid.clone(),
                (inst.sop_class_uid.clone(), inst.path.clone()),
            );
    }

    /// Which references are held (PS3.4 J.3.3.1.1.2): a SOP instance stored here under the
    /// same SOP class and whose file is still there is committed; an unknown one fails
    /// 0x0112, one stored under another class 0x0119.
    pub fn check(&self, req: &CommitmentRequest) -> CommitmentResult {
        let map = self
            .map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut r = CommitmentResult {
            transaction_uid: req.transaction_uid.clone(),
            ..CommitmentResult::default()
        };
        for x in &req.references {
            match map.get(&x.sop_instance_uid) {
                Some((class, path)) if *class == x.sop_class_uid && path.is_file() => {
                    r.committed.push(x.clone());
                }
                Some((class, _)) if *class != x.sop_class_uid => {
                    r.failed.push((x.clone(), reason::CLASS_INSTANCE_CONFLICT));
                }
                _ => r.failed.push((x.clone(), reason::NO_SUCH_OBJECT_INSTANCE)),
            }
        }
        r
    }
}

/// The `xenrad dicom scp` handler with retrieve and storage commitment: stores, indexes and
/// answers C-FIND through [`ScpHandler`], C-MOVE/C-GET over the `--qr` index, storage
/// commitment over [`Held`].
#[derive(Debug)]
pub struct RetrieveHandler {
    /// C-STORE and C-FIND.
    pub inner: ScpHandler,
    /// Query services (the index).
    pub query: Arc<QueryServices>,
    /// What is stored, for storage commitment.
    pub held: Held,
}

impl RetrieveHandler {
    /// The SOP classes to accept besides C-FIND's: MOVE/GET of both roots with `--qr`, and
    /// the Storage Commitment Push Model.
    pub fn sop_classes(query: &QueryServices) -> Vec<String> {
        let mut v = vec![sop::STORAGE_COMMITMENT_PUSH.to_string()];
        if query.index().is_some() {
            v.extend(
                [
                    sop::PATIENT_ROOT_MOVE,
                    sop::PATIENT_ROOT_GET,
                    sop::STUDY_ROOT_MOVE,
                    sop::STUDY_ROOT_GET,
                ]
                .map(String::from),
            );
        }
        v
    }
}

fn refuse(e: &QueryError) -> QueryFinal {
    QueryFinal {
        status: e.status(),
        error_comment: Some(e.error_comment()),
        ..QueryFinal::default()
    }
}

impl Handler for RetrieveHandler {
    fn on_stored(&self, inst: &StoredInstance) -> u16 {
        self.held.stored(inst);
        self.inner.on_stored(inst)
    }
    fn find(&self, req: &QueryRequest, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> QueryFinal {
        self.inner.find(req, emit)
    }
    fn retrieve(&self, req: &QueryRequest) -> Result<Vec<RetrieveInstance>, QueryFinal> {
        let (Some(ix), Some(model)) = (
            self.query.index(),
            InformationModel::from_sop_class(&req.sop_class_uid),
        ) else {
            return Err(QueryFinal::status(status::SOP_CLASS_NOT_SUPPORTED));
        };
        let id =
            decode_identifier(&req.identifier, &req.transfer_syntax).map_err(|e| refuse(&e))?;
        let items = ix
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retrieve(&id, model)
            .map_err(|e| refuse(&e))?;
        Ok(items.into_iter().map(RetrieveInstance::from).collect())
    }
    fn commitment(&self, _calling_ae: &str, req: &CommitmentRequest) -> Option<CommitmentResult> {
        Some(self.held.check(req))
    }
}
