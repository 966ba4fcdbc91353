//! Store-level tests run on every backend: SQLite always, PostgreSQL when `XENRAD_PG_URL`
//! names a server (`eval "$(scripts/postgres.sh start)"`) and the crate is built with the
//! feature `postgres`. Each PostgreSQL test gets a database of its own, dropped at the end.
//! The cross-node tests open two backends on one database, as two gateways would.

use super::*;
use crate::search::{self, IndexEntry};

/// A backend under test and how to clean up after it.
struct Under {
    name: &'static str,
    store: Store,
    cleanup: Box<dyn FnOnce()>,
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "xenrad-store-{tag}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[cfg(feature = "postgres")]
mod pg {
    /// The server's URL, when the tests may use one.
    pub fn url() -> Option<String> {
        std::env::var("XENRAD_PG_URL")
            .ok()
            .filter(|u| !u.is_empty())
    }

    fn admin(sql: &str) {
        let url = url().expect("XENRAD_PG_URL");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .expect("connect to XENRAD_PG_URL");
            let h = tokio::spawn(conn);
            client.batch_execute(sql).await.expect(sql);
            drop(client);
            let _ = h.await;
        });
    }

    /// A fresh database named after the test; returns its URL.
    pub fn fresh(tag: &str) -> String {
        let name = format!("xenrad_t_{tag}_{}", std::process::id());
        admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        admin(&format!("CREATE DATABASE {name}"));
        let url = url().expect("XENRAD_PG_URL");
        let (head, query) = url
            .split_once('?')
            .map_or((url.as_str(), ""), |(h, q)| (h, q));
        let base = head.rsplit_once('/').map_or(head, |(b, _)| b);
        let mut out = format!("{base}/{name}");
        if !query.is_empty() {
            out.push('?');
            out.push_str(query);
        }
        out
    }

    pub fn drop_db(tag: &str) {
        let name = format!("xenrad_t_{tag}_{}", std::process::id());
        admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

/// SQLite, and PostgreSQL when available.
fn backends(tag: &'static str) -> Vec<Under> {
    let dir = temp_dir(tag);
    let sqlite = Store::open(&dir).unwrap();
    let mut out = Vec::new();
    out.push(Under {
        name: "sqlite",
        store: sqlite,
        cleanup: Box::new(move || {
            let _ = std::fs::remove_dir_all(dir);
        }),
    });
    #[cfg(feature = "postgres")]
    if pg::url().is_some() {
        let url = pg::fresh(tag);
        let store = Store::open_database(Some(&url), std::path::Path::new("/nonexistent"))
            .expect("PostgreSQL backend");
        out.push(Under {
            name: "postgres",
            store,
            cleanup: Box::new(move || pg::drop_db(tag)),
        });
    } else {
        eprintln!("store tests: XENRAD_PG_URL not set, PostgreSQL not tested");
    }
    out
}

fn finish(u: Under) {
    u.store.close();
    (u.cleanup)();
}

fn read<T: Send + 'static>(
    store: &Store,
    f: impl FnOnce(&dyn ReadTx) -> Result<T, StoreError> + Send + 'static,
) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(store.read(f)).unwrap()
}

fn patient(id: &str, family: &str) -> StoredResource {
    StoredResource {
        version: 1,
        last_updated: now(),
        body: format!(
            r#"{{"resourceType":"Patient","id":"{id}","name":[{{"family":"{family}"}}]}}"#
        ),
    }
}

