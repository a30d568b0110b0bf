//! Each answer as a table (or a few lines) for people.

use std::io::{self, Write};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::table::plain;
use super::Table;
use crate::inspect::{
    position_label, BusLetterView, Correlation, DeadLetterDetail, DeadLetterView, EventView,
    HorizonHolderView, HorizonView, InstanceDetail, InstanceView, Overview, StreamView, TailPage,
};

pub(crate) fn time(at: OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

fn opt_time(at: Option<OffsetDateTime>) -> String {
    at.map(time).unwrap_or_else(|| "-".to_owned())
}

/// Seconds as `850ms`, `12.3s`, `4m05s`, `2h03m`.
pub(crate) fn duration(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0}ms", seconds * 1000.0)
    } else if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        let s = seconds.round();
        format!("{:.0}m{:02.0}s", (s / 60.0).floor(), s % 60.0)
    } else {
        let m = (seconds / 60.0).round();
        format!("{:.0}h{:02.0}m", (m / 60.0).floor(), m % 60.0)
    }
}

pub(crate) fn overview(out: &mut dyn Write, overview: &Overview) -> io::Result<()> {
    let mut table = Table::new([
        "NAME",
        "KIND",
        "STATE",
        "CHECKPOINT",
        "LAG",
        "LAG TIME",
        "BREAKER",
        "LEASE",
        "EPOCH",
        "EXPIRES",
        "DEAD LETTERS",
    ]);
    for s in &overview.subscribers {
        let (owner, epoch, expires) = match &s.lease {
            Some(lease) => (
                format!(
                    "{}{}",
                    lease.owner,
                    if lease.live { "" } else { " (expired)" }
                ),
                lease.epoch.to_string(),
                time(lease.expires_at),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        table.row([
            s.name.clone(),
            s.kind.as_str().to_owned(),
            s.leader.as_str().to_owned(),
            s.checkpoint
                .map(position_label)
                .unwrap_or_else(|| "-".to_owned()),
            s.lag_label(),
            duration(s.lag_seconds),
            s.breaker
                .as_ref()
                .map_or_else(|| "-".to_owned(), |b| b.state.clone()),
            owner,
            epoch,
            expires,
            s.dead_letters.to_string(),
        ]);
    }
    table.write(out)?;
    writeln!(out, "head {}", position_label(overview.head))?;
    for s in &overview.subscribers {
        if let Some(breaker) = s.breaker.as_ref().filter(|b| b.is_tripped()) {
            writeln!(
                out,
                "breaker {} on {} since {}: {}",
                breaker.state,
                s.name,
                time(breaker.changed_at),
                plain(breaker.last_error.as_deref().unwrap_or("no error recorded"))
            )?;
        }
    }
    Ok(())
}

pub(crate) fn letters(out: &mut dyn Write, letters: &[DeadLetterView]) -> io::Result<()> {
    let mut table = Table::new([
        "PROJECTION",
        "POSITION",
        "STREAM",
        "VERSION",
        "TYPE",
        "KEY",
        "PARKED AT",
        "REQUEST",
        "ERROR",
    ]);
    for l in letters {
        table.row([
            l.projection.clone(),
            l.position.to_string(),
            l.stream_id.clone(),
            l.version.to_string(),
            l.event_type.clone(),
            l.key.clone().unwrap_or_else(|| "-".to_owned()),
            time(l.parked_at),
            l.request
                .map(|r| format!("{r:?}").to_lowercase())
                .unwrap_or_else(|| "-".to_owned()),
            l.error.clone(),
        ]);
    }
    table.write(out)
}

pub(crate) fn bus_letters(out: &mut dyn Write, letters: &[BusLetterView]) -> io::Result<()> {
    let mut table = Table::new([
        "CONSUMER",
        "MESSAGE",
        "KEY",
        "PARKED AT",
        "REQUEST",
        "ERROR",
    ]);
    for l in letters {
        table.row([
            l.consumer.clone(),
            l.message.clone(),
            l.key.clone().unwrap_or_else(|| "-".to_owned()),
            time(l.parked_at),
            l.request
                .map(|r| format!("{r:?}").to_lowercase())
                .unwrap_or_else(|| "-".to_owned()),
            l.error.clone(),
        ]);
    }
    table.write(out)
}

pub(crate) fn letter(out: &mut dyn Write, detail: &DeadLetterDetail) -> io::Result<()> {
    let l = &detail.letter;
    writeln!(out, "projection  {}", l.projection)?;
    writeln!(out, "position    {}", l.position)?;
    writeln!(
        out,
        "event       {}@{} {}",
        l.stream_id, l.version, l.event_type
    )?;
    writeln!(
        out,
        "key         {}",
        plain(l.key.as_deref().unwrap_or("-"))
    )?;
    writeln!(out, "parked at   {}", time(l.parked_at))?;
    writeln!(
        out,
        "request     {}",
        l.request
            .map(|r| format!("{r:?}").to_lowercase())
            .unwrap_or_else(|| "-".to_owned())
    )?;
    writeln!(out, "error       {}", plain(&l.error))?;
    match &detail.event {
        Some(event) => {
            writeln!(out)?;
            event_block(out, event)
        }
        None => writeln!(out, "(the event is no longer in the store)"),
    }
}

/// One event with metadata and pretty payload.
pub(crate) fn event_block(out: &mut dyn Write, e: &EventView) -> io::Result<()> {
    writeln!(
        out,
        "{}@{}  {} (schema {})  position {}  recorded {}",
        e.stream_id,
        e.version,
        e.event_type,
        e.schema_version,
        e.position,
        time(e.recorded_at)
    )?;
    writeln!(out, "  event id        {}", e.event_id)?;
    let id = |id: Option<uuid::Uuid>| id.map(|u| u.to_string()).unwrap_or_else(|| "-".into());
    writeln!(out, "  correlation id  {}", id(e.correlation_id))?;
    writeln!(out, "  causation id    {}", id(e.causation_id))?;
    writeln!(out, "  command id      {}", id(e.command_id))?;
    for (name, value) in &e.headers {
        writeln!(out, "  header {}: {}", plain(name), plain(value))?;
    }
    let payload = serde_json::to_string_pretty(&e.payload).map_err(io::Error::other)?;
    for line in payload.lines() {
        // JSON escapes C0 controls, not C1 ones (an 8-bit CSI).
        writeln!(out, "  {}", plain(line))?;
    }
    Ok(())
}

pub(crate) fn stream(out: &mut dyn Write, stream: &StreamView) -> io::Result<()> {
    for (i, e) in stream.events.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        event_block(out, e)?;
    }
    if let Some(next) = stream.next_version {
        writeln!(out, "\nmore from version {next} (--from {next})")?;
    }
    Ok(())
}

pub(crate) fn events_table(events: &[EventView]) -> Table {
    let mut table = Table::new([
        "POSITION",
        "STREAM",
        "VERSION",
        "TYPE",
        "RECORDED AT",
        "CORRELATION",
    ]);
    for e in events {
        table.row([
            e.position.to_string(),
            e.stream_id.clone(),
            e.version.to_string(),
            e.event_type.clone(),
            time(e.recorded_at),
            e.correlation_id
                .map(|u| u.to_string())
                .unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    table
}

/// One event on one line, for `--follow` (columns are not aligned across batches).
pub(crate) fn event_line(out: &mut dyn Write, e: &EventView) -> io::Result<()> {
    writeln!(
        out,
        "{}  {}@{}  {}  {}",
        e.position,
        e.stream_id,
        e.version,
        e.event_type,
        time(e.recorded_at)
    )
}

pub(crate) fn tail(out: &mut dyn Write, page: &TailPage) -> io::Result<()> {
    events_table(&page.events).write(out)?;
    writeln!(
        out,
        "next {}{}",
        page.next,
        if page.more { " (more)" } else { "" }
    )
}

pub(crate) fn horizon(out: &mut dyn Write, h: &HorizonView) -> io::Result<()> {
    writeln!(
        out,
        "oldest open transaction  {}",
        h.oldest_open_seconds
            .map(duration)
            .unwrap_or_else(|| "none".to_owned())
    )?;
    writeln!(out, "waiting events           {}", h.waiting_events)?;
    let holder = match &h.holder {
        None => "none".to_owned(),
        Some(HorizonHolderView::Session { pid, age_seconds }) => format!(
            "session pid {pid}, open {}",
            age_seconds
                .map(duration)
                .unwrap_or_else(|| "(age not visible to this role)".to_owned())
        ),
        Some(HorizonHolderView::Prepared { gid, age_seconds }) => {
            format!(
                "prepared transaction {gid:?}, prepared {} ago",
                duration(*age_seconds)
            )
        }
    };
    writeln!(out, "holder                   {holder}")
}

pub(crate) fn instances(out: &mut dyn Write, rows: &[InstanceView]) -> io::Result<()> {
    let mut table = Table::new([
        "PROCESS",
        "INSTANCE",
        "STATE",
        "VERSION",
        "PENDING",
        "NEXT TIMEOUT",
        "PROGRESSED AT",
        "LAST INPUT",
    ]);
    for r in rows {
        table.row([
            r.process.clone(),
            r.instance.clone(),
            r.state.clone(),
            r.version.to_string(),
            r.pending_commands.to_string(),
            opt_time(r.next_timeout_at),
            time(r.progressed_at),
            r.last_input.clone(),
        ]);
    }
    table.write(out)
}

pub(crate) fn instance(out: &mut dyn Write, detail: &InstanceDetail) -> io::Result<()> {
    if let Some(s) = &detail.status {
        writeln!(
            out,
            "instance    {} of {}",
            plain(&s.instance),
            plain(&s.process)
        )?;
        writeln!(out, "state       {}", s.state)?;
        writeln!(
            out,
            "correlation {}",
            s.correlation_id
                .map(|u| u.to_string())
                .unwrap_or_else(|| "-".to_owned())
        )?;
        writeln!(out, "started     {}", time(s.started_at))?;
        writeln!(out, "progressed  {}", time(s.progressed_at))?;
        writeln!(out, "finished    {}", opt_time(s.finished_at))?;
        writeln!(out, "pending     {}", s.pending_commands)?;
        writeln!(out)?;
    }
    let mut table = Table::new(["VERSION", "POSITION", "AT", "KIND", "WHAT"]);
    for e in &detail.timeline {
        let what = if e.details.is_empty() {
            e.what.clone()
        } else if e.what.is_empty() {
            e.details.join("; ")
        } else {
            format!("{}: {}", e.what, e.details.join("; "))
        };
        table.row([
            e.version.to_string(),
            e.position.to_string(),
            time(e.at),
            e.kind.clone(),
            what,
        ]);
    }
    table.write(out)
}

pub(crate) fn correlation(out: &mut dyn Write, c: &Correlation) -> io::Result<()> {
    writeln!(
        out,
        "correlation {}: {} events",
        c.correlation_id,
        c.events.len()
    )?;
    events_table(&c.events).write(out)
}
