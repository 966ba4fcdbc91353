//! HL7 v2 over MLLP (:3000) through `xenrad-mllp`'s tokio listener, served by the gateway's
//! [`V2Handler`](crate::ingest::V2Handler) itself (its own MLLP `Handler` impl): the same
//! handler, store and counters as `POST /v2/ingest` ([`crate::ingest::v2`]). The ACK is
//! built after the message is durably stored, a repeated (sender, MSH-10) is acknowledged
//! again and stored once, MSH-15 may ask for no accept ACK (HL7 v2.5.1 ch. 2.9.3), and with
//! `--mllp-commit-blocks` the reply is an MLLP release 2 commit block instead.

use crate::Gateway;
use crate::audit::{Event, Kind, WHO_HL7_SENDER};
use crate::ingest::log::Door;
use bytes::Bytes;
use xenrad_mllp::server::{ConnectionEnd, ConnectionInfo, Handler, Reply, Server, ServerConfig};

/// The MLLP door: the gateway's [`V2Handler`](crate::ingest::V2Handler), with every message
/// and its outcome noted by the console's tap and recorded in the audit trail (sending
/// application, peer address, message identifiers and outcome).
pub struct MllpDoor {
    gw: Gateway,
}

impl Handler for MllpDoor {
    async fn handle(&self, msg: Bytes, conn: &ConnectionInfo) -> Reply {
        let raw = msg.clone();
        let h = &self.gw.hl7v2;
        let started = std::time::Instant::now();
        let out = h.process(msg).await;
        self.gw.metrics.observe_ingest("mllp", started.elapsed());
        self.gw.console.hl7v2(Door::Mllp, &raw, &out);
        let mut e = Event::new(Kind::Ingest, "mllp");
        e.address = Some(conn.peer.ip());
        e.success = out.accepted();
        if let Some(k) = &out.key {
            e.who = Some((WHO_HL7_SENDER, k.sending_application.clone()));
            e.entities.push(crate::ingest::v2_audit_entity(k));
        }
        if !e.success {
            e.detail = Some(format!("ACK {}", out.code.as_str()));
        }
        self.gw.audit.record(e);
        // As `Hl7Handler`'s own `Handler` answers.
        if h.uses_commit_blocks() {
            if out.accepted() {
                Reply::commit_ack()
            } else {
                Reply::commit_nak()
            }
        } else if out.wanted {
            Reply::ack(out.ack)
        } else {
            Reply::none()
        }
    }

    fn closed(&self, conn: &ConnectionInfo, end: &ConnectionEnd) {
        Handler::closed(&*self.gw.hl7v2, conn, end);
    }
}

/// Builds the listener with the gateway's frame limit, timeouts and connection caps.
pub fn server(gw: &Gateway) -> Server<MllpDoor> {
    let secs = std::time::Duration::from_secs;
    let mut config = ServerConfig::default();
    config.decoder.max_frame_size = gw.config.max_frame;
    config.idle_timeout = Some(secs(gw.config.mllp_idle_timeout.max(1)));
    config.frame_timeout = Some(secs(gw.config.mllp_frame_timeout.max(1)));
    config.max_connections = gw.config.mllp_max_connections;
    config.max_connections_per_ip = gw.config.mllp_max_connections_per_ip;
    Server::new(MllpDoor { gw: gw.clone() }, config)
}
