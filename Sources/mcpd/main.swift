import Gateway
import Reactor
import CUV
import CYAML
#if canImport(Glibc)
import Glibc
#endif

/// Exit statuses: 0 ok, 1 failure (reported on stderr), 64 a command-line mistake (EX_USAGE).
struct ProgramExit: Error {
    var code: Int32
    static let failure = ProgramExit(code: 1)
}

enum MCPD {
    static func main() {
        let arguments: Arguments
        do {
            arguments = try Arguments(Array(CommandLine.arguments.dropFirst()))
        } catch {
            writeStandardError("Error: \(error)\n\(Arguments.shortUsage(error.subcommand))")
            exit(64)
        }
        do {
            switch arguments.request {
            case .version:
                print(GatewayVersion.string)
            case .help(nil) where CommandLine.arguments.count == 1 && isatty(1) == 0:
                // `mcpd` alone with stdout a pipe: most likely a client configured without
                // `stdio`. Usage on stdout would be read as a protocol error; say it on stderr.
                writeStandardError("mcpd: a subcommand is needed; MCP clients run `mcpd stdio --config FILE`\n\n\(Arguments.usage(nil))")
                exit(64)
            case .help(let subcommand):
                print(Arguments.usage(subcommand), terminator: "")
            case .run(.stdio):
                try Stdio.run(arguments)
            case .run(.list):
                try List.run(arguments)
            case .run(.check):
                try Check.run(arguments)
            case .run(.reload):
                try Reload.run(arguments)
            case .run(.version):
                print(BuildInfo.text, terminator: "")
            }
        } catch let status as ProgramExit {
            exit(status.code)
        } catch {
            writeStandardError("Error: \(error)\n")
            exit(1)
        }
    }
}

/// `mcpd version`: what this binary is and what it was built with.
enum BuildInfo {
    static var text: String {
        #if compiler(>=6.3)
        let swift = "6.3 or later"
        #elseif compiler(>=6.0)
        let swift = "6.x"
        #else
        let swift = "before 6"
        #endif
        return """
            mcpd \(GatewayVersion.string)
            swift compiler: \(swift)
            libuv: \(String(cString: uv_version_string()))
            libyaml: \(String(cString: yaml_get_version_string()))

            """
    }
}

func writeStandardError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

enum Stdio {
    static func run(_ arguments: Arguments) throws {
        let setup = try Setup(arguments)
        try setup.runLoop { gateway throws(UVError) in
            try gateway.serveStdio()
        }
    }
}

enum List {
    static func run(_ arguments: Arguments) throws {
        let setup = try Setup(arguments)
        var allListed = true
        // Servers the catalog lists are not started (unless --refresh); the others are, to
        // fill it, as at any start.
        try setup.runLoop(startEverything: arguments.refresh, waitForAll: true) { gateway throws(UVError) in
            gateway.whenStartupSettled {
                allListed = gateway.backends.allSatisfy { $0.state == .ready || $0.cachedAt != nil }
                let running = gateway.readRunningDaemon()
                print(arguments.json ? renderJSON(gateway, running: running) : renderTables(gateway, running: running), terminator: "")
                fflush(nil)
                gateway.shutdown(reason: "list printed")
            }
        }
        if !allListed { throw ProgramExit.failure }
    }

    private static func renderTables(_ gateway: Gateway, running: Int32?) -> String {
        let now = Int(time(nil))
        var servers: [[String]] = [["SERVER", "STATE", "TOOLS", "PROMPTS", "RESOURCES", "TEMPLATES", "RESTARTS", "LAST EXIT", "CATALOG", "COMMAND"]]
        for report in gateway.reports {
            let state = report.lastError.map { report.state == "ready" ? report.state : "\(report.state): \($0)" } ?? report.state
            let age = report.catalogSavedAt.map { "\(formatAge(now - $0)) old" } ?? "none"
            servers.append([report.name, state] + report.counts.map(String.init) + [String(report.restarts), report.lastExit ?? "-", age, report.command])
        }
        var tools: [[String]] = [["TOOL", "DESCRIPTION"]]
        for tool in gateway.exposedTools {
            let firstLine = tool.description.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
            tools.append([tool.name, firstLine.count > 90 ? String(firstLine.prefix(87)) + "..." : firstLine])
        }
        let source = running.map { "States as mcpd pid \($0) sees them.\n\n" } ?? ""
        return source + formatTable(servers) + "\n" + formatTable(tools)
    }

