#![cfg(target_os = "linux")]
//! The write-ahead journal (`store::journal`) and `FileSink` on top of it: what recovery
//! replays after a crash (simulated, with the lanes as they were at the crash, and a real
//! SIGKILL of a child process), torn records, ring wrap-around, superblock damage, lane
//! exhaustion and concurrent stores.

mod common;
use common::{CT, ELE, dataset_ele};
use std::collections::{HashMap, HashSet};
use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use xenrad_dimse::store::journal::{Journal, JournalOptions, JournalWriter, Recovery};
use xenrad_dimse::store::{
    FileMeta, FileSink, InstanceStart, StorageSink, encode_file_meta, file_name_for,
};

const BLOCK: u64 = 4096;
const KIB: u64 = 1024;
const MIB: u64 = 1024 * 1024;
const RECORD_MAGIC: &[u8; 8] = b"XRJREC01";
const SUPER_MAGIC: &[u8; 8] = b"XRJLANE1";

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

static NEXT_DIR: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        Self::under(&std::env::temp_dir(), tag)
    }

    fn under(base: &Path, tag: &str) -> Self {
        let n = NEXT_DIR.fetch_add(1, Ordering::Relaxed);
        let p = base.join(format!("xenrad-journal-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        // The journal canonicalizes its directory; so do we, to compare paths.
        Self(fs::canonicalize(&p).unwrap())
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Small lanes and no background checkpoint unless a lane fills up (the timer is an hour
/// and `checkpoint_at` is the whole lane): what a test commits stays in the lanes until
/// the test checkpoints itself.
fn quiet() -> JournalOptions {
    JournalOptions {
        lane_capacity: 4 * MIB,
        checkpoint_at: 4 * MIB,
        checkpoint_every: Duration::from_secs(3600),
        initial_lanes: 2,
        ..JournalOptions::default()
    }
}

/// Deterministic pseudo-random bytes.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// FNV-1a, to derive sizes and contents from a UID.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Appends `data` in odd-sized pieces (1 byte up to a bit over the 256 KiB staging buffer).
fn append_in_pieces(w: &mut JournalWriter, data: &[u8]) -> io::Result<()> {
    const PIECES: [usize; 6] = [1, 7, 4093, 4099, 65_537, 262_147];
    let mut rest = data;
    for i in 0.. {
        if rest.is_empty() {
            break;
        }
        let n = PIECES[i % PIECES.len()].min(rest.len());
        w.append(&rest[..n])?;
        rest = &rest[n..];
    }
    Ok(())
}

/// Journals `data` under `name` and, as `FileSink` does, puts the file in place before the
/// record is published (the `Committed` handle dropped).
fn commit_file(j: &Journal, dir: &Path, name: &str, data: &[u8]) {
    let mut w = j.begin(name).expect("a free lane");
    append_in_pieces(&mut w, data).unwrap();
    assert_eq!(w.len(), data.len() as u64);
    let committed = w.commit().unwrap();
    fs::write(dir.join(name), data).unwrap();
    committed.published();
}

/// Bytes a record of `payload` bytes takes in a lane (header block + padded payload).
fn record_len(payload: u64) -> u64 {
    BLOCK + payload.next_multiple_of(BLOCK)
}

fn journal_dir(dir: &Path) -> PathBuf {
    dir.join(".xenrad-journal")
}

/// The lane files of the journal of `dir`, in order.
fn lane_paths(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(journal_dir(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with("lane-") && !n.ends_with(".new")
        })
        .collect();
    v.sort();
    v
}

/// The lane files as a crash at one moment leaves them (a process crash keeps the page
/// cache, so their current contents are what the next open reads).
struct LaneImage(Vec<(PathBuf, Vec<u8>)>);

impl LaneImage {
    fn capture(dir: &Path) -> Self {
        Self(
            lane_paths(dir)
                .into_iter()
                .map(|p| {
                    let b = fs::read(&p).unwrap();
                    (p, b)
                })
                .collect(),
        )
    }

    /// Puts the captured bytes back (call once every handle of the crashed journal is gone).
    fn restore(&self) {
        for (p, b) in &self.0 {
            fs::write(p, b).unwrap();
        }
    }

    /// The durable head (ring position, lane sequence number) of lane `i`: the superblock
    /// slot with the highest generation.
    fn head(&self, i: usize) -> (u64, u64) {
        let b = &self.0[i].1;
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        [0usize, 512]
            .into_iter()
            .filter(|&s| &b[s..s + 8] == SUPER_MAGIC)
            .max_by_key(|&s| u64_at(s + 24))
            .map(|s| (u64_at(s + 32), u64_at(s + 40)))
            .expect("a superblock slot")
    }
}

/// Crashes the journal: captures its lanes, then `simulate_crash`. Restore the image (after
/// dropping every other handle) before reopening: the lanes as they were at the crash, even
/// should a checkpoint slip in (`simulate_crash_takes_no_checkpoint` checks none does).
fn crash(journal: Journal) -> LaneImage {
    let image = LaneImage::capture(journal.dir());
    journal.simulate_crash();
    image
}

/// Record headers found in a lane file at 4 KiB-aligned offsets: (file offset, lane seq,
/// payload length).
fn record_headers(lane: &[u8]) -> Vec<(u64, u64, u64)> {
    let u64_at = |o: usize| u64::from_le_bytes(lane[o..o + 8].try_into().unwrap());
    (BLOCK as usize..lane.len())
        .step_by(BLOCK as usize)
        .filter(|&o| &lane[o..o + 8] == RECORD_MAGIC)
        .map(|o| (o as u64, u64_at(o + 8), u64_at(o + 24)))
        .collect()
}

fn sorted(mut v: Vec<PathBuf>) -> Vec<PathBuf> {
    v.sort();
    v
}

fn file_meta(uid: &str) -> FileMeta<'_> {
    FileMeta {
        sop_class_uid: CT,
        sop_instance_uid: uid,
        transfer_syntax: ELE,
        implementation_class_uid: "1.2.826.0.1.3680043.10.1",
        implementation_version_name: "JOURNAL_TEST",
        source_ae: Some("CT1"),
    }
}

/// A small Explicit VR Little Endian data set for `uid` whose pixel data (`pixels` bytes,
/// even) is pseudo-random, seeded by `seed`.
fn dataset(uid: &str, seed: u64, pixels: usize) -> Vec<u8> {
    let pixels = pixels & !1;
    let mut d = dataset_ele(CT, uid, "1.2.826.0.1.3680043.10.2", 0);
    // Replace the empty pixel data element that closes it (12-byte OW header).
    d.truncate(d.len() - 12);
    d.extend_from_slice(&0x7FE0u16.to_le_bytes());
    d.extend_from_slice(&0x0010u16.to_le_bytes());
    d.extend_from_slice(b"OW\0\0");
    d.extend_from_slice(&(pixels as u32).to_le_bytes());
    d.extend_from_slice(&pattern(seed, pixels));
    d
}

/// What `FileSink` stores for an instance: File Meta then the data set.
fn part10(uid: &str, ds: &[u8]) -> Vec<u8> {
    let mut f = encode_file_meta(&file_meta(uid));
    f.extend_from_slice(ds);
    f
}

/// Stores one instance through the `StorageSink` interface, the data set in `chunk`-byte
/// writes.
fn store(sink: &FileSink, uid: &str, ds: &[u8], chunk: usize) -> io::Result<PathBuf> {
    let mut w = sink.begin(&InstanceStart {
        meta: file_meta(uid),
        message_id: Some(7),
    })?;
    for c in ds.chunks(chunk) {
        w.write(c)?;
    }
    w.commit()
}

// ---------------------------------------------------------------------------------------
// Journal
// ---------------------------------------------------------------------------------------

#[test]
fn fresh_open_recovers_nothing_and_creates_the_initial_lanes() {
    let dir = TempDir::new("fresh");
    let (j, rec) = Journal::open(dir.path(), JournalOptions::small()).unwrap();
    assert_eq!(rec, Recovery::default());
    let st = j.stats();
    assert_eq!(st.lanes, JournalOptions::small().initial_lanes);
    assert_eq!((st.commits, st.bytes), (0, 0));
    assert_eq!(lane_paths(dir.path()).len(), st.lanes);
    // Each lane is preallocated: superblock + ring.
    for p in lane_paths(dir.path()) {
        let len = fs::metadata(&p).unwrap().len();
        assert_eq!(len, BLOCK + JournalOptions::small().lane_capacity);
    }
    // A second open in the same process shares the journal (and recovers nothing).
    let (j2, rec2) = Journal::open(dir.path(), JournalOptions::small()).unwrap();
    assert_eq!(rec2, Recovery::default());
    assert_eq!(j2.stats().lanes, st.lanes);
}

/// Payload sizes: empty, tiny, around a block, around and well over the 256 KiB staging
/// buffer, over 1 MiB.
const SIZES: [usize; 10] = [
    0, 1, 4095, 4096, 4097, 100_003, 262_144, 262_145, 300_001, 1_100_000,
];

#[test]
fn committed_records_are_replayed_byte_exact_after_a_crash() {
    let dir = TempDir::new("replay");
    let (j, _) = Journal::open(dir.path(), quiet()).unwrap();
    let mut expected = Vec::new();
    for (i, &len) in SIZES.iter().enumerate() {
        let name = format!("rec-{i}.bin");
        let data = pattern(i as u64 + 1, len);
        commit_file(&j, dir.path(), &name, &data);
        expected.push((name, data));
    }
    let st = j.stats();
    assert_eq!(st.commits, SIZES.len() as u64);
    assert_eq!(st.bytes, SIZES.iter().sum::<usize>() as u64);
    let image = crash(j);
    for (name, _) in &expected {
        fs::remove_file(dir.file(name)).unwrap();
    }
    image.restore();
    let (j, rec) = Journal::open(dir.path(), quiet()).unwrap();
    assert_eq!(rec.records, SIZES.len());
    assert_eq!(rec.removed_temp_files, 0);
    assert_eq!(
        sorted(rec.files),
        sorted(expected.iter().map(|(n, _)| dir.file(n)).collect())
    );
    for (name, data) in &expected {
        assert_eq!(fs::read(dir.file(name)).unwrap(), *data, "{name}");
    }
    // Recovery emptied the lanes: a second crash right away replays nothing.
    let image = crash(j);
    image.restore();
    let (_j, rec) = Journal::open(dir.path(), quiet()).unwrap();
    assert_eq!(rec.records, 0);
    assert!(rec.files.is_empty());
}

/// `simulate_crash` stops the checkpoint thread *without* a checkpoint, so that the next open
/// recovers from the lanes (it used to wake the thread, which saw commits since the last
/// checkpoint and ran one before it noticed the crash).
#[test]
fn simulate_crash_takes_no_checkpoint() {
    let dir = TempDir::new("simcrash");
    let (j, _) = Journal::open(dir.path(), quiet()).unwrap();
    let data = pattern(42, 10_000);
    commit_file(&j, dir.path(), "a.bin", &data);
    let probe = j.clone();
    let before = probe.stats().checkpoints;
    let sb_before = LaneImage::capture(dir.path()).head(0);
    j.simulate_crash();
    let sb_after = LaneImage::capture(dir.path()).head(0);
    let after = probe.stats().checkpoints;
    drop(probe);
    fs::remove_file(dir.file("a.bin")).unwrap();
    let (_j, rec) = Journal::open(dir.path(), quiet()).unwrap();
    assert_eq!(after, before, "simulate_crash ran a checkpoint");
    assert_eq!(sb_after, sb_before, "simulate_crash moved lane 0's head");
    assert_eq!(rec.files, vec![dir.file("a.bin")]);
    assert_eq!(fs::read(dir.file("a.bin")).unwrap(), data);
}

#[test]
fn torn_last_record_is_not_replayed_and_earlier_ones_are() {
    let dir = TempDir::new("torn");
    let (j, _) = Journal::open(dir.path(), one_lane()).unwrap();
    let mut expected = Vec::new();
    for (i, len) in [5000usize, 0, 70_000, 300_001, 12_345]
        .into_iter()
        .enumerate()
    {
        let name = format!("torn-{i}.bin");
        let data = pattern(100 + i as u64, len);
        commit_file(&j, dir.path(), &name, &data);
        expected.push((name, data));
    }
    let image = crash(j);
    image.restore();
    // The last record: the valid-looking header with the highest lane sequence number.
    let lane_path = &lane_paths(dir.path())[0];
    let lane = fs::read(lane_path).unwrap();
    let capacity = lane.len() as u64 - BLOCK;
    let headers = record_headers(&lane);
    assert_eq!(headers.len(), expected.len(), "all records in lane 0");
    let &(at, seq, len) = headers.iter().max_by_key(|h| h.1).unwrap();
    assert_eq!(seq, expected.len() as u64 - 1);
    assert_eq!(len, 12_345);
    // Flip one byte in the middle of its payload.
    let ring_pos = (at - BLOCK + BLOCK + len / 2) % capacity;
    let f = OpenOptions::new().write(true).open(lane_path).unwrap();
    let off = BLOCK + ring_pos;
    f.write_all_at(&[lane[off as usize] ^ 0x5A], off).unwrap();
    drop(f);
    for (name, _) in &expected {
        fs::remove_file(dir.file(name)).unwrap();
    }
    let (_j, rec) = Journal::open(dir.path(), one_lane()).unwrap();
    let (torn, good) = expected.split_last().unwrap();
    assert_eq!(rec.records, good.len());
    assert_eq!(
        sorted(rec.files),
        sorted(good.iter().map(|(n, _)| dir.file(n)).collect())
    );
    for (name, data) in good {
        assert_eq!(fs::read(dir.file(name)).unwrap(), *data, "{name}");
    }
    assert!(!dir.file(&torn.0).exists(), "the torn record was replayed");
}

#[test]
fn same_name_in_two_lanes_replays_the_later_commit() {
    let dir = TempDir::new("lastwins");
    let (j, _) = Journal::open(dir.path(), quiet()).unwrap();
    assert!(j.stats().lanes >= 2);
    let mut expected = Vec::new();
    for (case, second_commits_first) in [("a.bin", false), ("b.bin", true)] {
        let first = pattern(fnv(case), 150_001);
        let second = pattern(fnv(case) + 1, 9_999);
        // Both writers open at once: they hold two different lanes.
        let mut w1 = j.begin(case).unwrap();
        append_in_pieces(&mut w1, &first).unwrap();
        let mut w2 = j.begin(case).unwrap();
        append_in_pieces(&mut w2, &second).unwrap();
        let order = if second_commits_first {
            [(w2, &second), (w1, &first)]
        } else {
            [(w1, &first), (w2, &second)]
        };
        for (w, data) in order {
            let c = w.commit().unwrap();
            fs::write(dir.file(case), data).unwrap();
            drop(c);
        }
        let later = if second_commits_first { first } else { second };
        assert_eq!(fs::read(dir.file(case)).unwrap(), later);
        expected.push((case, later));
    }
    let image = crash(j);
    image.restore();
    // The two records of each name are in different lanes.
    let per_lane: Vec<usize> = image
        .0
        .iter()
        .map(|(_, b)| record_headers(b).len())
        .collect();
    assert_eq!(per_lane[..2], [2, 2], "{per_lane:?}");
    for (name, _) in &expected {
        fs::remove_file(dir.file(name)).unwrap();
    }
    let (_j, rec) = Journal::open(dir.path(), quiet()).unwrap();
    assert_eq!(rec.records, 4);
    assert_eq!(rec.files.len(), 2);
    for (name, data) in &expected {
        assert_eq!(fs::read(dir.file(name)).unwrap(), *data, "{name}");
    }
}

#[test]
fn checkpointed_records_are_not_replayed() {
    let dir = TempDir::new("ckpt");
    let (j, _) = Journal::open(dir.path(), quiet()).unwrap();
    let names: Vec<String> = (0..5).map(|i| format!("c-{i}.bin")).collect();
    for (i, name) in names.iter().enumerate() {
        commit_file(&j, dir.path(), name, &pattern(i as u64, 20_000 * i + 1));
    }
    let before = j.stats().checkpoints;
    j.checkpoint().unwrap();
    assert_eq!(j.stats().checkpoints, before + 1);
    let image = crash(j);
    for name in &names {
        fs::remove_file(dir.file(name)).unwrap();
    }
    image.restore();
    let (_j, rec) = Journal::open(dir.path(), quiet()).unwrap();
    assert_eq!(rec, Recovery::default());
    assert!(names.iter().all(|n| !dir.file(n).exists()));
}

/// Records written into one lane, tracked by their ring positions.
struct Ring<'a> {
    j: &'a Journal,
    dir: &'a Path,
    capacity: u64,
    checkpoint_at: u64,
    /// Ring position of the next record (not wrapped).
    pos: u64,
    /// Bytes since the last checkpoint.
    live: u64,
    /// Checkpoints the test took.
    explicit: u64,
    /// Records that ran over the end of the ring.
    straddled: usize,
    records: Vec<(String, Vec<u8>)>,
}

impl Ring<'_> {
    fn checkpoint(&mut self) {
        self.j.checkpoint().unwrap();
        self.explicit += 1;
        self.live = 0;
    }

    /// Commits a record of `len` bytes, after a checkpoint if it would bring the live
    /// bytes to `checkpoint_at`: the journal then never asks for a background checkpoint,
    /// so the test knows exactly which records the last checkpoint covered.
    fn put(&mut self, len: u64) {
        let rl = record_len(len);
        if self.live + rl >= self.checkpoint_at {
            self.checkpoint();
        }
        if self.pos % self.capacity + rl > self.capacity {
            self.straddled += 1;
        }
        let name = format!("w-{:03}.bin", self.records.len());
        let data = pattern(1000 + self.records.len() as u64, len as usize);
        commit_file(self.j, self.dir, &name, &data);
        self.records.push((name, data));
        self.pos += rl;
        self.live += rl;
    }

    /// Room from the next record's position to the end of the ring.
    fn room(&self) -> u64 {
        self.capacity - self.pos % self.capacity
    }
}

#[test]
fn ring_wraps_and_exactly_the_records_after_the_last_checkpoint_are_replayed() {
    let opts = JournalOptions {
        lane_capacity: MIB,
        checkpoint_at: 256 * KIB,
        initial_lanes: 1,
        max_lanes: 1,
        checkpoint_every: Duration::from_secs(3600),
    };
    let dir = TempDir::new("wrap");
    let (j, _) = Journal::open(dir.path(), opts).unwrap();
    let mut ring = Ring {
        j: &j,
        dir: dir.path(),
        capacity: opts.lane_capacity,
        checkpoint_at: opts.checkpoint_at,
        pos: 0,
        live: 0,
        explicit: 0,
        straddled: 0,
        records: Vec::new(),
    };
    // 40 records of 100-200 KiB: pairs of 100-120 KiB, then one of 130-200 KiB.
    for i in 0..40u64 {
        ring.put(if i % 3 == 2 {
            130 * KIB + (i * 7919) % (70 * KIB)
        } else {
            100 * KIB + (i * 7919) % (20 * KIB)
        });
    }
    assert!(
        ring.pos > 4 * MIB,
        "only {} bytes went around the ring",
        ring.pos
    );
    assert!(ring.straddled > 0);
    // Fillers until the next record starts 80-140 KiB (+ its header) before the ring end.
    while !(BLOCK + 80 * KIB..=BLOCK + 140 * KIB).contains(&ring.room()) {
        let step = if ring.room() > BLOCK + 140 * KIB {
            (ring.room() - (BLOCK + 100 * KIB)).min(BLOCK + 200 * KIB)
        } else {
            BLOCK + 150 * KIB // runs over the end; go around once more
        };
        ring.put(step - BLOCK - 77);
    }
    ring.checkpoint();
    let last_checkpoint = ring.records.len();
    // After the last checkpoint: a record whose payload runs over the end of the ring, a
    // 60 KiB one and an empty one (together under `checkpoint_at`).
    let over = ring.room() - BLOCK + 30_001;
    let straddled = ring.straddled;
    for len in [over, 60_003, 0] {
        ring.put(len);
    }
    assert_eq!(
        ring.straddled,
        straddled + 1,
        "the first one runs over the end"
    );
    assert!(ring.live < opts.checkpoint_at);
    let Ring {
        pos,
        live,
        explicit,
        records,
        ..
    } = ring;
    // No background checkpoint ran: the one at open plus the test's own.
    assert_eq!(j.stats().checkpoints, 1 + explicit);
    assert_eq!(j.stats().commits, records.len() as u64);
    let image = crash(j);
    // The durable head is where the last checkpoint left it.
    assert_eq!(image.head(0), (pos - live, last_checkpoint as u64));
    for (name, _) in &records {
        fs::remove_file(dir.file(name)).unwrap();
    }
    image.restore();
    let (_j, rec) = Journal::open(dir.path(), opts).unwrap();
    let replayed = &records[last_checkpoint..];
    assert_eq!(rec.records, replayed.len());
    assert_eq!(
        sorted(rec.files),
        sorted(replayed.iter().map(|(n, _)| dir.file(n)).collect())
    );
    for (name, data) in replayed {
        assert_eq!(fs::read(dir.file(name)).unwrap(), *data, "{name}");
    }
    for (name, _) in &records[..last_checkpoint] {
        assert!(!dir.file(name).exists(), "{name} was replayed");
    }
}

#[test]
fn record_larger_than_the_lane_fails_with_storage_full() {
    let opts = JournalOptions {
        lane_capacity: MIB,
        initial_lanes: 1,
        max_lanes: 1,
        ..quiet()
    };
    let dir = TempDir::new("full");
    // A record that fills the lane exactly fits, and is replayed.
    let (j, _) = Journal::open(dir.path(), opts).unwrap();
    let exact = pattern(6, (MIB - BLOCK) as usize);
    commit_file(&j, dir.path(), "exact.bin", &exact);
    let image = LaneImage::capture(dir.path());
    assert!(j.begin("more.bin").is_none(), "the lane is full");
    j.simulate_crash();
    fs::remove_file(dir.file("exact.bin")).unwrap();
    image.restore();
    let (j, rec) = Journal::open(dir.path(), opts).unwrap();
    assert_eq!(rec.files, vec![dir.file("exact.bin")]);
    assert_eq!(fs::read(dir.file("exact.bin")).unwrap(), exact);
    // One byte more, in pieces: the piece that would pass the ring's end fails.
    let big = pattern(7, exact.len() + 1);
    let mut w = j.begin("big.bin").unwrap();
    let mut err = None;
    for piece in big.chunks(300_000) {
        if let Err(e) = w.append(piece) {
            err = Some(e);
            break;
        }
    }
    assert_eq!(
        err.expect("append must fail").kind(),
        io::ErrorKind::StorageFull
    );
    // The writer is spent: more appends and the commit fail the same way.
    assert_eq!(
        w.append(b"x").unwrap_err().kind(),
        io::ErrorKind::StorageFull
    );
    assert_eq!(w.commit().unwrap_err().kind(), io::ErrorKind::StorageFull);
    // In one piece: fails at once.
    let mut w = j.begin("big2.bin").expect("the lane was given back");
    assert_eq!(
        w.append(&big).unwrap_err().kind(),
        io::ErrorKind::StorageFull
    );
    assert_eq!(w.commit().unwrap_err().kind(), io::ErrorKind::StorageFull);
    assert!(j.begin("next.bin").is_some(), "the lane was given back");
    assert_eq!(j.stats().commits, 0);
    let image = crash(j);
    image.restore();
    let (_j, rec) = Journal::open(dir.path(), opts).unwrap();
    assert_eq!(rec, Recovery::default());
    assert!(!dir.file("big.bin").exists() && !dir.file("big2.bin").exists());
}

// Regression (found by these tests, fixed): a writer dropped with bytes still in its
// staging buffer gave the buffer back with its fill level unchanged, and the lane's next
// writer appended after those bytes; its payload CRC then failed at recovery, which lost
// that record and every later one of the lane.

/// One lane only: every record lands in lane 0 (with more idle lanes, `begin` takes the
/// least used one, spreading sequential records).
fn one_lane() -> JournalOptions {
    JournalOptions {
        initial_lanes: 1,
        max_lanes: 1,
        ..quiet()
    }
}

#[test]
fn writer_dropped_without_commit_records_nothing_and_frees_its_lane() {
    let dir = TempDir::new("dropped");
    let (j, _) = Journal::open(dir.path(), one_lane()).unwrap();
    for (name, len) in [("dropped.bin", 400_000), ("dropped2.bin", 10)] {
        let mut w = j.begin(name).expect("the only lane is free");
        append_in_pieces(&mut w, &pattern(3, len)).unwrap();
        assert!(j.begin("other.bin").is_none(), "the only lane is held");
        drop(w);
    }
    assert!(j.begin("other.bin").is_some(), "the lane was given back");
    assert_eq!(j.stats().commits, 0);
    assert_eq!(j.stats().lanes, 1);
    let image = crash(j);
    image.restore();
    let (_j, rec) = Journal::open(dir.path(), one_lane()).unwrap();
    assert_eq!(rec, Recovery::default());
    assert!(!dir.file("dropped.bin").exists() && !dir.file("dropped2.bin").exists());
}

#[test]
fn record_committed_after_a_dropped_writer_is_replayed() {
    let dir = TempDir::new("afterdrop");
    let (j, _) = Journal::open(dir.path(), one_lane()).unwrap();
    let mut w = j.begin("dropped.bin").unwrap();
    append_in_pieces(&mut w, &pattern(3, 400_000)).unwrap();
    drop(w);
    // The same (only) lane again; its record starts where the dropped one did.
    let after = pattern(4, 5_000);
    commit_file(&j, dir.path(), "after.bin", &after);
    assert_eq!(j.stats().commits, 1);
    let image = crash(j);
    image.restore();
    fs::remove_file(dir.file("after.bin")).unwrap();
    let (_j, rec) = Journal::open(dir.path(), one_lane()).unwrap();
    assert_eq!(rec.records, 1);
    assert_eq!(rec.files, vec![dir.file("after.bin")]);
    assert_eq!(fs::read(dir.file("after.bin")).unwrap(), after);
    assert!(!dir.file("dropped.bin").exists());
}

#[test]
fn begin_refuses_when_every_lane_is_held_or_the_name_is_invalid() {
    let opts = JournalOptions {
        initial_lanes: 2,
        max_lanes: 2,
        ..quiet()
    };
    let dir = TempDir::new("busy");
    let (j, _) = Journal::open(dir.path(), opts).unwrap();
    for bad in ["../x", ".hidden", "", "a/b", "nul\0", &"n".repeat(5000)] {
        assert!(j.begin(bad).is_none(), "{bad:?} accepted");
    }
    let w1 = j.begin("one.bin").unwrap();
    let w2 = j.begin("two.bin").unwrap();
    assert!(j.begin("three.bin").is_none());
    assert!(j.begin("three.bin").is_none());
    drop(w1);
    let w3 = j.begin("three.bin").expect("a lane was given back");
    assert!(j.begin("four.bin").is_none());
    drop((w2, w3));
    assert!(j.begin("four.bin").is_some());
    assert_eq!(j.stats().lanes, 2);
}

#[test]
fn stray_temp_files_are_removed_at_open() {
    let dir = TempDir::new("stray");
    let strays = [
        ".xenrad-123-4.part",
        ".xenrad-99999-0.part",
        ".xenrad-recover-17.part",
    ];
    let keep = ["keep.part", ".xenrad-notes", "x.dcm", "xenrad-1-2.part"];
    for n in strays.iter().chain(&keep) {
        fs::write(dir.file(n), b"stale").unwrap();
    }
    let (_j, rec) = Journal::open(dir.path(), quiet()).unwrap();
    assert_eq!(rec.removed_temp_files, strays.len());
    assert_eq!(rec.records, 0);
    assert!(strays.iter().all(|n| !dir.file(n).exists()));
    assert!(keep.iter().all(|n| dir.file(n).exists()));
}

#[test]
fn superblock_survives_one_corrupt_slot_but_not_two() {
    let dir = TempDir::new("super");
    let data = pattern(11, 50_000);
    {
        let (j, _) = Journal::open(dir.path(), one_lane()).unwrap();
        commit_file(&j, dir.path(), "a.bin", &data);
        // Moves lane 0's head: generation 1, written to slot 1 (slot 0 keeps generation 0).
        j.checkpoint().unwrap();
    }
    let lane_path = lane_paths(dir.path())[0].clone();
    let original = fs::read(&lane_path).unwrap();
    assert_eq!(&original[0..8], SUPER_MAGIC);
    assert_eq!(&original[512..520], SUPER_MAGIC);
    let corrupt = |slot: u64| {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&lane_path)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, slot * 512 + 20).unwrap();
        f.write_all_at(&[b[0] ^ 0xFF], slot * 512 + 20).unwrap();
    };
    // The older slot damaged: the newer one is used; its head is past the record.
    corrupt(0);
    {
        let (_j, rec) = Journal::open(dir.path(), one_lane()).unwrap();
        assert_eq!(rec, Recovery::default());
    }
    assert_eq!(fs::read(dir.file("a.bin")).unwrap(), data);
    // The newer slot damaged (the older one intact): open falls back to the older one.
    fs::write(&lane_path, &original).unwrap();
    corrupt(1);
    {
        let (_j, rec) = Journal::open(dir.path(), one_lane()).unwrap();
        assert!(rec.files.iter().all(|f| *f == dir.file("a.bin")));
    }
    assert_eq!(fs::read(dir.file("a.bin")).unwrap(), data);
    // Both damaged: the lane cannot be trusted.
    let mut both = original.clone();
    both[20] ^= 0xFF;
    both[512 + 20] ^= 0xFF;
    fs::write(&lane_path, &both).unwrap();
    let err = Journal::open(dir.path(), one_lane()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
    // The failed open released the lock: with the lane repaired it opens again.
    fs::write(&lane_path, &original).unwrap();
    assert!(Journal::open(dir.path(), one_lane()).is_ok());
}