#[test]
fn a_failed_job_rolls_back_alone_and_messages_are_deduplicated() {
    for u in backends("batch") {
        let store = u.store.clone();
        // Many concurrent jobs share transactions; the failing ones leave nothing.
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let s = store.clone();
                std::thread::spawn(move || {
                    s.write_blocking(move |tx| {
                        let new = tx.record_message(
                            "hl7v2",
                            "APP^FAC",
                            &format!("m{i}"),
                            "ADT^A08",
                            b"x",
                        )?;
                        tx.put_resource(
                            "Patient",
                            &format!("p{i}"),
                            &patient(&format!("p{i}"), "Doe"),
                            &[IndexEntry::string("name", "Doe")],
                        )?;
                        if i % 4 == 0 {
                            return Err(StoreError::Job("refused".into()));
                        }
                        Ok(new)
                    })
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            results.iter().filter(|r| r.is_err()).count(),
            10,
            "{}",
            u.name
        );
        assert!(
            results
                .iter()
                .filter_map(|r| r.as_ref().ok())
                .all(|new| *new)
        );
        let again = store
            .write_blocking(|tx| tx.record_message("hl7v2", "APP^FAC", "m1", "ADT^A08", b"x"))
            .unwrap();
        assert!(
            !again,
            "{}: a repeated (protocol, sender, id) is not new",
            u.name
        );
        let (count, p0, p1, page) = read(&store, |tx| {
            let q = search::parse(xenrad_fhir_model::ResourceType::Patient, "name=do")
                .map_err(|o| StoreError::Job(o.to_json()))?;
            Ok((
                tx.count_messages("hl7v2")?,
                tx.resource("Patient", "p0")?,
                tx.resource("Patient", "p1")?,
                tx.search("Patient", &q)?,
            ))
        });
        assert_eq!(count, 30, "{}", u.name);
        assert!(
            p0.is_none(),
            "{}: the failed job's resource was rolled back",
            u.name
        );
        assert_eq!(p1.unwrap().version, 1);
        assert_eq!(page.total, 30, "{}", u.name);
        store.close();
        assert!(
            matches!(store.write_blocking(|_| Ok(())), Err(StoreError::Closed)),
            "{}",
            u.name
        );
        finish(u);
    }
}

/// Patients and orders covering every kind of criterion the backends execute.
fn search_fixture(store: &Store) {
    #[allow(clippy::type_complexity)]
    let patients: &[(&str, &str, &str, &str, &[(&str, &str)], Option<&str>)] = &[
        (
            "p1",
            "Doe John",
            "1980-01-01",
            "male",
            &[("urn:mrn", "1001")],
            Some("true"),
        ),
        (
            "p2",
            "Müller Jörg",
            "1980-07-15",
            "male",
            &[("urn:mrn", "1002"), ("urn:ssn", "555")],
            Some("true"),
        ),
        ("p3", "Doerr Anna", "1975", "female", &[("", "X9")], None),
        (
            "p4",
            "Smi_th Eve",
            "1990-03-03",
            "female",
            &[("urn:mrn", "1004")],
            None,
        ),
    ];
    for (id, name, birth, gender, ids, active) in patients {
        let family = name.split(' ').next().unwrap();
        let mut index = vec![
            IndexEntry::string("name", name),
            IndexEntry::raw("name", family),
            IndexEntry::string("family", family),
            {
                let (low, high) = search::search_date_range(birth).expect("date");
                let mut e = IndexEntry::plain("birthdate", &low);
                e.low = Some(low);
                e.high = Some(high);
                e
            },
            IndexEntry::token(
                "gender",
                "http://hl7.org/fhir/administrative-gender",
                gender,
            ),
        ];
        for (s, v) in *ids {
            index.push(IndexEntry::token("identifier", s, v));
        }
        if let Some(a) = active {
            index.push(IndexEntry::token("active", "", a));
        }
        let r = patient(id, family);
        let id = (*id).to_owned();
        store
            .write_blocking(move |tx| tx.put_resource("Patient", &id, &r, &index))
            .unwrap();
    }
    for (id, subject, status) in [
        ("sr1", "Patient/p1", "active"),
        ("sr2", "Patient/p2", "completed"),
    ] {
        let r = StoredResource {
            version: 1,
            last_updated: now(),
            body: format!(r#"{{"resourceType":"ServiceRequest","id":"{id}"}}"#),
        };
        let index = vec![
            IndexEntry::plain("subject", subject),
            IndexEntry::plain("patient", subject),
            IndexEntry::token("status", "http://hl7.org/fhir/request-status", status),
        ];
        store
            .write_blocking(move |tx| tx.put_resource("ServiceRequest", id, &r, &index))
            .unwrap();
    }
}

/// `(resource type, query, total, ids of the page in order)`.
const SEARCHES: &[(&str, &str, usize, &[&str])] = &[
    ("Patient", "name=do", 2, &["p1", "p3"]),
    ("Patient", "name=mull", 1, &["p2"]),
    ("Patient", "name:contains=oe", 2, &["p1", "p3"]),
    ("Patient", "name:contains=_", 1, &["p4"]),
    ("Patient", "name:exact=Doe", 1, &["p1"]),
    ("Patient", "name:exact=doe", 0, &[]),
    ("Patient", "family=smi_", 1, &["p4"]),
    ("Patient", "identifier=urn:mrn|1001", 1, &["p1"]),
    ("Patient", "identifier=1002", 1, &["p2"]),
    ("Patient", "identifier=|X9", 1, &["p3"]),
    ("Patient", "identifier=urn:ssn|", 1, &["p2"]),
    ("Patient", "identifier=1001,1004", 2, &["p1", "p4"]),
    ("Patient", "gender=female", 2, &["p3", "p4"]),
    ("Patient", "gender:not=female", 2, &["p1", "p2"]),
    ("Patient", "birthdate=1980", 2, &["p1", "p2"]),
    ("Patient", "birthdate=lt1980-06-01", 2, &["p1", "p3"]),
    ("Patient", "birthdate=ge1980-07-15", 2, &["p2", "p4"]),
    ("Patient", "birthdate=gt1980", 1, &["p4"]),
    ("Patient", "birthdate=le1975", 1, &["p3"]),
    ("Patient", "birthdate=ne1980", 2, &["p3", "p4"]),
    ("Patient", "active:missing=true", 2, &["p3", "p4"]),
    ("Patient", "active:missing=false", 2, &["p1", "p2"]),
    ("Patient", "_id=p2", 1, &["p2"]),
    ("Patient", "_id=p1,p3", 2, &["p1", "p3"]),
    ("Patient", "name=do&gender=male", 1, &["p1"]),
    ("Patient", "_sort=-birthdate", 4, &["p4", "p2", "p1", "p3"]),
    (
        "Patient",
        "_sort=birthdate&_count=2&_offset=1",
        4,
        &["p1", "p2"],
    ),
    ("Patient", "_sort=family", 4, &["p1", "p3", "p2", "p4"]),
    ("ServiceRequest", "subject=Patient/p1", 1, &["sr1"]),
    ("ServiceRequest", "subject=p2", 1, &["sr2"]),
    ("ServiceRequest", "status=completed", 1, &["sr2"]),
    ("ServiceRequest", "patient=Patient/p3", 0, &[]),
];

#[test]
fn every_search_the_backends_execute_answers_the_same() {
    type Answers = Vec<(usize, Vec<String>)>;
    let mut answers: Vec<(&str, Answers)> = Vec::new();
    for u in backends("search") {
        search_fixture(&u.store);
        let got = read(&u.store, |tx| {
            let mut out: Vec<(usize, Vec<String>)> = Vec::new();
            for (rt, q, _, _) in SEARCHES {
                let rtype = xenrad_fhir_model::ResourceType::from_name(rt).expect("type");
                let parsed = search::parse(rtype, q).map_err(|o| StoreError::Job(o.to_json()))?;
                let page = tx.search(rt, &parsed)?;
                out.push((
                    page.total,
                    page.rows.into_iter().map(|(id, _)| id).collect(),
                ));
            }
            Ok(out)
        });
        for ((rt, q, total, ids), (t, got_ids)) in SEARCHES.iter().zip(&got) {
            assert_eq!(
                (*total, ids.to_vec()),
                (*t, got_ids.iter().map(String::as_str).collect::<Vec<_>>()),
                "{}: {rt}?{q}",
                u.name
            );
        }
        answers.push((u.name, got));
        finish(u);
    }
    if let [(_, a), (_, b)] = answers.as_slice() {
        assert_eq!(a, b, "SQLite and PostgreSQL answer every search alike");
    }
}

fn instance(uid: &str, series: &str) -> InstanceRow {
    InstanceRow {
        sop_instance_uid: uid.into(),
        sop_class_uid: "1.2.840.10008.5.1.4.1.1.2".into(),
        study_uid: "1.2.3".into(),
        series_uid: series.into(),
        transfer_syntax: "1.2.840.10008.1.2.1".into(),
        path: format!("/x/{uid}.dcm"),
        size: 1234,
        calling_ae: "SCU".into(),
    }
}

#[test]
fn instances_query_rows_modality_and_mpps_compare_and_set() {
    for u in backends("instances") {
        let s = &u.store;
        let (new, dup) = s
            .write_blocking(|tx| {
                let new = tx.record_instance(&instance("1.2.3.4.1", "1.2.3.4"))?;
                let dup = tx.record_instance(&instance("1.2.3.4.1", "1.2.3.4"))?;
                tx.record_instance(&instance("1.2.3.5.1", "1.2.3.5"))?;
                tx.record_instance(&instance("1.2.3.4.2", "1.2.3.4"))?;
                for uid in ["1.2.3.4.1", "1.2.3.5.1"] {
                    tx.record_query_row(&QueryRow {
                        sop_instance_uid: uid.into(),
                        patient_id: "P1".into(),
                        study_uid: "1.2.3".into(),
                        series_uid: uid[..7].into(),
                        header: vec![0, 1, 2, 0xFF],
                    })?;
                }
                tx.record_series_modality("1.2.3.4", "CT")?;
                tx.record_series_modality("1.2.3.4", "MR")?;
                Ok((new, dup))
            })
            .unwrap();
        assert!(new && !dup, "{}: a repeated instance is not new", u.name);
        let (study, modality, has, row, all, series, one, missing) = read(s, |tx| {
            let mut all = Vec::new();
            tx.for_each_query_row(&mut |i, q| {
                all.push((i.sop_instance_uid, q.header));
                Ok(())
            })?;
            let (mut past, mut future) = (0, 0);
            tx.for_each_query_row_since("2000-01-01T00:00:00.000Z", &mut |_, _| {
                past += 1;
                Ok(())
            })?;
            tx.for_each_query_row_since("2999-01-01T00:00:00.000Z", &mut |_, _| {
                future += 1;
                Ok(())
            })?;
            assert_eq!((past, future), (2, 0), "rows received since a time");
            Ok((
                tx.study_instances("1.2.3")?,
                tx.series_modality("1.2.3.4")?,
                (tx.has_instance("1.2.3.4.1")?, tx.has_instance("9.9")?),
                tx.instance("1.2.3.4.1")?,
                all,
                tx.query_rows_in("1.2.3", Some("1.2.3.4"), None)?,
                tx.query_rows_in("1.2.3", None, Some("1.2.3.5.1"))?,
                tx.instances_without_query_row()?,
            ))
        });
        let uids: Vec<&str> = study.iter().map(|(_, i, _)| i.as_str()).collect();
        assert_eq!(uids, ["1.2.3.4.1", "1.2.3.4.2", "1.2.3.5.1"], "{}", u.name);
        assert_eq!(
            modality.as_deref(),
            Some("CT"),
            "{}: first modality wins",
            u.name
        );
        assert_eq!(has, (true, false), "{}", u.name);
        assert_eq!(row, Some(instance("1.2.3.4.1", "1.2.3.4")), "{}", u.name);
        assert_eq!(all.len(), 2, "{}", u.name);
        assert!(all.iter().all(|(_, h)| h == &[0, 1, 2, 0xFF]), "{}", u.name);
        assert_eq!(series.len(), 1, "{}", u.name);
        assert_eq!(one[0].0.sop_instance_uid, "1.2.3.5.1", "{}", u.name);
        assert_eq!(
            missing
                .iter()
                .map(|r| r.sop_instance_uid.as_str())
                .collect::<Vec<_>>(),
            ["1.2.3.4.2"],
            "{}",
            u.name
        );

        let r = s
            .write_blocking(|tx| {
                Ok((
                    tx.mpps_insert("1.9", 1, "IN PROGRESS")?,
                    tx.mpps_insert("1.9", 1, "IN PROGRESS")?,
                    tx.mpps_update("1.9", 2, "COMPLETED", 1)?,
                    tx.mpps_update("1.9", 2, "DISCONTINUED", 1)?,
                ))
            })
            .unwrap();
        assert_eq!(r, (true, false, true, false), "{}", u.name);
        let m = read(s, |tx| tx.mpps("1.9"));
        assert_eq!(m, Some((2, "COMPLETED".to_owned())), "{}", u.name);
        finish(u);
    }
}

/// Two backends on one PostgreSQL database, as two gateway nodes.
#[cfg(feature = "postgres")]
mod cross_node {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    fn two_nodes(tag: &'static str) -> Option<(Store, Store)> {
        pg::url()?;
        let url = pg::fresh(tag);
        let dir = std::path::Path::new("/nonexistent");
        // Both start at once: migrations run once under the advisory lock.
        let u2 = url.clone();
        let b = std::thread::spawn(move || Store::open_database(Some(&u2), dir));
        let a = Store::open_database(Some(&url), dir).expect("node A");
        let b = b.join().unwrap().expect("node B");
        Some((a, b))
    }

    /// Node A runs `first` and holds its transaction open for a while after signalling;
    /// node B runs `second` meanwhile. Returns both results.
    fn overlap<T: Send + 'static>(
        a: &Store,
        b: &Store,
        first: impl FnOnce(&dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
        second: impl FnOnce(&dyn WriteTx) -> Result<T, StoreError> + Send + 'static,
    ) -> (Result<T, StoreError>, Result<T, StoreError>) {
        let (started, wait) = mpsc::channel();
        let a = a.clone();
        let ta = std::thread::spawn(move || {
            a.write_blocking(move |tx| {
                let v = first(tx)?;
                let _ = started.send(());
                // B's statement now waits on this open transaction.
                std::thread::sleep(Duration::from_millis(400));
                Ok(v)
            })
        });
        wait.recv().unwrap();
        let rb = b.write_blocking(second);
        (ta.join().unwrap(), rb)
    }

    #[test]
    fn a_duplicate_on_two_nodes_at_once_is_stored_once_and_acknowledged_on_both() {
        let Some((a, b)) = two_nodes("dup") else {
            return;
        };
        let (ra, rb) = overlap(
            &a,
            &b,
            |tx| tx.record_message("hl7v2", "APP^FAC", "M1", "ADT^A01", b"one"),
            |tx| tx.record_message("hl7v2", "APP^FAC", "M1", "ADT^A01", b"one"),
        );
        // Both commit (both may be acknowledged), exactly one of them stored it.
        assert_eq!((ra.unwrap(), rb.unwrap()), (true, false));
        assert_eq!(read(&b, |tx| tx.count_messages("hl7v2")), 1);
        // The same for instances: only one node reports the instance as new.
        let (ra, rb) = overlap(
            &a,
            &b,
            |tx| tx.record_instance(&instance("7.7", "7")),
            |tx| tx.record_instance(&instance("7.7", "7")),
        );
        assert_eq!((ra.unwrap(), rb.unwrap()), (true, false));
        a.close();
        b.close();
        pg::drop_db("dup");
    }

    #[test]
    fn concurrent_mpps_sets_on_two_nodes_end_in_one_valid_state() {
        let Some((a, b)) = two_nodes("mpps") else {
            return;
        };
        a.write_blocking(|tx| tx.mpps_insert("1.5", 1, "IN PROGRESS"))
            .unwrap();
        let (ra, rb) = overlap(
            &a,
            &b,
            |tx| tx.mpps_update("1.5", 2, "COMPLETED", 1),
            |tx| tx.mpps_update("1.5", 2, "DISCONTINUED", 1),
        );
        assert_eq!(
            (ra.unwrap(), rb.unwrap()),
            (true, false),
            "one compare-and-set wins"
        );
        assert_eq!(
            read(&b, |tx| tx.mpps("1.5")),
            Some((2, "COMPLETED".to_owned()))
        );
        a.close();
        b.close();
        pg::drop_db("mpps");
    }

    #[test]
    fn read_merge_write_of_one_resource_on_two_nodes_takes_turns() {
        let Some((a, b)) = two_nodes("merge") else {
            return;
        };
        a.write_blocking(|tx| tx.put_resource("Patient", "p1", &patient("p1", "A"), &[]))
            .unwrap();
        // Each node reads the resource and writes the next version.
        let bump = |tx: &dyn WriteTx| {
            let cur = tx.resource("Patient", "p1")?.expect("stored");
            let next = StoredResource {
                version: cur.version + 1,
                ..patient("p1", "B")
            };
            tx.put_resource("Patient", "p1", &next, &[])?;
            Ok(next.version)
        };
        let (ra, rb) = overlap(&a, &b, bump, bump);
        assert_eq!(
            (ra.unwrap(), rb.unwrap()),
            (2, 3),
            "B read what A committed"
        );
        let v = read(&a, |tx| tx.resource("Patient", "p1"));
        assert_eq!(v.map(|r| r.version), Some(3));
        a.close();
        b.close();
        pg::drop_db("merge");
    }
}

#[test]
fn the_message_log_is_bounded_searchable_and_keeps_content_of_refusals() {
    for u in backends("msglog") {
        let s = &u.store;
        let bounds = LogBounds {
            entries: 3,
            bodies: 1,
        };
        let seqs = s
            .write_blocking(move |tx| {
                tx.record_message("hl7v2", "APP^FAC", "MSG-Abc", "ADT^A01", b"stored body")?;
                let mut seqs = Vec::new();
                for (i, (id, outcome)) in [
                    ("MSG-Abc", "stored"),
                    ("M2", "rejected"),
                    ("M3", "rejected"),
                    ("M4", "duplicate"),
                ]
                .into_iter()
                .enumerate()
                {
                    seqs.push(tx.log_message(
                        &MessageLogEntry {
                            door: "mllp".into(),
                            protocol: "hl7v2".into(),
                            sender: "APP^FAC".into(),
                            message_id: id.into(),
                            message_type: "ADT^A01".into(),
                            outcome: outcome.into(),
                            ack: b"ACK".to_vec(),
                            body: (outcome != "stored").then(|| format!("raw {i}").into_bytes()),
                            ..MessageLogEntry::default()
                        },
                        bounds,
                    )?);
                }
                tx.mark_reprocessed(seqs[2], seqs[3])?;
                Ok(seqs)
            })
            .unwrap();
        let q = |text: &str, outcome: &str| LogQuery {
            text: text.into(),
            outcome: outcome.into(),
            limit: 10,
            ..LogQuery::default()
        };
        let (all, abc, errors, first, third, last) = {
            let (qa, qb, qc) = (q("", ""), q("abc", ""), q("", "errors"));
            let (s0, s2, s3) = (seqs[0], seqs[2], seqs[3]);
            read(s, move |tx| {
                Ok((
                    tx.message_log(&qa)?,
                    tx.message_log(&qb)?,
                    tx.message_log(&qc)?,
                    tx.message_log_entry(s0)?,
                    tx.message_log_entry(s2)?,
                    tx.message_log_entry(s3)?,
                ))
            })
        };
        // Bounded to the newest 3 entries, newest first, without content in listings.
        assert_eq!(all.0, 3, "{}", u.name);
        let ids: Vec<&str> = all.1.iter().map(|e| e.message_id.as_str()).collect();
        assert_eq!(ids, ["M4", "M3", "M2"], "{}", u.name);
        assert!(all.1.iter().all(|e| e.body.is_none()), "{}", u.name);
        assert_eq!(abc.0, 0, "{}: the oldest entry was dropped", u.name);
        assert_eq!(errors.0, 2, "{}", u.name);
        assert!(first.is_none(), "{}", u.name);
        let third = third.expect("kept");
        assert_eq!(third.reprocessed_as, Some(seqs[3]), "{}", u.name);
        assert_eq!(
            third.body, None,
            "{}: content kept on the newest 1 only",
            u.name
        );
        assert_eq!(
            last.expect("kept").body.as_deref(),
            Some(&b"raw 3"[..]),
            "{}",
            u.name
        );
        let found = read(s, |tx| {
            tx.message_log(&LogQuery {
                text: "m4".into(),
                limit: 10,
                ..LogQuery::default()
            })
        });
        assert_eq!(found.0, 1, "{}: text search ignores case", u.name);
        finish(u);
    }
}
