//! Heap allocations of the codec, counted with a global counting allocator (stats_alloc).
//! Runs without the libtest harness: the counters are process-wide.

use std::alloc::System;

use bytes::BytesMut;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use xenrad_mllp::{Decoder, Encoder, Frame};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn main() {
    pipelined_frames_allocate_nothing_per_frame();
    println!("test pipelined_frames_allocate_nothing_per_frame ... ok");
    encoding_into_a_reserved_buffer_allocates_nothing();
    println!("test encoding_into_a_reserved_buffer_allocates_nothing ... ok");
    big_frame_in_small_reads_allocates_logarithmically();
    println!("test big_frame_in_small_reads_allocates_logarithmically ... ok");
    let mut n = 3;
    #[cfg(feature = "tokio")]
    {
        server_path_allocations_per_message();
        println!("test server_path_allocations_per_message ... ok");
        n += 1;
    }
    #[cfg(feature = "hl7")]
    {
        hl7_process_allocations_per_message();
        println!("test hl7_process_allocations_per_message ... ok");
        n += 1;
    }
    println!("{n} passed, 0 failed");
}

/// The listener's own work per message (read, deframe, call the handler, frame and write the
/// reply), over an in-memory stream with a handler that answers a fixed ACK: stop-and-wait,
/// 1000 messages, after a warm-up round.
#[cfg(feature = "tokio")]
fn server_path_allocations_per_message() {
    use bytes::Bytes;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use xenrad_mllp::server::{ConnectionInfo, Handler, Reply, Server, ServerConfig};

    struct Fixed(Bytes);
    impl Handler for Fixed {
        async fn handle(&self, _msg: Bytes, _conn: &ConnectionInfo) -> Reply {
            Reply::ack(self.0.clone())
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let ack = Bytes::from_static(b"MSH|^~\\&|X|Y|A|B|20240101||ACK|1|P|2.5.1\rMSA|AA|1\r");
    let server = Server::new(Fixed(ack), ServerConfig::default());
    let framed = wire(1);
    let per_message = rt.block_on(async {
        let (mut client, io) = tokio::io::duplex(64 * 1024);
        let addr = "127.0.0.1:1".parse().unwrap();
        let info = ConnectionInfo::new(1, addr, addr);
        let serving = tokio::spawn(async move { server.serve_connection(io, &info).await });
        let mut buf = vec![0u8; 4096];
        let mut round = async |n: usize| {
            for _ in 0..n {
                client.write_all(&framed).await.unwrap();
                let got = client.read(&mut buf).await.unwrap();
                assert!(got > 0 && buf[got - 2..got] == [0x1c, b'\r']);
            }
        };
        round(100).await;
        let region = Region::new(GLOBAL);
        round(1000).await;
        let stats = region.change();
        drop(client);
        serving.await.unwrap();
        f64::from(u32::try_from(stats.allocations + stats.reallocations).unwrap()) / 1000.0
    });
    println!("server path: {per_message:.2} allocations per message");
    assert!(per_message <= 2.0, "{per_message} allocations per message");
}

/// `Hl7Handler::process` per message (parse, key, store call, ACK) with a store that keeps
/// nothing, over 1000 messages after a warm-up.
#[cfg(feature = "hl7")]
fn hl7_process_allocations_per_message() {
    use bytes::Bytes;
    use xenrad_mllp::hl7::{Hl7Handler, MessageKey, MessageStore, StoreError, Stored};

    struct Null;
    impl MessageStore for Null {
        async fn store(&self, _key: &MessageKey, _msg: Bytes) -> Result<Stored, StoreError> {
            Ok(Stored::New)
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let h = Hl7Handler::new(Null);
    let msg = Bytes::from_static(
        b"MSH|^~\\&|RIS|HOSP|PACS|RAD|20240101120000||ORM^O01^ORM_O01|ORD-1|P|2.5.1\rPID|1||123^^^HOSP^MR||DOE^JOHN||19700101|M\rORC|NW|ORD-1\rOBR|1|ORD-1||CT^CT HEAD\r",
    );
    let per_message = rt.block_on(async {
        for _ in 0..10 {
            assert!(h.process(msg.clone()).await.accepted());
        }
        let region = Region::new(GLOBAL);
        for _ in 0..1000 {
            assert!(h.process(msg.clone()).await.accepted());
        }
        let stats = region.change();
        f64::from(u32::try_from(stats.allocations + stats.reallocations).unwrap()) / 1000.0
    });
    println!("Hl7Handler::process: {per_message:.2} allocations per message");
    assert!(per_message <= 16.0, "{per_message} allocations per message");
}

fn wire(n: usize) -> BytesMut {
    let mut out = BytesMut::new();
    let enc = Encoder::default();
    for i in 0..n {
        let m = format!("MSH|^~\\&|A|B|C|D|20240101||ADT^A01|{i}|P|2.5.1\rPID|1||{i}\r");
        enc.encode(m.as_bytes(), &mut out).unwrap();
    }
    out
}

/// Zero-copy: every payload is a `Bytes` view of the read buffer. The only allocation is the
/// one-time switch of the buffer to shared ownership on the first split.
fn pipelined_frames_allocate_nothing_per_frame() {
    let mut buf = wire(1000);
    let mut dec = Decoder::default();
    let mut frames = Vec::with_capacity(1000);
    let region = Region::new(GLOBAL);
    while let Some(f) = dec.decode(&mut buf).unwrap() {
        frames.push(f);
    }
    let stats = region.change();
    assert_eq!(frames.len(), 1000);
    assert!(matches!(&frames[999], Frame::Message(m) if m.starts_with(b"MSH")));
    assert!(
        stats.allocations <= 1,
        "{} allocations for 1000 frames",
        stats.allocations
    );
    assert_eq!(stats.reallocations, 0);
}

fn encoding_into_a_reserved_buffer_allocates_nothing() {
    let enc = Encoder::default();
    let msg = b"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5.1\rPID|1\r";
    let mut out = BytesMut::with_capacity(1000 * (msg.len() + 3));
    let region = Region::new(GLOBAL);
    for _ in 0..1000 {
        enc.encode(msg, &mut out).unwrap();
    }
    let stats = region.change();
    assert_eq!(stats.allocations + stats.reallocations, 0);
    assert_eq!(out.len(), 1000 * (msg.len() + 3));
}

/// A 4 MiB frame in 64 KiB reads: the buffer grows by doubling (a handful of allocations,
/// not one per read) and the scan never revisits bytes.
fn big_frame_in_small_reads_allocates_logarithmically() {
    let mut data = vec![0x0b];
    data.extend(std::iter::repeat_n(b'x', 4 << 20));
    data.extend_from_slice(b"\x1c\r");
    let mut dec = Decoder::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut got = None;
    let region = Region::new(GLOBAL);
    for part in data.chunks(64 * 1024) {
        buf.extend_from_slice(part);
        if let Some(f) = dec.decode(&mut buf).unwrap() {
            got = Some(f);
        }
    }
    let stats = region.change();
    assert_eq!(got.unwrap().payload().len(), 4 << 20);
    let growths = stats.allocations + stats.reallocations;
    assert!(growths <= 12, "{growths} allocations for 65 reads");
}
