//! HL7 v2 over MLLP (:3000) through `xenrad-mllp`'s tokio listener. Same message
//! semantics as `POST /v2/ingest` ([`super::ingest::v2`]): the ACK is built after the
//! message is durably stored, a repeated (sender, MSH-10) is acknowledged again and
//! stored once.

use super::Gateway;
use super::ingest;
use bytes::Bytes;
use xenrad_mllp::server::{ConnectionInfo, Handler, Reply, Server, ServerConfig};

/// The gateway's MLLP handler.
pub struct IngestHandler {
    gw: Gateway,
}

impl Handler for IngestHandler {
    async fn handle(&self, msg: Bytes, _conn: &ConnectionInfo) -> Reply {
        let out = ingest::v2(&self.gw, msg).await;
        // Enhanced mode (HL7 v2.5.1 ch. 2.9.3): MSH-15 may ask for no accept ACK.
        if out.wanted {
            Reply::ack(out.ack)
        } else {
            Reply::none()
        }
    }
}

/// Builds the listener with the gateway's frame limit.
pub fn server(gw: Gateway) -> Server<IngestHandler> {
    let mut config = ServerConfig::default();
    config.decoder.max_frame_size = gw.config.max_frame;
    Server::new(IngestHandler { gw }, config)
}
