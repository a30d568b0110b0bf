//! Group commit: appends to different streams that arrive while earlier ones are being written
//! share one statement, and so one transaction and one WAL flush.
//!
//! An append in autocommit costs PostgreSQL a statement, a commit and a flush, and its client a
//! round trip; with many concurrent writers that overhead, not the rows, is what limits
//! throughput. With [`GroupCommit`] on (a new store's default), an eligible append (expected
//! version known, no command id) that finds others in flight is handed to one of a few
//! *lanes*, chosen by the stream's hash. Each lane writes one group
//! at a time: whatever appends queued up while its previous group was in flight, at most one per
//! stream, in one `INSERT` (`sql/append_group.sql`).
//!
//! Nothing about an append's outcome changes: each writer's events are checked on their own
//! (stream exactly at the expected version) and land all together or not at all. A writer left
//! out by the checks, every writer of a group the database refused, and every writer whose lane
//! is gone, append on their own through the usual path, which finds and reports what happened:
//! a conflict or a repeated batch.
//! Appends to one stream always take the same lane, so a group never holds two appends that
//! would fail each other.
//!
//! Every wait is bounded by a few times [`GroupCommit::timeout`] (taken within it, the group's
//! statement within it, then a stuck append's own statement within it): the lane's session
//! runs with that `statement_timeout`, so a group stuck on a lock (an open `append_in` transaction holding a
//! stream's next version) is cancelled, and its appends are tried again one by one: the others
//! land, the stuck one fails with [`PgError::AppendTimedOut`]. A writer whose append the lane has
//! not taken within the timeout takes it back and fails the same way. If a group's connection
//! breaks, the lane looks its events up before anyone appends on their own: a group that
//! committed before the break is reported as written, not as a repeat of itself.
//!
//! The parts: [`GroupCommit`] (`options.rs`) is what users set; `committer.rs` hands an append
//! (`request.rs`) to its lane and waits for the reply; `lane.rs` is a lane's task,
//! which takes groups from its queue (once `gather.rs` let the writers a turn away join) and
//! tells writers what happened; `statement.rs` writes a
//! group and decodes what came back; `conn.rs` is the lane's connection with its
//! `statement_timeout` and generic plans; `slot.rs` starts a lane's task on first use. Each
//! file uses only those after it in this list.
//!
//! Loads are grouped the same way (`loads.rs`, [`GroupCommit::group_loads`]): loads of
//! different streams that arrive while another is being read share one statement.

mod committer;
mod conn;
mod gather;
#[cfg(test)]
mod generic_plan_tests;
mod lane;
mod loads;
mod options;
mod request;
mod slot;
mod statement;
#[cfg(test)]
mod tests;

pub(crate) use self::committer::{Committer, Grouped};
pub(crate) use self::loads::ROWS;
pub use self::options::GroupCommit;
