import Gateway
import XCTest

final class ConfigTests: XCTestCase {
    let environment = ["HOME": "/home/u", "TOKEN": "s3cret", "EMPTY": ""]

    private func load(_ text: String) throws -> Config {
        try Config.parse(text, path: "mcpd.yaml", environment: environment)
    }

    private func assertError(_ text: String, line: Int, column: Int? = nil, contains: String,
                             file: StaticString = #filePath, lineNumber: UInt = #line)
    {
        XCTAssertThrowsError(try load(text), file: file, line: lineNumber) { error in
            guard let error = error as? ConfigError else { return XCTFail("not a ConfigError: \(error)", file: file, line: lineNumber) }
            XCTAssertEqual(error.file, "mcpd.yaml", file: file, line: lineNumber)
            XCTAssertEqual(error.line, line, "\(error)", file: file, line: lineNumber)
            if let column { XCTAssertEqual(error.column, column, "\(error)", file: file, line: lineNumber) }
            XCTAssertTrue(error.description.contains(contains), "\(error) lacks \(contains)", file: file, line: lineNumber)
            XCTAssertTrue(error.description.hasPrefix("mcpd.yaml:\(line):"), "\(error)", file: file, line: lineNumber)
        }
    }

    func testNameBudgetPageSizeAndEra() throws {
        let config = try load("""
            gateway: {name_budget: 53, page_size: 3}
            servers:
              a: {command: x, era: handshake}
              b: {command: y}
            """)
        XCTAssertEqual(config.gateway.nameBudget, 53)
        XCTAssertEqual(config.gateway.pageSize, 3)
        XCTAssertEqual(config.servers.map(\.era), ["handshake", "auto"])
        assertError("gateway: {name_budget: 10}\nservers: {a: {command: x}}", line: 1, contains: "name_budget must be between 24 and 64")
        assertError("gateway: {name_budget: lots}\nservers: {a: {command: x}}", line: 1, contains: "must be a whole number")
        assertError("gateway: {page_size: 0}\nservers: {a: {command: x}}", line: 1, contains: "page_size must be between 1 and 10000")
        assertError("servers:\n  a: {command: x, era: stateless}", line: 2, contains: "era must be auto or handshake")
        assertError("gateway: {max_backend_queue: 1KiB}\nservers: {a: {command: x}}", line: 1, contains: "max_backend_queue \"1KiB\" must be a size between 64KiB and 1GiB")
        XCTAssertEqual(try load("servers: {a: {command: x}}").gateway.maxBackendQueue, 32 << 20)
    }

    func testServersForm() throws {
        let config = try load("""
            gateway:
              separator: "-"
              request_timeout: 1.5s
              max_message_size: 1MiB
              max_backend_queue: 32MiB
            servers:
              github:
                command: npx
                args: ["-y", "@modelcontextprotocol/server-github"]
                env: {GITHUB_TOKEN: "${TOKEN}", LEVEL: "${LEVEL:-debug}", KEEP: "$$HOME"}
                cwd: ${HOME}/src
                enabled: true
                description: GitHub
                timeout: 30s
              off:
                command: x
                enabled: false
            """)
        XCTAssertEqual(config.gateway.separator, "-")
        XCTAssertEqual(config.gateway.requestTimeoutMs, 1500)
        XCTAssertEqual(config.gateway.maxMessageSize, 1 << 20)
        XCTAssertEqual(config.gateway.maxBackendQueue, 32 << 20)
        XCTAssertEqual(config.servers.map(\.name), ["github", "off"])
        let github = config.servers[0]
        XCTAssertEqual(github.command, "npx")
        XCTAssertEqual(github.args, ["-y", "@modelcontextprotocol/server-github"])
        XCTAssertEqual(github.env.map(\.key), ["GITHUB_TOKEN", "LEVEL", "KEEP"])
        XCTAssertEqual(github.env.map(\.value), ["s3cret", "debug", "$HOME"])
        XCTAssertEqual(github.cwd, "/home/u/src")
        XCTAssertEqual(github.timeoutMs, 30_000)
        XCTAssertEqual(github.description, "GitHub")
        XCTAssertFalse(config.servers[1].enabled)
        XCTAssertTrue(config.warnings.isEmpty, "\(config.warnings)")
    }

    func testBackendsFormSplitsOneStringCommand() throws {
        let config = try load("""
            backends:
              time:
                command: "uvx 'mcp server' --tz \\"Europe/Paris\\" a\\\\ b"
            """)
        XCTAssertEqual(config.servers[0].command, "uvx")
        XCTAssertEqual(config.servers[0].args, ["mcp server", "--tz", "Europe/Paris", "a b"])
    }

    func testMCPServersJSONForm() throws {
        let config = try load("""
            {"mcpServers": {"time": {"command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"}},
                            "old": {"command": "x", "disabled": true}}}
            """)
        XCTAssertEqual(config.servers.map(\.name), ["time", "old"])
        XCTAssertEqual(config.servers[0].args, ["mcp-server-time"])
        XCTAssertEqual(config.servers[0].env.first?.value, "UTC")
        XCTAssertFalse(config.servers[1].enabled)
    }

    func testUnsetVariableWarnsAndDefaultsApply() throws {
        let config = try load("""
            servers:
              a:
                command: "${MISSING}run"
                args: ["${EMPTY:-fallback}", "${MISSING:-}", "${MISSING:-${TOKEN}}", "${MISSING:-{x}}"]
            """)
        XCTAssertEqual(config.servers[0].command, "run")
        XCTAssertEqual(config.servers[0].args, ["fallback", "", "s3cret", "{x}"])
        XCTAssertEqual(config.warnings.count, 1)
        XCTAssertTrue(config.warnings[0].contains("${MISSING} is not set"), config.warnings[0])
        XCTAssertTrue(config.warnings[0].hasPrefix("mcpd.yaml:3:"), config.warnings[0])
    }

    func testURLServerIsSkippedWithAWarning() throws {
        let config = try load("servers:\n  remote:\n    url: https://example.com/mcp\n  local:\n    command: x\n")
        XCTAssertEqual(config.servers.map(\.name), ["local"])
        XCTAssertTrue(config.warnings.contains { $0.contains("remote") })
    }

    func testErrorsNameLineAndColumn() {
        assertError("servers:\n  a:\n    comand: x\n", line: 3, column: 5, contains: "unknown key \"comand\"")
        assertError("servers:\n  a:\n    args: [x]\n", line: 2, contains: "has no \"command\"")
        assertError("servers:\n  a:\n    command: [x]\n", line: 3, contains: "must be a string")
        assertError("servers:\n  a:\n    command: x\n    timeout: soon\n", line: 4, column: 14, contains: "not a duration")
        assertError("servers:\n  a:\n    command: x\n    enabled: maybe\n", line: 4, contains: "true or false")
        assertError("servers:\n  a b:\n    command: x\n", line: 2, contains: "server name")
        assertError("servers:\n  a__b:\n    command: x\n", line: 2, contains: "must not contain")
        assertError("servers:\n  a_:\n    command: x\n", line: 2, contains: "must not contain")
        assertError("servers:\n  a:\n    command: x\n  a:\n    command: y\n", line: 4, contains: "duplicate key")
        assertError("servers:\n  a: {command: x\n", line: 3, contains: "flow mapping")
        assertError("srevers:\n  a:\n    command: x\n", line: 1, column: 1, contains: "unknown top-level key")
        assertError("gateway:\n  mode: turbo\nservers: {}\n", line: 2, contains: "direct, meta or hybrid")
        assertError("servers:\n  a:\n    command: \"${BAD NAME}\"\n", line: 3, contains: "invalid variable reference")
        assertError("- just\n- a list\n", line: 1, contains: "top level must be a mapping")
        assertError("servers:\n  a:\n    command: x\n    timeout: 1e20\n", line: 4, contains: "at most 30 days")
        // The separator is read before names are checked, wherever the gateway section sits.
        assertError("servers:\n  a-b:\n    command: x\ngateway:\n  separator: \"-\"\n", line: 2, contains: "must not contain")
    }

    func testEmptyFileIsAnError() {
        XCTAssertThrowsError(try load("")) { error in
            XCTAssertTrue("\(error)".contains("empty"), "\(error)")
        }
    }

    func testDurationsAndSizes() {
        XCTAssertEqual(parseDuration("250ms"), 250)
        XCTAssertEqual(parseDuration("2"), 2000)
        XCTAssertEqual(parseDuration("1.5m"), 90_000)
        XCTAssertEqual(parseDuration("1h"), 3_600_000)
        XCTAssertNil(parseDuration("-1s"))
        XCTAssertNil(parseDuration("fast"))
        XCTAssertEqual(parseSize("16MiB"), 16 << 20)
        XCTAssertEqual(parseSize("64 KiB"), 64 << 10)
        XCTAssertEqual(parseSize("100"), 100)
        XCTAssertNil(parseSize("lots"))
    }

    func testSplitCommandLine() {
        XCTAssertEqual(splitCommandLine("a  b\tc"), ["a", "b", "c"])
        XCTAssertEqual(splitCommandLine("'a b' \"c\\\"d\" e\\ f ''"), ["a b", "c\"d", "e f", ""])
        XCTAssertNil(splitCommandLine("'open"))
    }
}
