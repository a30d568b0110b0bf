//! The console passes names from its query string (`?projection=a%00b`) to the inspector.
//! PostgreSQL refuses a NUL in text (SQLSTATE 22021): that is the caller's input, answered as
//! bad input (the console's 400, the CLI's exit code 2), not as the store failing (a 500).

use cqrs_admin::inspect::LetterFilter;
use cqrs_admin::{ErrorClass, Inspector};
use cqrs_postgres::testing::fresh_store;

#[tokio::test]
async fn a_name_holding_a_nul_is_bad_input_not_a_store_failure() {
    let store = fresh_store().await.expect("a fresh schema");
    let inspector = Inspector::new((*store).clone());
    let mut filter = LetterFilter::default();
    filter.projection = Some("orders\0summary".to_owned());

    let letters = inspector.dead_letters(&filter).await;
    let instance = inspector.instance("Order", "1\0").await;

    let letters = letters.expect_err("refused");
    assert_eq!(letters.class(), ErrorClass::InvalidInput, "{letters}");
    let instance = instance.expect_err("refused");
    assert_eq!(instance.class(), ErrorClass::InvalidInput, "{instance}");
}
