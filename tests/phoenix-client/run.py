"""Drives Phoenix's Python client (arize-phoenix-client, pinned in requirements.txt) for the
ashgate tests: `python run.py '<plan JSON>'` with PHOENIX_BASE_URL and PHOENIX_API_KEY set.

The plan is a list of {name, call, args}; one JSON object of results is printed, each
{"ok": value} or {"error": message}, so the Rust test can check every answer."""

import json
import os
import sys
from datetime import datetime

from phoenix.client import Client

client = Client(base_url=os.environ["PHOENIX_BASE_URL"], api_key=os.environ.get("PHOENIX_API_KEY"))


def _times(args):
    for key in ("start_time", "end_time"):
        if key in args:
            args[key] = datetime.fromisoformat(args[key])
    return args


def _span(span):
    return {
        "name": span["name"],
        "span_id": span["context"]["span_id"],
        "parent_id": span["parent_id"],
        "span_kind": span["span_kind"],
        "status_code": span["status_code"],
    }


CALLS = {
    "projects.list": lambda args: [p["name"] for p in client.projects.list(**args)],
    "projects.get": lambda args: client.projects.get(**args),
    "spans.get_spans": lambda args: [_span(s) for s in client.spans.get_spans(**_times(args))],
    "traces.get_traces": lambda args: [
        {"trace_id": t["trace_id"], "spans": [s["name"] for s in (t.get("spans") or [])]}
        for t in client.traces.get_traces(**_times(args))
    ],
}

results = {}
for step in json.loads(sys.argv[1] if len(sys.argv) > 1 else "[]"):
    try:
        results[step["name"]] = {"ok": CALLS[step["call"]](dict(step.get("args") or {}))}
    except Exception as error:  # the test checks the message
        results[step["name"]] = {"error": f"{type(error).__name__}: {error}"}
print(json.dumps(results))
