"""Schemathesis hooks for `deploy/dev fuzz-api` (loaded through SCHEMATHESIS_HOOKS).

1. A generated Idempotency-Key is drawn from a small space ("0", "00", ...), so two different
   requests of a run often carry the same one; the API then rightly answers the second with 422
   (the key was used for another request) and never runs it. A real client sends a new key for
   each new request, so a well-formed key is replaced by a fresh UUID before each call; a
   malformed one (negative testing: too long, not visible ASCII) is left for the API to refuse.

2. Random UUIDs name nothing, so most generated requests stop at 404 before the API's own logic.
   With AUTOSOCIAL_FUZZ_FIXTURES (a JSON file of the seeded database's item ids, client ids and
   (client, account) pairs, written by deploy/dev fuzz-api), half of the well-formed UUIDs in an
   id path parameter, and in `client_id` / `accounts` of a new item, are replaced by seeded ones.
   A malformed value is left alone, so a negative case stays negative.
"""

import json
import os
import random
import re
import uuid

import schemathesis

WELL_FORMED_KEY = re.compile(r"^[!-~]{1,255}$")
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
HEADER = "idempotency-key"

_path = os.environ.get("AUTOSOCIAL_FUZZ_FIXTURES")
FIXTURES = json.load(open(_path, encoding="utf-8")) if _path else None
RNG = random.Random(19)


def _is_uuid(value):
    return isinstance(value, str) and UUID.match(value) is not None


def _fresh_idempotency_key(case):
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        if name.lower() == HEADER and isinstance(value, str) and WELL_FORMED_KEY.match(value):
            headers[name] = str(uuid.uuid4())


def _seeded_ids(case):
    path = case.operation.path
    params = case.path_parameters or {}
    if _is_uuid(params.get("id")) and RNG.random() < 0.5:
        pool = FIXTURES["items"] if path.startswith("/api/v1/items/") else FIXTURES["clients"]
        if pool and path.startswith(("/api/v1/items/", "/api/v1/clients/")):
            params["id"] = RNG.choice(pool)
    body = case.body
    if path == "/api/v1/items" and case.method.upper() == "POST" and isinstance(body, dict):
        if _is_uuid(body.get("client_id")) and FIXTURES["pairs"] and RNG.random() < 0.5:
            client, account = RNG.choice(FIXTURES["pairs"])
            body["client_id"] = client
            accounts = body.get("accounts")
            if isinstance(accounts, list) and accounts and all(_is_uuid(a) for a in accounts):
                body["accounts"] = [account]


@schemathesis.hook
def before_call(context, case, kwargs):
    _fresh_idempotency_key(case)
    if FIXTURES is not None:
        _seeded_ids(case)
