//! wx-official (work in progress).

pub mod jssdk;
pub mod state;
pub mod verify;
