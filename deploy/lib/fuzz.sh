# shellcheck shell=bash
#
# `deploy/dev fuzz-api`: the JSON API against its own OpenAPI document.  Sourced by deploy/dev
# after deploy/lib/services.sh (uses say/die/have/install_packages/start_child/free_port...).
#
# 1. The document is validated by an independent validator (openapi-spec-validator).
# 2. A fresh database is seeded the way `deploy/dev demo` seeds one (the demo agency, its
#    clients with sandbox accounts connected through the sandbox's OAuth flow, approved posts),
#    plus an API key of each role (`autosocial-admin api-key create`) and, through the API
#    itself, items waiting for review, approved and rejected; their ids go to the hooks
#    (deploy/fuzz/hooks.py), which put them in place of half the random UUIDs.
# 3. Schemathesis generates requests from the document for every operation it lists (examples,
#    coverage, fuzzing and stateful phases) with every check, with the admin key, bounded by
#    --max-examples and --max-time; then once more, briefly, with the viewer key (the 403s of
#    the writes must match the document too).  Any 5xx or any answer the document does not
#    describe fails the command.
#
# The Python tools are pinned and installed into a venv in a cache dir outside the work tree:
#   AUTOSOCIAL_FUZZ_TOOLS_DIR   (default ${XDG_CACHE_HOME:-$HOME/.cache}/autosocial/fuzz-tools)

FUZZ_PY_PACKAGES=(schemathesis==4.32.5 openapi-spec-validator==0.9.0)
FUZZ_DB=autosocial_fuzz

fuzz_tools_dir() {
    echo "${AUTOSOCIAL_FUZZ_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/autosocial/fuzz-tools}"
}

# Sets FUZZ_VENV to a venv holding FUZZ_PY_PACKAGES.
ensure_fuzz_tools() {
    if ! have python3; then
        say "python3 not found (schemathesis runs on it)"
        install_packages python3 && have python3 || die "fuzz-api needs Python 3: apt-get install python3"
    fi
    local dir venv stamp want
    dir=$(fuzz_tools_dir)
    venv=$dir/venv
    stamp=$dir/.installed
    want=$(printf '%s\n' "${FUZZ_PY_PACKAGES[@]}")
    if [[ ! -x $venv/bin/schemathesis || $(cat "$stamp" 2>/dev/null) != "$want" ]]; then
        say "installing ${FUZZ_PY_PACKAGES[*]} into $venv"
        mkdir -p "$dir"
        if [[ ! -x $venv/bin/python ]] && ! python3 -m venv "$venv" >/dev/null 2>&1; then
            rm -rf "$venv"
            install_packages python3-venv || true
            python3 -m venv "$venv" || die "cannot create a Python venv: apt-get install python3-venv"
        fi
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${FUZZ_PY_PACKAGES[@]}" ||
            die "pip install ${FUZZ_PY_PACKAGES[*]} failed"
        printf '%s\n' "$want" >"$stamp"
    fi
    FUZZ_VENV=$venv
}

wait_http_200() { # NAME URL SECONDS LOG
    local deadline=$((SECONDS + $3))
    until [[ $(http_status "$2") == 200 ]]; do
        if find_dead_child; then
            show_log_tail "$DEAD_LOG"
            die "$DEAD_NAME exited (status $DEAD_STATUS) before it answered"
        fi
        if ((SECONDS >= deadline)); then
            show_log_tail "$4"
            die "$1 did not answer 200 at $2 within $3 s"
        fi
        sleep 0.2
    done
}

# curl against the API: METHOD PATH KEY [JSON BODY]; prints the body, fails on an error status.
fuzz_api_call() {
    local args=(-sS --fail-with-body -m 10 -X "$1" -H "Authorization: Bearer $3")
    if [[ -n ${4:-} ]]; then
        args+=(-H 'Content-Type: application/json' -H "Idempotency-Key: seed-$RANDOM$RANDOM" --data "$4")
    fi
    curl "${args[@]}" "$FUZZ_BASE$2"
}

