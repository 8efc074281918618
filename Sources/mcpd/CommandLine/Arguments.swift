import Gateway

/// The command line: `mcpd <subcommand> [arguments] [options]`.
///
/// Hand-parsed rather than with swift-argument-parser: its reflection-driven parsing and the
/// FoundationEssentials it links cost 1.5 ms of a 3 ms start and 4.5 MB of a 10.5 MB resident
/// size (measured in Benchmarks/README.md), and mcpd is started once per desktop-client session.
/// One table (`Arguments.subcommands`, `Arguments.options`) drives the parser, the help, the
/// shell completions and the man page (`CommandLineDocs.swift`), so they cannot disagree.
struct Arguments {
    enum Subcommand: String, CaseIterable {
        case stdio, serve, list, check, call, reload, approve, `import`, version, completions, man
    }

    /// What a subcommand is, for the help, the completions and the man page.
    struct SubcommandSpec {
        var subcommand: Subcommand
        var abstract: String
        /// Words after the subcommand: `<name>` required, `[name]` optional.
        var positionals: [Positional] = []
        /// More for the man page.
        var discussion = ""
    }

    struct Positional {
        var name: String
        var required: Bool
        var help: String
        /// What a shell offers for it.
        var completion: Completion = .none
    }

    enum Completion: Equatable {
        case none, file, values([String]), subcommand
    }

    enum OptionKey {
        case config, logLevel, logFormat, listen, host, port, refresh, json, from, output, help
    }

    /// One option: its spellings, the value it takes (nil: a flag), and where it applies.
    struct OptionSpec {
        var key: OptionKey
        var names: [String]
        var value: String?
        var help: String
        var subcommands: [Subcommand]
        var completion: Completion = .none
    }

    static let importSources = ["claude-desktop", "claude-code", "cursor", "vscode", "windsurf", "zed", "cline"]

    static let subcommands: [SubcommandSpec] = [
        SubcommandSpec(subcommand: .stdio, abstract: "Serve one MCP client on stdin/stdout (add mcpd to a desktop client this way).",
                       discussion: "The client's messages come on stdin and mcpd's answers go to stdout, one JSON-RPC message a line; logs go to stderr. mcpd stops when stdin closes, or on SIGTERM or SIGINT, and re-reads its configuration on SIGHUP."),
        SubcommandSpec(subcommand: .serve, abstract: "Serve many MCP clients over HTTP: Streamable HTTP at /mcp, the 2024-11-05 transport at /sse.",
                       discussion: "Listens on --listen, else the config's http.listen, else 127.0.0.1:39400, and prints the URL and the entry a client's config needs. /mcp is MCP's Streamable HTTP transport in both eras (sessions up to 2025-11-25; stateless requests of 2026-07-28); /mcp/<server> serves one server alone under its own names; /sse and /messages serve old clients; sessions share the backend processes, except for servers with isolation: session, whose processes are per session. With auth.tokens set, requests need a bearer token. GET /health describes mcpd and each backend (200 while mcpd serves); GET /ready is 200 once start-up has settled and 503 while starting or draining. SIGTERM stops accepting, ends the sessions and stops every backend."),
        SubcommandSpec(subcommand: .list, abstract: "Print the servers and their tools from the catalog, with the states a running mcpd sees.",
                       discussion: "Servers already in the catalog are not started (unless --refresh); the others are, to list them. Exits 1 if a server could not be listed."),
        SubcommandSpec(subcommand: .check, abstract: "Validate the configuration and each server's command; exit 1 with every error found.",
                       discussion: "Like nginx -t: every error with its file and line (a missing command, one without the execute bit, one with spaces, a ~ that was not expanded, a missing cwd, an unset ${VAR} without a default), then the warnings. Starts nothing."),
        SubcommandSpec(subcommand: .call, abstract: "Call one tool by its exposed name, print the result, and exit with its outcome.",
                       positionals: [Positional(name: "name", required: true, help: "The tool's exposed name, as tools/list and mcpd list show it."),
                                     Positional(name: "arguments", required: false, help: "The arguments as one JSON object (default {}).")],
                       discussion: "Starts only the server the tool belongs to. Prints the text of the result's content (other items as JSON; --json prints the whole result) and exits 0, or 1 when the result is an error (isError) or the call fails."),
        SubcommandSpec(subcommand: .reload, abstract: "Make the running mcpd of this configuration re-read it (as SIGHUP does).",
                       discussion: "Servers whose settings did not change keep their process and their requests in flight."),
        SubcommandSpec(subcommand: .approve, abstract: "Pin the current definition of a server's tool (or of every changed one), and apply it in the running mcpd.",
                       positionals: [Positional(name: "server", required: true, help: "The server, as the config names it."),
                                     Positional(name: "tool", required: false, help: "The tool's own name (default: every tool whose definition changed).")],
                       discussion: "mcpd pins each tool definition (SHA-256) when it first sees it; a definition that changes later is reported, and withheld under pin: strict, until approved. The definitions approved are the ones the server listed last (its catalog entry)."),
        SubcommandSpec(subcommand: .import, abstract: "Convert a client's MCP config (Claude Desktop, Claude Code, Cursor, VS Code, ...) into an mcpd config.",
                       positionals: [Positional(name: "file", required: false, help: "The client's config file.", completion: .file)],
                       discussion: "Prints the mcpd config (or writes it with --output) and, on stderr, the one-entry client config that replaces the client's servers. Values stay as written: ${VAR} is not expanded. With neither a file nor --from, lists the client config files found on this machine."),
        SubcommandSpec(subcommand: .version, abstract: "Print the version, the commit and date it was built from, and the Swift, libuv and libyaml it was built with."),
        SubcommandSpec(subcommand: .completions, abstract: "Print the shell completion script for bash, zsh or fish.",
                       positionals: [Positional(name: "shell", required: true, help: "bash, zsh or fish.", completion: .values(["bash", "zsh", "fish"]))],
                       discussion: "bash: mcpd completions bash > ~/.local/share/bash-completion/completions/mcpd; zsh: into a folder of $fpath as _mcpd; fish: > ~/.config/fish/completions/mcpd.fish. make install puts all three in place."),
        SubcommandSpec(subcommand: .man, abstract: "Print the manual page (roff).", discussion: "man <(mcpd man) reads it; make install installs it as mcpd(1)."),
    ]

