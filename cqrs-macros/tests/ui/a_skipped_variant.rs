use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, DomainEvent)]
enum BookEvent {
    Lent { member: String },
    #[serde(skip)]
    Draft,
}

fn main() {}
