//! Ingest (pending).
