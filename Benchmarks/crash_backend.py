"""A raw MCP stdio server for Benchmarks/lifecycle.py: tools `echo` and `crash`.

`crash` writes time.monotonic_ns() to the file named by argv[1], then kills its own process
with SIGKILL (as `kill -9` would), so the benchmark can time the exit -> client error path.
"""

import json
import os
import signal
import sys
import time


def reply(message_id, result):
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message_id, "result": result}) + "\n")
    sys.stdout.flush()


TOOLS = [
    {"name": "echo", "description": "Echo the text.", "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}}},
    {"name": "crash", "description": "Die with SIGKILL.", "inputSchema": {"type": "object"}},
]

for line in sys.stdin:
    message = json.loads(line)
    method, message_id = message.get("method"), message.get("id")
    if message_id is None:
        continue
    if method == "initialize":
        reply(message_id, {"protocolVersion": message["params"]["protocolVersion"], "capabilities": {"tools": {}},
                           "serverInfo": {"name": "crash_backend", "version": "1"}})
    elif method == "tools/list":
        reply(message_id, {"tools": TOOLS})
    elif method == "tools/call" and message["params"]["name"] == "crash":
        with open(sys.argv[1], "w") as f:
            f.write(str(time.monotonic_ns()))
        os.kill(os.getpid(), signal.SIGKILL)
    elif method == "tools/call":
        reply(message_id, {"content": [{"type": "text", "text": message["params"].get("arguments", {}).get("text", "")}]})
    else:
        sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message_id, "error": {"code": -32601, "message": method}}) + "\n")
        sys.stdout.flush()
