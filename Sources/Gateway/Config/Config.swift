#if canImport(Glibc)
import Glibc
#endif

/// A configuration error, printed as `file:line:column: message`.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String

    public init(file: String, line: Int = 0, column: Int = 0, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
    }
}

/// A loaded configuration.
public struct Config: Sendable {
    /// The file it came from.
    public var path: String
    public var gateway = GatewaySettings()
    /// Servers in file order.
    public var servers: [ServerConfig] = []
    /// Non-fatal findings (unset variables, skipped servers), for the log.
    public var warnings: [String] = []
    /// What mcpd made of a file written for another client, for the log at info level.
    public var notes: [String] = []
    /// The `${VAR}` references without a value or default (also in `warnings`): errors for
    /// `mcpd check`.
    public var unsetVariables: [String] = []
    /// Values that came from `${VAR}` (of 4 characters or more): they may be secrets, so every
    /// log line and error message shows `***` in their place (`redact`).
    public internal(set) var secrets: [String] = []

    public init(path: String) { self.path = path }

    /// The most servers one file may configure.
    public static let maxServers = 10_000

    /// Loads and validates a file. `environment` supplies `${VAR}` values.
    public static func load(path: String, environment: [String: String]) throws(ConfigError) -> Config {
        return try parse(readConfigFile(path), path: path, environment: environment)
    }

    /// Parses a config file's bytes, read elsewhere (off the loop thread, on a reload).
    public static func parse(bytes: [UInt8], path: String, environment: [String: String]) throws(ConfigError) -> Config {
        return try parse(configText(bytes, path: path), path: path, environment: environment)
    }

    /// Parses configuration text (YAML or JSON).
    public static func parse(_ text: String, path: String, environment: [String: String]) throws(ConfigError) -> Config {
        let root: YAMLNode?
        do {
            root = try parseYAML(text)
        } catch {
            throw ConfigError(file: path, line: error.line, column: error.column, message: error.message)
        }
        var loader = ConfigLoader(path: path, environment: environment)
        return try loader.load(root)
    }

    /// Finds the configuration file: `--config`, then `$MCPD_CONFIG`, then `./mcpd.yaml`, then
    /// `$XDG_CONFIG_HOME/mcpd/mcpd.yaml` (default `~/.config`). Returns the path and what it
    /// tried, for the error when nothing is found.
    public static func discover(explicit: String?, environment: [String: String]) -> (path: String?, tried: [String]) {
        if let explicit { return (explicit, [explicit]) }
        if let fromEnv = environment["MCPD_CONFIG"], !fromEnv.isEmpty { return (fromEnv, [fromEnv]) }
        var tried = ["./mcpd.yaml"]
        if access("mcpd.yaml", R_OK) == 0 { return ("mcpd.yaml", tried) }
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["HOME"].map { "\($0)/.config" }
        if let base {
            let candidate = "\(base)/mcpd/mcpd.yaml"
            tried.append(candidate)
            if access(candidate, R_OK) == 0 { return (candidate, tried) }
        }
        return (nil, tried)
    }

    /// The largest config file mcpd reads.
    public static let maxFileSize = 16 << 20
}

/// Turns the YAML tree into a `Config`, with errors naming file, line and column.
private struct ConfigLoader {
    let path: String
    let environment: [String: String]
    var config: Config
    /// Every server name with its position, checked once the whole file is read.
    var serverKeys: [(String, YAMLNode)] = []

    init(path: String, environment: [String: String]) {
        self.path = path
        self.environment = environment
        self.config = Config(path: path)
    }

    func error(_ node: YAMLNode, _ message: String) -> ConfigError {
        ConfigError(file: path, line: node.line, column: node.column, message: redact(message, config.secrets))
    }

    /// A key mcpd accepts, so that one file serves later versions too, but does not act on yet:
    /// a warning says so.
    mutating func notActedOn(_ key: YAMLNode, _ what: String) {
        config.warnings.append("\(path):\(key.line):\(key.column): \(what): accepted, but this version of mcpd does not act on it")
    }

