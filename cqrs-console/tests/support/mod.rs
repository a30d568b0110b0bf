//! Shared by the console's browser tests.
#![allow(dead_code, unreachable_pub, missing_docs)]

pub mod app;
