#!/usr/bin/env python3
"""A vendor is a place (docs/adding-an-integration.md): code that names a vendor as a value
(`Vendor::Mailchimp`: dispatching or branching on it) lives in that vendor's own places, and at
most three other files may name it — the seams that list every vendor (today: the vendor
registry `shared/src/vendors/mod.rs`, the flow table `shared/src/flows/table.rs` and the dev
sandbox wiring `cli/src/dev/sandbox.rs`).

A vendor's own places:
    shared/src/vendors/<vendor>/          its spec, client, webhook ingress, models, errors
    shared/src/flows/<..vendor..>/ (.rs)  the flows it is a side of
    shared/src/poller/<vendor>_*.rs       its scheduled poll job
    functions/worker-<vendor>/            its worker's main
    cli/src/vendors/<vendor>/             its connect/ping/apply/backfill hooks

Test code (tests.rs, tests/ folders, `#[cfg(test)]` modules, the fakes) is left out.

    infra/check-vendor-places.py          check; print each vendor's files outside its places
"""
import importlib.util
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
LIMIT = 3

_spec = importlib.util.spec_from_file_location("check_imports", REPO / "infra" / "check-imports.py")
check_imports = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(check_imports)

TEST_FILES = re.compile(r"(^|/)(tests\.rs|tests/|testing/|fakes\.rs|quickbooks_fake\.rs)")
VENDOR_ENUM = re.compile(r"^pub enum Vendor \{\n(.*?)^\}", re.M | re.S)


def vendors() -> list[str]:
    text = (REPO / "shared" / "src" / "vendor.rs").read_text()
    body = VENDOR_ENUM.search(text)
    if not body:
        sys.exit("check-vendor-places: cannot find `pub enum Vendor` in shared/src/vendor.rs")
    return re.findall(r"^\s*([A-Z][A-Za-z]*),", body.group(1), re.M)


def own(rel: str, v: str) -> bool:
    return bool(
        rel.startswith(f"shared/src/vendors/{v}/")
        or re.match(rf"shared/src/flows/([a-z]+_)*{v}(_[a-z]+)*(/|\.rs$)", rel)
        or re.match(rf"shared/src/poller/{v}_[a-z_]+\.rs$", rel)
        or rel.startswith(f"functions/worker-{v}/")
        or rel.startswith(f"cli/src/vendors/{v}/")
    )


def main() -> int:
    sources = []
    for root in ("shared/src", "cli/src", "functions"):
        for path in sorted((REPO / root).rglob("*.rs")):
            rel = path.relative_to(REPO).as_posix()
            if TEST_FILES.search(rel):
                continue
            text = check_imports.strip_comments(check_imports.strip_test_modules(path.read_text()))
            sources.append((rel, text))
    bad = []
    for variant in vendors():
        v = variant.lower()
        named = re.compile(rf"\bVendor::{variant}\b")
        files = [rel for rel, text in sources if named.search(text) and not own(rel, v)]
        print(f"  {v:<11} {len(files)} file(s) outside its places: {', '.join(files) or '-'}")
        if len(files) > LIMIT:
            bad.append(v)
    if bad:
        print(
            f"check-vendor-places: {', '.join(bad)} named in more than {LIMIT} files outside "
            "their own places: move the per-vendor code into the vendor's folder (its spec, its "
            "CLI hooks) — see docs/adding-an-integration.md"
        )
        return 1
    print(f"check-vendor-places: ok (each vendor in at most {LIMIT} files outside its places)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
