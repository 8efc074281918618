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
    /// `roles:`: what each role may see and call.
    public var roles: [String: RoleFilter] = [:]
    /// `command_tools:`: tools of mcpd's own that run a program.
    public var commandTools: [CommandToolConfig] = []
    /// `pipelines:`: tools of mcpd's own that call other tools in steps.
    public var pipelines: [PipelineConfig] = []
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

    /// Adds values (of 4 characters or more) to `secrets`.
    mutating func addSecrets(_ values: [String]) {
        for value in values where value.count >= 4 && !secrets.contains(value) { secrets.append(value) }
    }

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
        // mcpd's name, then mcp-unify's.
        var tried: [String] = []
        for name in ["mcpd.yaml", "gateway.yaml", "mcp-gateway.yaml"] {
            tried.append("./\(name)")
            if access(name, R_OK) == 0 { return (name, tried) }
        }
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
struct ConfigLoader {
    let path: String
    let environment: [String: String]
    var config: Config
    /// Every server name with its position, checked once the whole file is read.
    var serverKeys: [(String, YAMLNode)] = []
    /// Roles named by tokens, `gateway.default_role` and `gateway.admin_roles`, checked against
    /// `roles:` once the file is read.
    var roleReferences: [(role: String, node: YAMLNode, what: String)] = []
    /// `plugins:` modules, served by one server once the file is read; where they (and
    /// `gateway.plugins_python`) are, for errors about that server.
    var pluginModules: [String] = []
    var pluginLine = 0
    var pluginsPythonLine: Int?
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
    static let topLevelKeys = ["gateway", "servers", "backends", "mcpServers", "idle_timeout", "enable_meta_mcp", "port", "http", "auth", "roles",
                               "command_tools", "pipelines", "plugins"]
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
            do throws(ConfigError) {
                switch key.scalar! {
                case "gateway": try loadGateway(value)
                case "idle_timeout":
                    // mcp-unify's spelling, at the top level.
                    config.gateway.idleTimeoutMs = try duration(value, "idle_timeout")
                case "enable_meta_mcp":
                    // Seed 001's spelling, at the top level.
                    if try bool(value, "enable_meta_mcp") { config.gateway.mode = "meta" }
                case "port":
                    // Seed 001's HTTP port (`mcpd serve`), on the loopback unless http.listen says otherwise.
                    let port = try integer(value, "port")
                    guard port >= 0 && port <= 65535 else { throw error(value, "port must be between 0 and 65535") }
                    config.gateway.http.port = port
                case let name where Form(sectionKey: name) != nil:
                    sawServers = true
                    config.serversKey = name
                    try loadServers(value, form: Form(sectionKey: name)!)
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
                    try loadRoles(value)
                case "command_tools":
                    try loadCommandTools(value)
                case "pipelines":
                    try loadPipelines(value)
                case "plugins":
                    try loadPlugins(value)
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
        if !sawServers && errors.isEmpty && config.commandTools.isEmpty && config.pipelines.isEmpty && pluginModules.isEmpty {
            throw error(root, "no \"servers:\" section (also accepted: \"backends:\", \"mcpServers\", Zed's \"context_servers\")")
        }
        if !config.gateway.http.maxBodySet { config.gateway.http.limits.maxBody = config.gateway.maxMessageSize }
        addPluginServer(environment)
        checkRoleReferences()
        // Command tools are exposed as they are: a separator would make one look like a
        // server's tool, and meta mode's names are the gateway's.
        var seenTools: Set<String> = []
        for tool in config.commandTools.map(\.name) + config.pipelines.map(\.name) {
            if !seenTools.insert(tool).inserted {
                record(ConfigError(file: path, message: "tool \"\(tool)\" is defined twice (command_tools and pipelines share one namespace)"))
            }
            if tool.contains(config.gateway.separator) {
                record(ConfigError(file: path, message: "tool \"\(tool)\" (command_tools or pipelines) contains the separator \"\(config.gateway.separator)\"; rename it"))
            } else if MetaTool.allCases.contains(where: { $0.name == tool }) {
                record(ConfigError(file: path, message: "tool \"\(tool)\" (command_tools or pipelines) has the name of one of meta mode's tools; rename it"))
            }
        }
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
        case "enable_meta_mcp":
            // Seed 001's switch for meta mode.
            if try bool(value, "gateway.enable_meta_mcp") { config.gateway.mode = "meta" }
        case "pinned_tools":
            guard case .sequence(let items) = value.value else { throw error(value, "gateway.pinned_tools must be a list of exposed tool names (globs allowed)") }
            config.gateway.pinnedTools = []
            for (index, item) in items.enumerated() { config.gateway.pinnedTools.append(try string(item, "gateway.pinned_tools[\(index)]")) }
        case "registration": config.gateway.registration = try bool(value, "gateway.registration")
        case "pin":
            let pin = try string(value, "gateway.pin")
            guard pin == "warn" || pin == "strict" else { throw error(value, "gateway.pin must be warn or strict") }
            config.gateway.pin = pin
        case "plugins_python":
            let python = try string(value, "gateway.plugins_python")
            guard !python.isEmpty else { throw error(value, "gateway.plugins_python must name a Python interpreter") }
            config.gateway.pluginsPython = python
            pluginsPythonLine = value.line
        case "default_role":
            let role = try string(value, "gateway.default_role")
            config.gateway.defaultRole = role
            roleReferences.append((role, value, "gateway.default_role"))
        case "admin_roles":
            guard case .sequence(let items) = value.value else { throw error(value, "gateway.admin_roles must be a list of role names") }
            for (index, item) in items.enumerated() {
                let role = try string(item, "gateway.admin_roles[\(index)]")
                config.gateway.adminRoles.append(role)
                roleReferences.append((role, item, "gateway.admin_roles[\(index)]"))
            }
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
        case "max_backend_queue":
            let text = try string(value, "gateway.max_backend_queue")
            guard let size = parseSize(text), size >= 64 << 10, size <= 1 << 30 else {
                throw error(value, "gateway.max_backend_queue \"\(text)\" must be a size between 64KiB and 1GiB (example: 16MiB)")
            }
            config.gateway.maxBackendQueue = size
        default:
            let expected = ["state_dir", "separator", "name_budget", "page_size", "mode", "enable_meta_mcp", "pinned_tools", "pin", "registration", "plugins_python", "default_role", "admin_roles", "request_timeout", "idle_timeout", "startup_wait",
                            "stop_grace", "drain_timeout", "restart_limit", "restart_window", "max_message_size", "max_backend_queue"]
            throw error(key, "unknown key gateway.\(key.scalar!)\(didYouMean(key.scalar!, expected)) (expected \(expected.joined(separator: ", ")))")
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
}
