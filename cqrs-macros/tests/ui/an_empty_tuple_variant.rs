use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, DomainEvent)]
enum BookEvent {
    Lent { member: String },
    Returned(),
}

fn main() {}
