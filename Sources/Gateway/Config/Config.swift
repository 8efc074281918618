import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// A configuration error, printed as `file:line:column: message`.
public struct ConfigError: Error, CustomStringConvertible, Sendable {
    public var file: String
    public var line: Int
    public var column: Int
    public var message: String
    /// The errors found after this one in the same file (`mcpd check` reports them all).
    public var more: [ConfigError] = []

    public init(file: String, line: Int = 0, column: Int = 0, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// This error and those after it, each one line.
    public var all: [ConfigError] {
        var first = self
        first.more = []
        return [first] + more
    }

    public var description: String {
        let this = line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
        return more.isEmpty ? this : ([this] + more.map(\.description)).joined(separator: "\n")
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

    /// The key its servers were under (`servers`, `mcpServers`, `context_servers`, ...): the form
    /// of a client's file, for `mcpd import`.
    public internal(set) var serversKey = "servers"
    /// `envFile` paths (absolute) the file names that were not given to `parse`: read them, and
    /// parse again with their contents.
    public internal(set) var envFilesToRead: [String] = []

    /// The most servers one file may configure.
    public static let maxServers = 10_000
    /// The most errors one file reports.
    static let maxErrors = 50

    /// Loads and validates a file, with the `envFile`s it names. `environment` supplies
    /// `${VAR}` values; with `expandVariables` false (`mcpd import`) they stay as written.
    /// Synchronous: for start-up and the commands, before the loop runs.
    public static func load(path: String, environment: [String: String], expandVariables: Bool = true) throws(ConfigError) -> Config {
        let text = try readConfigFile(path)
        var config = try parse(text, path: path, environment: environment, expandVariables: expandVariables)
        if !config.envFilesToRead.isEmpty {
            var files: [String: EnvFileContent] = [:]
            for file in config.envFilesToRead { files[file] = EnvFileContent(readFile(file, maxBytes: EnvFileContent.maxSize)) }
            config = try parse(text, path: path, environment: environment, envFiles: files, expandVariables: expandVariables)
        }
        return config
    }

    /// Parses a config file's bytes, read elsewhere (off the loop thread, on a reload).
    public static func parse(bytes: [UInt8], path: String, environment: [String: String],
                             envFiles: [String: EnvFileContent] = [:]) throws(ConfigError) -> Config {
        return try parse(configText(bytes, path: path), path: path, environment: environment, envFiles: envFiles)
    }

    /// Parses configuration text: YAML, or JSON with comments and trailing commas (VS Code's
    /// and Zed's files).
    public static func parse(_ text: String, path: String, environment: [String: String],
                             envFiles: [String: EnvFileContent] = [:], expandVariables: Bool = true) throws(ConfigError) -> Config {
        let root: YAMLNode?
        do {
            root = try parseYAML(looksLikeJSON(text) ? stripJSONComments(text) : text)
        } catch {
            throw ConfigError(file: path, line: error.line, column: error.column, message: error.message)
        }
        var loader = ConfigLoader(path: path, environment: environment, envFiles: envFiles, expandVariables: expandVariables)
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
    /// The contents of `envFile`s, by absolute path, as far as they were read.
    let envFiles: [String: EnvFileContent]
    /// False for `mcpd import`: `${VAR}` stays as written.
    let expandVariables: Bool
    /// Every error found so far but the one thrown.
    var errors: [ConfigError] = []
    /// The `${VAR}`s without a value in the server being read.
    var unsetInServer: [String] = []

    init(path: String, environment: [String: String], envFiles: [String: EnvFileContent], expandVariables: Bool) {
        self.path = path
        self.environment = environment
        self.envFiles = envFiles
        self.expandVariables = expandVariables
        self.config = Config(path: path)
    }

    /// Records an error and goes on, so that one run reports every mistake (as `nginx -t`).
    mutating func record(_ error: ConfigError) {
        if errors.count < Config.maxErrors { errors.append(error) }
    }

    func error(_ node: YAMLNode, _ message: String) -> ConfigError {
        ConfigError(file: path, line: node.line, column: node.column, message: redact(message, config.secrets))
    }

    /// A key mcpd accepts, so that one file serves later versions too, but does not act on yet:
    /// a warning says so.
    mutating func notActedOn(_ key: YAMLNode, _ what: String) {
        config.warnings.append("\(path):\(key.line):\(key.column): \(what): accepted, but this version of mcpd does not act on it")
    }

    /// The top-level keys of an mcpd file.
    static let topLevelKeys = ["gateway", "servers", "backends", "mcpServers", "idle_timeout", "http", "auth", "roles"]
    /// Top-level keys that mark a client's own config file: Claude Desktop, Claude Code,
    /// Cursor, Windsurf and Cline (`mcpServers`), Claude Code's `~/.claude.json` (`projects`),
    /// VS Code (`inputs`, and `mcp` in its settings.json), Zed (`context_servers`).
    static let clientFileKeys = ["mcpServers", "inputs", "projects", "mcp", "context_servers"]

    mutating func load(_ root: YAMLNode?) throws(ConfigError) -> Config {
        guard let root, !root.isNull else {
            throw ConfigError(file: path, message: "the file is empty: add a \"servers:\" section (see examples/mcpd.yaml)")
        }
        guard case .mapping(let members) = root.value else {
            throw error(root, "the top level must be a mapping with a \"servers:\" section, found \(root.kindName)")
        }
        let clientFile = members.contains { ConfigLoader.clientFileKeys.contains($0.key.scalar!) }
        var sawServers = false
        var otherTopLevel: [YAMLNode] = []
        var projects: YAMLNode?
        for (key, value) in members {
            do {
                switch key.scalar! {
                case "gateway": try loadGateway(value)
                case "idle_timeout":
                    // mcp-unify's spelling, at the top level.
                    config.gateway.idleTimeoutMs = try duration(value, "idle_timeout")
                case "servers":
                    sawServers = true
                    config.serversKey = "servers"
                    try loadServers(value, form: .servers)
                case "backends":
                    sawServers = true
                    config.serversKey = "backends"
                    try loadServers(value, form: .backends)
                case "mcpServers":
                    sawServers = true
                    config.serversKey = "mcpServers"
                    try loadServers(value, form: .mcpServers)
                case "context_servers":
                    sawServers = true
                    config.serversKey = "context_servers"
                    try loadServers(value, form: .zed)
                case "mcp" where clientFile && value.mappingValue("servers") != nil:
                    // VS Code's settings.json: "mcp": {"servers": {...}, "inputs": [...]}.
                    sawServers = true
                    try loadServers(value.mappingValue("servers")!, form: .servers)
                case "projects" where clientFile:
                    // Claude Code's ~/.claude.json: each project's servers, after the user's.
                    projects = value
                case "http":
                    try loadHTTP(value)
                case "auth":
                    try loadAuth(value)
                case "roles":
                    // Client policy; accepted so one file serves every version.
                    notActedOn(key, "the \"roles\" section (roles are not in this version)")
                default:
                    otherTopLevel.append(key)
                }
            } catch {
                record(error)
            }
        }
        if let projects, case .mapping(let entries) = projects.value {
            for (project, settings) in entries {
                guard let servers = settings.mappingValue("mcpServers"), !servers.isNull else { continue }
                sawServers = true
                do { try loadServers(servers, form: .mcpServers, project: project.scalar!) } catch { record(error) }
            }
        }
        // A client's own config file (Claude Desktop's, Claude Code's, VS Code's) holds its
        // other settings beside its servers: ignored, with one line. In an mcpd file, an
        // unknown key is a mistake.
        if !otherTopLevel.isEmpty {
            let names = otherTopLevel.map(\.scalar!)
            if clientFile {
                config.notes.append("\(path): ignoring the client's own settings beside its servers: \(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", ..." : "")")
            } else {
                let expected = ConfigLoader.topLevelKeys
                for key in otherTopLevel {
                    record(error(key, "unknown top-level key \"\(key.scalar!)\"\(didYouMean(key.scalar!, expected)) (expected \(expected.joined(separator: ", ")))"))
                }
            }
        }
        if !sawServers && errors.isEmpty {
            throw error(root, "no \"servers:\" section (also accepted: \"backends:\", \"mcpServers\", Zed's \"context_servers\")")
        }
        if !config.gateway.http.maxBodySet { config.gateway.http.limits.maxBody = config.gateway.maxMessageSize }
        // Names are checked against the separator once the gateway section has been read,
        // wherever it sits in the file.
        for (name, key) in serverKeys {
            do { try checkServerName(name, key) } catch { record(error) }
        }
        if var first = errors.first {
            first.more = Array(errors.dropFirst())
            throw first
        }
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
                result.append(expandVariables ? "$" : "$$")
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
            if !expandVariables {
                // `mcpd import`: variables stay variables (VS Code's ${env:NAME} as ${NAME}),
                // but VS Code's folders are written out, since the new file lives elsewhere.
                if body.hasPrefix("env:") {
                    result += "${\(body.dropFirst(4))}"
                } else if environment[body] == nil, let folder = vscodeVariable(body) {
                    result += folder
                } else {
                    result += "${\(body)}"
                }
                index = text.index(after: close)
                continue
            }
            var name = body
            var fallback: String?
            if let colon = body.firstIndex(of: ":"), body[body.index(after: colon)...].hasPrefix("-") {
                name = String(body[..<colon])
                fallback = String(body[body.index(colon, offsetBy: 2)...])
            }
            // VS Code's variables: ${env:NAME} is ${NAME}; ${input:ID} is a prompt mcpd cannot
            // show; ${workspaceFolder} and ${userHome} are folders.
            if name.hasPrefix("env:") { name.removeFirst(4) }
            if name.hasPrefix("input:") {
                let message = "\(path):\(node.line):\(node.column): ${\(name)} is a value VS Code prompts for; mcpd cannot prompt, so it is empty (write the value, or ${VAR} for an environment variable, in its place)"
                config.warnings.append(message)
                unsetInServer.append("${\(name)}")
                index = text.index(after: close)
                continue
            }
            if environment[name] == nil, let folder = vscodeVariable(name) {
                result += folder
                index = text.index(after: close)
                continue
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
                unsetInServer.append("${\(name)}")
            }
            index = text.index(after: close)
        }
        return result
    }

    /// `${workspaceFolder}` (the folder of a `.vscode` folder holding the file, else the file's
    /// own), `${workspaceFolderBasename}`, `${userHome}`, `${pathSeparator}`.
    func vscodeVariable(_ name: String) -> String? {
        switch name {
        case "workspaceFolder", "workspaceFolderBasename":
            var folder = resolvePath(".", isProgram: false)
            if folder.hasSuffix("/.vscode") { folder.removeLast("/.vscode".count) }
            if folder.isEmpty { folder = "/" }
            return name == "workspaceFolder" ? folder : String(folder.split(separator: "/").last ?? "")
        case "userHome": return environment["HOME"]
        case "pathSeparator": return "/"
        default: return nil
        }
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
            do { try loadGatewayKey(key, value) } catch { record(error) }
        }
    }

    mutating func loadGatewayKey(_ key: YAMLNode, _ value: YAMLNode) throws(ConfigError) {
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
            let expected = ["state_dir", "separator", "name_budget", "page_size", "mode", "request_timeout", "idle_timeout", "startup_wait",
                            "stop_grace", "drain_timeout", "restart_limit", "restart_window", "max_message_size"]
            throw error(key, "unknown key gateway.\(key.scalar!)\(didYouMean(key.scalar!, expected)) (expected \(expected.joined(separator: ", ")))")
        }
    }

