//! wx-reqwest (work in progress).
