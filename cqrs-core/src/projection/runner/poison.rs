//! Poison events: stop just before the first one ([`PoisonPolicy::Stop`]), or park each as a
//! dead letter and hold back the later events of its key ([`PoisonPolicy::Park`]).

use std::time::Duration;

use time::OffsetDateTime;

use crate::{FencedSave, RecordedEvent};

use super::outcome::{Applied, Lead};
use super::worker::Worker;
use super::PoisonPolicy;

impl Worker {
    /// Loads the keys held back because an event of theirs is parked, retrying store
    /// failures worth retrying; `Err` when asked to stop meanwhile, or on an error a retry
    /// cannot cure.
    pub(super) async fn load_parked_keys(&mut self) -> Result<(), Lead> {
        self.parked.clear();
        let Some(store) = self.runner.dead_letters.clone() else {
            return Ok(());
        };
        let name = self.runner.checkpoint_name();
        let mut attempt = 0;
        loop {
            match store.parked_keys(&name).await {
                Ok(keys) => {
                    self.parked.extend(keys);
                    return Ok(());
                }
                Err(error) if !error.is_transient() => {
                    return Err(Lead::failed("could not load the parked keys", &error));
                }
                Err(error) => {
                    attempt += 1;
                    self.set(|s| s.error(error.to_string()));
                    if !self
                        .stop
                        .pause(self.runner.options.retry.delay(attempt))
                        .await
                    {
                        return Err(Lead::Stopped);
                    }
                }
            }
        }
    }

    /// Deals with the `poison` of a batch whose `ready` events are applied, per the policy.
    pub(super) async fn poisoned(
        &mut self,
        ready: Vec<RecordedEvent>,
        mut poison: Vec<(RecordedEvent, String)>,
        lag: Duration,
    ) -> Result<Applied, Lead> {
        poison.sort_by_key(|(event, _)| event.position);
        match self.runner.poison() {
            PoisonPolicy::Stop => {
                let (first, error) = &poison[0];
                // Everything before the first poison event is applied: keep that much.
                let before = ready
                    .iter()
                    .map(|e| e.position)
                    .filter(|p| *p < first.position)
                    .max();
                Err(Lead::Poisoned {
                    before,
                    error: format!(
                        "poison event {}@{} ({}) at {}: {error}",
                        first.stream_id, first.version, first.event_type, first.position
                    ),
                })
            }
            PoisonPolicy::Park => {
                let parked = poison.len() as u64;
                self.park(poison).await?;
                Ok(Applied {
                    count: ready.len() as u64,
                    parked,
                    lag,
                })
            }
        }
    }

    /// Parks each poison event as a dead letter (retrying store failures) and holds back the
    /// later events of its key.
    async fn park(&mut self, poison: Vec<(RecordedEvent, String)>) -> Result<(), Lead> {
        let Some(store) = self.runner.dead_letters.clone() else {
            return Err(Lead::Failed(
                "poison event and no dead-letter store to park it in".to_owned(),
            ));
        };
        let projection = self.runner.projection.clone();
        // Letters belong to the run, as its checkpoint does: a replay under its own checkpoint
        // name neither holds back nor re-drives the live run's.
        let name = self.runner.checkpoint_name();
        for (event, error) in poison {
            let key = projection.key(&event);
            tracing::warn!(stream = %event.stream_id, version = %event.version, %error, "parking a poison event");
            let letter = crate::backend::dead_letter(
                &name,
                event.position,
                event.stream_id,
                event.version,
                &event.event_type,
                key.clone(),
                &error,
                OffsetDateTime::now_utc(),
            );
            // Under the term's lease, when there is one: a worker fenced off (a takeover, or a
            // reset that dropped the letters) parks nothing the next term would load.
            let lease = self.fence.as_ref().and_then(|f| f.lease().cloned());
            let mut attempt = 0;
            loop {
                let parked = match &lease {
                    Some(lease) => store.park_fenced(letter.clone(), lease).await,
                    None => store.park(letter.clone()).await.map(|()| FencedSave::Saved),
                };
                let e = match parked {
                    Ok(FencedSave::Saved) => break,
                    Ok(FencedSave::LeaseLost) => {
                        tracing::warn!("parking refused: the lease has passed on");
                        if let Some(fence) = &self.fence {
                            fence.refused_by_store();
                        }
                        return Err(Lead::LostLease);
                    }
                    Err(e) => e,
                };
                if !e.is_transient() {
                    return Err(Lead::failed("could not park a poison event", &e));
                }
                attempt += 1;
                self.set(|s| s.error(e.to_string()));
                if !self
                    .stop
                    .pause(self.runner.options.retry.delay(attempt))
                    .await
                {
                    return Err(Lead::Stopped);
                }
            }
            if let Some(key) = key {
                self.parked.insert(key);
            }
        }
        Ok(())
    }
}
