import Gateway
import Reactor
import CUV
import CYAML
import CBuildInfo
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
            case .run(.serve):
                try Serve.run(arguments)
            case .run(.list):
                try List.run(arguments)
            case .run(.check):
                try Check.run(arguments)
            case .run(.reload):
                try Reload.run(arguments)
            case .run(.approve):
                try Approve.run(arguments)
            case .run(.version):
                print(BuildInfo.text, terminator: "")
            case .run(.call):
                try Call.run(arguments)
            case .run(.import):
                try Import.run(arguments)
            case .run(.completions):
                guard let script = CommandLineDocs.completions(shell: arguments.positionals[0]) else {
                    writeStandardError("Error: completions are for bash, zsh or fish (got \"\(arguments.positionals[0])\")\n\(Arguments.shortUsage(.completions))")
                    exit(64)
                }
                print(script, terminator: "")
            case .run(.man):
                print(CommandLineDocs.manPage(), terminator: "")
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
            commit: \(String(cString: mcpd_build_commit())) (\(String(cString: mcpd_build_date())))
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
        log.timestamps = options.request == .run(.stdio) || options.request == .run(.serve)
        let found = Config.discover(explicit: options.config, environment: variables)
        guard let path = found.path else {
            log.error("no configuration file found (tried \(found.tried.joined(separator: ", "))); pass --config FILE or see examples/mcpd.yaml")
            throw ProgramExit.failure
        }
        do {
            config = try Config.load(path: path, environment: variables)
            log.secrets = config.secrets
        } catch {
            if options.json && options.request == .run(.check) {
                // `check --json`: the errors in the document, for scripts.
                let document: JSONValue = ["config": .string(path), "ok": false, "errors": .array(error.all.map { .string($0.description) }),
                                           "warnings": [], "servers": []]
                print(document.jsonText)
                throw ProgramExit.failure
            }
            for one in error.all { log.error(one.description) }
            if options.request == .run(.check) {
                writeStandardError("\(path): \(error.all.count) error\(error.all.count == 1 ? "" : "s")\n")
            }
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