    private static func renderJSON(_ gateway: Gateway, running: Int32?) -> String {
        var servers: [JSONValue] = []
        for report in gateway.reports {
            var object = JSONObject()
            object["name"] = .string(report.name)
            object["state"] = .string(report.state)
            object["pid"] = report.pid.map { .int(Int($0)) } ?? .null
            object["restarts"] = .int(report.restarts)
            object["lastExit"] = report.lastExit.map(JSONValue.string) ?? .null
            object["lastError"] = report.lastError.map(JSONValue.string) ?? .null
            for (index, kind) in ListKind.allCases.enumerated() { object[kind.resultKey] = .int(report.counts[index]) }
            object["catalogSavedAt"] = report.catalogSavedAt.map(JSONValue.int) ?? .null
            object["command"] = .string(report.command)
            servers.append(.object(object))
        }
        let tools: [JSONValue] = gateway.exposedTools.map { ["name": .string($0.name), "server": .string($0.backend), "description": .string($0.description)] }
        let document: JSONValue = ["runningPid": running.map { .int(Int($0)) } ?? .null, "servers": .array(servers), "tools": .array(tools)]
        return document.jsonText + "\n"
    }

    /// `42 s`, `5 min`, `3 h`, `2 d`.
    private static func formatAge(_ seconds: Int) -> String {
        let seconds = max(0, seconds)
        if seconds < 120 { return "\(seconds) s" }
        if seconds < 7200 { return "\(seconds / 60) min" }
        if seconds < 172_800 { return "\(seconds / 3600) h" }
        return "\(seconds / 86400) d"
    }
}

enum Reload {
    /// Validates the configuration, then signals every running mcpd that serves it.
    static func run(_ arguments: Arguments) throws {
        let setup = try Setup(arguments)
        let signalled = setup.runningDaemons()
        guard !signalled.isEmpty else {
            setup.log.error("no running mcpd uses \(setup.config.path) (looked for its record in the state directory); nothing to reload")
            throw ProgramExit.failure
        }
        for pid in signalled {
            if kill(pid, SIGHUP) == 0 {
                print("sent SIGHUP to mcpd pid \(pid); it logs the outcome")
            } else {
                setup.log.error("cannot signal mcpd pid \(pid): \(String(cString: strerror(errno)))")
                throw ProgramExit.failure
            }
        }
    }
}

enum Check {
    /// Like `nginx -t`: every problem found, each with its line, and a non-zero exit if any is
    /// an error.
    static func run(_ arguments: Arguments) throws {
        let setup = try Setup(arguments)
        let config = setup.config
        for note in config.notes { setup.log.info(note) }
        for warning in config.warnings where !config.unsetVariables.contains(warning) { setup.log.warning(warning) }
        var errors = config.unsetVariables
        let path = setup.environment.first { $0.name == "PATH" }?.value ?? "/usr/bin:/bin"
        for server in config.servers where server.enabled {
            if let problem = server.launchProblem(path: path) {
                errors.append("\(config.path):\(server.commandLine): server \"\(server.name)\": \(problem)")
            }
        }
        let enabled = config.servers.filter(\.enabled)
        // Three pipes per backend process, twice for servers run in both eras, and a margin
        // for clients, the loop and the config.
        let needed = enabled.count * 6 + 64
        let limit = ProcessSetup.openFileLimit
        if needed > limit {
            setup.log.warning("\(enabled.count) servers may need \(needed) open files, above the limit of \(limit) (ulimit -Hn); raise it (LimitNOFILE= in a systemd unit, --ulimit nofile= in a container)")
        }
        if arguments.json {
            let document: JSONValue = [
                "config": .string(config.path), "ok": .bool(errors.isEmpty),
                "errors": .array(errors.map(JSONValue.string)),
                "warnings": .array(config.warnings.filter { !config.unsetVariables.contains($0) }.map(JSONValue.string)),
                "servers": .array(enabled.map { JSONValue.string($0.name) }),
            ]
            print(document.jsonText)
            if !errors.isEmpty { throw ProgramExit.failure }
            return
        }
        guard errors.isEmpty else {
            for error in errors { setup.log.error(error) }
            writeStandardError("\(config.path): \(errors.count) error\(errors.count == 1 ? "" : "s")\n")
            throw ProgramExit.failure
        }
        print("\(config.path): OK, \(enabled.count) server\(enabled.count == 1 ? "" : "s") enabled: \(enabled.map(\.name).joined(separator: ", "))")
    }
}

