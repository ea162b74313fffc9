use super::escape_controls;

#[test]
fn terminal_control_characters_are_made_visible() {
    assert_eq!(escape_controls("plain\ttext"), "plain\ttext");
    assert_eq!(
        escape_controls("\u{1b}[2J\u{1b}]0;owned\u{7}x\ry\u{8}\u{9b}z"),
        "\\e[2J\\e]0;owned\\x07x\\x0dy\\x08\\x9bz"
    );
}
