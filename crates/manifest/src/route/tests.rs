use super::*;

fn p(s: &str) -> RoutePattern {
    RoutePattern::parse(s).unwrap()
}

#[test]
fn parse_errors() {
    assert_eq!(
        RoutePattern::parse("hello"),
        Err(RouteError::NoLeadingSlash)
    );
    assert_eq!(RoutePattern::parse("/a//b"), Err(RouteError::EmptySegment));
    assert_eq!(RoutePattern::parse("/a/"), Err(RouteError::EmptySegment));
    assert_eq!(
        RoutePattern::parse("/.../a"),
        Err(RouteError::WildcardNotLast)
    );
    assert_eq!(
        RoutePattern::parse("/:"),
        Err(RouteError::BadParam(":".into()))
    );
    assert_eq!(
        RoutePattern::parse("/:a/:a"),
        Err(RouteError::DuplicateParam("a".into()))
    );
    assert_eq!(
        RoutePattern::parse("/a?b"),
        Err(RouteError::BadLiteral("a?b".into()))
    );
}

#[test]
fn round_trip() {
    for s in ["/", "/a", "/a/:b", "/a/:b/...", "/..."] {
        assert_eq!(p(s).to_string(), s);
    }
}

#[test]
fn matching() {
    assert_eq!(p("/").matches("/"), Some(RouteMatch::default()));
    assert_eq!(p("/").matches("/a"), None);
    let m = p("/hello/:name").matches("/hello/world").unwrap();
    assert_eq!(m.params, vec![("name".to_owned(), "world".to_owned())]);
    assert_eq!(p("/hello/:name").matches("/hello"), None);
    assert_eq!(p("/hello/:name").matches("/hello/a/b"), None);
    assert!(p("/hello").matches("/hello/").is_some());
    let m = p("/static/...").matches("/static/css/site.css").unwrap();
    assert_eq!(m.rest.as_deref(), Some("/css/site.css"));
    let m = p("/static/...").matches("/static").unwrap();
    assert_eq!(m.rest.as_deref(), Some(""));
    assert_eq!(p("/static/...").matches("/stat"), None);
}

#[test]
fn specificity_orders_literal_param_wildcard() {
    let mut pats = [p("/..."), p("/a/..."), p("/a/:x"), p("/a/b"), p("/:x/b")];
    pats.sort_by_key(|r| std::cmp::Reverse(r.specificity()));
    let order: Vec<String> = pats.iter().map(ToString::to_string).collect();
    assert_eq!(order, ["/a/b", "/a/:x", "/a/...", "/:x/b", "/..."]);
    // Ending exactly beats a wildcard that also matches.
    assert!(p("/a").specificity() > p("/a/...").specificity());
}

#[test]
fn shapes() {
    assert_eq!(p("/a/:x").shape(), p("/a/:y").shape());
    assert_ne!(p("/a/:x").shape(), p("/a/x").shape());
    assert_eq!(p("/").shape(), "/");
    assert_eq!(p("/...").shape(), "/...");
}
