#![forbid(unsafe_code)]
//! `trellis up`: runs a whole mesh on one machine; [`net`] is its transparent-mode networking.

pub mod net;
