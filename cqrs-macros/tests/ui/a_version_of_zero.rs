use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, DomainEvent)]
enum BookEvent {
    #[event(version = 0)]
    Lent { member: String },
}

fn main() {}
