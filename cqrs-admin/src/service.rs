//! The commands for a service's own binary (filled in below).
