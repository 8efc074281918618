@testable import Gateway
import XCTest

/// Other clients' files (JSON with comments, VS Code's variables and envFile, Claude Code's
/// projects, Zed's context_servers), `mcpd import`'s unexpanded mode, and every error of a file
/// reported at once.
final class ClientFilesTests: XCTestCase {
    let environment = ["HOME": "/home/u", "TOKEN": "s3cret-token"]

    private func load(_ text: String, path: String = "/w/.vscode/mcp.json", envFiles: [String: EnvFileContent] = [:],
                      expand: Bool = true) throws -> Config {
        try Config.parse(text, path: path, environment: environment, envFiles: envFiles, expandVariables: expand)
    }

    func testCommentsAndTrailingCommasKeepLinesAndColumns() throws {
        let text = """
            {
              // a comment with "quotes" and a brace }
              "servers": { /* inline */ "a": {"command": "x", "args": ["//not a comment", "/*nor this*/",],},
              },
            }
            """
        let stripped = stripJSONComments(text)
        XCTAssertEqual(stripped.utf8.count, text.utf8.count)
        XCTAssertEqual(stripped.split(separator: "\n", omittingEmptySubsequences: false).count, 5)
        let config = try load(text)
        XCTAssertEqual(config.servers.first?.args, ["//not a comment", "/*nor this*/"])
        // An error after a comment is still reported at its own line and column.
        XCTAssertThrowsError(try load("{\n  /* x */ \"servers\": {\"a\": {\"command\": \"x\", \"timeout\": \"5q\"}}\n}")) { error in
            XCTAssertTrue("\(error)".hasPrefix("/w/.vscode/mcp.json:2:"), "\(error)")
        }
        // A string with an escaped quote does not end early.
        XCTAssertEqual(stripJSONComments(#"{"a": "x\" // y"}"#), #"{"a": "x\" // y"}"#)
        XCTAssertFalse(looksLikeJSON("servers: {}"))
        XCTAssertTrue(looksLikeJSON("\u{FEFF}\n  {}"))
        // Zed's settings.json starts with comment lines.
        XCTAssertTrue(looksLikeJSON("// Zed settings\n//\n/* more */\n{\"theme\": \"x\"}"))
        XCTAssertFalse(looksLikeJSON("# yaml\nservers: {}"))
    }

    func testVSCodeVariables() throws {
        let config = try load("""
            {"inputs": [{"id": "key", "type": "promptString"}],
             "servers": {"a": {"command": "x", "args": ["${workspaceFolder}/src", "${userHome}", "${env:TOKEN}", "${workspaceFolderBasename}"],
                               "env": {"KEY": "${input:key}"}}}}
            """)
        XCTAssertEqual(config.servers[0].args, ["/w/src", "/home/u", "s3cret-token", "w"])
        XCTAssertEqual(config.servers[0].env.first?.value, "")
        XCTAssertEqual(config.servers[0].unsetVariables, ["${input:key}"])
        XCTAssertTrue(config.unsetVariables.isEmpty, "an input is a warning, not an error")
        XCTAssertTrue(config.warnings.contains { $0.contains("${input:key} is a value VS Code prompts for") })
        XCTAssertTrue(config.secrets.contains("s3cret-token"))
    }

    func testImportKeepsVariablesButWritesFoldersOut() throws {
        let config = try load("""
            {"servers": {"a": {"command": "./bin/x", "args": ["${workspaceFolder}", "${env:TOKEN}", "$${literal}", "${TOKEN:-d}"],
                               "envFile": "${workspaceFolder}/.env"}}}
            """, expand: false)
        let server = config.servers[0]
        XCTAssertEqual(server.command, "/w/.vscode/bin/x")
        XCTAssertEqual(server.args, ["/w", "${TOKEN}", "$${literal}", "${TOKEN:-d}"])
        XCTAssertEqual(server.envFile, "/w/.env")
        XCTAssertTrue(config.envFilesToRead.isEmpty, "import does not read envFiles")
        XCTAssertTrue(config.secrets.isEmpty)
    }

    func testEnvFileIsAskedForThenMerged() throws {
        let text = #"{"servers": {"a": {"command": "x", "env": {"B": "explicit"}, "envFile": ".env"}}}"#
        let first = try load(text, path: "/w/mcp.json")
        XCTAssertEqual(first.envFilesToRead, ["/w/.env"])
        let file = Array("# comment\nexport A=one\nB=from-file\nC=\"two \\\"q\\\"\\nx\"\nD='$lit'\nE=plain # note\nnot a line\n".utf8)
        let second = try load(text, path: "/w/mcp.json", envFiles: ["/w/.env": .bytes(file)])
        let env = Dictionary(uniqueKeysWithValues: second.servers[0].env.map { ($0.key, $0.value) })
        XCTAssertEqual(env, ["A": "one", "B": "explicit", "C": "two \"q\"\nx", "D": "$lit", "E": "plain"])
        XCTAssertTrue(second.warnings.contains { $0 == "/w/.env:7: not NAME=value, skipped: not a line" }, "\(second.warnings)")
        XCTAssertTrue(second.secrets.contains("plain"))
        XCTAssertThrowsError(try load(text, path: "/w/mcp.json", envFiles: ["/w/.env": .failed("No such file or directory")])) { error in
            XCTAssertTrue("\(error)".contains("envFile: cannot read /w/.env: No such file or directory"), "\(error)")
        }
    }

    func testClaudeCodeProjects() throws {
        let config = try load("""
            {"numStartups": 3,
             "projects": {"/p1": {"mcpServers": {"p": {"command": "x"}, "u": {"command": "u"}}},
                          "/p2": {"mcpServers": {"p": {"command": "y"}}, "allowedTools": []},
                          "/p3": {"allowedTools": []}},
             "mcpServers": {"u": {"command": "u"}}}
            """, path: "/home/u/.claude.json")
        // The user's servers first, then each project's; a same-named project server is left
        // out, with a warning only when it differs.
        XCTAssertEqual(config.servers.map(\.name), ["u", "p"])
        XCTAssertEqual(config.servers[1].command, "x")
        XCTAssertEqual(config.warnings.filter { $0.contains("is left out") }.count, 1)
        XCTAssertTrue(config.warnings.contains { $0.contains("server \"p\" of project /p2 is left out") })
        XCTAssertEqual(config.serversKey, "mcpServers")
        XCTAssertTrue(config.notes.contains { $0.contains("numStartups") })
    }

    func testZedContextServers() throws {
        let config = try load("""
            {"theme": "One",
             "context_servers": {
               "new": {"source": "custom", "command": "x", "args": ["-a"], "env": {"K": "v"}},
               "old": {"command": {"path": "y", "args": ["-b"], "env": {"L": "w"}}, "settings": {}},
               "ext": {"source": "extension", "settings": {"k": 1}}}}
            """, path: "/home/u/.config/zed/settings.json")
        XCTAssertEqual(config.servers.map(\.name), ["new", "old"])
        XCTAssertEqual(config.servers[1].command, "y")
        XCTAssertEqual(config.servers[1].args, ["-b"])
        XCTAssertEqual(config.servers[1].env.first?.key, "L")
        XCTAssertEqual(config.warnings.count, 1, "\(config.warnings)")
        XCTAssertTrue(config.warnings[0].contains("\"ext\" is a Zed extension"))
        XCTAssertEqual(config.serversKey, "context_servers")
    }

    func testDisabledToolsAndVSCodeSettings() throws {
        let config = try load("""
            {"mcp": {"servers": {"a": {"command": "x", "disabledTools": ["drop_*"], "tools": {"deny": ["rm"]}}}},
             "editor.fontSize": 12}
            """, path: "/home/u/.config/Code/User/settings.json")
        XCTAssertEqual(config.servers[0].tools.deny, ["drop_*", "rm"])
        XCTAssertFalse(config.servers[0].tools.admits("drop_table"))
        XCTAssertTrue(config.servers[0].tools.admits("select"))
    }

    func testEveryErrorIsReported() {
        let text = """
            gateway:
              separatr: "__"
              page_size: 0
            servers:
              a:
                comand: x
                timeout: 5q
              b:
                command: y
                lazzy: true
            sevrers: {}
            """
        XCTAssertThrowsError(try Config.parse(text, path: "m.yaml", environment: [:])) { error in
            guard let error = error as? ConfigError else { return XCTFail("\(error)") }
            let lines = error.all.map { "\($0.line):\($0.column)" }
            XCTAssertEqual(lines, ["2:3", "3:14", "6:5", "7:14", "5:3", "10:5", "11:1"], "\(error)")
            XCTAssertTrue(error.all[0].message.contains("did you mean \"separator\""))
            XCTAssertTrue(error.all[6].message.contains("did you mean \"servers\""))
            XCTAssertEqual(error.description.split(separator: "\n").count, 7)
        }
    }
}
