//! `xenrad dicom find` (C-FIND SCU) and the query side of `xenrad dicom scp` (`--qr`,
//! `--worklist`): a [`Handler`] answering Patient Root / Study Root C-FIND over an index of
//! the stored instances and Modality Worklist C-FIND over a folder of worklist items.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use xenrad_dimse::assoc::policy::{sop, ts};
use xenrad_dimse::dimse::status;
use xenrad_dimse::net::ClientConfig;
use xenrad_dimse::query::{
    FindOptions, FindQuery, InformationModel, InstanceRecord, QueryError, QueryIndex, Worklist,
    decode_identifier, encode_identifier, identifier_from_pairs, to_dicom_json,
};
use xenrad_dimse::scp::{Handler, QueryFinal, QueryOutcome, QueryRequest, StoredInstance};

use super::CliResult;
use super::dicom::{TlsArgs, connect};

/// Information model of `xenrad dicom find` (PS3.4 C.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Root {
    /// Patient Root Query/Retrieve Information Model.
    Patient,
    /// Study Root Query/Retrieve Information Model.
    Study,
}

/// Where and what `xenrad dicom find`, `move` and `get` ask.
#[derive(Debug, Clone, clap::Args)]
pub struct QueryArgs {
    /// Peer host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Peer port.
    #[arg(long, default_value_t = 11112)]
    pub port: u16,
    /// Our (calling) AE title.
    #[arg(long, default_value = "XENRAD_SCU")]
    pub aet: String,
    /// The peer's (called) AE title.
    #[arg(long, default_value = "ANY-SCP")]
    pub call: String,
    /// Query/retrieve information model.
    #[arg(long, value_enum, default_value_t = Root::Study)]
    pub root: Root,
    /// Query/Retrieve Level (0008,0052): PATIENT, STUDY, SERIES or IMAGE (ignored with
    /// --worklist; a `-k QueryRetrieveLevel=…` wins).
    #[arg(long, default_value = "STUDY")]
    pub level: String,
    /// Query keys `KEYWORD=VALUE` (or `KEYWORD` alone: a return key with universal
    /// matching); keywords or tags (`0010,0010`), nested as `Sequence.Keyword` or
    /// `Sequence[0].Keyword` (PS3.4 C.2.2.2.6).
    #[arg(short = 'k', long = "key")]
    pub keys: Vec<String>,
    /// Our maximum PDU length.
    #[arg(long, default_value_t = 128 * 1024)]
    pub max_pdu: u32,
    /// DICOM TLS.
    #[command(flatten)]
    pub tls: TlsArgs,
}

impl QueryArgs {
    /// The identifier the keys describe, with the Query/Retrieve Level (unless `worklist`)
    /// and, when a value is not ASCII, Specific Character Set ISO_IR 192 (UTF-8) added.
    pub fn identifier(
        &self,
        worklist: bool,
    ) -> Result<xenrad_dimse::query::Identifier, QueryError> {
        let mut pairs: Vec<(&str, &str)> = self
            .keys
            .iter()
            .map(|k| k.split_once('=').unwrap_or((k.as_str(), "")))
            .collect();
        let has = |pairs: &[(&str, &str)], key: &str| pairs.iter().any(|(k, _)| k.trim() == key);
        if !worklist && !has(&pairs, "QueryRetrieveLevel") && !has(&pairs, "0008,0052") {
            pairs.insert(0, ("QueryRetrieveLevel", self.level.as_str()));
        }
        // PS3.5 6.1.2.5.3 / C.12.1.1.2: a query with non-ASCII values names its charset.
        if pairs.iter().any(|(_, v)| !v.is_ascii())
            && !has(&pairs, "SpecificCharacterSet")
            && !has(&pairs, "0008,0005")
        {
            pairs.insert(0, ("SpecificCharacterSet", "ISO_IR 192"));
        }
        identifier_from_pairs(&pairs)
    }

    /// The FIND SOP class for these arguments.
    pub fn find_sop_class(&self, worklist: bool) -> &'static str {
        match (worklist, self.root) {
            (true, _) => sop::MODALITY_WORKLIST_FIND,
            (false, Root::Patient) => sop::PATIENT_ROOT_FIND,
            (false, Root::Study) => sop::STUDY_ROOT_FIND,
        }
    }

    /// The association proposal for `sop_classes` (Explicit then Implicit VR Little Endian).
    pub fn client_config(&self, sop_classes: &[&str]) -> ClientConfig {
        ClientConfig {
            calling_ae: self.aet.clone(),
            called_ae: self.call.clone(),
            contexts: sop_classes
                .iter()
                .map(|c| {
                    (
                        (*c).to_string(),
                        vec![ts::EXPLICIT_VR_LE.into(), ts::IMPLICIT_VR_LE.into()],
                    )
                })
                .collect(),
            max_pdu: self.max_pdu,
            timeouts: xenrad_dimse::assoc::Timeouts::default(),
        }
    }
}

