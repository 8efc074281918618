"""Large strings of every kind of content through mcpd, both ways, and faults deep inside them.

mcpd skips long strings 64 bytes at a time (Sources/CJSONScan); these check from outside that
nothing it carries changes and nothing it refuses is accepted: source code dense with escapes, a
JSON document carried as a string, CJK, emoji and astral characters (raw UTF-8, and as \\u
escapes with surrogate pairs), base64, with the official SDK as the client and as the server;
and each kind of fault at offsets on both sides of block boundaries, which must get the parse
error naming the fault and its byte, as before the block scan."""

from __future__ import annotations

import base64
import bisect
import itertools
import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import ClientSession
from mcpd_helpers import hostile, server_entry, spawn_jsonrpc_streams

CODE = (
    '\tif (c == \'"\' || c == \'\\\\\') {\n\t\tprintf("escape: \\"%s\\"\\n", s);\n\t}\n'
    "\tpath = \"C:\\\\Users\\\\me\\\\file.txt\";\t// a Windows path\r\n"
)
CJK = "日本語のテキスト、中文文本，한국어 텍스트. Ελληνικά, русский, Zażółć gęślą jaźń. 😀🎉👩‍💻 𝒜𝓑𝓒 𠀋𡈽\n"


def kind_text(kind: str, size: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    if kind == "code":
        unit = CODE
    elif kind == "cjk":
        unit = CJK
    elif kind == "json":
        unit = json.dumps([{"id": i, "title": f'Fix "quoted" \\ path {i}', "body": "line\nnext\t\"x\"",
                            "emoji": "😀", "nested": {"a": [1, 2.5, None, True]}} for i in range(20)])
    elif kind == "base64":
        return base64.b64encode(rng.randbytes(size * 3 // 4)).decode()[:size]
    elif kind == "mixed":
        pieces = [CODE, CJK, "\\" * rng.randrange(1, 9), '"' * rng.randrange(1, 4), "\u0001\u001f\u007f", "é", "€"]
        out: list[str] = []
        while sum(map(len, out)) < size:
            out.append(rng.choice(pieces) if rng.random() < 0.5 else "x" * rng.randrange(1, 130))
        return "".join(out)[:size]
    else:
        raise ValueError(kind)
    return (unit * (size // len(unit) + 1))[:size]


KINDS = ["code", "cjk", "json", "base64", "mixed"]


@asynccontextmanager
async def sdk_client(mcpd_bin: str, config: Path, tmp_path: Path, env: dict[str, str]) -> AsyncIterator[ClientSession]:
    async with spawn_jsonrpc_streams(
        [mcpd_bin, "stdio", "--config", str(config)], stderr_path=tmp_path / "mcpd.stderr", env=env
    ) as (read, write, _handle):
        async with ClientSession(read, write) as session:
            await session.initialize()
            yield session


@pytest.mark.anyio
async def test_every_kind_round_trips_through_the_sdk_client_and_server(mcpd_bin, write_config, piddir, tmp_path, mcpd_env):
    """The SDK client sends each kind (at sizes around the 64-byte blocks and up to 300 kB) to
    beta, an SDK server, which echoes it with a prefix: the text comes back exactly."""
    config = write_config({"servers": {"beta": server_entry("beta", piddir)}})
    async with sdk_client(mcpd_bin, config, tmp_path, mcpd_env) as session:
        for kind in KINDS:
            for size in (63, 64, 65, 1000, 100_000, 300_000):
                text = kind_text(kind, size)
                result = await session.call_tool("beta__echo", {"text": text})
                assert not result.is_error, (kind, size, result)
                assert result.content[0].text == "beta:" + text, f"{kind} at {size} characters came back changed"


def test_every_kind_round_trips_as_unicode_escapes(raw_mcpd, write_config, piddir):
    """The same texts sent with every non-ASCII character as a \\u escape (astral ones as
    surrogate pairs), and echoed by a backend that writes them so too: mcpd checks each escape
    and pair inside the blocks and passes them on untouched."""
    config = write_config({"servers": {"hostile": hostile(piddir)}})
    p = raw_mcpd(config)
    p.initialize(timeout=20)
    for kind in KINDS:
        text = kind_text(kind, 150_000, seed=11)
        call_id = p.new_id()
        p.send_raw(json.dumps({"jsonrpc": "2.0", "id": call_id, "method": "tools/call",
                               "params": {"name": "hostile__echo", "arguments": {"text": text}}}))
        line, msg = p.recv_response(timeout=20)
        assert msg.get("id") == call_id, line[:300]
        assert msg["result"]["content"][0]["text"] == text, f"{kind} came back changed"
        if kind in ("cjk", "mixed"):
            assert "\\ud83d\\ude00" in line, "the backend's answer should carry surrogate-pair escapes"
    p.ping()


# Each fault, and the reason the scanner gives for it (at the fault's first byte).
FAULTS = [
    (b"\xff", "invalid UTF-8 sequence"),
    (b"\xe4\xb8a", "invalid UTF-8 sequence"),
    (b"\xed\xa0\x80", "invalid UTF-8 sequence"),
    (b"\xf4\x90\x80\x80", "invalid UTF-8 sequence"),
    (b"\x01", "control character in string"),
    (b"\\x", "invalid escape"),
    (b"\\u12G4", "invalid \\u escape: four hex digits expected"),
    (b"\\ud800x", "lone high surrogate in \\u escape"),
    (b"\\udc00", "lone low surrogate in \\u escape"),
]


@pytest.mark.parametrize("fault,reason", FAULTS, ids=["ff", "cut", "surrogate-utf8", "too-large", "control", "escape",
                                                       "hex", "lone-high", "lone-low"])
def test_faults_deep_in_long_strings_get_the_parse_error_naming_them(raw_mcpd, write_config, piddir, fault, reason):
    """A fault at offsets around block boundaries (and 70 kB in) of a 100 kB string of escaped
    and multi-byte text: -32700 naming the fault and its byte in the line, id null, and mcpd
    serves the next call."""
    config = write_config({"servers": {"beta": server_entry("beta", piddir)}})
    p = raw_mcpd(config)
    p.initialize(timeout=20)
    # The text as JSON, one character at a time, so that a fault goes between two of them.
    pieces = [json.dumps(ch, ensure_ascii=False)[1:-1].encode() for ch in kind_text("mixed", 100_000, seed=3)]
    body = b"".join(pieces)
    starts = [0, *itertools.accumulate(len(piece) for piece in pieces)]
    head = b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"beta__echo","arguments":{"text":"'
    for wanted in (0, 15, 16, 63, 64, 65, 127, 128, 70_001):
        offset = starts[bisect.bisect_left(starts, wanted)]
        line = head + body[:offset] + fault + body[offset:] + b'"}}}'
        p.send_raw(line)
        raw, msg = p.recv_response(timeout=10)
        assert msg.get("id") is None and msg["error"]["code"] == -32700, raw[:300]
        expected = f"Parse error: {reason} at byte {len(head) + offset}"
        assert msg["error"]["message"] == expected, (offset, msg["error"]["message"])
    text = kind_text("cjk", 1000)
    _, msg, _ = p.request("tools/call", {"name": "beta__echo", "arguments": {"text": text}}, timeout=10)
    assert msg["result"]["content"][0]["text"] == "beta:" + text