    static let serving: [Subcommand] = [.stdio, .serve, .list, .check, .call, .reload, .approve]
    static let logging: [Subcommand] = [.stdio, .serve, .list, .check, .call, .reload, .approve, .import]

    static let options: [OptionSpec] = [
        OptionSpec(key: .config, names: ["-c", "--config"], value: "file",
                   help: "Configuration file (default: $MCPD_CONFIG, ./mcpd.yaml, ./gateway.yaml, ./mcp-gateway.yaml, $XDG_CONFIG_HOME/mcpd/mcpd.yaml).",
                   subcommands: serving, completion: .file),
        OptionSpec(key: .logLevel, names: ["--log-level"], value: "level",
                   help: "debug, info, warning or error (default: $MCPD_LOG_LEVEL or info).",
                   subcommands: logging, completion: .values(["debug", "info", "warning", "error"])),
        OptionSpec(key: .logFormat, names: ["--log-format"], value: "format",
                   help: "text, or json: one object a line (default: $MCPD_LOG_FORMAT or text).",
                   subcommands: logging, completion: .values(["text", "json"])),
        OptionSpec(key: .listen, names: ["--listen"], value: "host:port",
                   help: "Where to listen: HOST:PORT, [IPv6]:PORT or :PORT (default: http.listen, else 127.0.0.1:39400).", subcommands: [.serve]),
        OptionSpec(key: .host, names: ["--host"], value: "host", help: "The address to listen on (with the port of --port or http.listen).",
                   subcommands: [.serve]),
        OptionSpec(key: .port, names: ["--port"], value: "port", help: "The port to listen on (0: any free port).", subcommands: [.serve]),
        OptionSpec(key: .refresh, names: ["--refresh"], value: nil,
                   help: "Start every backend, list again, and update the catalog.", subcommands: [.list]),
        OptionSpec(key: .json, names: ["--json"], value: nil,
                   help: "One JSON document, for scripts (call: the whole result).", subcommands: [.list, .check, .call]),
        OptionSpec(key: .from, names: ["--from"], value: "client",
                   help: "Import the file of this client from its usual place: \(importSources.joined(separator: ", ")).",
                   subcommands: [.import], completion: .values(importSources)),
        OptionSpec(key: .output, names: ["-o", "--output"], value: "file",
                   help: "Write the mcpd config to this file (it must not exist) instead of stdout.", subcommands: [.import], completion: .file),
        OptionSpec(key: .help, names: ["-h", "--help"], value: nil, help: "Show help information.", subcommands: Subcommand.allCases),
    ]

    static func spec(_ subcommand: Subcommand) -> SubcommandSpec {
        subcommands.first { $0.subcommand == subcommand }!
    }