// ---------------------------------------------------------------------------------------
// FileSink
// ---------------------------------------------------------------------------------------

#[test]
fn file_sink_restores_a_truncated_instance_after_a_crash() {
    let dir = TempDir::new("sink");
    let (sink, rec) = FileSink::open_with(dir.path(), quiet()).unwrap();
    assert_eq!(rec, Recovery::default());
    let uid = "1.2.826.0.1.3680043.10.12.1";
    let ds = dataset(uid, 12, 200_000);
    let path = store(&sink, uid, &ds, 16_387).unwrap();
    assert_eq!(path, dir.file(&file_name_for(uid)));
    let expected = part10(uid, &ds);
    assert_eq!(fs::read(&path).unwrap(), expected);
    let journal = sink.journal().unwrap();
    assert_eq!(
        journal.stats().commits,
        1,
        "the instance went through the journal"
    );
    let image = crash(journal);
    drop(sink);
    OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().len(), 0);
    image.restore();
    let (_sink, rec) = FileSink::open_with(dir.path(), quiet()).unwrap();
    assert_eq!(rec.records, 1);
    assert_eq!(rec.files, vec![path.clone()]);
    assert_eq!(fs::read(&path).unwrap(), expected);
}

#[test]
fn file_sink_large_instance_stored_after_a_journaled_copy_wins() {
    let dir = TempDir::new("sinklarge");
    let (sink, _) = FileSink::open_with(dir.path(), quiet()).unwrap();
    let sink = sink.with_journal_max_instance(64 * KIB);
    let journal = sink.journal().unwrap();
    let uid = "1.2.826.0.1.3680043.10.13.1";
    let small = dataset(uid, 1, 10_000);
    let path = store(&sink, uid, &small, 4096).unwrap();
    assert_eq!(journal.stats().commits, 1, "the small copy was journaled");
    let checkpoints = journal.stats().checkpoints;
    let large = dataset(uid, 2, 200_000);
    assert_eq!(store(&sink, uid, &large, 30_001).unwrap(), path);
    assert_eq!(
        journal.stats().commits,
        1,
        "the large copy was not journaled"
    );
    assert!(
        journal.stats().checkpoints > checkpoints,
        "no checkpoint after it"
    );
    let expected = part10(uid, &large);
    assert_eq!(fs::read(&path).unwrap(), expected);
    let image = crash(journal);
    drop(sink);
    image.restore();
    let (_sink, rec) = FileSink::open_with(dir.path(), quiet()).unwrap();
    assert_eq!(rec.records, 0, "the small copy is still in the journal");
    assert!(rec.files.is_empty());
    assert_eq!(fs::read(&path).unwrap(), expected);
}

