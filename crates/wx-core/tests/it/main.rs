//! wx-core integration tests: every shared fixture decodes into the typed models or the typed
//! API error, with field values asserted.
#![allow(clippy::unwrap_used)]

mod fixtures;