    static func options(for subcommand: Subcommand) -> [OptionSpec] {
        options.filter { $0.subcommands.contains(subcommand) }
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
    var config: String?
    var logLevel: String?
    var logFormat: String?
    var refresh = false
    var json = false
    var from: String?
    var output: String?
    var listen: String?
    var host: String?
    var port: String?
    /// The subcommand's words, in order (`call`'s name and arguments, `import`'s file, ...).
    var positionals: [String] = []

    /// Parses the arguments after the program name: an optional subcommand (or `help
    /// [subcommand]`), then its words and options in any order; `--` ends the options.
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
        var optionsEnded = false
        while let argument = rest.popFirst() {
            if optionsEnded || !argument.hasPrefix("-") || argument == "-" {
                guard let subcommand else { throw UsageError(description: "unexpected argument '\(argument)'") }
                let allowed = Arguments.spec(subcommand).positionals
                guard positionals.count < allowed.count else {
                    throw UsageError(description: "unexpected argument '\(argument)'", subcommand: subcommand)
                }
                positionals.append(argument)
                continue
            }
            if argument == "--" {
                optionsEnded = true
                continue
            }
            // `--name=value` and `--name value`.
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            if name == "--version" && subcommand == nil {
                request = .version
                return
            }
            guard let option = Arguments.options.first(where: { $0.names.contains(name) }) else {
                let spellings = (subcommand.map(Arguments.options(for:)) ?? Arguments.options).flatMap(\.names).filter { $0.hasPrefix("--") }
                let near = closestName(to: name, among: spellings + (subcommand == nil ? ["--version"] : []))
                throw UsageError(description: "unknown option '\(argument)'\(near.map { "; did you mean '\($0)'?" } ?? "")", subcommand: subcommand)
            }
            if option.key == .help {
                request = .help(subcommand)
                return
            }
            guard let subcommand else {
                throw UsageError(description: "'\(name)' goes after a subcommand, e.g. mcpd \(option.subcommands[0].rawValue) \(name) ...")
            }
            guard option.subcommands.contains(subcommand) else {
                throw UsageError(description: "'\(name)' is not an option of 'mcpd \(subcommand.rawValue)' (it is one of: \(option.subcommands.map { "mcpd \($0.rawValue)" }.joined(separator: ", ")))",
                                 subcommand: subcommand)
            }
            var value = ""
            if option.value != nil {
                if let inlineValue {
                    value = inlineValue
                } else if let next = rest.popFirst() {
                    value = next
                } else {
                    throw UsageError(description: "missing value for '\(name)'", subcommand: subcommand)
                }
            } else if inlineValue != nil {
                throw UsageError(description: "'\(name)' takes no value", subcommand: subcommand)
            }
            switch option.key {
            case .config: config = value
            case .logLevel: logLevel = value
            case .logFormat: logFormat = value
            case .refresh: refresh = true
            case .json: json = true
            case .from: from = value
            case .output: output = value
            case .listen: listen = value
            case .host: host = value
            case .port: port = value
            case .help: break
            }
        }
        guard let subcommand else { return }
        let required = Arguments.spec(subcommand).positionals.filter(\.required)
        if positionals.count < required.count {
            throw UsageError(description: "missing <\(required[positionals.count].name)>", subcommand: subcommand)
        }
        request = .run(subcommand)
    }

    /// `mcpd call <name> [arguments] [options]`.
    static func synopsis(_ subcommand: Subcommand) -> String {
        let spec = spec(subcommand)
        let words = spec.positionals.map { $0.required ? "<\($0.name)>" : "[\($0.name)]" }
        let flags = options(for: subcommand).filter { $0.key != .help }.map { option in
            "[\(option.names.last!)\(option.value.map { " <\($0)>" } ?? "")]"
        }
        return (["mcpd", subcommand.rawValue] + words + flags).joined(separator: " ")
    }

    /// The lines after a usage error.
    static func shortUsage(_ subcommand: Subcommand?) -> String {
        guard let subcommand else { return "Usage: mcpd <subcommand> [options]; see 'mcpd --help'.\n" }
        return "Usage: \(synopsis(subcommand)); see 'mcpd \(subcommand.rawValue) --help'.\n"
    }

    /// One option's help line.
    private static func optionLine(_ option: OptionSpec) -> String {
        let spelling = option.names.joined(separator: ", ") + (option.value.map { " <\($0)>" } ?? "")
        let padded = spelling.count < 22 ? spelling + String(repeating: " ", count: 22 - spelling.count) : spelling + "\n" + String(repeating: " ", count: 24)
        return "  \(padded)  \(option.help)"
    }

    static func usage(_ subcommand: Subcommand?) -> String {
        guard let subcommand else {
            let width = Subcommand.allCases.map(\.rawValue.count).max() ?? 0
            let list = subcommands.map { "  \($0.subcommand.rawValue)\(String(repeating: " ", count: width - $0.subcommand.rawValue.count + 4))\($0.abstract)" }
            let common = options.filter { [.config, .logLevel, .logFormat, .help].contains($0.key) }.map(optionLine)
            return """
                OVERVIEW: An MCP gateway: one endpoint for many MCP servers.

                USAGE: mcpd <subcommand> [options]

                SUBCOMMANDS:
                \(list.joined(separator: "\n"))

                OPTIONS:
                \(common.joined(separator: "\n"))
                  --version               Show the version.

                See 'mcpd help <subcommand>' for the options of one subcommand.

                """
        }
        let spec = spec(subcommand)
        var text = "OVERVIEW: \(spec.abstract)\n\nUSAGE: \(synopsis(subcommand))\n"
        if !spec.positionals.isEmpty {
            text += "\nARGUMENTS:\n" + spec.positionals.map { positional in
                let name = "<\(positional.name)>"
                return "  \(name)\(String(repeating: " ", count: max(1, 24 - name.count)))\(positional.help)"
            }.joined(separator: "\n") + "\n"
        }
        text += "\nOPTIONS:\n" + options(for: subcommand).map(optionLine).joined(separator: "\n") + "\n"
        if !spec.discussion.isEmpty { text += "\n\(spec.discussion)\n" }
        return text + "\n"
    }
}
