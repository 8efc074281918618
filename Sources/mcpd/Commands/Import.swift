import Gateway
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// `mcpd import [FILE | --from CLIENT] [--output FILE]`: a client's MCP config as an mcpd config,
/// and the one-entry client config that replaces the client's servers.
enum Import {
    /// Where each client keeps its servers: `~` is the home directory, a relative path is the
    /// current directory's (a project's own file). The first that exists is used.
    static let wellKnown: [(client: String, paths: [String])] = [
        ("claude-desktop", ["~/.config/Claude/claude_desktop_config.json", "~/Library/Application Support/Claude/claude_desktop_config.json"]),
        ("claude-code", [".mcp.json", "~/.claude.json"]),
        ("cursor", [".cursor/mcp.json", "~/.cursor/mcp.json"]),
        ("vscode", [".vscode/mcp.json", "~/.config/Code/User/mcp.json", "~/Library/Application Support/Code/User/mcp.json"]),
        ("windsurf", ["~/.codeium/windsurf/mcp_config.json"]),
        ("zed", ["~/.config/zed/settings.json"]),
        ("cline", ["~/.config/Code/User/globalStorage/saoudrizwan.claude-dev/settings/cline_mcp_settings.json"]),
    ]

    static func run(_ arguments: Arguments) throws {
        let variables = Dictionary(ProcessSetup.environment().map { ($0.name, $0.value) }, uniquingKeysWith: { first, _ in first })
        let log = Logger(level: LogLevel(name: arguments.logLevel ?? variables["MCPD_LOG_LEVEL"] ?? "info") ?? .info)
        log.timestamps = false
        if arguments.logFormat == "json" { log.format = .json }
        let home = variables["HOME"] ?? ""
        func expand(_ path: String) -> String { path.hasPrefix("~/") ? home + path.dropFirst() : path }

        let path: String
        if let file = arguments.positionals.first {
            path = file
        } else if let client = arguments.from {
            guard let known = wellKnown.first(where: { $0.client == client }) else {
                writeStandardError("Error: --from must be one of \(Arguments.importSources.joined(separator: ", ")) (got \"\(client)\")\n")
                throw ProgramExit(code: 64)
            }
            guard let found = known.paths.map(expand).first(where: { access($0, R_OK) == 0 }) else {
                log.error("no \(client) config found (looked at \(known.paths.joined(separator: ", "))); pass its path: mcpd import FILE")
                throw ProgramExit.failure
            }
            path = found
        } else {
            try listFound(expand: expand, variables: variables)
            return
        }

        let config: Config
        do {
            // Values stay as written: a ${VAR} in the client's file stays a ${VAR} in mcpd's.
            config = try Config.load(path: path, environment: variables, expandVariables: false)
        } catch {
            for one in error.all { log.error(one.description) }
            throw ProgramExit.failure
        }
        for note in config.notes { log.info(note) }
        for warning in config.warnings { log.warning(warning) }
        let text = render(config, from: path)
        let configPath: String
        if let output = arguments.output {
            let fd = open(output, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                let reason = errno == EEXIST ? "it exists; mcpd import does not overwrite a file" : String(cString: strerror(errno))
                log.error("cannot write \(output): \(reason)")
                throw ProgramExit.failure
            }
            var bytes = Array(text.utf8)
            let written = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard written == bytes.count else {
                log.error("cannot write \(output): \(String(cString: strerror(errno)))")
                throw ProgramExit.failure
            }
            bytes.removeAll()
            configPath = absolute(output)
            log.info("wrote \(config.servers.count) server\(config.servers.count == 1 ? "" : "s") to \(configPath)")
        } else {
            writeStandardOutput(text)
            let base = variables["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(home)/.config"
            configPath = "\(base)/mcpd/mcpd.yaml"
        }
        writeStandardError(replacement(for: config, configPath: configPath, savedThere: arguments.output != nil))
    }

    /// With no file named: which client files this machine has, and how many servers each holds.
    private static func listFound(expand: (String) -> String, variables: [String: String]) throws {
        var rows: [[String]] = [["CLIENT", "SERVERS", "FILE"]]
        for (client, paths) in wellKnown {
            for path in paths.map(expand) where access(path, R_OK) == 0 {
                let servers: String
                do {
                    let config = try Config.load(path: path, environment: variables, expandVariables: false)
                    servers = config.servers.isEmpty ? "0" : "\(config.servers.count): \(config.servers.prefix(6).map(\.name).joined(separator: ", "))\(config.servers.count > 6 ? ", ..." : "")"
                } catch {
                    servers = "unreadable: \(error.message)"
                }
                rows.append([client, servers, absolute(path)])
            }
        }
        guard rows.count > 1 else {
            writeStandardError("mcpd import: no client config found in the usual places; pass one: mcpd import FILE\n")
            throw ProgramExit.failure
        }
        writeStandardOutput(formatTable(rows) + "\nImport one: mcpd import --from CLIENT (or mcpd import FILE) > ~/.config/mcpd/mcpd.yaml\n")
    }

    /// True for a key YAML reads as written: a variable name.
    private static func plainKey(_ key: String) -> Bool {
        !key.isEmpty && !key.first!.isNumber && key.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }
    }

