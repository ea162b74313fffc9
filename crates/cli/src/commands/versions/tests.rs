use super::*;

#[test]
fn canary_flags_parse() {
    let c = parse_canary("9=10").unwrap();
    assert_eq!((c.version, c.weight), (9, 10));
    assert_eq!(parse_canary(" 3 = 25% ").unwrap().weight, 25);
    assert!(
        parse_canary("9")
            .unwrap_err()
            .to_string()
            .contains("VERSION=PERCENT")
    );
    assert!(
        parse_canary("9=101")
            .unwrap_err()
            .to_string()
            .contains("percentage")
    );
    assert!(
        parse_canary("x=1")
            .unwrap_err()
            .to_string()
            .contains("version number")
    );
    assert_eq!(parse_promote_after("10m").unwrap(), 600_000);
    assert!(parse_promote_after("0s").is_err());
}
