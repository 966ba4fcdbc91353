//! Listener and client over loopback TCP: ordering, pipelining, split reads, garbage, limits,
//! timeouts, half-close, commit blocks, ACK matching and reconnects.
#![cfg(feature = "tokio")]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::BytesMut;
use common::{Recorder, ack_for, framed, message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use xenrad_mllp::client::{Client, ClientConfig, ClientError, Response};
use xenrad_mllp::server::{Server, ServerConfig};
use xenrad_mllp::{Decoder, DecoderConfig, Frame, peek};

/// Generous bound so a broken test fails instead of hanging; never a timing assertion.
const GUARD: Duration = Duration::from_secs(20);

struct Running {
    addr: SocketAddr,
    server: Server<Recorder>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(GUARD, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

async fn start(config: ServerConfig) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(Recorder::default(), config);
    let (tx, rx) = oneshot::channel();
    let s = server.clone();
    let task = tokio::spawn(async move {
        s.serve(listener, async {
            rx.await.ok();
        })
        .await
    });
    Running {
        addr,
        server,
        stop: Some(tx),
        task,
    }
}

/// Reads frames until `n` have arrived or the peer closes; returns them.
async fn read_frames(stream: &mut TcpStream, n: usize) -> Vec<Frame> {
    let mut dec = Decoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    tokio::time::timeout(GUARD, async {
        while out.len() < n {
            while let Some(f) = dec.decode(&mut buf).unwrap() {
                out.push(f);
            }
            if out.len() >= n || stream.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                while let Some(f) = dec.decode(&mut buf).unwrap() {
                    out.push(f);
                }
                break;
            }
        }
    })
    .await
    .expect("frames in time");
    out
}

fn msa2(f: &Frame) -> String {
    let Frame::Message(b) = f else {
        panic!("expected an ACK, got {f:?}")
    };
    String::from_utf8(peek::msa(b).unwrap().1.to_vec()).unwrap()
}

/// Waits until the peer closes (read returns 0 or an error).
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn pipelined_frames_with_garbage_are_acked_in_order() {
    let srv = start(ServerConfig::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let mut wire = b"\0\0\r\n".to_vec();
    for i in 0..500 {
        wire.extend_from_slice(&framed(&format!("M{i}")));
        if i % 7 == 0 {
            wire.extend_from_slice(b"\r\n");
        }
    }
    s.write_all(&wire).await.unwrap();
    let acks = read_frames(&mut s, 500).await;
    let ids: Vec<_> = acks.iter().map(msa2).collect();
    let want: Vec<_> = (0..500).map(|i| format!("M{i}")).collect();
    assert_eq!(ids, want);
    assert_eq!(srv.server.connections().len(), 1);
    drop(s);
    let server = srv.server.clone();
    srv.stop().await;
    // Every connection has ended: the totals are final.
    let c = server.totals();
    assert_eq!(c.frames, 500);
    assert_eq!(c.replies, 500);
    assert_eq!(c.garbage_bytes, 4 + 2 * 72);
    assert_eq!(c.bytes_in, wire.len() as u64);
    assert_eq!(c.errors, 0);
}

/// Pipelined frames: replies are gathered into few writes but stay in order and complete,
/// including those before a frame whose handler closes the connection and before a broken
/// frame; with `max_batched_replies = 1` the result on the wire is the same.
#[tokio::test]
async fn batched_replies_keep_order_up_to_close_and_framing_errors() {
    for batch in [32, 1] {
        let srv = start({
            let mut c = ServerConfig::default();
            c.max_batched_replies = batch;
            c.decoder = DecoderConfig::default().max_frame_size(4096);
            c
        })
        .await;
        // Ten frames, CLOSE, five more that must not be handled.
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        let mut wire = Vec::new();
        for i in 0..10 {
            wire.extend_from_slice(&framed(&format!("B{i}")));
        }
        wire.extend_from_slice(&framed("CLOSE"));
        for i in 10..15 {
            wire.extend_from_slice(&framed(&format!("B{i}")));
        }
        s.write_all(&wire).await.unwrap();
        let ids: Vec<_> = read_frames(&mut s, 16).await.iter().map(msa2).collect();
        let mut want: Vec<_> = (0..10).map(|i| format!("B{i}")).collect();
        want.push("CLOSE".into());
        assert_eq!(ids, want, "batch {batch}");
        assert!(closed_by_peer(&mut s).await);

        // Ten frames, then one over the limit: the ten replies still arrive, then the close.
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        let mut wire = Vec::new();
        for i in 0..10 {
            wire.extend_from_slice(&framed(&format!("C{i}")));
        }
        wire.push(0x0b);
        wire.extend(std::iter::repeat_n(b'x', 5000));
        s.write_all(&wire).await.unwrap();
        let ids: Vec<_> = read_frames(&mut s, 11).await.iter().map(msa2).collect();
        assert_eq!(ids, (0..10).map(|i| format!("C{i}")).collect::<Vec<_>>());
        assert!(closed_by_peer(&mut s).await);
        srv.stop().await;
    }
}

#[tokio::test]
async fn byte_by_byte_split_reads() {
    let srv = start(ServerConfig::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    let mut wire = framed("A1");
    wire.extend_from_slice(&framed("A2"));
    for b in &wire {
        s.write_all(&[*b]).await.unwrap();
        s.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    let acks = read_frames(&mut s, 2).await;
    assert_eq!(acks.iter().map(msa2).collect::<Vec<_>>(), ["A1", "A2"]);
    srv.stop().await;
}

#[tokio::test]
async fn oversized_frame_closes_only_that_connection() {
    let config = {
        let mut c = ServerConfig::default();
        c.decoder = DecoderConfig::default().max_frame_size(4096);
        c
    };
    let srv = start(config).await;
    let mut good = TcpStream::connect(srv.addr).await.unwrap();
    let mut bad = TcpStream::connect(srv.addr).await.unwrap();
    let mut big = vec![0x0b];
    big.extend(std::iter::repeat_n(b'x', 100_000));
    big.extend_from_slice(b"\x1c\r");
    // The server may close while we are still writing: ignore write errors.
    let _ = bad.write_all(&big).await;
    assert!(
        closed_by_peer(&mut bad).await,
        "oversized sender must be disconnected"
    );
    good.write_all(&framed("STILL-OK")).await.unwrap();
    let acks = read_frames(&mut good, 1).await;
    assert_eq!(msa2(&acks[0]), "STILL-OK");
    drop(good);
    srv.stop().await;
}

#[tokio::test]
async fn oversized_frame_is_counted_and_reported() {
    let config = {
        let mut c = ServerConfig::default();
        c.decoder = DecoderConfig::default().max_frame_size(1000);
        c
    };
    let srv = start(config).await;
    let mut bad = TcpStream::connect(srv.addr).await.unwrap();
    let mut big = vec![0x0b];
    big.extend(std::iter::repeat_n(b'y', 5000));
    let _ = bad.write_all(&big).await;
    assert!(closed_by_peer(&mut bad).await);
    let server = srv.server.clone();
    srv.stop().await;
    assert_eq!(
        server.handler().ends.lock().unwrap().as_slice(),
        ["Framing"]
    );
    let t = server.totals();
    assert_eq!(t.errors, 1);
    assert!(t.discarded_bytes >= 1001);
    assert!(server.handler().seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn interrupted_frame_is_dropped_and_next_is_served() {
    let srv = start(ServerConfig::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let mut wire = b"\x0bMSH|^~\\&|partial".to_vec();
    wire.extend_from_slice(&framed("AFTER"));
    s.write_all(&wire).await.unwrap();
    let acks = read_frames(&mut s, 1).await;
    assert_eq!(msa2(&acks[0]), "AFTER");
    let c = srv.server.connections()[0].counters.snapshot();
    assert_eq!(c.errors, 1);
    srv.stop().await;
}

#[tokio::test]
async fn half_closed_peer_still_gets_its_acks() {
    let srv = start(ServerConfig::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let mut wire = framed("H1");
    wire.extend_from_slice(&framed("H2"));
    s.write_all(&wire).await.unwrap();
    s.shutdown().await.unwrap(); // half-close: we will send nothing more
    let acks = read_frames(&mut s, 3).await; // ends when the server closes
    assert_eq!(acks.iter().map(msa2).collect::<Vec<_>>(), ["H1", "H2"]);
    let server = srv.server.clone();
    srv.stop().await;
    assert_eq!(
        server.handler().ends.lock().unwrap().as_slice(),
        ["PeerClosed"]
    );
}

#[tokio::test]
async fn stalled_frame_times_out_and_idle_connection_is_closed() {
    let config = {
        let mut c = ServerConfig::default();
        c.frame_timeout = Some(Duration::from_millis(200));
        c.idle_timeout = Some(Duration::from_millis(300));
        c
    };
    let srv = start(config).await;
    let mut slow = TcpStream::connect(srv.addr).await.unwrap();
    slow.write_all(b"\x0bMSH|^~\\&|never finished")
        .await
        .unwrap();
    let mut idle = TcpStream::connect(srv.addr).await.unwrap();
    assert!(closed_by_peer(&mut slow).await);
    assert!(closed_by_peer(&mut idle).await);
    let server = srv.server.clone();
    srv.stop().await;
    let mut ends = server.handler().ends.lock().unwrap().clone();
    ends.sort();
    assert_eq!(ends, ["FrameTimeout", "IdleTimeout"]);
}

/// The frame-completion deadline runs per frame: a sender that keeps every frame within the
/// limit is never cut off, even when frames follow each other without a pause.
#[tokio::test]
async fn frame_deadline_restarts_for_each_frame() {
    let config = {
        let mut c = ServerConfig::default();
        c.frame_timeout = Some(Duration::from_millis(1500));
        c
    };
    let srv = start(config).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let (f1, f2) = (framed("SLOW-1"), framed("SLOW-2"));
    s.write_all(&f1[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    // Finish frame 1 and start frame 2 in the same write.
    let mut w = f1[10..].to_vec();
    w.extend_from_slice(&f2[..10]);
    s.write_all(&w).await.unwrap();
    tokio::time::sleep(Duration::from_millis(900)).await;
    s.write_all(&f2[10..]).await.unwrap();
    let acks = read_frames(&mut s, 2).await;
    assert_eq!(
        acks.iter().map(msa2).collect::<Vec<_>>(),
        ["SLOW-1", "SLOW-2"]
    );
    srv.stop().await;
}

#[tokio::test]
async fn per_ip_limit_refuses_extra_connections() {
    let config = {
        let mut c = ServerConfig::default();
        c.max_connections_per_ip = 1;
        c
    };
    let srv = start(config).await;
    let mut first = TcpStream::connect(srv.addr).await.unwrap();
    first.write_all(&framed("FIRST")).await.unwrap();
    assert_eq!(msa2(&read_frames(&mut first, 1).await[0]), "FIRST");
    let mut second = TcpStream::connect(srv.addr).await.unwrap();
    let _ = second.write_all(&framed("SECOND")).await;
    assert!(closed_by_peer(&mut second).await);
    // The first connection is unaffected.
    first.write_all(&framed("FIRST-AGAIN")).await.unwrap();
    assert_eq!(msa2(&read_frames(&mut first, 1).await[0]), "FIRST-AGAIN");
    let server = srv.server.clone();
    drop(first);
    srv.stop().await;
    assert!(
        !server
            .handler()
            .seen
            .lock()
            .unwrap()
            .contains(&"SECOND".to_owned())
    );
}

#[tokio::test]
async fn handler_replies_commit_block_and_can_close() {
    let srv = start(ServerConfig::default()).await;
    let mut s = TcpStream::connect(srv.addr).await.unwrap();
    let mut wire = framed("COMMIT");
    wire.extend_from_slice(&framed("CLOSE"));
    wire.extend_from_slice(&framed("NEVER"));
    s.write_all(&wire).await.unwrap();
    let frames = read_frames(&mut s, 3).await;
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0], Frame::CommitAck);
    assert_eq!(msa2(&frames[1]), "CLOSE");
    let server = srv.server.clone();
    srv.stop().await;
    assert_eq!(
        server.handler().seen.lock().unwrap().as_slice(),
        ["COMMIT", "CLOSE"]
    );
}

#[tokio::test]
async fn client_round_trip_with_our_server() {
    let srv = start(ServerConfig::default()).await;
    let mut client = Client::new(srv.addr.to_string(), ClientConfig::default());
    for i in 0..200 {
        let r = client.send(&message(&format!("C{i}"))).await.unwrap();
        assert!(r.is_accept());
        assert_eq!(r.control_id(), Some(format!("C{i}").as_bytes()));
    }
    let r = client.send(&message("COMMIT")).await.unwrap();
    assert_eq!(r, Response::CommitAck);
    assert_eq!(client.stats().acked, 201);
    assert_eq!(client.stats().connects, 1);
    assert!(matches!(
        client.send(b"PID|1\r").await,
        Err(ClientError::NoControlId)
    ));
    drop(client);
    srv.stop().await;
}

/// A scripted peer: first connection sends a late ACK for an older message, then the right
/// one; the client must skip the stale ACK.
#[tokio::test]
async fn client_ignores_late_ack_for_another_message() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let got = read_frames(&mut s, 1).await;
        let Frame::Message(msg) = &got[0] else {
            panic!()
        };
        let mut out = BytesMut::new();
        let enc = xenrad_mllp::Encoder::default();
        enc.encode(&ack_for(&message("OLD")), &mut out).unwrap();
        enc.encode(&ack_for(msg), &mut out).unwrap();
        s.write_all(&out).await.unwrap();
        let _ = read_frames(&mut s, 1).await;
    });
    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    let r = client.send(&message("NEW")).await.unwrap();
    assert_eq!(r.control_id(), Some(&b"NEW"[..]));
    assert_eq!(client.stats().stale_acks, 1);
    drop(client);
    peer.await.unwrap();
}

/// A scripted peer that drops the first connection without answering: the client reconnects
/// after a backoff and gets the ACK on the second connection.
#[tokio::test]
async fn client_reconnects_after_peer_drops() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let _ = read_frames(&mut s, 1).await;
        drop(s);
        let (mut s, _) = listener.accept().await.unwrap();
        let got = read_frames(&mut s, 1).await;
        let Frame::Message(msg) = &got[0] else {
            panic!()
        };
        let mut out = BytesMut::new();
        xenrad_mllp::Encoder::default()
            .encode(&ack_for(msg), &mut out)
            .unwrap();
        s.write_all(&out).await.unwrap();
        let _ = read_frames(&mut s, 1).await;
    });
    let config = {
        let mut c = ClientConfig::default();
        c.backoff_initial = Duration::from_millis(10);
        c
    };
    let mut client = Client::new(addr.to_string(), config);
    let r = client.send(&message("RETRY")).await.unwrap();
    assert!(r.is_accept());
    assert_eq!(client.stats().connects, 2);
    assert_eq!(client.stats().retries, 1);
    drop(client);
    peer.await.unwrap();
}

/// The client, its `send` future and the server can be moved into spawned tasks.
#[test]
fn client_and_server_futures_are_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Client>();
    assert_send_sync::<Server<Recorder>>();
    let mut client = Client::new("127.0.0.1:9", ClientConfig::default());
    let msg = message("X");
    let fut = client.send(&msg);
    assert_send(&fut);
}

#[tokio::test]
async fn client_gives_up_when_nobody_listens() {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let config = {
        let mut c = ClientConfig::default();
        c.max_attempts = 2;
        c.backoff_initial = Duration::from_millis(1);
        c
    };
    let mut client = Client::new(addr.to_string(), config);
    let err = client.send(&message("X")).await.unwrap_err();
    assert!(
        matches!(err, ClientError::GaveUp { attempts: 2, .. }),
        "{err}"
    );
}

#[test]
fn tokio_util_codec_decodes_and_encodes() {
    use tokio_util::codec::{Decoder as _, Encoder as _};
    use xenrad_mllp::codec::{CodecError, MllpCodec};
    let mut codec = MllpCodec::new(DecoderConfig::default().max_frame_size(64));
    let mut buf = BytesMut::new();
    codec
        .encode(Frame::Message(message("K").into()), &mut buf)
        .unwrap_err();
    codec.encode(&b"MSH|short"[..], &mut buf).unwrap();
    codec.encode(Frame::CommitNak, &mut buf).unwrap();
    buf.extend_from_slice(b"\x0btrunc");
    assert_eq!(
        codec.decode(&mut buf).unwrap(),
        Some(Frame::Message("MSH|short".into()))
    );
    assert_eq!(codec.decode(&mut buf).unwrap(), Some(Frame::CommitNak));
    assert_eq!(codec.decode(&mut buf).unwrap(), None);
    assert!(matches!(
        codec.decode_eof(&mut buf),
        Err(CodecError::Decode(_))
    ));
    assert_eq!(codec.decoder().stats().frames, 2);
}
