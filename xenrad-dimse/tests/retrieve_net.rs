//! C-GET, C-MOVE and Storage Commitment over TCP: our SCU against our SCP, and (with
//! `XENRAD_PEERS` set, see `scripts/peers.sh`) against DCMTK `getscu`, `movescu`,
//! `storescp`, `dcmqrscp` and pynetdicom in both roles. Retrieved instances must equal the
//! sent ones byte for byte after the File Meta.
#![cfg(feature = "tokio")]
#![allow(clippy::many_single_char_names)]

mod common;
use bytes::Bytes;
use common::{CT, ELE, ILE, dataset_ele};
use dicom_core::{DataElement, PrimitiveValue, Tag, VR};
use dicom_object::InMemDicomObject;
use std::collections::HashSet;
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::Command as Proc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xenrad_dimse::assoc::AcceptorPolicy;
use xenrad_dimse::assoc::policy::sop;
use xenrad_dimse::dimse::status;
use xenrad_dimse::net::{ClientConfig, Peers, RetrieveConfig, ScuAssociation, Server};
use xenrad_dimse::scp::commitment::{CommitmentRequest, CommitmentResult, SopRef, reason};
use xenrad_dimse::scp::retrieve::{RetrieveInstance, decode_dataset, encode_dataset};
use xenrad_dimse::scp::{Handler, QueryFinal, QueryRequest, StoreOnly};
use xenrad_dimse::store::{FileMeta, encode_file_meta, parse_part10};

const STUDY_INSTANCE_UID: Tag = Tag(0x0020, 0x000D);
const QUERY_RETRIEVE_LEVEL: Tag = Tag(0x0008, 0x0052);

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xenrad-rt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// An instance on disk the test SCP serves: its study and its file.
#[derive(Clone, Debug)]
struct Held {
    study: String,
    item: RetrieveInstance,
}

/// Answers C-GET/C-MOVE by Study Instance UID over a fixed list, and storage commitment
/// for the SOP instances of that list.
struct Archive {
    held: Vec<Held>,
    /// How long making a commitment result takes.
    delay: Duration,
}

impl Handler for Archive {
    fn retrieve(&self, req: &QueryRequest) -> Result<Vec<RetrieveInstance>, QueryFinal> {
        let id = decode_dataset(&req.identifier, &req.transfer_syntax).map_err(|e| QueryFinal {
            status: status::CANNOT_UNDERSTAND,
            error_comment: Some(e.to_string()),
            ..QueryFinal::default()
        })?;
        let study = id
            .element_opt(STUDY_INSTANCE_UID)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string());
        Ok(self
            .held
            .iter()
            .filter(|h| study.as_deref().is_none_or(|s| s == h.study))
            .map(|h| h.item.clone())
            .collect())
    }
    fn commitment(&self, _ae: &str, req: &CommitmentRequest) -> Option<CommitmentResult> {
        std::thread::sleep(self.delay);
        let have: HashSet<(&str, &str)> = self
            .held
            .iter()
            .map(|h| {
                (
                    h.item.sop_class_uid.as_str(),
                    h.item.sop_instance_uid.as_str(),
                )
            })
            .collect();
        let mut r = CommitmentResult {
            transaction_uid: req.transaction_uid.clone(),
            ..CommitmentResult::default()
        };
        for x in &req.references {
            if have.contains(&(x.sop_class_uid.as_str(), x.sop_instance_uid.as_str())) {
                r.committed.push(x.clone());
            } else {
                r.failed.push((x.clone(), reason::NO_SUCH_OBJECT_INSTANCE));
            }
        }
        Some(r)
    }
}

/// Writes `n` Part 10 CT files of study `study` (about `size` bytes each) into `dir`.
fn make_files(dir: &Path, study: &str, n: usize, size: usize) -> Vec<Held> {
    (0..n)
        .map(|i| {
            let inst = format!("{study}.{}", i + 1);
            let mut f = encode_file_meta(&FileMeta {
                sop_class_uid: CT,
                sop_instance_uid: &inst,
                transfer_syntax: ELE,
                implementation_class_uid: "1.2.3",
                implementation_version_name: "TEST",
                source_ae: None,
            });
            f.extend_from_slice(&dataset_ele(CT, &inst, study, size + i));
            let path = dir.join(format!("{inst}.dcm"));
            std::fs::write(&path, &f).unwrap();
            Held {
                study: study.into(),
                item: RetrieveInstance {
                    sop_class_uid: CT.into(),
                    sop_instance_uid: inst,
                    transfer_syntax_uid: ELE.into(),
                    path,
                },
            }
        })
        .collect()
}

/// The data set bytes of a Part 10 file (after the File Meta).
fn dataset_of(path: &Path) -> Vec<u8> {
    let b = std::fs::read(path).unwrap();
    let m = parse_part10(&b).unwrap_or_else(|| panic!("{} is no Part 10 file", path.display()));
    b[m.dataset_offset..].to_vec()
}

