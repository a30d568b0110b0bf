//! Growing the events table: background events written by the server itself, ten per stream,
//! in statements of [`CHUNK`] rows, as the store's own appends would leave them (a version 7
//! event id, the deposit payload, and metadata of one correlation id, as the measured appends
//! carry: the store keeps the event id in its column only).

use std::time::Instant;

use anyhow::{ensure, Context as _, Result};
use cqrs_benchmarks::table::per_second;
use sqlx::PgPool;

/// Rows per statement (and so per transaction).
const CHUNK: u64 = 250_000;

/// Background event `n` is version `n % 10 + 1` of stream `account-bg{n / 10}`.
const FILL: &str = "
INSERT INTO cqrs.events (stream_id, version, event_id, event_type, schema_version, payload, metadata)
SELECT 'account-bg' || (n / 10), n % 10 + 1, id, 'Deposited', 1,
       jsonb_build_object('amount', 1 + (n % 10 + 1) % 7),
       jsonb_build_object('correlation_id', id)
FROM (SELECT n,
             -- A version 7 id, as `EventId::new` makes: the clock's milliseconds, then random.
             (lpad(to_hex((extract(epoch FROM clock_timestamp()) * 1000)::bigint), 12, '0')
              || '7' || substr(r, 1, 3) || '8' || substr(r, 4, 15))::uuid AS id
      FROM generate_series($1::bigint, $2::bigint) AS n,
           LATERAL (SELECT md5(random()::text || n) AS r) AS h) AS e";

/// Where the background streams are.
#[derive(Debug, Default)]
pub(super) struct Grower {
    /// The next background event.
    next: u64,
}

impl Grower {
    /// Adds background events until the table holds `target` events (all of them, the
    /// measurements' included); does nothing if it holds that many already.
    pub(super) async fn grow_to(&mut self, pool: &PgPool, target: u64) -> Result<()> {
        let held = count(pool).await?;
        let Some(missing) = target.checked_sub(held).filter(|m| *m > 0) else {
            return Ok(());
        };
        eprintln!("growing the events table from {held} to {target} events ...");
        let started = Instant::now();
        let end = self.next + missing;
        while self.next < end {
            let last = (self.next + CHUNK).min(end) - 1;
            let inserted = sqlx::query(FILL)
                .bind(i64::try_from(self.next)?)
                .bind(i64::try_from(last)?)
                .execute(pool)
                .await
                .context("writing background events")?
                .rows_affected();
            ensure!(
                inserted == last - self.next + 1,
                "wrote {inserted} background events of {}",
                last - self.next + 1
            );
            self.next = last + 1;
        }
        let elapsed = started.elapsed();
        let rate = per_second(missing, elapsed);
        let seconds = elapsed.as_secs_f64();
        eprintln!("  {missing} events in {seconds:.0} s ({rate:.0} events/s)");
        Ok(())
    }
}

/// How many events the table holds.
pub(super) async fn count(pool: &PgPool) -> Result<u64> {
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM cqrs.events")
        .fetch_one(pool)
        .await?;
    Ok(u64::try_from(count)?)
}
