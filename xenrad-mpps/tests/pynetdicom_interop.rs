//! Interop with pynetdicom (real peer) over xenrad-dimse's SCP, with this crate's service as the
//! N-CREATE/N-SET handler: create and update on different associations (state lives outside the
//! association), in Implicit and Explicit VR LE, including the error statuses a modality sees.
//! Skipped unless `XENRAD_PEERS` is set; when it is, the peers must be there.

use std::net::TcpListener as StdListener;
use std::process::Command;
use std::sync::Arc;
use xenrad_dimse::net::Server;
use xenrad_dimse::scp::{Handler, NRequest, NResponse, ScpConfig};
use xenrad_mpps::{MPPS_SOP_CLASS_UID, MemoryStore, Mpps, PpsStatus, TransferSyntaxKind};

/// The glue the gateway needs: DIMSE request → service → DIMSE response.
struct MppsHandler(Mpps<MemoryStore>);

impl MppsHandler {
    fn call(&self, r: &NRequest<'_>, create: bool) -> NResponse {
        if xenrad_mpps::uid::strip_wire_pad(r.sop_class_uid) != MPPS_SOP_CLASS_UID {
            return NResponse::status(0x0118); // No such SOP class (PS3.7 C.4.2)
        }
        let (Some(ts), Some(uid)) = (
            TransferSyntaxKind::from_uid(r.transfer_syntax),
            r.sop_instance_uid,
        ) else {
            return NResponse::status(0x0110);
        };
        let rsp = if create {
            self.0.n_create_dataset(uid, r.dataset, ts)
        } else {
            self.0.n_set_dataset(uid, r.dataset, ts)
        };
        NResponse {
            status: rsp.status,
            sop_instance_uid: None,
            dataset: rsp.dataset,
            error_id: rsp.error_id,
            error_comment: rsp.error_comment,
        }
    }
}

impl Handler for MppsHandler {
    fn n_create(&self, r: &NRequest<'_>) -> NResponse {
        self.call(r, true)
    }
    fn n_set(&self, r: &NRequest<'_>) -> NResponse {
        self.call(r, false)
    }
}

const SCU: &str = r"
import sys, json
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep as MPPS
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian, ExplicitVRLittleEndian
port = int(sys.argv[1])
UID, OTHER = '1.2.826.0.1.3680043.9.7.1', '1.2.826.0.1.3680043.9.7.2'

def assoc(ts):
    ae = AE(ae_title='MODALITY')
    ae.add_requested_context(MPPS, [ts])
    a = ae.associate('127.0.0.1', port, ae_title='XENRAD')
    assert a.is_established, 'association not established'
    return a

def create_ds(study='1.2.3.4.5.6'):
    ds = Dataset()
    ds.SpecificCharacterSet = 'ISO_IR 192'
    ds.Modality = 'CT'
    ds.PatientName = 'Doe^Jane'
    ds.PatientID = 'PID1'
    ds.PerformedStationAETitle = 'CT01'
    ds.PerformedProcedureStepStartDate = '20250101'
    ds.PerformedProcedureStepStartTime = '081500'
    ds.PerformedProcedureStepStatus = 'IN PROGRESS'
    ds.PerformedProcedureStepID = 'PPS-1'
    ds.PerformedProcedureStepEndDate = None
    ds.PerformedProcedureStepEndTime = None
    step = Dataset()
    step.StudyInstanceUID = study
    step.AccessionNumber = 'ACC1'
    ds.ScheduledStepAttributesSequence = Sequence([step])
    ds.PerformedSeriesSequence = Sequence([])
    return ds

def completed_ds():
    ds = Dataset()
    ds.PerformedProcedureStepStatus = 'COMPLETED'
    ds.PerformedProcedureStepEndDate = '20250101'
    ds.PerformedProcedureStepEndTime = '091500'
    img = Dataset()
    img.ReferencedSOPClassUID = '1.2.840.10008.5.1.4.1.1.2'
    img.ReferencedSOPInstanceUID = '1.2.3.4.5.6.7.1'
    s = Dataset()
    s.SeriesInstanceUID = '1.2.3.4.5.6.7'
    s.ProtocolName = 'HEAD'
    s.ReferencedImageSequence = Sequence([img])
    ds.PerformedSeriesSequence = Sequence([s])
    return ds

