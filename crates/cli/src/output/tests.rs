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