    mutating func load(_ root: YAMLNode?) throws(ConfigError) -> Config {
        guard let root, !root.isNull else {
            throw ConfigError(file: path, message: "the file is empty: add a \"servers:\" section (see examples/mcpd.yaml)")
        }
        guard case .mapping(let members) = root.value else {
            throw error(root, "the top level must be a mapping with a \"servers:\" section, found \(root.kindName)")
        }
        var sawServers = false
        var otherTopLevel: [YAMLNode] = []
        for (key, value) in members {
            switch key.scalar! {
            case "gateway": try loadGateway(value)
            case "idle_timeout":
                // mcp-unify's spelling, at the top level.
                config.gateway.idleTimeoutMs = try duration(value, "idle_timeout")
            case "servers":
                sawServers = true
                try loadServers(value, form: .servers)
            case "backends":
                sawServers = true
                try loadServers(value, form: .backends)
            case "mcpServers":
                sawServers = true
                try loadServers(value, form: .mcpServers)
            case "http", "auth", "roles":
                // Sections of the HTTP front and policy; accepted so one file serves every mode.
                notActedOn(key, "the \"\(key.scalar!)\" section (the HTTP front and client policy are not in this version)")
            default:
                otherTopLevel.append(key)
            }
        }
        // A client's own config file (Claude Desktop's, Claude Code's, VS Code's) holds its
        // other settings beside its servers: ignored, with one line. In an mcpd file, an
        // unknown key is a mistake.
        if let first = otherTopLevel.first {
            let names = otherTopLevel.map(\.scalar!)
            let clientFile = members.contains { ["mcpServers", "inputs"].contains($0.key.scalar!) }
            guard clientFile else {
                let expected = ["gateway", "servers", "backends", "mcpServers", "idle_timeout", "http", "auth", "roles"]
                throw error(first, "unknown top-level key \"\(names[0])\"\(didYouMean(names[0], expected)) (expected \(expected.joined(separator: ", ")))")
            }
            config.notes.append("\(path): ignoring the client's own settings beside its servers: \(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", ..." : "")")
        }
        if !sawServers {
            throw error(root, "no \"servers:\" section (also accepted: \"backends:\" or \"mcpServers\")")
        }
        // Names are checked against the separator once the gateway section has been read,
        // wherever it sits in the file.
        for (name, key) in serverKeys { try checkServerName(name, key) }
        return config
    }

    // MARK: Scalars

    /// A scalar with `${VAR}` and `${VAR:-default}` expanded; `$$` is a literal `$`.
    mutating func string(_ node: YAMLNode, _ what: String) throws(ConfigError) -> String {
        guard let text = node.scalar else { throw error(node, "\(what) must be a string, found \(node.kindName)") }
        return try expand(text, node)
    }

    mutating func expand(_ text: String, _ node: YAMLNode) throws(ConfigError) -> String {
        guard text.contains("$") else { return text }
        var result = ""
        var index = text.startIndex
        while index < text.endIndex {
            let char = text[index]
            guard char == "$" else {
                result.append(char)
                index = text.index(after: index)
                continue
            }
            let next = text.index(after: index)
            if next < text.endIndex && text[next] == "$" {
                result.append("$")
                index = text.index(after: next)
                continue
            }
            guard next < text.endIndex && text[next] == "{" else {
                result.append("$")
                index = next
                continue
            }
            // The matching brace, so a default may itself hold ${...}.
            var depth = 0
            var closeIndex: String.Index?
            var scan = next
            while scan < text.endIndex {
                if text[scan] == "{" { depth += 1 }
                if text[scan] == "}" {
                    depth -= 1
                    if depth == 0 {
                        closeIndex = scan
                        break
                    }
                }
                scan = text.index(after: scan)
            }
            guard let close = closeIndex else {
                throw error(node, "unterminated \"${\" in \"\(text)\"")
            }
            let body = String(text[text.index(after: next)..<close])
            var name = body
            var fallback: String?
            if let colon = body.firstIndex(of: ":"), body[body.index(after: colon)...].hasPrefix("-") {
                name = String(body[..<colon])
                fallback = String(body[body.index(colon, offsetBy: 2)...])
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw error(node, "invalid variable reference \"${\(body)}\": a name is letters, digits and _")
            }
            if let value = environment[name], !(value.isEmpty && fallback != nil) {
                result += value
                if value.count >= 4 && !config.secrets.contains(value) { config.secrets.append(value) }
            } else if let fallback {
                result += try expand(fallback, node)
            } else {
                let message = "\(path):\(node.line):\(node.column): ${\(name)} is not set; using an empty string (set it, or give a default: ${\(name):-value})"
                config.warnings.append(message)
                config.unsetVariables.append(message)
            }
            index = text.index(after: close)
        }
        return result
    }

