import ArgumentParser
import Gateway
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Options every subcommand takes.
struct GlobalOptions: ParsableArguments {
    @Option(name: [.short, .customLong("config")], help: "Configuration file (default: $MCPD_CONFIG, ./mcpd.yaml, $XDG_CONFIG_HOME/mcpd/mcpd.yaml).")
    var config: String?

    @Option(name: .customLong("log-level"), help: "debug, info, warning or error (default: $MCPD_LOG_LEVEL or info).")
    var logLevel: String?
}

@main
struct MCPD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcpd",
        abstract: "An MCP gateway: one endpoint for many MCP servers.",
        version: GatewayVersion.string,
        subcommands: [Stdio.self, List.self, Check.self]
    )
}

struct Stdio: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stdio",
        abstract: "Serve one MCP client on stdin/stdout (add mcpd to a desktop client this way).")

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let setup = try Setup(options)
        try setup.runLoop { gateway throws(UVError) in
            try gateway.serveStdio()
        }
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Start every backend, print the servers and their tools as tables, and stop.")

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let setup = try Setup(options)
        var allReady = true
        try setup.runLoop { gateway throws(UVError) in
            gateway.whenStartupSettled {
                allReady = gateway.backends.allSatisfy { $0.state == .ready }
                print(renderTables(gateway), terminator: "")
                fflush(nil)
                gateway.shutdown(reason: "list printed")
            }
        }
        if !allReady { throw ExitCode(1) }
    }

    private func renderTables(_ gateway: Gateway) -> String {
        var servers: [[String]] = [["SERVER", "STATE", "TOOLS", "COMMAND"]]
        for backend in gateway.backends {
            let tools = gateway.exposedTools.filter { $0.backend == backend.name }.count
            let state = backend.state == .ready ? "ready" : "\(backend.state.rawValue): \(backend.lastError ?? "")"
            servers.append([backend.name, state, String(tools), backend.commandLine])
        }
        for server in gateway.config.servers where !server.enabled {
            servers.append([server.name, "disabled", "0", ([server.command ?? ""] + server.args).joined(separator: " ")])
        }
        var tools: [[String]] = [["TOOL", "DESCRIPTION"]]
        for tool in gateway.exposedTools {
            let firstLine = tool.description.split(separator: "\n", omittingEmptySubsequences: true).first.map(String.init) ?? ""
            tools.append([tool.name, firstLine.count > 90 ? String(firstLine.prefix(87)) + "..." : firstLine])
        }
        return formatTable(servers) + "\n" + formatTable(tools)
    }
}

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Validate the configuration; exit non-zero with the error if it is invalid.")

    @OptionGroup var options: GlobalOptions

    func run() throws {
        let setup = try Setup(options)
        let config = setup.config
        for warning in config.warnings { setup.log.warning(warning) }
        let path = setup.environment.first { $0.name == "PATH" }?.value ?? "/usr/bin:/bin"
        for server in config.servers where server.enabled {
            if let command = server.command, !isExecutableOnPath(command, path: path, cwd: server.cwd) {
                setup.log.warning("server \"\(server.name)\": command \"\(command)\" is not an executable on PATH; it will fail to start")
            }
        }
        let enabled = config.servers.filter(\.enabled)
        print("\(config.path): OK, \(enabled.count) server\(enabled.count == 1 ? "" : "s") enabled: \(enabled.map(\.name).joined(separator: ", "))")
    }
}

/// What every subcommand does first: log level, environment, configuration.
struct Setup {
    let log: Logger
    let environment: [(name: String, value: String)]
    let config: Config

    init(_ options: GlobalOptions) throws {
        environment = ProcessSetup.environment()
        let variables = Dictionary(environment.map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        let levelName = options.logLevel ?? variables["MCPD_LOG_LEVEL"] ?? "info"
        guard let level = LogLevel(name: levelName) else {
            throw ValidationError("--log-level must be debug, info, warning or error (got \"\(levelName)\")")
        }
        log = Logger(level: level)
        let found = Config.discover(explicit: options.config, environment: variables)
        guard let path = found.path else {
            log.error("no configuration file found (tried \(found.tried.joined(separator: ", "))); pass --config FILE or see examples/mcpd.yaml")
            throw ExitCode(1)
        }
        do {
            config = try Config.load(path: path, environment: variables)
        } catch {
            log.error("\(error)")
            throw ExitCode(1)
        }
    }

    /// Runs a gateway on a fresh loop until it stops (throws `ExitCode(1)` if it cannot start).
    func runLoop(_ body: (Gateway) throws(UVError) -> Void) throws {
        ProcessSetup.configure()
        let loop: EventLoop
        do {
            loop = try EventLoop()
        } catch {
            log.error("cannot create the event loop: \(error)")
            throw ExitCode(1)
        }
        let gateway = Gateway(loop: loop, config: config, log: log, environment: environment)
        do {
            try gateway.start()
            try body(gateway)
        } catch {
            log.error("cannot start: \(error)")
            gateway.shutdown(reason: "start-up failed")
            loop.run()
            try? loop.close()
            throw ExitCode(1)
        }
        loop.run()
        do {
            try loop.close()
        } catch {
            log.warning("\(loop.openHandleCount) handles were still open at exit (\(error))")
        }
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

func isExecutableOnPath(_ command: String, path: String, cwd: String?) -> Bool {
    if command.contains("/") {
        let full = command.hasPrefix("/") || cwd == nil ? command : "\(cwd!)/\(command)"
        return access(full, X_OK) == 0
    }
    return path.split(separator: ":").contains { access("\($0)/\(command)", X_OK) == 0 }
}
