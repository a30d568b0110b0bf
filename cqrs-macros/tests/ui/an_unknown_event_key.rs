use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, DomainEvent)]
#[event(name = "Lent")]
enum BookEvent {
    Lent { member: String },
}

fn main() {}
