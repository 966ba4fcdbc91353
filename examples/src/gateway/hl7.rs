//! The HL7 over HTTP surface (pending).
use super::Gateway;
/// Builds the surface.
pub fn router(_gw: Gateway) -> axum::Router { axum::Router::new() }