#[test]
fn file_sink_concurrent_stores_are_correct_before_and_after_a_crash() {
    const THREADS: u64 = 8;
    const PER_THREAD: u64 = 30;
    let opts = JournalOptions {
        max_lanes: 3,
        ..quiet()
    };
    let dir = TempDir::new("sinkconc");
    let (sink, _) = FileSink::open_with(dir.path(), opts).unwrap();
    let uid = |t: u64, i: u64| format!("1.2.826.0.1.3680043.10.14.{t}.{i}");
    let ds = |t: u64, i: u64| {
        let u = uid(t, i);
        let seed = fnv(&u);
        dataset(&u, seed, 1 + (seed % 40_000) as usize)
    };
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let sink = sink.clone();
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let (u, d) = (uid(t, i), ds(t, i));
                    let path = store(&sink, &u, &d, 1 + (i as usize * 997) % 9000).unwrap();
                    assert_eq!(fs::read(&path).unwrap(), part10(&u, &d), "{u}");
                }
            });
        }
    });
    let expected: HashMap<PathBuf, Vec<u8>> = (0..THREADS)
        .flat_map(|t| (0..PER_THREAD).map(move |i| (t, i)))
        .map(|(t, i)| {
            let u = uid(t, i);
            (dir.file(&file_name_for(&u)), part10(&u, &ds(t, i)))
        })
        .collect();
    let check = |what: &str| {
        let mut on_disk = 0;
        for e in fs::read_dir(dir.path()).unwrap() {
            let p = e.unwrap().path();
            if p.file_name().unwrap() == ".xenrad-journal" {
                continue;
            }
            let want = expected
                .get(&p)
                .unwrap_or_else(|| panic!("{what}: stray {}", p.display()));
            assert_eq!(fs::read(&p).unwrap(), *want, "{what}: {}", p.display());
            on_disk += 1;
        }
        assert_eq!(on_disk, expected.len(), "{what}");
    };
    check("before the crash");
    let journal = sink.journal().unwrap();
    let st = journal.stats();
    assert!(st.lanes <= 3, "{st:?}");
    let image = crash(journal);
    drop(sink);
    image.restore();
    let (_sink, rec) = FileSink::open_with(dir.path(), opts).unwrap();
    assert_eq!(rec.removed_temp_files, 0);
    assert!(rec.records <= expected.len());
    for f in &rec.files {
        assert!(expected.contains_key(f), "replayed {}", f.display());
    }
    check("after the crash");
}