# Items in several states through the API itself: per client with an active account, three
# posts written by hand; one is approved, one rejected, one left waiting for review.
fuzz_seed_items() { # DATABASE_URL REVIEWER_KEY
    local rows client account n ids id slot
    rows=$(psql_url "$1" -Atc "SELECT c.id || ' ' || a.id FROM clients c
        JOIN social_accounts a ON a.client_id = c.id AND a.status = 'active' ORDER BY c.name")
    [[ -n $rows ]] || die "the seeded database has no client with an active account"
    slot=$(date -u -d '+3 days' +%Y-%m-%dT%H:%M:%SZ)
    n=0
    while read -r client account; do
        ids=()
        for k in 1 2 3; do
            id=$(fuzz_api_call POST /api/v1/items "$2" \
                "{\"client_id\":\"$client\",\"accounts\":[\"$account\"],\"slot_at\":\"$slot\",\"caption\":\"Seeded post $k for the API fuzzer\",\"hashtags\":[\"fuzz\"]}" |
                sed -n 's/^{"id":"\([0-9a-f-]*\)".*/\1/p') || die "creating a seed item failed"
            [[ -n $id ]] || die "creating a seed item answered no id"
            ids+=("$id")
        done
        fuzz_api_call POST "/api/v1/items/${ids[0]}/approve" "$2" '{"variant":null}' >/dev/null ||
            die "approving a seed item failed"
        fuzz_api_call POST "/api/v1/items/${ids[1]}/reject" "$2" '{"reason":"Seeded rejection"}' >/dev/null ||
            die "rejecting a seed item failed"
        n=$((n + 3))
    done <<<"$rows"
    say "seeded $n items through the API (approved, rejected, waiting for review)"
}

cmd_fuzz_api() {
    local max_examples=${AUTOSOCIAL_FUZZ_MAX_EXAMPLES:-30} max_time=${AUTOSOCIAL_FUZZ_MAX_TIME:-75}
    local profile=debug extra=()
    while (($# > 0)); do
        case $1 in
            --max-examples) max_examples=${2:?--max-examples N}; shift 2 ;;
            --max-time) max_time=${2:?--max-time SECONDS}; shift 2 ;;
            --release) profile=release; shift ;;
            --) shift; extra=("$@"); break ;;
            *) usage_error "fuzz-api: unknown argument '$1' (--max-examples N, --max-time S, --release, -- SCHEMATHESIS ARGS)" ;;
        esac
    done
    [[ $max_examples =~ ^[1-9][0-9]*$ ]] || usage_error "fuzz-api: --max-examples takes a positive number"
    [[ $max_time =~ ^[1-9][0-9]*$ ]] || usage_error "fuzz-api: --max-time takes a number of seconds"
    have curl || install_packages curl || die "fuzz-api needs curl: apt-get install curl"
    ensure_fuzz_tools

    local build=(cargo build -p autosocial-admin -p autosocial-sandbox --bins)
    [[ $profile == debug ]] || build+=(--release)
    say "building: ${build[*]}"
    "${build[@]}"
    local bin
    bin=$(cargo_target_dir)/$profile
    [[ -x $bin/autosocial-admin && -x $bin/autosocial-sandbox ]] || die "the binaries were not built in $bin"

    ensure_services
    select_pg_tools
    need_psql
    local out
    out=$(cargo_target_dir)/fuzz-api
    rm -rf "$out"
    mkdir -p "$out"
    say "fresh database $FUZZ_DB"
    psql_url "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS $FUZZ_DB WITH (FORCE)" >/dev/null
    psql_url "$DATABASE_URL" -qc "CREATE DATABASE $FUZZ_DB" >/dev/null
    DATABASE_URL=$(db_url_with_name "$DATABASE_URL" "$FUZZ_DB")
    AUTOSOCIAL_KEYS=$("$bin/autosocial-admin" keys generate --id fuzz)
    export DATABASE_URL REDIS_URL AUTOSOCIAL_KEYS
    "$bin/autosocial-admin" migrate >/dev/null

    local sandbox_port admin_port
    sandbox_port=$(free_port)
    start_child sandbox "$out/sandbox.log" "$bin/autosocial-sandbox" --port "$sandbox_port"
    wait_http_200 sandbox "http://127.0.0.1:$sandbox_port/healthz" 30 "$out/sandbox.log"
    export AUTOSOCIAL_SANDBOX_URL=http://127.0.0.1:$sandbox_port AUTOSOCIAL_PLATFORMS_IN_SANDBOX=true
    say "seeding the demo agency (log: $out/seed.log)"
    # its output holds the demo owner's password: kept in the log only
    "$bin/autosocial-admin" demo seed >"$out/seed.log" 2>&1 || {
        show_log_tail "$out/seed.log"
        die "demo seed failed"
    }
    local role admin_key="" reviewer_key="" viewer_key="" secret
    for role in admin reviewer viewer; do
        secret=$("$bin/autosocial-admin" api-key create --agency "Demo Agency" --name "fuzz $role" --role "$role") ||
            die "creating the $role key failed"
        printf -v "${role}_key" '%s' "$secret"
    done

    admin_port=$(free_port)
    FUZZ_BASE=http://127.0.0.1:$admin_port
    start_child admin "$out/admin.log" env \
        AUTOSOCIAL_ADMIN_LISTEN="127.0.0.1:$admin_port" AUTOSOCIAL_PUBLIC_URL="$FUZZ_BASE" \
        AUTOSOCIAL_API_REQUESTS_PER_MINUTE=1000000 RUST_LOG=warn \
        "$bin/autosocial-admin" serve
    wait_http_200 admin "$FUZZ_BASE/readyz" 60 "$out/admin.log"
    fuzz_seed_items "$DATABASE_URL" "$reviewer_key"

    # the seeded ids, for the hooks to put in place of random UUIDs (deploy/fuzz/hooks.py)
    psql_url "$DATABASE_URL" -Atc "SELECT json_build_object(
        'items', (SELECT coalesce(json_agg(id), '[]') FROM content_items),
        'clients', (SELECT coalesce(json_agg(id), '[]') FROM clients),
        'pairs', (SELECT coalesce(json_agg(json_build_array(client_id, id)), '[]') FROM social_accounts WHERE status = 'active'))" \
        >"$out/fixtures.json" || die "reading the seeded ids failed"
    export AUTOSOCIAL_FUZZ_FIXTURES=$out/fixtures.json

    say "validating the OpenAPI document with openapi-spec-validator"
    curl -sS --fail -m 10 "$FUZZ_BASE/api/v1/openapi.json" -o "$out/openapi.json" || die "GET /api/v1/openapi.json failed"
    "$FUZZ_VENV/bin/openapi-spec-validator" "$out/openapi.json" || die "the OpenAPI document is not valid"

    # the settings (expected answers, the key as the security scheme) and hooks in deploy/fuzz/;
    # one worker: with two, hypothesis' ast.parse in two threads at once can fail inside Python
    # 3.11 ("AST constructor recursion depth mismatch"), an error of the tool, not of the API
    local st=("$FUZZ_VENV/bin/schemathesis" --config-file "$REPO/deploy/fuzz/schemathesis.toml" run
        "$FUZZ_BASE/api/v1/openapi.json" --checks all --request-timeout 10 --workers 1 --no-color)
    export SCHEMATHESIS_HOOKS=$REPO/deploy/fuzz/hooks.py
    say "schemathesis with the admin key: every operation, every check, up to $max_examples examples each, at most $max_time s"
    local rc=0
    AUTOSOCIAL_FUZZ_KEY=$admin_key "${st[@]}" \
        --phases examples,coverage,fuzzing,stateful \
        --max-examples "$max_examples" --max-time "$max_time" \
        --report junit --report-junit-path "$out/admin.junit.xml" \
        "${extra[@]}" || rc=$?
    if ((rc == 0)); then
        say "schemathesis with the viewer key: the writes' refusals against the document"
        AUTOSOCIAL_FUZZ_KEY=$viewer_key "${st[@]}" \
            --phases examples,coverage \
            --max-examples 5 --max-time 30 \
            --report junit --report-junit-path "$out/viewer.junit.xml" \
            "${extra[@]}" || rc=$?
    fi
    if grep -q 'ERROR' "$out/admin.log"; then
        warn "the admin logged errors meanwhile (see $out/admin.log)"
    fi
    if ((rc != 0)); then
        say "reports and logs: $out/"
        die "the API does not keep to its OpenAPI document (schemathesis exit $rc)"
    fi
    say "fuzz-api passed: no server error, every answer as documented (reports in $out/)"
}
