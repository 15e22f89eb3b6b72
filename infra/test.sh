#!/usr/bin/env bash
# The one test command for ml-connector (CI runs exactly this through .ci/run).
#
#   infra/test.sh            bootstrap, fmt, template lint, clippy, tests
#   infra/test.sh --build    ... and `sam build` (arm64 release build of every function)
#
# `--build` is implied when CI is set. Needs only what a fresh machine of the project's kind
# has (Rust toolchain, python3): infra/bootstrap.sh installs the rest into ./.venv.
# Cheap checks run first so a formatting or template slip fails in seconds, not after the
# test build. Stops at the first failing step and names it.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

build=0
[[ -n "${CI:-}" && "${CI}" != "false" && "${CI}" != "0" ]] && build=1
for arg in "$@"; do
    case "$arg" in
        --build) build=1 ;;
        -h | --help)
            sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "test.sh: unknown argument '$arg' (try --help)" >&2
            exit 2
            ;;
    esac
done

started=$SECONDS
current_step="setup"
passed=()
moto_pid=""
moto_log=""

cleanup() {
    local status=$?
    if [[ -n "$moto_pid" ]] && kill -0 "$moto_pid" 2>/dev/null; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
    fi
    if ((status != 0)); then
        echo
        echo "test.sh: FAILED at step '$current_step' (exit $status) after $((SECONDS - started)) s; passed before it: ${passed[*]:-none}"
        if [[ "$current_step" == "moto server" && -n "$moto_log" && -f "$moto_log" ]]; then
            echo "--- moto server log ---"
            tail -n 20 "$moto_log"
        fi
    fi
    [[ -n "$moto_log" ]] && rm -f "$moto_log"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs one named step, timing it; `set -e` ends the script (through the trap) when it fails.
step() {
    current_step="$1"
    shift
    local t0=$SECONDS
    echo
    echo "==> [$current_step] $*"
    "$@"
    echo "==> [$current_step] ok ($((SECONDS - t0)) s)"
    passed+=("$current_step")
}

step "bootstrap" infra/bootstrap.sh
export PATH="$repo_root/.venv/bin:$PATH"
# Everything here is local: no test, lint or build may reach a real AWS account, and SAM CLI
# must not try to send telemetry from an offline machine.
export SAM_CLI_TELEMETRY=0
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
unset AWS_PROFILE AWS_ENDPOINT_URL
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"

step "fmt" cargo fmt --all -- --check
step "imports" python3 infra/check-imports.py
step "vendor places" python3 infra/check-vendor-places.py
step "sam validate" sam validate --lint --template template.yaml --region us-east-1
step "cfn-lint" cfn-lint template.yaml
step "clippy" cargo clippy --workspace --all-targets -- -D warnings
# The features' seams: the CLI without its sandboxes still builds clean.
step "clippy (no sandbox)" cargo clippy -p ml-connector --no-default-features -- -D warnings

start_moto() {
    local port attempt
    moto_log="$(mktemp -t mlc-moto.XXXXXX)"
    for attempt in 1 2 3; do
        # Ask the kernel for a free loopback port; another process could take it before moto
        # binds, which is why a failed start is retried on a new port.
        port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
        "$repo_root/.venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
        moto_pid=$!
        if python3 - "$port" "$moto_pid" <<'EOF'; then
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit(1)  # the server exited: port taken or broken install
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit(1)
EOF
            export MOTO_ENDPOINT="http://127.0.0.1:$port"
            echo "moto server (pid $moto_pid) at $MOTO_ENDPOINT"
            return 0
        fi
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
        moto_pid=""
        echo "moto server did not start on port $port (attempt $attempt)"
    done
    return 1
}

step "moto server" start_moto
step "cargo test" cargo test --workspace

if ((build)); then
    build_steps() {
        # cargo-lambda finds zig via the first python3 on PATH (the venv's, above). An explicit
        # CARGO_TARGET_DIR keeps the arm64 release build in the workspace's target dir;
        # cargo lambda's --target-dir flag does not work.
        export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo_root/target}"
        rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu ||
            rustup target add aarch64-unknown-linux-gnu
        sam build --template template.yaml
        # sam build reports success per function; make sure each artifact really is there.
        local missing=0 dir
        for dir in .aws-sam/build/*Function; do
            [[ -x "$dir/bootstrap" ]] || {
                echo "missing $dir/bootstrap"
                missing=1
            }
        done
        ((missing == 0))
    }
    step "sam build" build_steps
fi

echo
echo "test.sh: OK, all steps passed (${passed[*]}) in $((SECONDS - started)) s"