/// A Part 10 file found in an output directory.
#[derive(Debug)]
struct Found {
    uid: String,
    ts: String,
    dataset: Vec<u8>,
    path: PathBuf,
}

/// Every Part 10 file under `dir`, by SOP Instance UID.
fn datasets_in(dir: &Path) -> Vec<Found> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p)
                && let Some(m) = parse_part10(&b)
            {
                out.push(Found {
                    uid: m.sop_instance_uid.to_string(),
                    ts: m.transfer_syntax.to_string(),
                    dataset: b[m.dataset_offset..].to_vec(),
                    path: p.clone(),
                });
            }
        }
    }
    out.sort_by(|a, b| a.uid.cmp(&b.uid));
    out
}

/// Element-for-element equality of two data sets: tags, VRs and values (sequences item by
/// item; text compared without its padding), ignoring group lengths and Data Set Trailing
/// Padding (FFFC,FFFC) (both optional; receivers such as DCMTK drop or add them) and how
/// lengths were encoded.
fn same_elements(a: &InMemDicomObject, b: &InMemDicomObject) -> Result<(), String> {
    let keep = |e: &&dicom_object::mem::InMemElement| {
        let t = e.header().tag;
        t.element() != 0 && t != Tag(0xFFFC, 0xFFFC)
    };
    let ea: Vec<_> = a.iter().filter(keep).collect();
    let eb: Vec<_> = b.iter().filter(keep).collect();
    if ea.len() != eb.len() {
        return Err(format!("element count {} vs {}", ea.len(), eb.len()));
    }
    for (x, y) in ea.iter().zip(&eb) {
        let tag = x.header().tag;
        if tag != y.header().tag || x.vr() != y.vr() {
            return Err(format!("{tag} vs {}", y.header().tag));
        }
        match (x.items(), y.items()) {
            (Some(ia), Some(ib)) => {
                if ia.len() != ib.len() {
                    return Err(format!("{tag}: item count"));
                }
                for (p, q) in ia.iter().zip(ib) {
                    same_elements(p, q).map_err(|e| format!("{tag} > {e}"))?;
                }
            }
            (None, None) => {
                let same = x.value().primitive() == y.value().primitive()
                    || matches!((x.to_str(), y.to_str()), (Ok(p), Ok(q))
                        if p.trim_end_matches(['\0', ' ']) == q.trim_end_matches(['\0', ' ']))
                    || x.value().to_bytes().ok() == y.value().to_bytes().ok();
                if !same {
                    return Err(format!("{tag}: values differ"));
                }
            }
            _ => return Err(format!("{tag}: sequence vs value")),
        }
    }
    Ok(())
}

/// Retrieved instances equal their sources: byte for byte after the File Meta when they
/// came in the stored transfer syntax (`exact`: receivers that store what they got, ours
/// and pynetdicom), element for element (dicom-rs) when re-encoded on the way or by a
/// receiver that rewrites files (DCMTK).
fn expect_same(held: &[Held], got: &[Found], exact: bool) {
    let mut want: Vec<&Held> = held.iter().collect();
    want.sort_by(|a, b| a.item.sop_instance_uid.cmp(&b.item.sop_instance_uid));
    want.dedup_by(|a, b| a.item.sop_instance_uid == b.item.sop_instance_uid);
    let uids: Vec<&str> = got.iter().map(|g| g.uid.as_str()).collect();
    assert_eq!(got.len(), want.len(), "instance count: got {uids:?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g.uid, w.item.sop_instance_uid);
        if g.ts == w.item.transfer_syntax_uid && (exact || g.dataset == dataset_of(&w.item.path)) {
            assert!(
                g.dataset == dataset_of(&w.item.path),
                "{}: data set differs from the source",
                g.uid
            );
        } else {
            let a = dicom_object::open_file(&g.path).unwrap();
            let b = dicom_object::open_file(&w.item.path).unwrap();
            if let Err(at) = same_elements(&a, &b) {
                panic!(
                    "{}: {} -> {} differs element-wise at {at}",
                    g.uid, w.item.transfer_syntax_uid, g.ts
                );
            }
        }
    }
}

struct TestServer {
    port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn qr_policy(ae: &str) -> AcceptorPolicy {
    AcceptorPolicy {
        ae_title: ae.into(),
        abstract_syntaxes: vec![
            sop::STUDY_ROOT_GET.into(),
            sop::STUDY_ROOT_MOVE.into(),
            sop::PATIENT_ROOT_GET.into(),
            sop::PATIENT_ROOT_MOVE.into(),
            sop::STORAGE_COMMITMENT_PUSH.into(),
        ],
        ..AcceptorPolicy::default()
    }
}

fn start(store_dir: &Path, ae: &str, handler: Arc<dyn Handler>, rc: RetrieveConfig) -> TestServer {
    let std_listener = StdListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let port = std_listener.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let d = store_dir.to_path_buf();
    let policy = qr_policy(ae);
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let mut cfg = common::small_journal_config(&d);
            cfg.policy = Arc::new(policy);
            Server::new(cfg, handler)
                .with_retrieve(rc)
                .run(listener, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
    });
    TestServer {
        port,
        stop: Some(tx),
        thread: Some(thread),
    }
}

