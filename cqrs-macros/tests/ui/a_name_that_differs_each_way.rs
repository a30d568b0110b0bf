use cqrs_core::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, DomainEvent)]
enum BookEvent {
    #[serde(rename(serialize = "Lent"))]
    BookLent { member: String },
}

fn main() {}
