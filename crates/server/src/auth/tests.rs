use http::Method;

use super::roles::{Role, required};

#[test]
fn roles_include_the_weaker_ones_but_metrics_keys_only_scrape() {
    assert!(Role::Owner.allows(Role::Deployer));
    assert!(Role::Deployer.allows(Role::Viewer));
    assert!(Role::Viewer.allows(Role::Metrics));
    assert!(Role::Admin.allows(Role::Owner));
    assert!(!Role::Viewer.allows(Role::Deployer));
    assert!(!Role::Deployer.allows(Role::Owner));
    assert!(!Role::Owner.allows(Role::Admin));
    assert!(Role::Metrics.allows(Role::Metrics));
    assert!(!Role::Metrics.allows(Role::Viewer));
    for name in updraft_api::KEY_ROLES {
        assert_eq!(Role::parse(name).map(Role::as_str), Some(name));
    }
    assert_eq!(Role::parse("admin"), None, "no scoped key can be an admin");
}

#[test]
fn a_change_to_an_endpoint_the_table_does_not_know_needs_an_owner() {
    assert_eq!(required(&Method::POST, "/v1/something-new"), Role::Owner);
    assert_eq!(required(&Method::DELETE, "/v1/queues/{q}"), Role::Owner);
    assert_eq!(required(&Method::GET, "/v1/something-new"), Role::Viewer);
    assert_eq!(required(&Method::GET, "/v1/keys"), Role::Owner);
    assert_eq!(required(&Method::GET, "/metrics"), Role::Metrics);
}
