//! `runtime`, `handler` and `code`: process (Lambda) functions.

use super::*;

const BASE: &str = "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\n";

#[test]
fn process_functions_take_handler_and_code() {
    let m = Manifest::parse(
        "updraft.toml",
        &format!("{BASE}runtime = \"python\"\nhandler = \"src/app.handler\"\ncode = \"lambda\"\n"),
    )
    .unwrap();
    let f = &m.functions[0];
    assert_eq!(f.runtime, FunctionRuntime::Python);
    assert_eq!(f.handler.as_deref(), Some("src/app.handler"));
    assert_eq!(f.code.as_deref(), Some("lambda"));
    assert_eq!(f.component, "");
    // Execution environments are reused, as on Lambda.
    assert_eq!(f.instance_reuse, InstanceReuse::Warm);

    // `code` defaults to the app's directory; `provided` needs no handler.
    let m = Manifest::parse("updraft.toml", &format!("{BASE}runtime = \"provided\"\n")).unwrap();
    assert_eq!(m.functions[0].code.as_deref(), Some("."));
    assert_eq!(m.functions[0].handler, None);

    // A wasm function's stored form is unchanged: no runtime, handler or code keys.
    let m = Manifest::parse("updraft.toml", &format!("{BASE}component = \"x.wasm\"\n")).unwrap();
    let json = serde_json::to_string(&m.functions[0]).unwrap();
    assert!(
        !json.contains("runtime") && !json.contains("handler"),
        "{json}"
    );
}

#[test]
fn process_functions_refuse_what_they_cannot_honour() {
    let e = err(&format!("{BASE}runtime = \"ruby\"\n"));
    assert!(
        e.contains("functions[0].runtime: `ruby` is not a runtime"),
        "{e}"
    );

    let e = err(&format!("{BASE}runtime = \"nodejs\"\n"));
    assert!(
        e.contains("functions[0].handler: a `nodejs` function needs a handler"),
        "{e}"
    );

    let e = err(&format!(
        "{BASE}runtime = \"python\"\nhandler = \"../up.handler\"\ncomponent = \"x.wasm\"\n\
         key_value_stores = [\"default\"]\nallowed_outbound_hosts = [\"https://x.example\"]\n\
         instance_reuse = \"fresh\"\nvariables = {{ a = \"b\" }}\n"
    ));
    for needle in [
        "functions[0].handler: `../up.handler` is not a handler",
        "functions[0].component: a `python` function has `code` and `handler`",
        "functions[0].key_value_stores: applies to WebAssembly components only",
        "functions[0].allowed_outbound_hosts: applies to WebAssembly components only",
        "functions[0].variables: applies to WebAssembly components only",
        "functions[0].instance_reuse: process functions always reuse",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }

    // A wasm function has no handler or code, and needs its component.
    let e = err(&format!(
        "{BASE}handler = \"app.handler\"\ncode = \"src\"\n"
    ));
    for needle in [
        "functions[0].component: must be the path of a .wasm component",
        "functions[0].handler: only applies to process runtimes",
        "functions[0].code: only applies to process runtimes",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}