fn identifier(study: &str, ts: &str) -> Bytes {
    let obj = InMemDicomObject::from_element_iter([
        DataElement::new(QUERY_RETRIEVE_LEVEL, VR::CS, PrimitiveValue::from("STUDY")),
        DataElement::new(STUDY_INSTANCE_UID, VR::UI, PrimitiveValue::from(study)),
    ]);
    Bytes::from(encode_dataset(&obj, ts).unwrap())
}

fn client(called: &str, contexts: &[&str]) -> ClientConfig {
    ClientConfig {
        calling_ae: "RTSCU".into(),
        called_ae: called.into(),
        contexts: contexts
            .iter()
            .map(|c| ((*c).to_string(), vec![ELE.to_string(), ILE.to_string()]))
            .collect(),
        max_pdu: 16384,
        timeouts: xenrad_dimse::assoc::Timeouts::default(),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn our_get_from_our_scp_equals_the_files_and_lists_failures() {
    let src = tempdir("get-src");
    let mut held = make_files(&src, "1.2.826.0.1.7", 5, 70_000);
    // One more instance whose file is gone: a failed sub-operation.
    let mut missing = held[0].clone();
    missing.item.sop_instance_uid = "1.2.826.0.1.7.99".into();
    missing.item.path = src.join("gone.dcm");
    let served = {
        let mut v = held.clone();
        v.push(missing);
        v
    };
    let scp_dir = tempdir("get-scp");
    let srv = start(
        &scp_dir,
        "XENRAD",
        Arc::new(Archive {
            held: served,
            delay: Duration::ZERO,
        }),
        RetrieveConfig::default(),
    );
    let out = tempdir("get-out");
    let pending = rt().block_on(async {
        let cfg = client("XENRAD", &[sop::STUDY_ROOT_GET, CT]);
        let roles = [(CT.to_string(), false, true)];
        let mut a = ScuAssociation::connect_with_roles(("127.0.0.1", srv.port), &cfg, &roles)
            .await
            .unwrap();
        assert!(a.negotiated().requestor_is_scp(CT));
        let sink = xenrad_dimse::store::FileSink::new(&out)
            .with_journal_options(xenrad_dimse::store::journal::JournalOptions::small());
        let mut pending = Vec::new();
        let o = a
            .get(
                sop::STUDY_ROOT_GET,
                identifier("1.2.826.0.1.7", ELE),
                &sink,
                |r| {
                    pending.push(r.counts.unwrap());
                    true
                },
            )
            .await
            .unwrap();
        assert_eq!(o.response.status, status::SUBOPS_WARNING);
        let c = o.response.counts.unwrap();
        assert_eq!((c.completed, c.failed, c.warning), (5, 1, 0));
        assert_eq!(o.failed_uids, vec!["1.2.826.0.1.7.99".to_string()]);
        assert_eq!(o.received.len(), 5);
        // Nothing selected: success with zero counts.
        let o = a
            .get(sop::STUDY_ROOT_GET, identifier("9.9", ELE), &sink, |_| true)
            .await
            .unwrap();
        assert_eq!(o.response.status, 0);
        a.release().await.unwrap();
        pending
    });
    assert_eq!(
        pending.len(),
        6,
        "a pending response after each sub-operation"
    );
    assert_eq!(pending[0].remaining, 5);
    assert_eq!(pending[5].remaining, 0);
    held.sort_by(|a, b| a.item.sop_instance_uid.cmp(&b.item.sop_instance_uid));
    expect_same(&held, &datasets_in(&out), true);
    for d in [src, scp_dir, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn our_get_cancelled_after_two_ends_fe00() {
    let src = tempdir("getc-src");
    let held = make_files(&src, "1.2.826.0.1.8", 6, 10_000);
    let scp_dir = tempdir("getc-scp");
    let srv = start(
        &scp_dir,
        "XENRAD",
        Arc::new(Archive {
            held,
            delay: Duration::ZERO,
        }),
        RetrieveConfig::default(),
    );
    let out = tempdir("getc-out");
    rt().block_on(async {
        let cfg = client("XENRAD", &[sop::STUDY_ROOT_GET, CT]);
        let roles = [(CT.to_string(), false, true)];
        let mut a = ScuAssociation::connect_with_roles(("127.0.0.1", srv.port), &cfg, &roles)
            .await
            .unwrap();
        let sink = xenrad_dimse::store::MemorySink::new(1 << 20, 1 << 24);
        let mut n = 0;
        let o = a
            .get(
                sop::STUDY_ROOT_GET,
                identifier("1.2.826.0.1.8", ELE),
                &sink,
                |_| {
                    n += 1;
                    n < 2
                },
            )
            .await
            .unwrap();
        assert_eq!(o.response.status, status::CANCEL);
        let c = o.response.counts.unwrap();
        assert!(c.completed >= 2 && c.completed < 6, "{c:?}");
        assert_eq!(c.remaining + c.completed, 6, "{c:?}");
        assert_eq!(sink.take().len(), usize::from(c.completed));
        // The association goes on.
        assert_eq!(a.echo().await.ok().map(|r| r.status), None);
        a.release().await.unwrap();
    });
    for d in [src, scp_dir, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn our_move_to_our_store_scp_and_unknown_destination_and_limit() {
    let src = tempdir("move-src");
    let held = make_files(&src, "1.2.826.0.1.9", 4, 50_000);
    let dest_dir = tempdir("move-dest");
    let dest = start(
        &dest_dir,
        "DEST",
        Arc::new(StoreOnly),
        RetrieveConfig::default(),
    );
    let mut peers = Peers::new();
    peers.insert("DEST", format!("127.0.0.1:{}", dest.port));
    let scp_dir = tempdir("move-scp");
    let srv = start(
        &scp_dir,
        "XENRAD",
        Arc::new(Archive {
            held: held.clone(),
            delay: Duration::ZERO,
        }),
        RetrieveConfig {
            peers: peers.clone(),
            ..RetrieveConfig::default()
        },
    );
    let none_dir = tempdir("move-none");
    let limited = start(
        &none_dir,
        "XENRAD",
        Arc::new(Archive {
            held: held.clone(),
            delay: Duration::ZERO,
        }),
        RetrieveConfig {
            peers,
            max_sub_associations: 0,
            ..RetrieveConfig::default()
        },
    );
    rt().block_on(async {
        let cfg = client("XENRAD", &[sop::STUDY_ROOT_MOVE]);
        let mut a = ScuAssociation::connect(("127.0.0.1", srv.port), &cfg)
            .await
            .unwrap();
        let mut pend = 0;
        let o = a
            .move_(
                sop::STUDY_ROOT_MOVE,
                "DEST",
                identifier("1.2.826.0.1.9", ELE),
                |_| {
                    pend += 1;
                    true
                },
            )
            .await
            .unwrap();
        assert_eq!(o.response.status, 0, "{o:?}");
        let c = o.response.counts.unwrap();
        assert_eq!(
            (c.completed, c.failed, c.warning, c.remaining),
            (4, 0, 0, 0)
        );
        assert_eq!(pend, 4);
        let o = a
            .move_(
                sop::STUDY_ROOT_MOVE,
                "NOWHERE",
                identifier("1.2.826.0.1.9", ELE),
                |_| true,
            )
            .await
            .unwrap();
        assert_eq!(o.response.status, status::MOVE_DESTINATION_UNKNOWN);
        assert!(o.response.error_comment.unwrap().contains("NOWHERE"));
        a.release().await.unwrap();
        let mut b = ScuAssociation::connect(("127.0.0.1", limited.port), &cfg)
            .await
            .unwrap();
        let o = b
            .move_(
                sop::STUDY_ROOT_MOVE,
                "DEST",
                identifier("1.2.826.0.1.9", ELE),
                |_| true,
            )
            .await
            .unwrap();
        assert_eq!(o.response.status, status::OUT_OF_RESOURCES_SUBOPS);
        assert!(
            o.response
                .error_comment
                .unwrap()
                .contains("sub-associations")
        );
        b.release().await.unwrap();
    });
    expect_same(&held, &datasets_in(&dest_dir), true);
    drop((srv, limited, dest));
    for d in [src, dest_dir, scp_dir, none_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn our_commit_against_our_scp_reports_committed_and_failed() {
    let src = tempdir("commit-src");
    let held = make_files(&src, "1.2.826.0.1.10", 2, 100);
    let scp_dir = tempdir("commit-scp");
    let srv = start(
        &scp_dir,
        "XENRAD",
        Arc::new(Archive {
            held: held.clone(),
            delay: Duration::ZERO,
        }),
        RetrieveConfig::default(),
    );
    rt().block_on(async {
        let cfg = client("XENRAD", &[sop::STORAGE_COMMITMENT_PUSH]);
        let mut a = ScuAssociation::connect(("127.0.0.1", srv.port), &cfg)
            .await
            .unwrap();
        let mut refs: Vec<SopRef> = held
            .iter()
            .map(|h| SopRef {
                sop_class_uid: CT.into(),
                sop_instance_uid: h.item.sop_instance_uid.clone(),
            })
            .collect();
        refs.push(SopRef {
            sop_class_uid: CT.into(),
            sop_instance_uid: "1.2.826.0.1.10.404".into(),
        });
        let req = CommitmentRequest {
            transaction_uid: "2.25.777".into(),
            references: refs.clone(),
        };
        let r = a.commit(&req, Duration::from_secs(10)).await.unwrap();
        assert_eq!(r.transaction_uid, "2.25.777");
        assert_eq!(r.committed, refs[..2].to_vec());
        assert_eq!(
            r.failed,
            vec![(refs[2].clone(), reason::NO_SUCH_OBJECT_INSTANCE)]
        );
        a.release().await.unwrap();
    });
    for d in [src, scp_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

// ---------------------------------------------------------------------------------------
// Real peers.

struct Env {
    python: String,
    data: PathBuf,
}

fn peers(test: &str) -> Option<Env> {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!("skipped: {test} needs real peers (eval \"$(scripts/peers.sh)\")");
        return None;
    }
    Some(Env {
        python: std::env::var("XENRAD_PYTHON").expect("XENRAD_PYTHON set with XENRAD_PEERS"),
        data: PathBuf::from(std::env::var("XENRAD_PYDICOM_DATA").expect("XENRAD_PYDICOM_DATA")),
    })
}

/// DCMTK's binaries by absolute path (pynetdicom's console scripts shadow their names).
fn dcmtk(name: &str) -> PathBuf {
    let p = Path::new("/usr/bin").join(name);
    assert!(
        p.is_file(),
        "DCMTK {name} missing (scripts/peers.sh installs dcmtk)"
    );
    p
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_port(port: u16) {
    let t = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "peer did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(cmd: &mut Proc) -> (bool, String) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Kills a child process on drop.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// pydicom's sample files (several SOP classes and transfer syntaxes), served as one study
/// each under their own Study Instance UID.
fn pydicom_held(env: &Env) -> Vec<Held> {
    // (MR_small.dcm is the same instance as MR_small_implicit.dcm in another syntax.)
    [
        "CT_small.dcm",
        "MR_small_implicit.dcm",
        "SC_rgb_small_odd.dcm",
    ]
    .iter()
    .map(|n| {
        let path = env.data.join(n);
        let obj = dicom_object::open_file(&path).unwrap();
        let study = obj
            .element(STUDY_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .trim_end_matches(['\0', ' '])
            .to_string();
        let m = obj.meta();
        let t = |s: &str| s.trim_end_matches(['\0', ' ']).to_string();
        Held {
            study,
            item: RetrieveInstance {
                sop_class_uid: t(m.media_storage_sop_class_uid()),
                sop_instance_uid: t(m.media_storage_sop_instance_uid()),
                transfer_syntax_uid: t(m.transfer_syntax()),
                path,
            },
        }
    })
    .collect()
}

#[test]
fn dcmtk_getscu_from_our_scp() {
    let Some(env) = peers("dcmtk_getscu_from_our_scp") else {
        return;
    };
    let src = tempdir("dg-src");
    let mut held = make_files(&src, "1.2.826.0.1.11", 6, 300_000);
    held.extend(pydicom_held(&env));
    let scp_dir = tempdir("dg-scp");
    let srv = start(
        &scp_dir,
        "XENRAD",
        Arc::new(Archive {
            held: held.clone(),
            delay: Duration::ZERO,
        }),
        RetrieveConfig::default(),
    );
    let out = tempdir("dg-out");
    // Study of our generated files, then every pydicom study one by one.
    let mut studies: Vec<String> = held.iter().map(|h| h.study.clone()).collect();
    studies.dedup();
    for study in &studies {
        let (ok, text) = run(Proc::new(dcmtk("getscu"))
            .args(["-aet", "GETSCU", "-aec", "XENRAD", "-S"])
            .args(["-k", "QueryRetrieveLevel=STUDY"])
            .args(["-k", &format!("StudyInstanceUID={study}")])
            .arg("-od")
            .arg(&out)
            .args(["127.0.0.1", &srv.port.to_string()]));
        assert!(ok, "getscu failed for {study}: {text}");
    }
    // getscu proposes one context per storage class (explicit VR first): the implicit VR
    // file is re-encoded, the others go out as stored.
    expect_same(&held, &datasets_in(&out), false);
    for d in [src, scp_dir, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn dcmtk_movescu_to_dcmtk_storescp_through_our_scp() {
    let Some(env) = peers("dcmtk_movescu_to_dcmtk_storescp_through_our_scp") else {
        return;
    };
    let src = tempdir("dm-src");
    let mut held = make_files(&src, "1.2.826.0.1.12", 5, 200_000);
    held.extend(pydicom_held(&env));
    let dest_dir = tempdir("dm-dest");
    let dport = free_port();
    let _storescp = Child(
        Proc::new(dcmtk("storescp"))
            .args(["-aet", "STORESCP", "+xa", "-od"])
            .arg(&dest_dir)
            .arg(dport.to_string())
            .spawn()
            .expect("storescp"),
    );
    wait_port(dport);
    let mut peers = Peers::new();
    peers.insert("STORESCP", format!("127.0.0.1:{dport}"));
    let scp_dir = tempdir("dm-scp");
    let srv = start(
        &scp_dir,
        "XENRAD",
        Arc::new(Archive {
            held: held.clone(),
            delay: Duration::ZERO,
        }),
        RetrieveConfig {
            peers,
            ..RetrieveConfig::default()
        },
    );
    let mut studies: Vec<String> = held.iter().map(|h| h.study.clone()).collect();
    studies.dedup();
    for study in &studies {
        let (ok, text) = run(Proc::new(dcmtk("movescu"))
            .args([
                "-aet", "MOVESCU", "-aec", "XENRAD", "-aem", "STORESCP", "-S",
            ])
            .args(["-k", "QueryRetrieveLevel=STUDY"])
            .args(["-k", &format!("StudyInstanceUID={study}")])
            .args(["127.0.0.1", &srv.port.to_string()]));
        assert!(ok, "movescu failed: {text}");
    }
    // Unknown destination: movescu reports 0xA801.
    let (_, text) = run(Proc::new(dcmtk("movescu"))
        .args([
            "-v", "-aet", "MOVESCU", "-aec", "XENRAD", "-aem", "NOWHERE", "-S",
        ])
        .args([
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID=1.2.826.0.1.12",
        ])
        .args(["127.0.0.1", &srv.port.to_string()]));
    assert!(text.contains("MoveDestinationUnknown"), "{text}");
    expect_same(&held, &datasets_in(&dest_dir), false);
    for d in [src, dest_dir, scp_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}

/// A dcmqrscp with storage in `dir`, the move destination `dest_ae` at `dest_port`, filled
/// with `files` by DCMTK storescu.
fn dcmqrscp(dir: &Path, port: u16, dest_ae: &str, dest_port: u16, files: &[PathBuf]) -> Child {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let cfg = dir.join("dcmqrscp.cfg");
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n\
             HostTable BEGIN\n{dest_ae} = ({dest_ae}, 127.0.0.1, {dest_port})\nourpeers = {dest_ae}\nHostTable END\n\
             VendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nQRSCP {}  RW  (100, 1024mb)  ANY\nAETable END\n",
            db.display()
        ),
    )
    .unwrap();
    let child = Child(
        Proc::new(dcmtk("dcmqrscp"))
            .args(["-c"])
            .arg(&cfg)
            .spawn()
            .expect("dcmqrscp"),
    );
    wait_port(port);
    let (ok, text) = run(Proc::new(dcmtk("storescu"))
        .args([
            "-aet",
            "FILL",
            "-aec",
            "QRSCP",
            "127.0.0.1",
            &port.to_string(),
        ])
        .args(files));
    assert!(ok, "storescu into dcmqrscp: {text}");
    child
}

#[test]
fn our_get_and_move_against_dcmtk_dcmqrscp() {
    let Some(_env) = peers("our_get_and_move_against_dcmtk_dcmqrscp") else {
        return;
    };
    let src = tempdir("qr-src");
    let held = make_files(&src, "1.2.826.0.1.13", 4, 120_000);
    let qr_dir = tempdir("qr-dcmqrscp");
    let dest_dir = tempdir("qr-dest");
    let dest = start(
        &dest_dir,
        "OURDEST",
        Arc::new(StoreOnly),
        RetrieveConfig::default(),
    );
    let port = free_port();
    let files: Vec<PathBuf> = held.iter().map(|h| h.item.path.clone()).collect();
    let _qr = dcmqrscp(&qr_dir, port, "OURDEST", dest.port, &files);
    let out = tempdir("qr-out");
    rt().block_on(async {
        let cfg = ClientConfig {
            calling_ae: "OURDEST".into(),
            ..client("QRSCP", &[sop::STUDY_ROOT_GET, sop::STUDY_ROOT_MOVE, CT])
        };
        let roles = [(CT.to_string(), false, true)];
        let mut a = ScuAssociation::connect_with_roles(("127.0.0.1", port), &cfg, &roles)
            .await
            .unwrap();
        let sink = xenrad_dimse::store::FileSink::new(&out)
            .with_journal_options(xenrad_dimse::store::journal::JournalOptions::small());
        let o = a
            .get(
                sop::STUDY_ROOT_GET,
                identifier("1.2.826.0.1.13", ELE),
                &sink,
                |_| true,
            )
            .await
            .unwrap();
        assert_eq!(o.response.status, 0, "{o:?}");
        assert_eq!(o.response.counts.unwrap().completed, 4);
        let o = a
            .move_(
                sop::STUDY_ROOT_MOVE,
                "OURDEST",
                identifier("1.2.826.0.1.13", ELE),
                |_| true,
            )
            .await
            .unwrap();
        assert_eq!(o.response.status, 0, "{o:?}");
        assert_eq!(o.response.counts.unwrap().completed, 4);
        a.release().await.unwrap();
    });
    expect_same(&held, &datasets_in(&out), true);
    expect_same(&held, &datasets_in(&dest_dir), true);
    drop(dest);
    for d in [src, qr_dir, dest_dir, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

const PYNETDICOM_SCU: &str = r#"
import sys, os
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt, build_role, StoragePresentationContexts
from pynetdicom.sop_class import (StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove, StorageCommitmentPushModel, CTImageStorage)
port, study, out, dest = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
got = []
def on_store(event):
    ds = event.dataset
    ds.file_meta = event.file_meta
    ds.save_as(os.path.join(out, ds.SOPInstanceUID + ".dcm"), enforce_file_format=True)
    got.append(ds.SOPInstanceUID)
    return 0x0000
ae = AE(ae_title="PYSCU")
ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
ae.add_requested_context(StorageCommitmentPushModel)
ae.add_requested_context(CTImageStorage, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
role = build_role(CTImageStorage, scp_role=True)
assoc = ae.associate("127.0.0.1", port, ae_title="XENRAD", ext_neg=[role],
                     evt_handlers=[(evt.EVT_C_STORE, on_store)])
assert assoc.is_established
q = Dataset(); q.QueryRetrieveLevel = "STUDY"; q.StudyInstanceUID = study
last = None
for status, ident in assoc.send_c_get(q, StudyRootQueryRetrieveInformationModelGet):
    last = status
print("GET", hex(last.Status), last.NumberOfCompletedSuboperations, last.NumberOfFailedSuboperations, len(got))
for status, ident in assoc.send_c_move(q, dest, StudyRootQueryRetrieveInformationModelMove):
    last = status
print("MOVE", hex(last.Status), last.NumberOfCompletedSuboperations, last.NumberOfFailedSuboperations)
# Storage commitment: N-ACTION, then the N-EVENT-REPORT on this association.
reports = []
def on_report(event):
    reports.append((event.event_type, event.event_information))
    return 0x0000, None
assoc.bind(evt.EVT_N_EVENT_REPORT, on_report)
req = Dataset(); req.TransactionUID = generate_uid()
items = []
for uid in got[:2] + ["1.2.3.404"]:
    it = Dataset(); it.ReferencedSOPClassUID = CTImageStorage; it.ReferencedSOPInstanceUID = uid
    items.append(it)
req.ReferencedSOPSequence = items
st, _ = assoc.send_n_action(req, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
import time
t = time.time()
while not reports and time.time() - t < 10:
    time.sleep(0.05)
et, info = reports[0]
ok = [x.ReferencedSOPInstanceUID for x in info.get("ReferencedSOPSequence", [])]
bad = [(x.ReferencedSOPInstanceUID, x.FailureReason) for x in info.get("FailedSOPSequence", [])]
print("COMMIT", hex(st.Status), et, info.TransactionUID == req.TransactionUID, len(ok), bad)
assoc.release()
"#;

#[test]
fn pynetdicom_get_move_and_commitment_against_our_scp() {
    let Some(env) = peers("pynetdicom_get_move_and_commitment_against_our_scp") else {
        return;
    };
    let src = tempdir("py-src");
    let held = make_files(&src, "1.2.826.0.1.14", 3, 80_000);
    let dest_dir = tempdir("py-dest");
    let dest = start(
        &dest_dir,
        "DEST",
        Arc::new(StoreOnly),
        RetrieveConfig::default(),
    );
    let mut peers = Peers::new();
    peers.insert("DEST", format!("127.0.0.1:{}", dest.port));
    let scp_dir = tempdir("py-scp");
    let srv = start(
        &scp_dir,
        "XENRAD",
        Arc::new(Archive {
            held: held.clone(),
            delay: Duration::ZERO,
        }),
        RetrieveConfig {
            peers,
            ..RetrieveConfig::default()
        },
    );
    let out = tempdir("py-out");
    let (ok, text) = run(Proc::new(&env.python)
        .args([
            "-c",
            PYNETDICOM_SCU,
            &srv.port.to_string(),
            "1.2.826.0.1.14",
        ])
        .arg(&out)
        .arg("DEST"));
    assert!(ok, "pynetdicom SCU: {text}");
    assert!(text.contains("GET 0x0 3 0 3"), "{text}");
    assert!(text.contains("MOVE 0x0 3 0"), "{text}");
    assert!(
        text.contains("COMMIT 0x0 2 True 2 [('1.2.3.404', 274)]"),
        "{text}"
    );
    expect_same(&held, &datasets_in(&out), true);
    expect_same(&held, &datasets_in(&dest_dir), true);
    drop((srv, dest));
    for d in [src, dest_dir, scp_dir, out] {
        let _ = std::fs::remove_dir_all(d);
    }
}

const PYNETDICOM_COMMIT_SCP: &str = r#"
import sys, threading
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel
port = int(sys.argv[1])
def on_action(event):
    req = event.action_information
    # Answer the N-ACTION, then report on the same association: odd items fail.
    def report():
        ds = Dataset(); ds.TransactionUID = req.TransactionUID
        ok, bad = [], []
        for i, it in enumerate(req.ReferencedSOPSequence):
            x = Dataset(); x.ReferencedSOPClassUID = it.ReferencedSOPClassUID
            x.ReferencedSOPInstanceUID = it.ReferencedSOPInstanceUID
            if i % 2: x.FailureReason = 0x0112; bad.append(x)
            else: ok.append(x)
        ds.ReferencedSOPSequence = ok
        if bad: ds.FailedSOPSequence = bad
        event.assoc.send_n_event_report(ds, 2 if bad else 1, StorageCommitmentPushModel,
                                        "1.2.840.10008.1.20.1.1")
    threading.Timer(0.2, report).start()
    return 0x0000, None
ae = AE(ae_title="PYCOMMIT")
ae.add_supported_context(StorageCommitmentPushModel)
ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_N_ACTION, on_action)])
"#;

#[test]
fn our_commit_against_pynetdicom_scp() {
    let Some(env) = peers("our_commit_against_pynetdicom_scp") else {
        return;
    };
    let port = free_port();
    let _py = Child(
        Proc::new(&env.python)
            .args(["-c", PYNETDICOM_COMMIT_SCP, &port.to_string()])
            .spawn()
            .expect("python"),
    );
    wait_port(port);
    rt().block_on(async {
        let cfg = client("PYCOMMIT", &[sop::STORAGE_COMMITMENT_PUSH]);
        let mut a = ScuAssociation::connect(("127.0.0.1", port), &cfg)
            .await
            .unwrap();
        let refs: Vec<SopRef> = (1..=3)
            .map(|i| SopRef {
                sop_class_uid: CT.into(),
                sop_instance_uid: format!("1.2.826.0.1.15.{i}"),
            })
            .collect();
        let req = CommitmentRequest {
            transaction_uid: "2.25.4242".into(),
            references: refs.clone(),
        };
        let r = a.commit(&req, Duration::from_secs(10)).await.unwrap();
        assert_eq!(r.transaction_uid, "2.25.4242");
        assert_eq!(r.committed, vec![refs[0].clone(), refs[2].clone()]);
        assert_eq!(r.failed, vec![(refs[1].clone(), 0x0112)]);
        a.release().await.unwrap();
    });
}

const PYNETDICOM_LATE_REPORT: &str = r#"
import sys, time
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import StorageCommitmentPushModel, CTImageStorage
port, lport, uid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
got = []
def on_report(event):
    got.append((event.event_type, event.event_information, event.assoc.requestor.ae_title))
    return 0x0000, None
ae = AE(ae_title="PYREQ")
ae.add_requested_context(StorageCommitmentPushModel)
ae.add_supported_context(StorageCommitmentPushModel, scu_role=True, scp_role=True)
srv = ae.start_server(("127.0.0.1", lport), block=False,
                      evt_handlers=[(evt.EVT_N_EVENT_REPORT, on_report)])
assoc = ae.associate("127.0.0.1", port, ae_title="XENRAD")
req = Dataset(); req.TransactionUID = "2.25.31337"
it = Dataset(); it.ReferencedSOPClassUID = CTImageStorage; it.ReferencedSOPInstanceUID = uid
req.ReferencedSOPSequence = [it]
st, _ = assoc.send_n_action(req, 1, StorageCommitmentPushModel, "1.2.840.10008.1.20.1.1")
assoc.release()
print("ACTION", hex(st.Status), flush=True)
t = time.time()
while not got and time.time() - t < 15:
    time.sleep(0.05)
et, info, ae_title = got[0]
print("REPORT", et, info.TransactionUID, len(info.ReferencedSOPSequence), ae_title)
srv.shutdown()
"#;

#[test]
fn commitment_report_on_a_new_association_after_the_requester_released() {
    let Some(env) = peers("commitment_report_on_a_new_association_after_the_requester_released")
    else {
        return;
    };
    let src = tempdir("late-src");
    let held = make_files(&src, "1.2.826.0.1.16", 1, 100);
    let lport = free_port();
    let mut peers = Peers::new();
    peers.insert("PYREQ", format!("127.0.0.1:{lport}"));
    let scp_dir = tempdir("late-scp");
    let uid = held[0].item.sop_instance_uid.clone();
    // The result takes 1.5 s: the requester has released by then.
    let srv = start(
        &scp_dir,
        "XENRAD",
        Arc::new(Archive {
            held,
            delay: Duration::from_millis(1500),
        }),
        RetrieveConfig {
            peers,
            ..RetrieveConfig::default()
        },
    );
    let (ok, text) = run(Proc::new(&env.python).args([
        "-c",
        PYNETDICOM_LATE_REPORT,
        &srv.port.to_string(),
        &lport.to_string(),
        &uid,
    ]));
    assert!(ok, "pynetdicom: {text}");
    assert!(text.contains("ACTION 0x0"), "{text}");
    assert!(text.contains("REPORT 1 2.25.31337 1 XENRAD"), "{text}");
    drop(srv);
    for d in [src, scp_dir] {
        let _ = std::fs::remove_dir_all(d);
    }
}
