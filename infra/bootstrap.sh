#!/usr/bin/env bash
# Installs the build, deploy and test tools ml-connector needs into ./.venv, and the Rust
# components the checks use. Safe to run any number of times: when the pinned requirements
# have not changed since the last successful install it only checks and returns.
#
#   infra/bootstrap.sh            install or verify
#   infra/bootstrap.sh --force    reinstall the Python tools even if the stamp matches
#
# Afterwards put the venv first on PATH (infra/test.sh does): cargo-lambda finds zig by running
# `python3 -m ziglang` with the first python3 on PATH, so the venv's python3 must win.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$repo_root/.venv"
requirements="$repo_root/infra/requirements.txt"
constraints="$repo_root/infra/constraints.txt"
stamp="$venv/.mlc-bootstrap-stamp"

force=0
for arg in "$@"; do
    case "$arg" in
        --force) force=1 ;;
        -h | --help)
            sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "bootstrap: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

say() { echo "bootstrap: $*"; }
die() {
    echo "bootstrap: ERROR: $*" >&2
    exit 1
}

command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH; install Python 3.10 or newer."
command -v cargo >/dev/null 2>&1 || die "cargo is not on PATH; install the Rust toolchain (rustup)."

# Two runs at once (a developer and an editor hook, say) must not interleave pip installs.
mkdir -p "$venv"
exec 9>"$venv/.mlc-bootstrap.lock"
if command -v flock >/dev/null 2>&1; then
    flock 9
fi

# The stamp covers everything that decides what gets installed: both pin files and the
# interpreter the venv was made from.
wanted="$(
    {
        cat "$requirements" "$constraints"
        python3 -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
)"

if [[ ! -x "$venv/bin/python3" ]] || ! "$venv/bin/python3" -c 'import sys' >/dev/null 2>&1; then
    say "creating virtualenv $venv"
    # A broken or half-made venv is replaced whole rather than patched.
    find "$venv" -mindepth 1 -maxdepth 1 ! -name '.mlc-bootstrap.lock' -exec rm -rf {} +
    python3 -m venv "$venv" ||
        die "python3 -m venv failed; on Debian/Ubuntu install the python3-venv package."
fi

if [[ $force -eq 0 && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    say "python tools up to date (.venv matches infra/requirements.txt)"
else
    say "installing pinned python tools into .venv (first run takes about a minute, ~800 MB)"
    rm -f "$stamp"
    start=$SECONDS
    "$venv/bin/python3" -m pip install --quiet --disable-pip-version-check \
        --requirement "$requirements" ||
        die "pip install of infra/requirements.txt failed (is PyPI reachable?)"
    say "python tools installed in $((SECONDS - start)) s"
fi

export PATH="$venv/bin:$PATH"
check() {
    local name="$1"
    shift
    "$@" >/dev/null 2>&1 || die "$name does not run ('$*' failed); rerun with --force"
}
if [[ -f "$stamp" ]]; then
    # Fast path: the tools ran when the stamp was written; only make sure nothing was deleted.
    for tool in cargo-lambda sam cfn-lint moto_server; do
        [[ -x "$venv/bin/$tool" ]] || die ".venv/bin/$tool is missing; rerun with --force"
    done
else
    # Verify that each tool actually runs before recording success, so a stamp never hides
    # a broken install.
    check "cargo-lambda" cargo lambda --version
    check "zig (ziglang)" python3 -m ziglang version
    check "sam" sam --version
    check "cfn-lint" cfn-lint --version
    check "moto_server" python3 -c 'import moto.server'
    echo "$wanted" >"$stamp"
    say "ready: $(cargo lambda --version 2>/dev/null | head -n1), $(sam --version), $(cfn-lint --version), moto $(python3 -c 'import moto; print(moto.__version__)'), zig $(python3 -m ziglang version)"
fi

# clippy and rustfmt come with most toolchains, but minimal rustup profiles leave them out.
missing=()
cargo clippy --version >/dev/null 2>&1 || missing+=(clippy)
cargo fmt --version >/dev/null 2>&1 || missing+=(rustfmt)
if ((${#missing[@]})); then
    command -v rustup >/dev/null 2>&1 ||
        die "cargo ${missing[*]} missing and rustup is not available to add them"
    say "adding rust components: ${missing[*]}"
    rustup component add "${missing[@]}" || die "rustup component add ${missing[*]} failed"
fi