    /// `auth: {tokens: [{token: "${VAR}", role: NAME}, ...]}` (a token alone may be a string):
    /// the bearer tokens `mcpd serve` requires. Each is a secret, whatever its length.
    mutating func loadAuth(_ node: YAMLNode) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else { throw error(node, "auth must be a mapping, found \(node.kindName)") }
        for (key, value) in members {
            guard key.scalar! == "tokens" else {
                record(error(key, "unknown key auth.\(key.scalar!)\(didYouMean(key.scalar!, ["tokens"])) (expected tokens)"))
                continue
            }
            guard case .sequence(let items) = value.value else {
                record(error(value, "auth.tokens must be a list of {token, role}, found \(value.kindName)"))
                continue
            }
            for (index, item) in items.enumerated() {
                do { try loadToken(item, "auth.tokens[\(index)]") } catch { record(error) }
            }
        }
    }

    mutating func loadToken(_ item: YAMLNode, _ what: String) throws(ConfigError) {
        var token: String?
        var role: String?
        var tokenNode = item
        if item.scalar != nil {
            token = try string(item, what)
        } else {
            guard case .mapping(let fields) = item.value else { throw error(item, "\(what) must be {token, role} or a string") }
            for (field, value) in fields {
                switch field.scalar! {
                case "token":
                    tokenNode = value
                    token = try string(value, "\(what).token")
                case "role":
                    role = try string(value, "\(what).role")
                    notActedOn(field, "\(what).role (roles are not in this version: every token sees every tool)")
                default: throw error(field, "unknown key \"\(field.scalar!)\" in \(what) (expected token, role)")
                }
            }
        }
        guard let token, !token.isEmpty else {
            throw error(tokenNode, "\(what) has no token (an unset ${VAR} gives an empty one, which would let anyone in)")
        }
        guard token.utf8.count >= 16 else {
            throw error(tokenNode, "\(what): a token of \(token.utf8.count) characters is too easy to guess; use at least 16 (e.g. openssl rand -hex 24)")
        }
        if !config.secrets.contains(token) { config.secrets.append(token) }
        config.gateway.tokens.append(BearerToken(token: token, role: role))
    }

    /// The `http:` section of `mcpd serve`.
    mutating func loadHTTP(_ node: YAMLNode) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else { throw error(node, "http must be a mapping, found \(node.kindName)") }
        for (key, value) in members {
            do { try loadHTTPKey(key, value) } catch { record(error) }
        }
    }

    mutating func loadHTTPKey(_ key: YAMLNode, _ value: YAMLNode) throws(ConfigError) {
        let name = key.scalar!
        let what = "http.\(name)"
        func count(_ low: Int, _ high: Int) throws(ConfigError) -> Int {
            let number = try integer(value, what)
            guard number >= low && number <= high else { throw error(value, "\(what) must be between \(low) and \(high)") }
            return number
        }
        func size(_ low: Int, _ high: Int) throws(ConfigError) -> Int {
            let text = try string(value, what)
            guard let size = parseSize(text), size >= low, size <= high else {
                throw error(value, "\(what) \"\(text)\" must be a size between \(low) bytes and \(high >> 20) MiB (example: 16KiB)")
            }
            return size
        }
        switch name {
        case "listen":
            let text = try string(value, what)
            guard let (host, port) = HTTPSettings.parseListen(text) else {
                throw error(value, "\(what) \"\(text)\" must be HOST:PORT (e.g. 127.0.0.1:39400, [::1]:39400, :39400)")
            }
            config.gateway.http.host = host
            config.gateway.http.port = port
        case "max_header_bytes": config.gateway.http.limits.maxHeaderBytes = try size(1024, 1 << 20)
        case "max_headers": config.gateway.http.limits.maxHeaders = try count(8, 10_000)
        case "max_body":
            config.gateway.http.limits.maxBody = try size(1024, 1 << 30)
            config.gateway.http.maxBodySet = true
        case "max_connections": config.gateway.http.limits.maxConnections = try count(1, 1_000_000)
        case "header_timeout": config.gateway.http.limits.headerTimeoutMs = try positiveDuration(value, what)
        case "body_timeout": config.gateway.http.limits.bodyTimeoutMs = try positiveDuration(value, what)
        case "keepalive_timeout": config.gateway.http.limits.keepaliveTimeoutMs = try positiveDuration(value, what)
        case "session_timeout": config.gateway.http.sessionTimeoutMs = try positiveDuration(value, what)
        case "allowed_origins":
            config.gateway.http.allowedOrigins = try stringList(value, what)
        case "public_metrics": config.gateway.http.publicMetrics = try bool(value, what)
        default:
            let expected = ["listen", "max_header_bytes", "max_headers", "max_body", "max_connections", "header_timeout", "body_timeout",
                            "keepalive_timeout", "session_timeout", "allowed_origins", "public_metrics"]
            throw error(key, "unknown key \(what)\(didYouMean(name, expected)) (expected \(expected.joined(separator: ", ")))")
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

    /// `servers:` and `mcpServers` (one command, args), `backends:` (one command line), Zed's
    /// `context_servers` (also `command: {path, args, env}`).
    enum Form { case servers, backends, mcpServers, zed }

    /// mcpd's per-server keys.
    static let serverKeys = ["command", "args", "env", "envFile", "inherit_env", "cwd", "enabled", "description", "timeout", "era", "url",
                             "lazy", "idle_timeout", "isolation", "tools", "stderr"]
    /// Per-server keys of other clients' files, ignored with a warning: Cline (autoApprove,
    /// alwaysAllow, transportType, networkTimeout), VS Code (dev, gallery, version), Claude Code
    /// (oauth), Zed (source, settings). Cursor's and Windsurf's `disabledTools` is acted on: those
    /// tools are hidden, as `tools.deny` hides them.
    static let otherClientsServerKeys: Set<String> = ["autoApprove", "alwaysAllow", "transportType", "networkTimeout",
                                                       "dev", "gallery", "version", "oauth", "note", "notes", "source", "settings"]

    /// `; did you mean "x"?` for the closest of `candidates`, or nothing.
    func didYouMean(_ word: String, _ candidates: [String]) -> String {
        closestName(to: word, among: candidates).map { "; did you mean \"\($0)\"?" } ?? ""
    }

    /// `project`: the Claude Code project (`projects.<path>.mcpServers`) the section belongs to.
    /// A project's server named as one already defined is left out: the same definition
    /// silently, a different one with a warning.
    mutating func loadServers(_ node: YAMLNode, form: Form, project: String? = nil) throws(ConfigError) {
        if node.isNull { return }
        guard case .mapping(let members) = node.value else {
            throw error(node, "the servers section must be a mapping of server names, found \(node.kindName)")
        }
        for (key, value) in members {
            let name = key.scalar!
            if let existing = config.servers.first(where: { $0.name == name }) {
                if let project {
                    if let server = try? loadServer(name: name, key: key, node: value, form: form), server.hasSameSettings(as: existing) { continue }
                    config.warnings.append("\(path):\(key.line):\(key.column): server \"\(name)\" of project \(project) is left out: a different server of that name is defined at line \(existing.line)")
                    continue
                }
                record(error(key, "server \"\(name)\" is defined twice (first at line \(existing.line))"))
                continue
            }
            guard config.servers.count < Config.maxServers else { throw error(key, "more than \(Config.maxServers) servers") }
            serverKeys.append((name, key))
            do {
                if let server = try loadServer(name: name, key: key, node: value, form: form) {
                    config.servers.append(server)
                }
            } catch {
                record(error)
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
        var envFileNode: YAMLNode?
        // Every field is read, so that one run reports each mistake in it.
        var fieldErrors: [ConfigError] = []
        unsetInServer = []
        defer { unsetInServer = [] }
        for (field, value) in members {
            do {
                try loadServerKey(&server, field, value, form: form, commandNode: &commandNode, envFileNode: &envFileNode)
            } catch {
                fieldErrors.append(error)
            }
        }
        if server.url != nil && server.command == nil && fieldErrors.isEmpty {
            config.warnings.append("\(path):\(key.line):\(key.column): server \"\(name)\" uses url, and remote backends are not supported by this version of mcpd; it is skipped")
            return nil
        }
        if server.command == nil && form == .zed && members.contains(where: { $0.key.scalar == "source" || $0.key.scalar == "settings" }) && fieldErrors.isEmpty {
            config.warnings.append("\(path):\(key.line):\(key.column): server \"\(name)\" is a Zed extension, which only Zed can start; it is skipped (give it a command to run it through mcpd)")
            return nil
        }
        if server.command == nil && !fieldErrors.contains(where: { $0.line == commandNode?.line }) {
            fieldErrors.append(error(key, "server \"\(name)\" has no \"command\" (the program to run, e.g. command: npx)"))
        } else if server.command?.isEmpty == true {
            fieldErrors.append(error(commandNode ?? key, "server \"\(name)\" has an empty \"command\""))
        }
        guard fieldErrors.isEmpty else {
            for fieldError in fieldErrors { record(fieldError) }
            return nil
        }
        server.unsetVariables = unsetInServer
        server.commandLine = commandNode?.line ?? key.line
        // As a shell would: `~/` is the home directory. Relative paths are the config file's
        // folder's, so a config works from any current directory.
        server.command = resolvePath(expandHome(server.command!), isProgram: true)
        server.cwd = server.cwd.map { resolvePath(expandHome($0), isProgram: false) }
        server.args = server.args.map { $0.hasPrefix("./") || $0.hasPrefix("../") ? resolvePath($0, isProgram: false) : expandHome($0) }
        if let file = server.envFile, let envFileNode {
            server.envFile = resolvePath(expandHome(file), isProgram: false)
            try loadEnvFile(&server, envFileNode)
        }
        return server
    }

    /// Adds an `envFile`'s variables to the server's `env` (which wins where both set one), once
    /// the file has been read; until then, asks for it (`Config.envFilesToRead`).
    mutating func loadEnvFile(_ server: inout ServerConfig, _ node: YAMLNode) throws(ConfigError) {
        guard expandVariables, let file = server.envFile else { return }
        guard let content = envFiles[file] else {
            if !config.envFilesToRead.contains(file) { config.envFilesToRead.append(file) }
            return
        }
        switch content {
        case .failed(let reason):
            throw error(node, "servers.\(server.name).envFile: cannot read \(file): \(reason)")
        case .bytes(let bytes):
            let set = Set(server.env.map(\.key))
            for (number, line) in parseEnvFile(bytes) {
                switch line {
                case .invalid(let text):
                    config.warnings.append("\(file):\(number): not NAME=value, skipped: \(text.prefix(40))")
                case .variable(let key, let value) where !set.contains(key):
                    server.env.append((key, value))
                    if value.count >= 4 && !config.secrets.contains(value) { config.secrets.append(value) }
                case .variable: continue
                }
            }
        }
    }

    mutating func loadServerKey(_ server: inout ServerConfig, _ field: YAMLNode, _ value: YAMLNode, form: Form,
                                commandNode: inout YAMLNode?, envFileNode: inout YAMLNode?) throws(ConfigError) {
        let name = server.name
        let what = "servers.\(name).\(field.scalar!)"
        switch field.scalar! {
        case "command" where form == .zed && value.mappingValue("path") != nil:
            // Zed's older form: command: {path, args, env}.
            commandNode = value
            guard case .mapping(let parts) = value.value else { return }
            for (part, partValue) in parts {
                switch part.scalar! {
                case "path": server.command = try string(partValue, "\(what).path")
                case "args": server.args += try stringList(partValue, "\(what).args")
                case "env": server.env += try stringMap(partValue, "\(what).env")
                default: throw error(part, "unknown key \"\(part.scalar!)\" in \(what) (expected path, args, env)")
                }
            }
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
        case "env": server.env += try stringMap(value, what)
        case "envFile", "env_file":
            envFileNode = value
            server.envFile = try string(value, what)
        case "cwd": server.cwd = try string(value, what)
        case "enabled": server.enabled = try bool(value, what)
        case "disabled": server.enabled = !(try bool(value, what))
        case "description": server.description = try string(value, what)
        case "timeout": server.timeoutMs = try positiveDuration(value, what)
        case "url", "serverUrl": server.url = try string(value, what)
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
            let filter = try toolFilter(value, what)
            server.tools.allow = filter.allow
            server.tools.deny += filter.deny
        case "disabledTools":
            // Cursor's and Windsurf's: these tools are not offered.
            server.tools.deny += try stringList(value, what)
        case "stderr":
            let level = try string(value, what)
            if level == "quiet" || level == "off" {
                server.stderrLevel = nil
            } else {
                guard let parsed = LogLevel(name: level) else { throw error(value, "\(what) must be debug, info, warning, error or quiet") }
                server.stderrLevel = parsed
            }
        case "source" where form == .zed, "settings" where form == .zed:
            // Zed's own: where the server comes from, and settings for its extension.
            break
        case let other where ConfigLoader.otherClientsServerKeys.contains(other):
            // Another client's per-server key (Cline, VS Code, Claude Code, Zed): its file
            // works unchanged.
            config.warnings.append("\(path):\(field.line):\(field.column): \(what) is another client's setting; mcpd ignores it")
        default:
            let expected = ConfigLoader.serverKeys
            throw error(field, "unknown key \"\(field.scalar!)\" in server \"\(name)\"\(didYouMean(field.scalar!, expected)) (expected \(expected.joined(separator: ", ")))")
        }
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