/// Stores `uids` after `before` ran on the sink (one lane, so all share it), crashes,
/// truncates their files and reopens: all of them must come back.
fn acknowledged_after(tag: &str, before: impl FnOnce(&FileSink), uids: &[&str]) {
    let opts = one_lane();
    let dir = TempDir::new(tag);
    let (sink, _) = FileSink::open_with(dir.path(), opts).unwrap();
    let sink = sink.with_journal_max_instance(64 * KIB);
    before(&sink);
    let journal = sink.journal().unwrap();
    let commits = journal.stats().commits;
    let mut expected = Vec::new();
    for (i, uid) in uids.iter().enumerate() {
        let ds = dataset(uid, 50 + i as u64, 10_000 + 3 * i);
        let path = store(&sink, uid, &ds, 4099).unwrap();
        expected.push((path, part10(uid, &ds)));
    }
    assert_eq!(journal.stats().commits, commits + uids.len() as u64);
    let image = crash(journal);
    drop(sink);
    for (path, _) in &expected {
        OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
    }
    image.restore();
    let (_sink, rec) = FileSink::open_with(dir.path(), opts).unwrap();
    assert_eq!(rec.records, uids.len(), "{rec:?}");
    for (path, want) in &expected {
        assert_eq!(fs::read(path).unwrap(), *want, "{}", path.display());
    }
}

