use super::*;
use updraft_manifest::Manifest;

fn manifest(app: &str, fns: &[&str]) -> Manifest {
    let mut text = format!("[app]\nname = \"{app}\"\n");
    for f in fns {
        text.push_str(&format!(
            "[[functions]]\nname = \"{f}\"\ncomponent = \"{f}.wasm\"\n"
        ));
    }
    Manifest::parse("updraft.toml", &text).unwrap()
}

fn deploy(store: &Store, app: &str, fns: &[&str]) -> Result<Vec<String>, StoreError> {
    let digest = hex::encode(sha2::Sha256::digest(b"x"));
    store.put_artifact(&digest, b"x").unwrap();
    let m = manifest(app, fns);
    let fs: Vec<_> = m
        .functions
        .iter()
        .map(|f| DeployedFunction {
            spec: f.clone(),
            digest: digest.clone(),
        })
        .collect();
    store.deploy_app(DEFAULT_PROJECT, app, "", &fs)
}

use sha2::Digest;

#[test]
fn deploy_replaces_the_apps_functions_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        deploy(&store, "shop", &["a", "b"]).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        deploy(&store, "shop", &["b", "c"]).unwrap(),
        vec!["a".to_owned()]
    );
    let names = |s: &Store| {
        s.functions(DEFAULT_PROJECT)
            .unwrap()
            .into_iter()
            .map(|f| f.spec.name.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&store), ["b", "c"]);
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(names(&store), ["b", "c"]);
    assert!(store.delete_function(DEFAULT_PROJECT, "b").unwrap());
    assert!(!store.delete_function(DEFAULT_PROJECT, "b").unwrap());
    assert_eq!(names(&store), ["c"]);
}

#[test]
fn a_function_name_belongs_to_one_app() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    deploy(&store, "shop", &["a"]).unwrap();
    let err = deploy(&store, "blog", &["a"]).unwrap_err();
    assert!(matches!(err, StoreError::FunctionOwnedByOtherApp { ref app, .. } if app == "shop"));
}

#[test]
fn admin_tokens_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store.add_admin_token("abc").unwrap();
    assert_eq!(store.admin_tokens().unwrap(), ["abc"]);
}
