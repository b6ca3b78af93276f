//! wx-sandbox (work in progress).