#[test]
fn file_sink_instances_after_an_aborted_one_survive_a_crash() {
    acknowledged_after(
        "sinkabort",
        |sink| {
            // The association went away 10 000 bytes into the data set.
            let mut w = sink
                .begin(&InstanceStart {
                    meta: file_meta("1.2.826.0.1.3680043.10.16.0"),
                    message_id: Some(1),
                })
                .unwrap();
            w.write(&pattern(16, 10_000)).unwrap();
            w.abort();
        },
        &["1.2.826.0.1.3680043.10.16.1", "1.2.826.0.1.3680043.10.16.2"],
    );
}

#[test]
fn file_sink_instances_after_one_too_large_for_the_journal_survive_a_crash() {
    acknowledged_after(
        "sinkoutgrown",
        |sink| {
            let uid = "1.2.826.0.1.3680043.10.17.0";
            let ds = dataset(uid, 17, 200_000);
            store(sink, uid, &ds, 30_001).unwrap();
            assert_eq!(sink.journal().unwrap().stats().commits, 0);
        },
        &["1.2.826.0.1.3680043.10.17.1", "1.2.826.0.1.3680043.10.17.2"],
    );
}

/// The same without anything before: passes, so the two above fail for the dropped writer.
#[test]
fn file_sink_instances_in_one_lane_survive_a_crash() {
    acknowledged_after(
        "sinkplain",
        |_| {},
        &["1.2.826.0.1.3680043.10.18.1", "1.2.826.0.1.3680043.10.18.2"],
    );
}

