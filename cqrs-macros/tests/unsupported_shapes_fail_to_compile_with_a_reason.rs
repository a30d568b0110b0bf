//! The errors users get from `#[derive(DomainEvent)]` on shapes the default encoding cannot
//! store. The expected messages are the `.stderr` files beside each case in `tests/ui/`
//! (regenerate them with `TRYBUILD=overwrite cargo test -p cqrs-macros`).

#[test]
fn unsupported_shapes_fail_to_compile_with_a_reason() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
