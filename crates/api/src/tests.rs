use super::*;

#[test]
fn error_body_shape_is_stable() {
    let body = ErrorBody::new(Code::InvalidComponent, "not a component");
    assert_eq!(
        body.to_json(),
        r#"{"error":{"code":"invalid_component","message":"not a component"}}"#
    );
    assert_eq!(Code::RouteNotFound.status(), StatusCode::NOT_FOUND);
    assert_eq!(Code::FunctionTimeout.status(), StatusCode::GATEWAY_TIMEOUT);
}