// ---------------------------------------------------------------------------------------
// A real process crash
// ---------------------------------------------------------------------------------------

const CHILD_ENV: &str = "XENRAD_JOURNAL_CHILD";
/// This test's name, for the child to run.
const CHILD_TEST: &str = "sigkill_loses_no_acknowledged_instance";
/// Instances the child stores at most before it waits to be killed.
const CHILD_MAX: usize = 100;
const ACKS: usize = 20;

/// The child's journal: nothing is checkpointed while it runs (a checkpoint would make
/// the renamed files durable, and the parent deletes them to stand for files that a crash
/// lost).
fn child_opts() -> JournalOptions {
    JournalOptions {
        lane_capacity: 32 * MIB,
        checkpoint_at: 32 * MIB,
        checkpoint_every: Duration::from_secs(3600),
        ..JournalOptions::default()
    }
}

fn child_uid(i: usize) -> String {
    format!("1.2.826.0.1.3680043.10.15.{i}")
}

fn child_dataset(uid: &str) -> Vec<u8> {
    let seed = fnv(uid);
    dataset(uid, seed, 1 + (seed % 100_000) as usize)
}

/// The child: stores instances, acknowledging each on stdout once its commit returned,
/// then waits to be killed (and exits on its own after two minutes, should the parent be
/// gone).
fn child(dir: &Path) -> ! {
    let (sink, _) = FileSink::open_with(dir, child_opts()).unwrap();
    let mut out = io::stdout().lock();
    // The test harness has printed "test <name> ... " without a line end.
    writeln!(out).unwrap();
    for i in 0..CHILD_MAX {
        let uid = child_uid(i);
        store(&sink, &uid, &child_dataset(&uid), 8191).unwrap();
        writeln!(out, "ok {uid}").unwrap();
        out.flush().unwrap();
    }
    let until = Instant::now() + Duration::from_secs(120);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        std::thread::park_timeout(left);
    }
    std::process::exit(3);
}

