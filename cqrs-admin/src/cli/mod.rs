//! The commands as clap types and [`run`], shared by the `cqrs` binary and services that embed
//! them (see [`crate::service`]).
//!
//! `args.rs` holds the clap types, `run.rs` runs one command over an
//! [`Inspector`](crate::Inspector), `render.rs` prints each answer as a table, and `table.rs`
//! is the aligned table. With `--json` every command prints one JSON document, the
//! serialization of its [`inspect`](crate::inspect) type (`events tail --follow`: one
//! [`EventView`](crate::inspect::EventView) per line).

mod args;
mod render;
mod run;
mod table;

#[doc(inline)]
pub use args::{
    BusLetterArgs, BusLetterCommand, Cli, Command, DeadLetterCommand, EventCommand, FeedCommand,
    LetterArgs, Options, ProcessCommand, StreamCommand,
};
pub(crate) use render::duration as render_duration;
#[doc(inline)]
pub use run::{connect, execute, exit_code, parse, report, run};
#[doc(inline)]
pub use table::Table;
