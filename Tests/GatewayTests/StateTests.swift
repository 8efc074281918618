@testable import Gateway
import Reactor
import XCTest

final class StateTests: XCTestCase {
    private func server(_ text: String) throws -> ServerConfig {
        try Config.parse(text, path: "mcpd.yaml", environment: [:]).servers[0]
    }

    func testCatalogKeyFollowsLaunchSettingsOnly() throws {
        let base = try server("servers: {a: {command: x, args: [\"1\", \"2\"], env: {K: v}, cwd: /srv}}")
        let key = CatalogEntry.key(of: base)
        XCTAssertEqual(key.count, 16)
        XCTAssertEqual(key, CatalogEntry.key(of: try server("servers: {a: {command: x, args: [\"1\", \"2\"], env: {K: v}, cwd: /srv, timeout: 5s, description: d, idle_timeout: 0}}")),
                       "settings that do not change the program leave the entry valid")
        for changed in [
            "servers: {a: {command: y, args: [\"1\", \"2\"], env: {K: v}, cwd: /srv}}",
            "servers: {a: {command: x, args: [\"12\"], env: {K: v}, cwd: /srv}}",
            "servers: {a: {command: x, args: [\"1\", \"2\"], env: {K: w}, cwd: /srv}}",
            "servers: {a: {command: x, args: [\"1\", \"2\"], env: {K: v}, cwd: /tmp}}",
            "servers: {a: {command: x, args: [\"1\", \"2\"], env: {K: v}, cwd: /srv, inherit_env: true}}",
            "servers: {a: {command: x, args: [\"1\", \"2\"], env: {K: v}, cwd: /srv, era: handshake}}",
        ] {
            XCTAssertNotEqual(CatalogEntry.key(of: try server(changed)), key, changed)
        }
    }

    func testCatalogEntryRoundTrip() throws {
        var lists: [[JSONObject]] = Array(repeating: [], count: ListKind.allCases.count)
        lists[ListKind.tools.rawValue] = [JSONObject([("name", "echo"), ("description", "é \"quoted\" 😀"), ("inputSchema", ["type": "object"])])]
        lists[ListKind.templates.rawValue] = [JSONObject([("uriTemplate", "docs://{id}"), ("name", "doc")])]
        let entry = CatalogEntry(key: "00112233aabbccdd", savedAt: 1_800_000_000, era: .stateless, protocolVersion: "2026-07-28",
                                 capabilities: ["tools": ["listChanged": true]], serverInfo: ["name": "s", "version": "1"], lists: lists)
        let text = entry.json.jsonText
        let back = try XCTUnwrap(CatalogEntry(json: try JSONParser.parse(text)))
        XCTAssertEqual(back.json.jsonText, text)
        XCTAssertEqual(back.era, .stateless)
        XCTAssertEqual(back.lists[ListKind.tools.rawValue], lists[ListKind.tools.rawValue])
        // Another format, or a missing list, is not an entry.
        XCTAssertNil(CatalogEntry(json: try JSONParser.parse(text.replacing("\"format\":1", with: "\"format\":2"))))
        XCTAssertNil(CatalogEntry(json: try JSONParser.parse("{\"format\":1,\"key\":\"k\",\"savedAt\":1}")))
    }

    func testProcessStatParsesCommandsWithParenthesesAndSpaces() {
        let text = "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10 18446744073709551615"
        let stat = ProcessStat(Array(text.utf8))
        XCTAssertEqual(stat?.state, UInt8(ascii: "S"))
        XCTAssertEqual(stat?.parent, 1)
        XCTAssertEqual(stat?.group, 4242)
        XCTAssertEqual(stat?.session, 4242)
        XCTAssertEqual(stat?.startTime, 987654)
        XCTAssertNil(ProcessStat(Array("4242 (truncated) S 1 2".utf8)))
        // This process, from /proc: its own group and a start time.
        let own = ProcessStat.of(getpid())
        XCTAssertEqual(own?.group, getpgrp())
        XCTAssertGreaterThan(own?.startTime ?? 0, 0)
        XCTAssertNil(ProcessStat.of(-1))
    }