/// Kills the child if the parent test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigkill_loses_no_acknowledged_instance() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = TempDir::new("sigkill");
    let mut child = KillOnDrop(
        Command::new(std::env::current_exe().unwrap())
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    // Keep the pipe open until the kill, so the child never sees it closed.
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let mut acked = Vec::new();
    while acked.len() < ACKS {
        let line = lines
            .next()
            .expect("the child ended before 20 acknowledgements")
            .unwrap();
        if let Some(uid) = line.strip_prefix("ok ") {
            acked.push(uid.to_owned());
        }
    }
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status}");
    drop(lines);
    assert_eq!(
        acked,
        (0..ACKS).map(child_uid).collect::<Vec<_>>(),
        "acknowledged in order"
    );
    for uid in &acked {
        fs::remove_file(dir.file(&file_name_for(uid))).unwrap();
    }
    let (_sink, rec) = FileSink::open_with(dir.path(), child_opts()).unwrap();
    assert!(rec.records >= ACKS, "{rec:?}");
    // Every acknowledged instance is back, byte for byte.
    for uid in &acked {
        let path = dir.file(&file_name_for(uid));
        assert!(rec.files.contains(&path), "{uid} not replayed");
        let want = part10(uid, &child_dataset(uid));
        assert_eq!(fs::read(&path).unwrap(), want, "{uid}");
    }
    // Whatever else is there is one of the child's instances, whole; no temp file is left.
    let known: HashSet<String> = (0..CHILD_MAX)
        .map(|i| file_name_for(&child_uid(i)))
        .collect();
    for e in fs::read_dir(dir.path()).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name == ".xenrad-journal" {
            continue;
        }
        assert!(known.contains(&name), "unexpected file {name}");
        let uid = name.strip_suffix(".dcm").unwrap();
        let want = part10(uid, &child_dataset(uid));
        assert_eq!(fs::read(dir.file(&name)).unwrap(), want, "{uid}");
    }
}

