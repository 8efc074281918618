"""`/metrics` of `mcpd serve`: the Prometheus text format, parsed with the official
`prometheus_client` parser.

1. Every family has HELP and TYPE and the text parses; the values follow what happened: answered
   tool calls by outcome (ok, error from the backend, failed when the backend died), a histogram
   whose count equals them, requests in flight, backend_up, restarts after a crash, sessions by
   transport, bytes in and out, and the write queue.
2. With `auth.tokens`, `/metrics` needs a token unless `http.public_metrics: true`.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

import test_streamable_http
from mcpd_helpers import server_entry
from test_streamable_http import RawSession, http_request

serve = test_streamable_http.serve

TOKEN = "metrics-token-0123456789abcdef"


def scrape(port: int, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The families of one scrape, by name: {name: (type, {(labels...): value})}."""
    reply = http_request(port, "GET", path="/metrics", headers=headers)
    assert reply.status == 200, reply
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4"), reply.headers
    text = reply.body.decode()
    families: dict[str, Any] = {}
    for family in text_string_to_metric_families(text):
        assert family.documentation, f"{family.name} has no HELP"
        samples = {}
        for sample in family.samples:
            samples[(sample.name,) + tuple(sorted(sample.labels.items()))] = sample.value
        families[family.name] = (family.type, samples)
    for name in ("mcpd_requests", "mcpd_request_duration_seconds", "mcpd_requests_in_flight", "mcpd_backend_up",
                 "mcpd_backend_restarts", "mcpd_sessions", "mcpd_bytes", "mcpd_write_queue_bytes"):
        assert name in families, f"{name} missing from /metrics:\n{text}"
    return families


def value(families: dict[str, Any], family: str, sample: str, **labels: str) -> float:
    return families[family][1].get((sample,) + tuple(sorted(labels.items())), 0.0)


def test_metrics_follow_the_traffic(serve, write_config, piddir):
    """Two ok calls and one tool error (isError is still a result: ok), one JSON-RPC error from
    the backend (an unknown argument shape the backend refuses is still a result; a crash is
    `failed`): the counters, the histogram count, backend_up, restarts after the crash, the
    http session gauge and the byte counters all move as they should, and every line parses."""
    served = serve(write_config({"servers": {"alpha": server_entry("alpha", piddir)}}))
    before = scrape(served.port)
    assert before["mcpd_backend_up"][0] == "gauge"
    assert value(before, "mcpd_backend_up", "mcpd_backend_up", backend="alpha") == 1
    assert value(before, "mcpd_sessions", "mcpd_sessions", transport="http") == 0

    s = RawSession(served.port)
    assert s.call_text("alpha__echo", {"text": "one"}) == "one"
    assert s.call_text("alpha__echo", {"text": "two"}) == "two"
    answer = s.request("tools/call", {"name": "alpha__fail", "arguments": {}})
    assert answer["result"]["isError"] is True, answer
    crashed = s.request("tools/call", {"name": "alpha__crash", "arguments": {}}, timeout=15)
    assert "error" in crashed, crashed

    after = scrape(served.port)
    ok = value(after, "mcpd_requests", "mcpd_requests_total", backend="alpha", method="tools/call", outcome="ok")
    failed = value(after, "mcpd_requests", "mcpd_requests_total", backend="alpha", method="tools/call", outcome="failed")
    assert (ok, failed) == (3, 1), after["mcpd_requests"]
    assert after["mcpd_requests"][0] == "counter" and after["mcpd_request_duration_seconds"][0] == "histogram"
    count = value(after, "mcpd_request_duration_seconds", "mcpd_request_duration_seconds_count", backend="alpha", method="tools/call")
    assert count == 4, after["mcpd_request_duration_seconds"]
    inf = value(after, "mcpd_request_duration_seconds", "mcpd_request_duration_seconds_bucket", backend="alpha", method="tools/call", le="+Inf")
    assert inf == 4
    assert value(after, "mcpd_sessions", "mcpd_sessions", transport="http") == 1
    assert value(after, "mcpd_bytes", "mcpd_bytes_total", direction="in") > value(before, "mcpd_bytes", "mcpd_bytes_total", direction="in")
    assert value(after, "mcpd_bytes", "mcpd_bytes_total", direction="out") > 0
    assert value(after, "mcpd_requests_in_flight", "mcpd_requests_in_flight", backend="alpha") == 0

    # The crash restarts alpha: the counter says so.
    deadline = time.monotonic() + 15
    while value(scrape(served.port), "mcpd_backend_restarts", "mcpd_backend_restarts_total", backend="alpha") < 1:
        assert time.monotonic() < deadline, "the restart never showed in /metrics"
        time.sleep(0.1)


def test_requests_in_flight_are_counted_while_they_run(serve, write_config, piddir):
    """A 2 s alpha__sleep in flight shows as mcpd_requests_in_flight 1, then 0 once answered."""
    served = serve(write_config({"servers": {"alpha": server_entry("alpha", piddir)}}))
    s = RawSession(served.port)
    done: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: done.update(answer=s.request("tools/call", {"name": "alpha__sleep", "arguments": {"seconds": 2}}, timeout=15)),
                              daemon=True)
    worker.start()
    deadline = time.monotonic() + 5
    while value(scrape(served.port), "mcpd_requests_in_flight", "mcpd_requests_in_flight", backend="alpha") != 1:
        assert time.monotonic() < deadline, "the call in flight never showed"
        time.sleep(0.05)
    worker.join(15)
    assert "result" in done.get("answer", {}), done
    assert value(scrape(served.port), "mcpd_requests_in_flight", "mcpd_requests_in_flight", backend="alpha") == 0


def test_metrics_need_a_token_unless_public(serve, write_config, piddir, mcpd_env):
    """With auth.tokens: /metrics without a token is 401 and with one is 200; with
    http.public_metrics: true it is 200 without a token, while /mcp still needs one."""
    mcpd_env["METRICS_TOKEN"] = TOKEN
    servers = {"alpha": server_entry("alpha", piddir)}
    auth = {"tokens": ["${METRICS_TOKEN}"]}
    served = serve(write_config({"servers": servers, "auth": auth}))
    assert http_request(served.port, "GET", path="/metrics").status == 401
    scrape(served.port, {"Authorization": f"Bearer {TOKEN}"})
    served.stop()

    # The second mcpd finds alpha in the catalog: lazy false starts it all the same.
    servers = {"alpha": dict(server_entry("alpha", piddir), lazy=False)}
    public = serve(write_config({"servers": servers, "auth": auth, "http": {"public_metrics": True}}))
    scrape(public.port)
    assert http_request(public.port, "POST", "{}", {"Content-Type": "application/json"}).status == 401