    mutating func bool(_ node: YAMLNode, _ what: String) throws(ConfigError) -> Bool {
        switch try string(node, what).lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(node, "\(what) must be true or false")
        }
    }

    mutating func integer(_ node: YAMLNode, _ what: String) throws(ConfigError) -> Int {
        let text = try string(node, what)
        guard let value = Int(text) else { throw error(node, "\(what) must be a whole number, found \"\(text.prefix(40))\"") }
        return value
    }

    mutating func duration(_ node: YAMLNode, _ what: String) throws(ConfigError) -> UInt64 {
        let text = try string(node, what)
        guard let value = parseDuration(text) else {
            throw error(node, "\(what) \"\(text)\" is not a duration of at most 30 days (examples: 500ms, 30s, 5m, 1h)")
        }
        return value
    }

    mutating func stringList(_ node: YAMLNode, _ what: String) throws(ConfigError) -> [String] {
        guard case .sequence(let items) = node.value else { throw error(node, "\(what) must be a list, found \(node.kindName)") }
        var result: [String] = []
        for item in items { result.append(try string(item, "each entry of \(what)")) }
        return result
    }

    mutating func stringMap(_ node: YAMLNode, _ what: String) throws(ConfigError) -> [(key: String, value: String)] {
        if node.isNull { return [] }
        guard case .mapping(let members) = node.value else { throw error(node, "\(what) must be a mapping, found \(node.kindName)") }
        var result: [(key: String, value: String)] = []
        for (key, value) in members {
            result.append((key.scalar!, value.isNull ? "" : try string(value, "\(what).\(key.scalar!)")))
        }
        return result
    }

    // MARK: Sections

    mutating func loadGateway(_ node: YAMLNode) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else { throw error(node, "gateway must be a mapping, found \(node.kindName)") }
        for (key, value) in members {
            switch key.scalar! {
            case "state_dir":
                let path = try string(value, "gateway.state_dir")
                guard !path.isEmpty else { throw error(value, "gateway.state_dir must not be empty") }
                config.gateway.stateDir = path
            case "separator":
                let separator = try string(value, "gateway.separator")
                guard !separator.isEmpty, separator.count <= 4, separator.allSatisfy({ $0 == "_" || $0 == "-" || $0 == "." }) else {
                    throw error(value, "gateway.separator must be 1-4 of the characters _ - . (default \"__\")")
                }
                config.gateway.separator = separator
            case "name_budget":
                let budget = try integer(value, "gateway.name_budget")
                guard budget >= Router.minimumBudget && budget <= Router.maxNameLength else {
                    throw error(value, "gateway.name_budget must be between \(Router.minimumBudget) and \(Router.maxNameLength) (the longest exposed name; 64 minus the prefix your client adds, e.g. 64 - len(\"mcp__mcpd__\") = 53 for Claude Code)")
                }
                config.gateway.nameBudget = budget
            case "page_size":
                let size = try integer(value, "gateway.page_size")
                guard size >= 1 && size <= 10_000 else { throw error(value, "gateway.page_size must be between 1 and 10000") }
                config.gateway.pageSize = size
            case "mode":
                let mode = try string(value, "gateway.mode")
                guard ["direct", "meta", "hybrid"].contains(mode) else { throw error(value, "gateway.mode must be direct, meta or hybrid") }
                config.gateway.mode = mode
                if mode != "direct" { notActedOn(key, "gateway.mode \(mode) (every tool is listed directly)") }
            case "request_timeout":
                config.gateway.requestTimeoutMs = try positiveDuration(value, "gateway.request_timeout")
            case "idle_timeout":
                config.gateway.idleTimeoutMs = try duration(value, "gateway.idle_timeout")
            case "startup_wait": config.gateway.startupWaitMs = try duration(value, "gateway.startup_wait")
            case "stop_grace": config.gateway.stopGraceMs = try duration(value, "gateway.stop_grace")
            case "restart_limit":
                let limit = try integer(value, "gateway.restart_limit")
                guard limit >= 1 && limit <= 1000 else { throw error(value, "gateway.restart_limit must be between 1 and 1000") }
                config.gateway.restartLimit = limit
            case "restart_window": config.gateway.restartWindowMs = try positiveDuration(value, "gateway.restart_window")
            case "drain_timeout": config.gateway.drainTimeoutMs = try duration(value, "gateway.drain_timeout")
            case "max_message_size":
                let text = try string(value, "gateway.max_message_size")
                guard let size = parseSize(text), size >= 1024, size <= 1 << 30 else {
                    throw error(value, "gateway.max_message_size \"\(text)\" must be a size between 1KiB and 1GiB (example: 16MiB)")
                }
                config.gateway.maxMessageSize = size
            default:
                throw error(key, "unknown key gateway.\(key.scalar!) (expected state_dir, separator, name_budget, page_size, mode, request_timeout, idle_timeout, startup_wait, stop_grace, drain_timeout, restart_limit, restart_window or max_message_size)")
            }
        }
    }

    mutating func positiveDuration(_ node: YAMLNode, _ what: String) throws(ConfigError) -> UInt64 {
        let value = try duration(node, what)
        guard value > 0 else { throw error(node, "\(what) must be more than 0") }
        return value
    }

    /// `tools: {allow: [...], deny: [...]}` (a bare list is `allow`): globs over the server's
    /// own tool names.
    mutating func toolFilter(_ node: YAMLNode, _ what: String) throws(ConfigError) -> ToolFilter {
        var filter = ToolFilter()
        if case .sequence = node.value {
            filter.allow = try stringList(node, "\(what).allow")
            return filter
        }
        guard case .mapping(let members) = node.value else {
            throw error(node, "\(what) must be a mapping with allow and deny lists of tool names (globs), found \(node.kindName)")
        }
        for (key, value) in members {
            switch key.scalar! {
            case "allow": filter.allow = try stringList(value, "\(what).allow")
            case "deny": filter.deny = try stringList(value, "\(what).deny")
            default: throw error(key, "unknown key \"\(key.scalar!)\" in \(what) (expected allow or deny)")
            }
        }
        return filter
    }

    enum Form { case servers, backends, mcpServers }

    /// mcpd's per-server keys.
    static let serverKeys = ["command", "args", "env", "inherit_env", "cwd", "enabled", "description", "timeout", "era", "url",
                             "lazy", "idle_timeout", "isolation", "tools", "stderr"]
    /// Per-server keys of other clients' files: Cline (autoApprove, alwaysAllow, transportType,
    /// networkTimeout), VS Code (envFile, dev, gallery), Claude Code (oauth), Windsurf and
    /// Cursor (disabledTools).
    static let otherClientsServerKeys: Set<String> = ["autoApprove", "alwaysAllow", "transportType", "networkTimeout", "envFile",
                                                       "dev", "gallery", "version", "oauth", "disabledTools", "note", "notes"]

    /// `; did you mean "x"?` for the closest of `candidates`, or nothing.
    func didYouMean(_ word: String, _ candidates: [String]) -> String {
        closestName(to: word, among: candidates).map { "; did you mean \"\($0)\"?" } ?? ""
    }

    mutating func loadServers(_ node: YAMLNode, form: Form) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else {
            throw error(node, "the servers section must be a mapping of server names, found \(node.kindName)")
        }
        for (key, value) in members {
            let name = key.scalar!
            serverKeys.append((name, key))
            if config.servers.contains(where: { $0.name == name }) {
                throw error(key, "server \"\(name)\" is defined twice")
            }
            guard config.servers.count < Config.maxServers else { throw error(key, "more than \(Config.maxServers) servers") }
            if let server = try loadServer(name: name, key: key, node: value, form: form) {
                config.servers.append(server)
            }
        }
    }

    func checkServerName(_ name: String, _ node: YAMLNode) throws(ConfigError) {
        let separator = config.gateway.separator
        let valid = !name.isEmpty && name.count <= 48
            && name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D }
        guard valid else {
            throw error(node, "server name \"\(name)\" must be 1-48 letters, digits, _ or - (it prefixes tool names)")
        }
        // With no separator inside and none of its characters at either end, a server name is
        // recovered unambiguously from <server><separator><tool>: names cannot collide.
        if name.contains(separator) || separator.contains(name.first!) || separator.contains(name.last!) {
            throw error(node, "server name \"\(name)\" must not contain \"\(separator)\" or begin or end with its characters (it separates server and tool names)")
        }
    }

    mutating func loadServer(name: String, key: YAMLNode, node: YAMLNode, form: Form) throws(ConfigError) -> ServerConfig? {
        guard case .mapping(let members) = node.value else {
            throw error(node, "server \"\(name)\" must be a mapping with at least \"command\", found \(node.kindName)")
        }
        var server = ServerConfig(name: name)
        server.line = key.line
        var commandNode: YAMLNode?
        for (field, value) in members {
            let what = "servers.\(name).\(field.scalar!)"
            switch field.scalar! {
            case "command":
                commandNode = value
                let command = try string(value, what)
                if form == .backends {
                    // The backends: form takes one command line.
                    guard let words = splitCommandLine(command), let first = words.first else {
                        throw error(value, "\(what) \"\(command)\" is not a valid command line (check its quotes)")
                    }
                    server.command = first
                    server.args = Array(words.dropFirst()) + server.args
                } else {
                    server.command = command
                }
            case "args": server.args += try stringList(value, what)
            case "env": server.env = try stringMap(value, what)
            case "cwd": server.cwd = try string(value, what)
            case "enabled": server.enabled = try bool(value, what)
            case "disabled": server.enabled = !(try bool(value, what))
            case "description": server.description = try string(value, what)
            case "timeout": server.timeoutMs = try positiveDuration(value, what)
            case "url": server.url = try string(value, what)
            case "type", "transport":
                let kind = try string(value, what)
                guard ["stdio", "http", "sse", "streamable-http", "streamableHttp"].contains(kind) else {
                    throw error(value, "\(what) must be stdio, http or sse")
                }
            case "headers": _ = try stringMap(value, what)
            case "inherit_env": server.inheritEnv = try bool(value, what)
            case "lazy":
                server.lazy = try bool(value, what)
            case "idle_timeout":
                server.idleTimeoutMs = try duration(value, what)
            case "era":
                let era = try string(value, what)
                guard ["auto", "handshake"].contains(era) else { throw error(value, "\(what) must be auto or handshake") }
                server.era = era
            case "isolation":
                let isolation = try string(value, what)
                guard ["shared", "session"].contains(isolation) else { throw error(value, "\(what) must be shared or session") }
                server.isolation = isolation
                if isolation != "shared" { notActedOn(field, "\(what) \(isolation) (one process serves every client)") }
            case "tools":
                server.tools = try toolFilter(value, what)
            case "stderr":
                let level = try string(value, what)
                if level == "quiet" || level == "off" {
                    server.stderrLevel = nil
                } else {
                    guard let parsed = LogLevel(name: level) else { throw error(value, "\(what) must be debug, info, warning, error or quiet") }
                    server.stderrLevel = parsed
                }
            case let other where ConfigLoader.otherClientsServerKeys.contains(other):
                // Another client's per-server key (Cline, VS Code, Claude Code): its file works
                // unchanged.
                config.warnings.append("\(path):\(field.line):\(field.column): \(what) is another client's setting; mcpd ignores it")
            default:
                let expected = ConfigLoader.serverKeys
                throw error(field, "unknown key \"\(field.scalar!)\" in server \"\(name)\"\(didYouMean(field.scalar!, expected)) (expected \(expected.joined(separator: ", ")))")
            }
        }
        if server.url != nil && server.command == nil {
            config.warnings.append("\(path):\(key.line):\(key.column): server \"\(name)\" uses url, and remote backends are not supported by this version of mcpd; it is skipped")
            return nil
        }
        guard let command = server.command else {
            throw error(key, "server \"\(name)\" has no \"command\" (the program to run, e.g. command: npx)")
        }
        if command.isEmpty { throw error(commandNode ?? key, "server \"\(name)\" has an empty \"command\"") }
        server.commandLine = commandNode?.line ?? key.line
        // As a shell would: `~/` is the home directory. Relative paths are the config file's
        // folder's, so a config works from any current directory.
        server.command = resolvePath(expandHome(command), isProgram: true)
        server.cwd = server.cwd.map { resolvePath(expandHome($0), isProgram: false) }
        server.args = server.args.map { $0.hasPrefix("./") || $0.hasPrefix("../") ? resolvePath($0, isProgram: false) : expandHome($0) }
        return server
    }

    /// `~` and `~/x` with the home directory (when HOME is set).
    func expandHome(_ text: String) -> String {
        guard text == "~" || text.hasPrefix("~/"), let home = environment["HOME"], !home.isEmpty else { return text }
        return home + text.dropFirst()
    }

    /// A relative path against the config file's folder. A program named without a slash is
    /// looked up on PATH instead.
    func resolvePath(_ text: String, isProgram: Bool) -> String {
        if text.hasPrefix("/") || (isProgram && !text.contains("/")) || text.isEmpty { return text }
        let folder = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        let base = absolutePath(folder.isEmpty ? "/" : folder)
        var joined = base.hasSuffix("/") ? base + text : base + "/" + text
        while joined.contains("/./") { joined = joined.replacing("/./", with: "/") }
        if joined.hasSuffix("/.") { joined.removeLast(2) }
        return joined
    }
}