out = {}
a = assoc(ImplicitVRLittleEndian)
st, attrs = a.send_n_create(create_ds(), MPPS, UID)
out['create'] = st.Status
out['create_rsp_status'] = str(attrs.PerformedProcedureStepStatus) if attrs is not None else None
st, _ = a.send_n_create(create_ds(), MPPS, UID)
out['create_replay'] = st.Status
st, _ = a.send_n_create(create_ds('1.2.3.4.5.7'), MPPS, UID)
out['create_duplicate'] = st.Status
st, _ = a.send_n_create(create_ds(), MPPS, OTHER)
out['create_other'] = st.Status
a.release()

b = assoc(ExplicitVRLittleEndian)
bad = Dataset(); bad.Modality = 'MR'
st, _ = b.send_n_set(bad, MPPS, OTHER)
out['set_not_allowed'] = st.Status
early = Dataset(); early.PerformedProcedureStepStatus = 'COMPLETED'
st, _ = b.send_n_set(early, MPPS, OTHER)
out['set_final_without_end'] = st.Status
st, _ = b.send_n_set(completed_ds(), MPPS, '1.2.826.0.1.3680043.9.7.99')
out['set_unknown'] = st.Status
st, attrs = b.send_n_set(completed_ds(), MPPS, UID)
out['set_completed'] = st.Status
st, _ = b.send_n_set(completed_ds(), MPPS, UID)
out['set_replay'] = st.Status
late = Dataset(); late.PerformedProcedureStepStatus = 'DISCONTINUED'
late.PerformedProcedureStepEndDate = '20250101'; late.PerformedProcedureStepEndTime = '091600'
st, _ = b.send_n_set(late, MPPS, UID)
out['set_after_final'] = st.Status
out['set_after_final_error_id'] = int(st.ErrorID) if 'ErrorID' in st else None
b.release()
print('RESULT ' + json.dumps(out))
";

#[test]
fn pynetdicom_n_create_n_set_across_associations() {
    if std::env::var_os("XENRAD_PEERS").is_none() {
        println!("skipped: needs pynetdicom (eval \"$(scripts/peers.sh)\")");
        return;
    }
    let python = std::env::var("XENRAD_PYTHON").expect("XENRAD_PYTHON set with XENRAD_PEERS");
    let dir = std::env::temp_dir().join(format!("xenrad-mpps-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let handler = Arc::new(MppsHandler(Mpps::new(MemoryStore::new())));
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (h, d) = (Arc::clone(&handler), dir.clone());
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let sink = xenrad_dimse::store::FileSink::new(&d)
                .with_journal_options(xenrad_dimse::store::journal::JournalOptions::small());
            let server = Server::new(ScpConfig::with_sink(Arc::new(sink)), h);
            server
                .run(listener, async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
    });
    let out = Command::new(&python)
        .arg("-c")
        .arg(SCU)
        .arg(port.to_string())
        .output()
        .expect("run pynetdicom");
    let _ = stop.send(());
    server.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("{text}"));
    let r: serde_json::Value = serde_json::from_str(line).unwrap();
    let expect = [
        ("create", 0x0000),
        ("create_replay", 0x0000),
        ("create_duplicate", 0x0111),
        ("create_other", 0x0000),
        ("set_not_allowed", 0x0106),
        ("set_final_without_end", 0x0121),
        ("set_unknown", 0x0112),
        ("set_completed", 0x0000),
        ("set_replay", 0x0000),
        ("set_after_final", 0x0110),
    ];
    for (k, v) in expect {
        assert_eq!(r[k], v, "{k}: {r}");
    }
    assert_eq!(r["create_rsp_status"], "IN PROGRESS", "{r}");

    let mpps = &handler.0;
    let done = mpps.get("1.2.826.0.1.3680043.9.7.1").unwrap();
    assert_eq!(done.status(), Some(PpsStatus::Completed));
    assert_eq!(done.study_instance_uid(), Some("1.2.3.4.5.6"));
    assert_eq!(
        done.performed_series()[0].referenced_images[0].sop_instance_uid,
        "1.2.3.4.5.6.7.1"
    );
    assert_eq!(done.end(), (Some("20250101"), Some("091500")));
    let other = mpps.get("1.2.826.0.1.3680043.9.7.2").unwrap();
    assert_eq!(other.status(), Some(PpsStatus::InProgress));
    assert_eq!(other.modality(), Some("CT"));
}
