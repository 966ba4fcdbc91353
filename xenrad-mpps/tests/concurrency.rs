//! A state transition is a compare-and-set: two concurrent N-SETs cannot both win, and an update that
//! loses the race is judged again against the state the winner left.

use dicom_core::VR;
use std::sync::{Arc, Barrier, Mutex};
use xenrad_mpps::store::{Cas, Insert};
use xenrad_mpps::{
    Dataset, DuplicatePolicy, Element, ErrorKind, MemoryStore, Mpps, PpsStatus, Profile, Record,
    Store, StoreError, tags,
};

fn seed(uid: &str, status: &str) -> Vec<u8> {
    format!(r#"{{"sop_instance_uid":"{uid}","study_uid":"1.2.3.4.5.6","status":"{status}"}}"#)
        .into_bytes()
}

#[test]
fn racing_final_updates_exactly_one_wins() {
    for round in 0..200 {
        let mpps = Arc::new(Mpps::new(MemoryStore::new()).with_policy(DuplicatePolicy::Strict));
        let uid = format!("1.2.3.{}", round + 1);
        mpps.ingest_seed_json(&seed(&uid, "IN PROGRESS")).unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let handles: Vec<_> = ["COMPLETED", "DISCONTINUED"]
            .into_iter()
            .map(|status| {
                let (mpps, barrier, uid) = (Arc::clone(&mpps), Arc::clone(&barrier), uid.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    mpps.seed_set(&seed(&uid, status))
                        .map(|o| o.instance.status())
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        let loser = results.iter().find_map(|r| r.as_ref().err()).unwrap();
        assert_eq!(loser.kind(), ErrorKind::NoLongerUpdatable);
        assert_eq!(mpps.get(&uid).unwrap().status(), *winners[0]);
    }
}

/// A store that lets another writer sneak in right before the first compare-and-set, so the race is
/// deterministic.
struct Interloper {
    inner: MemoryStore,
    sneak: Mutex<Option<Dataset>>,
}

impl Store for Interloper {
    fn load(&self, uid: &str) -> Result<Option<Record>, StoreError> {
        self.inner.load(uid)
    }
    fn insert_new(&self, record: Record) -> Result<Insert, StoreError> {
        self.inner.insert_new(record)
    }
    fn compare_and_set(&self, record: Record, expected: u64) -> Result<Cas, StoreError> {
        if let Some(attrs) = self.sneak.lock().unwrap().take() {
            let mut current = self.inner.load(&record.sop_instance_uid)?.unwrap();
            current.attributes = attrs;
            current.version += 1;
            let v = current.version - 1;
            assert_eq!(self.inner.compare_and_set(current, v)?, Cas::Swapped);
        }
        self.inner.compare_and_set(record, expected)
    }
}

#[test]
fn lost_race_is_rejudged_against_the_winner() {
    let store = Interloper {
        inner: MemoryStore::new(),
        sneak: Mutex::new(None),
    };
    let mpps = Mpps::new(store);
    mpps.ingest_seed_json(&seed("1.2.3", "IN PROGRESS"))
        .unwrap();
    // The interloper completes the step; our DISCONTINUED then loses the CAS, re-reads, and is refused.
    let mut done = mpps.get("1.2.3").unwrap().attributes;
    done.insert(tags::PPS_STATUS, Element::string(VR::CS, "COMPLETED"));
    *mpps.store().sneak.lock().unwrap() = Some(done);
    let err = mpps.seed_set(&seed("1.2.3", "DISCONTINUED")).unwrap_err();
    assert_eq!((err.dimse_status(), err.error_id()), (0x0110, Some(0xA710)));
    assert_eq!(
        mpps.get("1.2.3").unwrap().status(),
        Some(PpsStatus::Completed)
    );

    // A non-final update that loses the race is retried and applied on top of the winner's state.
    mpps.ingest_seed_json(&seed("1.2.4", "IN PROGRESS"))
        .unwrap();
    let mut other = mpps.get("1.2.4").unwrap().attributes;
    other.insert(
        tags::PPS_DESCRIPTION,
        Element::string(VR::LO, "by the other writer"),
    );
    *mpps.store().sneak.lock().unwrap() = Some(other);
    let set = Dataset::new().with(
        tags::PERFORMED_PROCEDURE_TYPE_DESCRIPTION,
        Element::string(VR::LO, "ours"),
    );
    let out = mpps.update("1.2.4", &set, Profile::Seed).unwrap();
    assert!(out.changed);
    let now = mpps.get("1.2.4").unwrap().attributes;
    assert_eq!(now.str(tags::PPS_DESCRIPTION), Some("by the other writer"));
    assert_eq!(
        now.str(tags::PERFORMED_PROCEDURE_TYPE_DESCRIPTION),
        Some("ours")
    );
}
