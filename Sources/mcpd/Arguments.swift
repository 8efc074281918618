import Gateway

/// The command line: `mcpd <subcommand> [options]`.
///
/// Hand-parsed rather than with swift-argument-parser: its reflection-driven parsing and the
/// FoundationEssentials it links cost 1.5 ms of a 3 ms start and 4.5 MB of a 10.5 MB resident
/// size (measured in Benchmarks/README.md), and mcpd is started once per desktop-client session.
/// The surface is three subcommands and two options, so the parser is small.
struct Arguments {
    enum Subcommand: String, CaseIterable {
        case stdio, list, check, reload, version

        var abstract: String {
            switch self {
            case .stdio: return "Serve one MCP client on stdin/stdout (add mcpd to a desktop client this way)."
            case .list: return "Print the servers and their tools from the catalog, with the states a running mcpd sees."
            case .check: return "Validate the configuration; exit non-zero with the error if it is invalid."
            case .reload: return "Make the running mcpd of this configuration re-read it (as SIGHUP does)."
            case .version: return "Print the version, with the Swift, libuv and libyaml it was built with."
            }
        }
    }

    /// What the command line asks for.
    enum Request: Equatable {
        case run(Subcommand)
        case help(Subcommand?)
        case version
    }

    /// A command-line mistake: printed with the usage, exit status 64 (EX_USAGE).
    struct UsageError: Error, CustomStringConvertible {
        var description: String
        var subcommand: Subcommand?
    }

    var request: Request = .help(nil)
    /// `-c` / `--config`.
    var config: String?
    /// `--log-level`.
    var logLevel: String?
    /// `--log-format`.
    var logFormat: String?
    /// `list --refresh`: start every backend and update the catalog.
    var refresh = false
    /// `list --json`, `check --json`.
    var json = false

    static let options = """
          -c, --config <file>     Configuration file (default: $MCPD_CONFIG, ./mcpd.yaml,
                                  $XDG_CONFIG_HOME/mcpd/mcpd.yaml).
          --log-level <level>     debug, info, warning or error (default: $MCPD_LOG_LEVEL or info).
          --log-format <format>   text or json, one object a line (default: $MCPD_LOG_FORMAT or text).
          -h, --help              Show help information.
        """

    /// Parses the arguments after the program name: an optional subcommand (or `help
    /// [subcommand]`), then options.
    init(_ arguments: [String]) throws(UsageError) {
        var rest = arguments[...]
        var subcommand: Subcommand?
        if let first = rest.first, !first.hasPrefix("-") {
            rest.removeFirst()
            if first == "help" {
                request = .help(rest.first.flatMap(Subcommand.init(rawValue:)))
                return
            }
            guard let named = Subcommand(rawValue: first) else {
                let near = closestName(to: first, among: Subcommand.allCases.map(\.rawValue))
                throw UsageError(description: "unknown subcommand '\(first)'\(near.map { "; did you mean '\($0)'?" } ?? "")")
            }
            subcommand = named
        }
        while let argument = rest.popFirst() {
            // `--name=value` and `--name value`.
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            func value() throws(UsageError) -> String {
                if let inlineValue { return inlineValue }
                guard let next = rest.popFirst() else {
                    throw UsageError(description: "missing value for '\(name)'", subcommand: subcommand)
                }
                return next
            }
            switch name {
            case "-h", "--help":
                request = .help(subcommand)
                return
            case "--version":
                request = .version
                return
            case "--json" where subcommand == .check && inlineValue == nil:
                json = true
            case "--refresh" where subcommand == .list && inlineValue == nil:
                refresh = true
            case "--json" where subcommand == .list && inlineValue == nil:
                json = true
            case "-c", "--config", "--log-level", "--log-format":
                guard subcommand != nil else { throw UsageError(description: "'\(name)' goes after a subcommand, e.g. mcpd stdio \(name) ...") }
                switch name {
                case "--log-level": logLevel = try value()
                case "--log-format": logFormat = try value()
                default: config = try value()
                }
            default:
                throw UsageError(description: argument.hasPrefix("-") ? "unknown option '\(argument)'" : "unexpected argument '\(argument)'",
                                 subcommand: subcommand)
            }
        }
        request = subcommand.map(Request.run) ?? .help(nil)
    }

    /// The lines after a usage error.
    static func shortUsage(_ subcommand: Subcommand?) -> String {
        guard let subcommand else { return "Usage: mcpd <subcommand> [options]; see 'mcpd --help'.\n" }
        return "Usage: mcpd \(subcommand.rawValue) [--config <file>] [--log-level <level>]; see 'mcpd \(subcommand.rawValue) --help'.\n"
    }

    static func usage(_ subcommand: Subcommand?) -> String {
        guard let subcommand else {
            let width = Subcommand.allCases.map(\.rawValue.count).max() ?? 0
            let list = Subcommand.allCases.map { "  \($0.rawValue)\(String(repeating: " ", count: width - $0.rawValue.count + 4))\($0.abstract)" }
            return """
                OVERVIEW: An MCP gateway: one endpoint for many MCP servers.

                USAGE: mcpd <subcommand> [options]

                SUBCOMMANDS:
                \(list.joined(separator: "\n"))

                OPTIONS:
                \(options)
                  --version               Show the version.

                See 'mcpd help <subcommand>' for the options of one subcommand.

                """
        }
        let listOptions = subcommand == .list ? """

                  --refresh               Start every backend, list again, and update the catalog.
                  --json                  One JSON document, for scripts.
            """ : subcommand == .check ? """

                  --json                  The findings as one JSON document, for scripts.
            """ : ""
        return """
            OVERVIEW: \(subcommand.abstract)

            USAGE: mcpd \(subcommand.rawValue) [--config <file>] [--log-level <level>]\(subcommand == .list ? " [--refresh] [--json]" : subcommand == .check ? " [--json]" : "")

            OPTIONS:
            \(options)\(listOptions)

            """
    }
}
