use super::*;

#[test]
fn messages_get_a_content_type_and_bounded_delay() {
    let m = message(
        SendMessage {
            body: "{\"a\":1}".into(),
            ..SendMessage::default()
        },
        "/q".into(),
        "t",
        None,
    )
    .unwrap();
    assert_eq!(m.content_type, "application/json");
    let m = message(
        SendMessage {
            body: "hi".into(),
            ..SendMessage::default()
        },
        "/q".into(),
        "t",
        None,
    )
    .unwrap();
    assert_eq!(m.content_type, "text/plain; charset=utf-8");
    let e = message(
        SendMessage {
            body: "hi".into(),
            delay: Some("16m".into()),
            ..SendMessage::default()
        },
        "/q".into(),
        "t",
        Some(3),
    )
    .unwrap_err();
    assert_eq!(e.message, "messages[3]: delay: at most 15m");
}
