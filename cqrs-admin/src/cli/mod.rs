//! The commands as clap types (filled in below).
