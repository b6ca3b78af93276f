//! wx-official (work in progress).
