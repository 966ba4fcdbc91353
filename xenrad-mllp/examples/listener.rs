//! A complete MLLP listener in a few lines: HL7 v2 messages are parsed, stored in memory,
//! deduplicated and acknowledged; a client sends two messages (one twice) and prints the ACKs.
//!
//! `cargo run -p xenrad-mllp --features hl7 --example listener`

use xenrad_mllp::client::{Client, ClientConfig};
use xenrad_mllp::hl7::{Hl7Handler, MemoryStore};
use xenrad_mllp::server::{Server, ServerConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = Server::new(
        Hl7Handler::new(MemoryStore::default()),
        ServerConfig::default(),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .serve(listener, async {
                    stopped.await.ok();
                })
                .await
        })
    };

    let mut client = Client::new(addr.to_string(), ClientConfig::default());
    for id in ["ORD-1", "ORD-2", "ORD-1"] {
        let msg = format!(
            "MSH|^~\\&|RIS|HOSP|PACS|RAD|20240101120000||ORM^O01^ORM_O01|{id}|P|2.5.1\rPID|1||42^^^HOSP\r"
        );
        let ack = client.send(msg.as_bytes()).await?;
        println!(
            "{id}: MSA-1={} MSA-2={}",
            String::from_utf8_lossy(ack.code().unwrap_or_default()),
            String::from_utf8_lossy(ack.control_id().unwrap_or_default())
        );
    }
    drop(client);
    stop.send(()).ok();
    running.await??;

    let stats = server.handler().stats();
    let totals = server.totals();
    println!(
        "stored {} (duplicates {}), frames {}, bytes in {}, garbage {}",
        stats.stored, stats.duplicates, totals.frames, totals.bytes_in, totals.garbage_bytes
    );
    Ok(())
}