/// Records within one stage and records spanning several (over 2 MiB, written a stage at
/// a time) are replayed byte-exact.
fn replay_across_stages(dir: &TempDir) {
    let opts = JournalOptions {
        lane_capacity: 16 * MIB,
        checkpoint_at: 16 * MIB,
        ..quiet()
    };
    let (j, _) = Journal::open(dir.path(), opts).unwrap();
    let mut expected = Vec::new();
    for (i, len) in [
        0usize,
        5_000,
        2 * MIB as usize,
        2 * MIB as usize + 1,
        5_000_003,
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("stage-{i}.bin");
        let data = pattern(i as u64 + 100, len);
        commit_file(&j, dir.path(), &name, &data);
        expected.push((name, data));
    }
    let image = crash(j);
    for (name, _) in &expected {
        fs::remove_file(dir.file(name)).unwrap();
    }
    image.restore();
    let (_j, rec) = Journal::open(dir.path(), opts).unwrap();
    assert_eq!(rec.records, expected.len());
    for (name, data) in &expected {
        assert_eq!(fs::read(dir.file(name)).unwrap(), *data, "{name}");
    }
}

/// With direct I/O (the lanes on the system temp dir's file system).
#[test]
fn records_over_a_stage_replay_byte_exact() {
    replay_across_stages(&TempDir::new("stages"));
}

/// Where the file system refuses direct I/O (tmpfs), lanes are written through the page
/// cache, with the same outcome.
#[test]
fn page_cache_fallback_replays_byte_exact() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("skipped: no /dev/shm");
        return;
    }
    replay_across_stages(&TempDir::under(shm, "tmpfs"));
}
