//! HL7 v2 over MLLP (:3000) through `xenrad-mllp`'s tokio listener, served by the gateway's
//! [`V2Handler`](super::ingest::V2Handler) itself (its own MLLP `Handler` impl): the same
//! handler, store and counters as `POST /v2/ingest` ([`super::ingest::v2`]). The ACK is
//! built after the message is durably stored, a repeated (sender, MSH-10) is acknowledged
//! again and stored once, MSH-15 may ask for no accept ACK (HL7 v2.5.1 ch. 2.9.3), and with
//! `--mllp-commit-blocks` the reply is an MLLP release 2 commit block instead.

use super::Gateway;
use super::ingest::V2Handler;
use std::sync::Arc;
use xenrad_mllp::server::{Server, ServerConfig};

/// Builds the listener with the gateway's frame limit.
pub fn server(gw: &Gateway) -> Server<Arc<V2Handler>> {
    let mut config = ServerConfig::default();
    config.decoder.max_frame_size = gw.config.max_frame;
    Server::new(Arc::clone(&gw.hl7v2), config)
}