/// `xenrad dicom find`: prints each match as one DICOM JSON object per line (PS3.18 F.2);
/// exits 0 on success, 1 with the status on stderr otherwise.
pub async fn find(
    args: &QueryArgs,
    worklist: bool,
    cancel_after: Option<usize>,
    repeat: usize,
) -> CliResult {
    use std::io::Write;
    let sop_class = args.find_sop_class(worklist);
    let identifier = args.identifier(worklist)?;
    let addr = format!("{}:{}", args.host, args.port);
    let mut a = connect(&addr, &args.client_config(&[sop_class]), &args.tls).await?;
    let ts_uid = a
        .accepted_transfer_syntax(sop_class)
        .ok_or_else(|| format!("{addr} accepted no context for {sop_class}"))?
        .to_string();
    let bytes = Bytes::from(encode_identifier(&identifier, &ts_uid)?);
    let mut out = std::io::BufWriter::new(std::io::stdout());
    let mut bad: Option<String> = None;
    let mut fin = None;
    // The same query `repeat` times on one association (a long-lived SCU, for benchmarks).
    for _ in 0..repeat.max(1) {
        let mut seen = 0usize;
        let f = a
            .find(sop_class, bytes.clone(), |r| {
                seen += 1;
                match r
                    .dataset
                    .as_deref()
                    .map(|d| decode_identifier(d, &ts_uid).and_then(|i| to_dicom_json(&i)))
                {
                    Some(Ok(json)) => {
                        if writeln!(out, "{json}").is_err() {
                            bad = Some("standard output closed".into());
                        }
                    }
                    Some(Err(e)) => bad = Some(format!("match {seen}: {e}")),
                    None => bad = Some(format!("match {seen} without an identifier")),
                }
                cancel_after.is_none_or(|n| seen < n)
            })
            .await?;
        let stop = f.status != status::SUCCESS || bad.is_some();
        fin = Some(f);
        if stop {
            break;
        }
    }
    out.flush()?;
    a.release().await?;
    let fin = fin.expect("at least one query ran");
    if let Some(b) = bad {
        eprintln!("xenrad dicom find: {b}");
        return Ok(ExitCode::from(1));
    }
    let cancelled = cancel_after.is_some() && fin.status == status::CANCEL;
    if fin.status == status::SUCCESS || cancelled {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "xenrad dicom find: status 0x{:04X}{}",
            fin.status,
            fin.error_comment
                .map(|c| format!(" ({c})"))
                .unwrap_or_default()
        );
        Ok(ExitCode::from(1))
    }
}

/// The query services of `xenrad dicom scp`: an index of what is stored (`--qr`) and a
/// worklist folder (`--worklist`).
pub struct QueryServices {
    index: Option<RwLock<QueryIndex>>,
    worklist: Option<Worklist>,
    opts: FindOptions,
}

impl std::fmt::Debug for QueryServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryServices")
            .field("qr", &self.index.is_some())
            .field("worklist", &self.worklist.as_ref().map(Worklist::len))
            .finish_non_exhaustive()
    }
}

impl QueryServices {
    /// Indexes the Part 10 files under `out` (when `qr`) and loads `worklist`; reports
    /// what could not be read on stderr.
    pub fn open(
        out: &Path,
        qr: bool,
        worklist: Option<&PathBuf>,
        max_matches: Option<usize>,
    ) -> std::io::Result<Self> {
        let index = if qr {
            std::fs::create_dir_all(out)?;
            let mut ix = QueryIndex::new();
            let report = ix.index_dir(out);
            eprintln!(
                "xenrad dicom scp: query index: {} instance(s), {} other file(s) skipped, {} failed",
                report.indexed,
                report.skipped,
                report.failed.len()
            );
            for (p, e) in &report.failed {
                eprintln!("xenrad dicom scp: not indexed: {}: {e}", p.display());
            }
            Some(RwLock::new(ix))
        } else {
            None
        };
        let worklist = match worklist {
            Some(dir) => {
                let (wl, errors) = Worklist::load_dir(dir).map_err(std::io::Error::other)?;
                for (p, e) in &errors {
                    eprintln!("xenrad dicom scp: worklist: {}: {e}", p.display());
                }
                eprintln!(
                    "xenrad dicom scp: worklist: {} item(s) from {}",
                    wl.len(),
                    dir.display()
                );
                Some(wl)
            }
            None => None,
        };
        Ok(Self {
            index,
            worklist,
            opts: FindOptions {
                max_matches,
                ..FindOptions::default()
            },
        })
    }