    func testRunRecordRoundTrip() throws {
        let record = RunRecord(pid: 77, startTime: 123_456_789_012, config: "/etc/mcpd.yaml", updatedAt: 5, backends: [
            .init(name: "a", statelessTwin: false, state: "ready", pid: 80, startTime: 123_456_789_100, restarts: 2,
                  lastExit: "exit status 1", lastError: nil, tools: 3),
            .init(name: "a", statelessTwin: true, state: "idle-stopped", pid: nil, startTime: nil, restarts: 0,
                  lastExit: nil, lastError: "why", tools: 0),
        ])
        let back = try XCTUnwrap(RunRecord(json: try JSONParser.parse(record.json.jsonText)))
        XCTAssertEqual(back.json.jsonText, record.json.jsonText)
        XCTAssertEqual(back.backends.map(\.pid), [80, nil])
        XCTAssertEqual(back.backends.map(\.statelessTwin), [false, true])
        XCTAssertFalse(RunRecord(pid: getpid(), startTime: 1, config: "", updatedAt: 0, backends: []).isLive,
                       "a record whose start time is not this pid's is not live, even with its pid")
        XCTAssertTrue(RunRecord(pid: getpid(), startTime: ProcessStat.of(getpid())!.startTime, config: "", updatedAt: 0, backends: []).isLive)
    }

    func testStateDirectoryDefaults() {
        XCTAssertEqual(StateDirectory.resolve(nil, environment: ["XDG_STATE_HOME": "/x", "HOME": "/h"]), "/x/mcpd")
        XCTAssertEqual(StateDirectory.resolve(nil, environment: ["XDG_STATE_HOME": "relative", "HOME": "/h"]), "/h/.local/state/mcpd",
                       "a relative XDG_STATE_HOME is ignored, as the XDG spec says")
        XCTAssertEqual(StateDirectory.resolve("~/s", environment: ["HOME": "/h"]), "/h/s")
        XCTAssertEqual(StateDirectory.resolve("/abs", environment: [:]), "/abs")
        XCTAssertNil(StateDirectory.resolve(nil, environment: [:]))
    }

    func testLifecycleKeys() throws {
        let config = try Config.parse("""
            idle_timeout: 90s
            gateway: {startup_wait: 1s, state_dir: /var/lib/mcpd}
            servers:
              a: {command: x}
              b: {command: y, lazy: false, idle_timeout: 0}
            """, path: "mcpd.yaml", environment: [:])
        XCTAssertEqual(config.gateway.idleTimeoutMs, 90_000)
        XCTAssertEqual(config.gateway.startupWaitMs, 1000)
        XCTAssertEqual(config.gateway.stateDir, "/var/lib/mcpd")
        XCTAssertEqual(config.servers.map(\.lazy), [true, false], "lazy is the default")
        XCTAssertEqual(config.servers.map(\.idleTimeoutMs), [nil, 0])
        XCTAssertTrue(config.warnings.isEmpty, "\(config.warnings)")
        XCTAssertTrue(config.servers[0].hasSameSettings(as: config.servers[0]))
        XCTAssertFalse(config.servers[0].hasSameSettings(as: config.servers[1]))
    }
}

final class PinsTests: XCTestCase {
    func testSHA256KnownAnswers() {
        // FIPS 180-2 examples, and a message that needs a second padding block.
        XCTAssertEqual(sha256Hex(Array("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(sha256Hex([]), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(sha256Hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(sha256Hex([UInt8](repeating: 0x61, count: 1000)), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    func testDigestIgnoresKeyOrderButNotContent() throws {
        let a = try XCTUnwrap(JSONParser.parse(#"{"name":"t","description":"d","inputSchema":{"type":"object","properties":{"x":{"type":"string"}}}}"#).objectValue)
        let b = try XCTUnwrap(JSONParser.parse(#"{"inputSchema":{"properties":{"x":{"type":"string"}},"type":"object"},"description":"d","name":"t"}"#).objectValue)
        let c = try XCTUnwrap(JSONParser.parse(#"{"name":"t","description":"d!","inputSchema":{"type":"object","properties":{"x":{"type":"string"}}}}"#).objectValue)
        XCTAssertEqual(Pins.digest(a), Pins.digest(b))
        XCTAssertNotEqual(Pins.digest(a), Pins.digest(c))
    }

    func testPinsFileRoundTrip() throws {
        var pins = Pins()
        pins.servers["github"] = ["create_issue": String(repeating: "a", count: 64), "b": String(repeating: "b", count: 64)]
        let bytes = pins.json.serialized.withUnsafeReadableBytes { Array($0) }
        let read = try XCTUnwrap(Pins(json: bytes))
        XCTAssertEqual(read.servers, pins.servers)
        XCTAssertNil(Pins(json: Array("not json".utf8)))
    }
}
