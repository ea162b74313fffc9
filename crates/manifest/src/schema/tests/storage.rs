//! `buckets = [...]` grants, `[site]` and `[[buckets]]`.

use super::*;

#[test]
fn bucket_grants_name_each_bucket_once_with_read_or_write() {
    let base = "[app]\nname = \"a\"\n[[functions]]\nname = \"f\"\ncomponent = \"x.wasm\"\n";
    let m = Manifest::parse(
        "updraft.toml",
        &format!("{base}buckets = [\"uploads:read\", \"thumbs:write\", \"scratch\"]\n"),
    )
    .unwrap();
    assert_eq!(
        m.functions[0].buckets,
        ["uploads:read", "thumbs:write", "scratch"]
    );
    let e = err(&format!(
        "{base}buckets = [\"uploads:rw\", \"../etc\", \"ok-bucket\", \"ok-bucket:read\", \"x:\"]\n"
    ));
    for needle in [
        "functions[0].buckets[0]: grant `uploads:rw`: `rw` is not `read` or `write`",
        "functions[0].buckets[1]: grant `../etc`: bucket name `../etc`",
        "functions[0].buckets[3]: bucket `ok-bucket` is granted twice",
        "functions[0].buckets[4]: grant `x:`",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}

#[test]
fn site_and_bucket_tables_are_checked() {
    let base = "[app]\nname = \"a\"\n";
    let m = Manifest::parse(
        "updraft.toml",
        &format!(
            "{base}[site]\ndir = \"public\"\nspa = true\n[[site.redirects]]\nfrom = \"/old/*\"\nto = \"/new/:splat\"\n\
             [[buckets]]\nname = \"uploads\"\ncors_origins = [\"https://app.example\"]\n"
        ),
    )
    .unwrap();
    let site = m.site.unwrap();
    assert!(site.spa);
    assert_eq!(site.redirects[0].status, 301);
    assert_eq!(
        site.redirects[0].apply("/old/a/b").as_deref(),
        Some("/new/a/b")
    );
    assert_eq!(site.redirects[0].apply("/older"), None);
    assert_eq!(m.buckets[0].cors_origins, ["https://app.example"]);
    let e = err(&format!(
        "{base}[site]\ndir = \"../up\"\nnot_found = \"/abs\"\n[[site.redirects]]\nfrom = \"no-slash\"\nto = \"x\"\nstatus = 200\n\
         [[site.rewrites]]\nfrom = \"/a*b*\"\nto = \"https://elsewhere\"\nstatus = 301\n\
         [[site.headers]]\nfor = \"/*\"\nvalues = {{ \"bad header\" = \"v\" }}\n\
         [[buckets]]\nname = \"Bad\"\n[[buckets]]\nname = \"ok-b\"\ncors_origins = [\"ftp://x\"]\n[[buckets]]\nname = \"ok-b\"\n"
    ));
    for needle in [
        "site.dir: `../up` must be a relative directory",
        "site.not_found: `/abs` must be a file of the site",
        "site.redirects[0].from: `no-slash` must start with `/`",
        "site.redirects[0].to: `x` must be a path starting with `/` or an http(s) URL",
        "site.redirects[0].status: 200 is not a redirect status",
        "site.rewrites[0].from: `/a*b*`: `*` may only end a pattern",
        "site.rewrites[0].to: `https://elsewhere` must be a path starting with `/`",
        "site.rewrites[0].status: a rewrite has no status",
        "site.headers[0].values: `bad header: v` is not a valid header",
        "buckets[0].name: bucket name `Bad`",
        "buckets[1].cors_origins: `ftp://x` is not `*` or an http(s) origin",
        "buckets[2].name: `ok-b` is declared twice",
    ] {
        assert!(e.contains(needle), "{needle} not in {e}");
    }
}
