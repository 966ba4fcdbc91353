//! Shared helpers for the Xenrad criterion benches (corpus loading).
