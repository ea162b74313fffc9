#!/usr/bin/env python3
"""Structure rules CI enforces (see docs/architecture.md):

1. No module cycles inside a crate: the modules of a crate (each file's module, nested ones
   included) may not reach each other in a cycle through `crate::...` paths.
2. No source file over 600 lines unless one of its first 20 lines says why, with the words
   "long file".
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
LIMIT = 600
problems = []


def module_of(src: pathlib.Path, path: pathlib.Path) -> str:
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts in (["lib"], ["main"]):
        return "crate"
    if parts[-1] == "mod":
        parts = parts[:-1]
    # `foo/tests.rs` is the test module of `foo`: part of it.
    if parts[-1] == "tests" and len(parts) > 1:
        parts = parts[:-1]
    return "crate::" + "::".join(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


for manifest in sorted(ROOT.glob("crates/*/Cargo.toml")):
    src = manifest.parent / "src"
    files = sorted(src.rglob("*.rs"))
    modules = {module_of(src, f) for f in files}
    graph = {m: set() for m in modules}
    for f in files:
        me = module_of(src, f)
        text = strip_comments(f.read_text())
        # `use crate::{a, b::c}` and `crate::a::b` paths.
        refs = set(re.findall(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[a-z_][a-z0-9_]*)", text))
        for group in re.findall(r"\bcrate::\{([^}]*)\}", text):
            refs.update(p.strip().split("::")[0] for p in group.split(",") if p.strip())
        for r in refs:
            # The longest module the path names.
            parts = r.split("::")
            target = None
            for i in range(len(parts), 0, -1):
                cand = "crate::" + "::".join(parts[:i])
                if cand in modules:
                    target = cand
                    break
            if target and target != me and not me.startswith(target + "::") \
                    and not target.startswith(me + "::"):
                graph[me].add(target)
    # Cycles by depth-first search.
    state = {}
    stack = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                cycle = stack[stack.index(n):] + [n]
                problems.append(f"{manifest.parent.name}: module cycle {' -> '.join(cycle)}")
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)

for f in sorted(ROOT.glob("crates/*/**/*.rs")):
    lines = f.read_text().splitlines()
    if len(lines) > LIMIT:
        head = "\n".join(lines[:20]).lower()
        if "long file" not in head:
            problems.append(
                f"{f.relative_to(ROOT)}: {len(lines)} lines (over {LIMIT}) with no reason in its "
                "first 20 lines (say why with the words \"long file\")"
            )

for p in problems:
    print(p, file=sys.stderr)
sys.exit(1 if problems else 0)