/// What every subcommand does first: log level, environment, configuration.
struct Setup {
    let log: Logger
    let environment: [(name: String, value: String)]
    let config: Config

    init(_ options: Arguments) throws {
        environment = ProcessSetup.environment()
        let variables = Dictionary(environment.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        let levelName = options.logLevel ?? variables["MCPD_LOG_LEVEL"] ?? "info"
        guard let level = LogLevel(name: levelName) else {
            writeStandardError("Error: --log-level must be debug, info, warning or error (got \"\(levelName)\")\n")
            throw ProgramExit(code: 64)
        }
        log = Logger(level: level)
        let formatName = options.logFormat ?? variables["MCPD_LOG_FORMAT"] ?? "text"
        guard let format = LogFormat(rawValue: formatName) else {
            writeStandardError("Error: --log-format must be text or json (got \"\(formatName)\")\n")
            throw ProgramExit(code: 64)
        }
        log.format = format
        // A daemon's lines carry the time; a command's answer (check, list, reload) does not.
        log.timestamps = options.request == .run(.stdio)
        let found = Config.discover(explicit: options.config, environment: variables)
        guard let path = found.path else {
            log.error("no configuration file found (tried \(found.tried.joined(separator: ", "))); pass --config FILE or see examples/mcpd.yaml")
            throw ProgramExit.failure
        }
        do {
            config = try Config.load(path: path, environment: variables)
            log.secrets = config.secrets
        } catch {
            log.error("\(error)")
            throw ProgramExit.failure
        }
    }

    func makeLoop() throws -> EventLoop {
        do {
            return try EventLoop()
        } catch {
            log.error("cannot create the event loop: \(error)")
            throw ProgramExit.failure
        }
    }

    /// The pids of the running mcpd processes that serve this configuration.
    func runningDaemons() -> [Int32] {
        let variables = Dictionary(environment.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        return Gateway.runningDaemons(config: config, environment: variables)
    }

    /// How deep a chain of mcpd processes, each a backend of the one before, may go: a config
    /// that lists mcpd itself would otherwise nest without limit.
    static let maxDepth = 4

    /// Runs a gateway on a fresh loop until it stops (throws `ProgramExit.failure` if it cannot start).
    func runLoop(startEverything: Bool = false, waitForAll: Bool = false, _ body: (Gateway) throws(UVError) -> Void) throws {
        if !ProcessSetup.configure() {
            log.warning("mcpd could not become a subreaper (prctl PR_SET_CHILD_SUBREAPER failed): processes that leave a backend's process group may outlive mcpd")
        }
        let depth = environment.last { $0.name == Gateway.depthVariable }.flatMap { Int($0.value) } ?? 0
        if depth >= Setup.maxDepth {
            log.error("mcpd is running as a backend of \(depth) mcpd processes in a chain (\(Gateway.depthVariable)=\(depth)): does \(config.path) list mcpd itself? Refusing to start another level")
            throw ProgramExit.failure
        }
        let loop = try makeLoop()
        let gateway = Gateway(loop: loop, config: config, log: log, environment: environment)
        gateway.startEverything = startEverything
        gateway.waitForAll = waitForAll
        do {
            try gateway.start()
            try body(gateway)
        } catch {
            log.error("cannot start: \(error)")
            gateway.shutdown(reason: "start-up failed")
            loop.run()
            try? loop.close()
            throw ProgramExit.failure
        }
        loop.run()
        do {
            try loop.close()
        } catch {
            log.warning("\(loop.openHandleCount) handles were still open at exit (\(error))")
        }
        // Stopped by a second signal, without the drain: the shell's convention.
        if let signal = gateway.abortedBySignal { throw ProgramExit(code: 128 + signal) }
    }
}

/// Aligns rows into columns separated by two spaces.
func formatTable(_ rows: [[String]]) -> String {
    guard let columns = rows.map(\.count).max() else { return "" }
    var widths = [Int](repeating: 0, count: columns)
    for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
    var out = ""
    for row in rows {
        var line = ""
        for (index, cell) in row.enumerated() {
            line += cell
            if index < row.count - 1 { line += String(repeating: " ", count: widths[index] - cell.count + 2) }
        }
        out += line + "\n"
    }
    return out
}

MCPD.main()
