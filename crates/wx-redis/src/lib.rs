//! wx-redis (work in progress).
