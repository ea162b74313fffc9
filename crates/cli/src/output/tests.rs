use super::*;

#[test]
fn tables_align() {
    let t = table(
        &["NAME", "X"],
        &[
            vec!["a".into(), "1".into()],
            vec!["long".into(), "2".into()],
        ],
    );
    assert_eq!(t, "NAME  X\na     1\nlong  2\n");
}

#[test]
fn sizes() {
    assert_eq!(human_bytes(12), "12 B");
    assert_eq!(human_bytes(1536), "1.5 KiB");
    assert_eq!(human_bytes(3 << 20), "3.0 MiB");
}

#[test]
fn ages() {
    assert_eq!(ago(0, 12_000), "12s ago");
    assert_eq!(ago(0, 5 * 60_000 + 1), "5m ago");
    assert_eq!(ago(0, 3 * 3_600_000), "3h ago");
    assert_eq!(ago(0, 49 * 3_600_000), "2d ago");
    assert_eq!(ago(10, 0), "0s ago");
}
