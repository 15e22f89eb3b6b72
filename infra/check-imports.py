#!/usr/bin/env python3
"""The import rule of shared/ (docs/architecture.md, "Layers"): imports point one way,

    entry points → app → flows, webhook, poller → vendors, tokens → ports ← adapters

Reads every non-test source file of the library, collects the top-level modules each one names
through `crate::…` (or `super::…` reaching the top), and fails when a module reaches one that
sits above it. Test code (tests.rs, tests/ folders, `#[cfg(test)]` modules, the fakes) is left
out: tests may assemble anything.

    infra/check-imports.py            check, print the graph on failure
    infra/check-imports.py --graph    print the graph and check
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent / "shared" / "src"

# What each top-level module may not import. Everything else is allowed.
FORBIDDEN = {
    # The vendor layer knows vendors and the ports, nothing that drives it.
    "vendors": {"adapters", "app", "flows", "webhook", "poller", "worker", "fanout", "testing"},
    "tokens": {"adapters", "app", "flows", "webhook", "poller", "worker", "fanout", "testing"},
    # Flows, the webhook ingress and the poller never pick an adapter or build the app.
    "flows": {"adapters", "app", "webhook", "poller", "testing"},
    "webhook": {"adapters", "app", "flows", "poller", "worker", "testing"},
    "poller": {"adapters", "app", "webhook", "testing"},
    "worker": {"adapters", "app", "flows", "webhook", "poller", "vendors", "tokens", "testing"},
    "fanout": {"adapters", "app", "flows", "webhook", "poller", "worker", "vendors", "tokens"},
    # The ports are the bottom the adapters plug into.
    "ports": {"adapters", "app", "flows", "webhook", "poller", "worker", "vendors", "tokens", "fanout"},
    "connections": {"adapters", "app", "flows", "webhook", "poller", "worker", "vendors", "tokens", "fanout", "ports"},
    "event": {"adapters", "app", "flows", "webhook", "poller", "worker", "vendors", "tokens", "fanout", "ports", "connections"},
    "vendor": {"adapters", "app", "flows", "webhook", "poller", "worker", "vendors", "tokens", "fanout", "ports", "connections", "event"},
    # Reading settings from the environment (the one ConfigError): every layer uses it, so it
    # sits at the bottom and no module may be forbidden from importing it.
    "config": {"adapters", "app", "flows", "webhook", "poller", "worker", "vendors", "tokens", "fanout", "ports", "connections", "observability"},
    # Names and addresses (ConnectionName, AccountId, Email): plain types every layer may use.
    "ids": {"adapters", "app", "flows", "webhook", "poller", "worker", "vendors", "tokens", "fanout", "ports", "connections", "event", "vendor", "observability"},
    # Adapters implement ports; they never reach up into the domain.
    "adapters": {"app", "flows", "webhook", "poller", "worker", "vendors", "tokens", "fanout"},
}

# Modules every layer may import: no FORBIDDEN set may name them.
BOTTOM = {"config", "ids"}
assert not any(BOTTOM & deps for deps in FORBIDDEN.values()), "a module is forbidden from importing a bottom module"

TEST_FILES = re.compile(r"(^|/)(tests\.rs|tests/|fakes\.rs|quickbooks_fake\.rs|testing(/|\.rs))")
CFG_TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{")
CRATE_PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")


def strip_test_modules(text: str) -> str:
    """Drops every inline `#[cfg(test)] mod … { … }` block (braces counted)."""
    out, pos = [], 0
    for m in CFG_TEST_MOD.finditer(text):
        if m.start() < pos:
            continue
        out.append(text[pos : m.start()])
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        pos = i
    out.append(text[pos:])
    return "".join(out)


def strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*", "", text)


def graph():
    edges = {}
    for path in sorted(ROOT.rglob("*.rs")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("lib.rs",) or TEST_FILES.search(rel):
            continue
        top = rel.split("/")[0].removesuffix(".rs")
        text = strip_comments(strip_test_modules(path.read_text()))
        for dep in CRATE_PATH.findall(text):
            if dep != top:
                edges.setdefault(top, {}).setdefault(dep, set()).add(rel)
    return edges


def main() -> int:
    edges = graph()
    if "--graph" in sys.argv[1:]:
        for top in sorted(edges):
            print(f"{top} -> {' '.join(sorted(edges[top]))}")
    bad = []
    for top, deps in sorted(edges.items()):
        for dep, files in sorted(deps.items()):
            if dep in FORBIDDEN.get(top, ()):
                bad.append(f"  {top} imports {dep}: {', '.join(sorted(files))}")
    if bad:
        print("check-imports: imports that point the wrong way (see docs/architecture.md, \"Layers\"):")
        print("\n".join(bad))
        return 1
    print(f"check-imports: ok ({sum(len(d) for d in edges.values())} module edges, none pointing up)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
