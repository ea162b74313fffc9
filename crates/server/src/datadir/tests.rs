use super::*;

#[test]
fn a_second_server_on_the_same_directory_is_refused_with_the_holders_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let held = DataDirLock::acquire(&dir).unwrap();
    let err = DataDirLock::acquire(&dir).unwrap_err().to_string();
    assert!(
        err.contains(&format!(
            "in use by another updraft server (pid {})",
            std::process::id()
        )),
        "{err}"
    );
    drop(held);
    // Released with its holder: the next one gets it.
    DataDirLock::acquire(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn the_directory_is_created_private_and_refused_when_others_can_write_to_it() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("new");
    drop(DataDirLock::acquire(&dir).unwrap());
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);

    for (mode, who) in [(0o777, "everyone"), (0o770, "its group")] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let err = DataDirLock::acquire(&dir).unwrap_err().to_string();
        assert!(err.contains(&format!("writable by {who}")), "{err}");
        assert!(err.contains("chmod 700"), "{err}");
    }
    // Readable by others is the operator's choice; writable is not.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    DataDirLock::acquire(&dir).unwrap();
}

#[cfg(unix)]
#[test]
fn a_symlinked_lock_file_is_refused_and_its_target_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir(&dir).unwrap();
    let target = tmp.path().join("precious");
    std::fs::write(&target, "keep me").unwrap();
    std::os::unix::fs::symlink(&target, dir.join(LOCK_FILE)).unwrap();
    let err = DataDirLock::acquire(&dir).unwrap_err().to_string();
    assert!(err.contains("is a symlink"), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
}