    /// The index of what is stored (`--qr`), for C-MOVE/C-GET (`dicom_retrieve`).
    pub fn index(&self) -> Option<&RwLock<QueryIndex>> {
        self.index.as_ref()
    }

    /// The SOP classes to accept for these services.
    pub fn sop_classes(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.index.is_some() {
            v.extend([sop::PATIENT_ROOT_FIND, sop::STUDY_ROOT_FIND].map(String::from));
        }
        if self.worklist.is_some() {
            v.push(sop::MODALITY_WORKLIST_FIND.into());
        }
        v
    }

    /// Adds a stored instance to the index.
    pub fn stored(&self, inst: &StoredInstance) {
        if let Some(ix) = &self.index {
            match InstanceRecord::from_part10_file(&inst.path) {
                Ok(r) => {
                    if let Err(e) = ix
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .insert(r)
                    {
                        eprintln!(
                            "xenrad dicom scp: not indexed: {}: {e}",
                            inst.path.display()
                        );
                    }
                }
                Err(e) => eprintln!(
                    "xenrad dicom scp: not indexed: {}: {e}",
                    inst.path.display()
                ),
            }
        }
    }

    fn fail(e: &QueryError) -> QueryFinal {
        QueryFinal {
            status: e.status(),
            error_comment: Some(e.error_comment()),
            ..QueryFinal::default()
        }
    }

    /// Answers a C-FIND (PS3.4 C.4.1.3.1, K.4.1.3): each match as it is found, encoded in
    /// the request's transfer syntax; 0xA700 after the match limit (PS3.4 C.4.1.1.4).
    pub fn find(&self, req: &QueryRequest, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> QueryFinal {
        let Some(model) = InformationModel::from_sop_class(&req.sop_class_uid) else {
            return QueryFinal::status(status::SOP_CLASS_NOT_SUPPORTED);
        };
        let query = match decode_identifier(&req.identifier, &req.transfer_syntax)
            .and_then(|id| FindQuery::parse(id, model))
        {
            Ok(q) => q,
            Err(e) => return Self::fail(&e),
        };
        let mut send = |m: &xenrad_dimse::query::Identifier| -> Result<bool, QueryFinal> {
            let bytes = encode_identifier(m, &req.transfer_syntax).map_err(|e| Self::fail(&e))?;
            Ok(emit(bytes))
        };
        let truncated = match (model, &self.index, &self.worklist) {
            (InformationModel::ModalityWorklist, _, Some(wl)) => {
                let mut it = wl.find(&query, &self.opts);
                for m in it.by_ref() {
                    match send(&m) {
                        Ok(true) => {}
                        Ok(false) => return QueryOutcome::cancelled(),
                        Err(f) => return f,
                    }
                }
                it.truncated()
            }
            (InformationModel::PatientRoot | InformationModel::StudyRoot, Some(ix), _) => {
                // The read lock is taken per match, so stored instances are indexed while a
                // long query streams.
                let mut cursor = ix
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .find_cursor(query, self.opts.clone());
                loop {
                    let next = cursor
                        .next_match(&ix.read().unwrap_or_else(std::sync::PoisonError::into_inner));
                    let Some(m) = next else { break };
                    match send(&m) {
                        Ok(true) => {}
                        Ok(false) => return QueryOutcome::cancelled(),
                        Err(f) => return f,
                    }
                }
                cursor.truncated()
            }
            _ => return QueryFinal::status(status::SOP_CLASS_NOT_SUPPORTED),
        };
        if truncated {
            QueryFinal {
                status: status::OUT_OF_RESOURCES,
                error_comment: Some("match limit reached".into()),
                ..QueryFinal::default()
            }
        } else {
            QueryFinal::status(status::SUCCESS)
        }
    }
}

/// The `xenrad dicom scp` handler: stores, indexes and answers queries.
#[derive(Debug)]
pub struct ScpHandler {
    /// Query services.
    pub query: Arc<QueryServices>,
}

impl Handler for ScpHandler {
    fn on_stored(&self, inst: &StoredInstance) -> u16 {
        self.query.stored(inst);
        status::SUCCESS
    }
    fn find(&self, req: &QueryRequest, emit: &mut dyn FnMut(Vec<u8>) -> bool) -> QueryFinal {
        self.query.find(req, emit)
    }
}