    /// A YAML string: JSON's quoting, which YAML reads the same.
    private static func quoted(_ text: String) -> String { JSONValue.string(text).jsonText }

    static func render(_ config: Config, from path: String) -> String {
        var out = "# mcpd configuration, imported from \(absolute(path)) by mcpd import.\n"
        out += "# ${VAR} references are expanded from mcpd's environment when it starts.\n"
        out += "servers:\n"
        if config.servers.isEmpty { out = out.replacing("servers:\n", with: "servers: {}\n") }
        for server in config.servers {
            out += "  \(server.name):\n"
            if let description = server.description { out += "    description: \(quoted(description))\n" }
            out += "    command: \(quoted(server.command ?? ""))\n"
            if !server.args.isEmpty { out += "    args: [\(server.args.map(quoted).joined(separator: ", "))]\n" }
            if !server.env.isEmpty {
                out += "    env:\n"
                for (key, value) in server.env { out += "      \(plainKey(key) ? key : quoted(key)): \(quoted(value))\n" }
            }
            if let envFile = server.envFile { out += "    envFile: \(quoted(envFile))\n" }
            if let cwd = server.cwd { out += "    cwd: \(quoted(cwd))\n" }
            if !server.enabled { out += "    enabled: false\n" }
            if server.inheritEnv { out += "    inherit_env: true\n" }
            if let timeout = server.timeoutMs { out += "    timeout: \(timeout)ms\n" }
            if !server.tools.allowsEverything {
                out += "    tools:\n"
                if let allow = server.tools.allow { out += "      allow: [\(allow.map(quoted).joined(separator: ", "))]\n" }
                if !server.tools.deny.isEmpty { out += "      deny: [\(server.tools.deny.map(quoted).joined(separator: ", "))]\n" }
            }
        }
        return out
    }

    /// The client's servers replaced by mcpd alone, in the form of the client's own file.
    static func replacement(for config: Config, configPath: String, savedThere: Bool) -> String {
        let program = executablePath() ?? "mcpd"
        let args: JSONValue = ["stdio", "--config", .string(configPath)]
        var entry: JSONValue = ["command": .string(program), "args": args]
        let key: String
        switch config.serversKey {
        case "servers":
            key = "servers"
            entry = ["type": "stdio", "command": .string(program), "args": args]
        case "context_servers": key = "context_servers"
        default: key = "mcpServers"
        }
        let snippet: JSONValue = [key: ["mcpd": entry]]
        let save = savedThere ? "" : "Save the config above as \(configPath) (e.g. mcpd import ... > \(configPath)); then "
        return "\n\(save)replace the client's \"\(key)\" with this one entry:\n\(snippet.jsonText)\n"
    }

    /// The running binary's path, for the client config.
    private static func executablePath() -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        guard getcwd(&buffer, buffer.count) != nil else { return path }
        let cwd = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return path.hasPrefix("./") ? "\(cwd)/\(path.dropFirst(2))" : "\(cwd)/\(path)"
    }
}
