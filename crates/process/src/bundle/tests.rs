use std::io::Write as _;

use super::*;

fn write(root: &Path, name: &str, body: &str) {
    let path = root.join(name);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, body).unwrap();
}

#[test]
fn the_same_files_make_the_same_bundle_and_unpack_read_only() {
    let app = tempfile::tempdir().unwrap();
    write(app.path(), "app.py", "def handler(e, c): return 1\n");
    write(app.path(), "lib/util.py", "X = 1\n");
    write(app.path(), "updraft.toml", "[app]\n");
    write(app.path(), ".git/HEAD", "ref\n");
    write(app.path(), "__pycache__/app.pyc", "junk");
    let deps = tempfile::tempdir().unwrap();
    write(deps.path(), "requests/__init__.py", "");
    let sources = [
        (String::new(), app.path().to_owned()),
        (String::new(), deps.path().to_owned()),
    ];
    let a = pack(&sources).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = pack(&sources).unwrap();
    assert_eq!(a, b, "packing is deterministic");
    assert!(is_bundle(&a));

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("code");
    let done = unpack(&a, &dest, Limits::default()).unwrap();
    assert_eq!(done.files, 3);
    assert!(dest.join("lib/util.py").is_file());
    assert!(dest.join("requests/__init__.py").is_file());
    assert!(!dest.join("updraft.toml").exists() && !dest.join(".git").exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dest.join("app.py"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o444);
        let mode = fs::metadata(dest.join("lib")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o555);
    }
    remove_tree(&dest);
    assert!(!dest.exists());
}

fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, body, mode) in entries {
        let o = SimpleFileOptions::default().unix_permissions(*mode);
        zip.start_file(*name, o).unwrap();
        zip.write_all(body).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

#[test]
fn hostile_bundles_are_refused_and_leave_nothing() {
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("code");
    for (bytes, needle) in [
        (
            zip_of(&[("../escape.py", b"x", 0o644)]),
            "outside the bundle",
        ),
        (
            zip_of(&[("/etc/passwd", b"x", 0o644)]),
            "outside the bundle",
        ),
        (b"PK\x03\x04 not really".to_vec(), "not a valid zip"),
    ] {
        let e = unpack(&bytes, &dest, Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{needle} not in {e}");
        assert!(!dest.exists());
        assert_eq!(
            fs::read_dir(out.path()).unwrap().count(),
            0,
            "staging left behind"
        );
    }
    // A symlink entry.
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    zip.add_symlink("link", "/etc/passwd", SimpleFileOptions::default())
        .unwrap();
    let bytes = zip.finish().unwrap().into_inner();
    let e = unpack(&bytes, &dest, Limits::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("symlink"), "{e}");

    // A small zip that inflates past the limit (the header's size is not trusted).
    let big = vec![0u8; 2 << 20];
    let bomb = {
        let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
        let o = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        zip.start_file("zeros", o).unwrap();
        zip.write_all(&big).unwrap();
        zip.finish().unwrap().into_inner()
    };
    let limits = Limits {
        max_bytes: 1 << 20,
        max_entries: 10,
    };
    let e = unpack(&bomb, &dest, limits).unwrap_err().to_string();
    assert!(e.contains("more than 1 MiB"), "{e}");
    assert_eq!(fs::read_dir(out.path()).unwrap().count(), 0);

    let many: Vec<(String, &[u8], u32)> = (0..11)
        .map(|i| (format!("f{i}"), &b""[..], 0o644))
        .collect();
    let refs: Vec<(&str, &[u8], u32)> = many.iter().map(|(n, b, m)| (n.as_str(), *b, *m)).collect();
    let e = unpack(&zip_of(&refs), &dest, limits)
        .unwrap_err()
        .to_string();
    assert!(e.contains("11 entries"), "{e}");
}

#[test]
fn executables_stay_executable() {
    let bytes = zip_of(&[
        ("bootstrap", b"#!/bin/sh\n", 0o755),
        ("data.txt", b"x", 0o600),
    ]);
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("code");
    unpack(&bytes, &dest, Limits::default()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let m = |n: &str| fs::metadata(dest.join(n)).unwrap().permissions().mode() & 0o777;
        assert_eq!(m("bootstrap"), 0o555);
        assert_eq!(m("data.txt"), 0o444);
    }
}
