import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Servers added at run time (seed 002's registration), when `gateway.registration: true`:
/// sessions with an admin role (the role `admin`, and `gateway.admin_roles`) see three tools
/// more, and only they may call them:
///
///     gateway_register_server {name, command, args, env, description}
///     gateway_remove_server {name}
///     gateway_status {}
///
/// `args` is a list, or one string split as a shell would. A registered server starts at
/// once, is kept in `registered.json` in the state directory (mode 0600: its `env` may hold
/// secrets) and comes back when mcpd restarts; a reload keeps it. Clients get `list_changed`.
/// Only registered servers can be removed; configured ones stay the config's.
///
/// This lifts one guarantee of `mcpd serve`: an admin token can start any program as mcpd's
/// user. It is off unless the config turns it on.
enum AdminTool: CaseIterable {
    case register, remove, status

    var name: String {
        switch self {
        case .register: return "gateway_register_server"
        case .remove: return "gateway_remove_server"
        case .status: return "gateway_status"
        }
    }

    init?(name: String) {
        guard let tool = AdminTool.allCases.first(where: { $0.name == name }) else { return nil }
        self = tool
    }

    static var definitions: [ByteBuffer] { definitionTexts.map { ByteBuffer(string: $0) } }

    private static let definitionTexts = [
        #"{"name":"gateway_register_server","description":"Add an MCP server that mcpd starts over stdio (admin roles only). It is kept across restarts.","inputSchema":{"type":"object","properties":{"name":{"type":"string","description":"The server's name: letters, digits, _ and -; its tools are exposed as <name>__<tool>."},"command":{"type":"string","description":"The program to run."},"args":{"description":"Its arguments: a list, or one string split as a shell would.","anyOf":[{"type":"array","items":{"type":"string"}},{"type":"string"}]},"env":{"type":"object","additionalProperties":{"type":"string"},"description":"Variables added to its environment."},"description":{"type":"string"}},"required":["name","command"]}}"#,
        #"{"name":"gateway_remove_server","description":"Stop and remove a server registered with gateway_register_server (admin roles only).","inputSchema":{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}}"#,
        #"{"name":"gateway_status","description":"The servers behind mcpd: state, whether registered, restarts, and the number of tools, prompts and resources of each.","inputSchema":{"type":"object","properties":{}}}"#,
    ]

    static let maxRegistered = 100
    static let fileName = "registered.json"
}

extension ServerConfig {
    /// The registration record of a registered server.
    var registrationJSON: JSONValue {
        var object = JSONObject([("name", .string(name)), ("command", .string(command ?? "")), ("args", .array(args.map(JSONValue.string)))])
        object["env"] = .object(JSONObject(env.map { ($0.key, JSONValue.string($0.value)) }))
        if let description { object["description"] = .string(description) }
        return .object(object)
    }
}

extension Gateway {
    var registeredPath: String? { stateDirectory.map { "\($0.path)/\(AdminTool.fileName)" } }

    /// The servers registered before, at start-up (before the loop serves): they join the
    /// configured ones unless the config now has a server of that name.
    func loadRegistered() {
        guard config.gateway.registration, let path = registeredPath,
              let bytes = readSmallFile(path, maxBytes: 4 << 20),
              let root = bytes.withUnsafeBytes({ try? JSONParser.parse($0) }), let list = root["servers"]?.arrayValue
        else { return }
        for entry in list.prefix(AdminTool.maxRegistered) {
            guard let object = entry.objectValue, case .success(let server) = registration(object) else { continue }
            if backendsByName[server.name] != nil || config.servers.contains(where: { $0.name == server.name }) {
                log.warning("registered server \"\(server.name)\" is now in \(config.path) too: the config's is used")
                continue
            }
            add(registered: server)
            log.info("registered server \"\(server.name)\" restored from \(path)")
        }
    }

    /// A server from a registration's arguments, or why it cannot be one.
    func registration(_ arguments: JSONObject) -> Result<ServerConfig, RegistrationFailure> {
        guard let name = arguments["name"]?.stringValue else { return .failure(RegistrationFailure(message: "name (a string) is required")) }
        let separator = config.gateway.separator
        guard !name.isEmpty, name.count <= 48, name.utf8.allSatisfy(Router.isNameByte),
              !name.contains(separator), !separator.contains(name.first!), !separator.contains(name.last!), name != PluginHost.serverName
        else {
            return .failure(RegistrationFailure(message: "server name \"\(name.prefix(60))\" must be 1-48 letters, digits, _ or - without \"\(separator)\" inside or its characters at either end"))
        }
        guard let command = arguments["command"]?.stringValue, !command.isEmpty else { return .failure(RegistrationFailure(message: "command (the program to run) is required")) }
        var server = ServerConfig(name: name)
        server.command = command
        switch arguments["args"] {
        case nil, .null?: break
        case .string(let line)?:
            guard let words = splitCommandLine(line) else { return .failure(RegistrationFailure(message: "args \"\(line.prefix(80))\" has an unclosed quote")) }
            server.args = words
        case .array(let items)?:
            for item in items {
                guard let word = item.stringValue else { return .failure(RegistrationFailure(message: "args must be a list of strings, or one string")) }
                server.args.append(word)
            }
        default: return .failure(RegistrationFailure(message: "args must be a list of strings, or one string"))
        }
        if let env = arguments["env"], env != .null {
            guard let object = env.objectValue else { return .failure(RegistrationFailure(message: "env must be an object of strings")) }
            for (key, value) in object.members {
                guard let text = value.stringValue, !key.isEmpty, !key.contains("=") else { return .failure(RegistrationFailure(message: "env must map names to strings")) }
                server.env.append((key, text))
            }
        }
        server.description = arguments["description"]?.stringValue
        server.registered = true
        return .success(server)
    }

    /// Adds a registered server as a backend (it lists its tools when it starts).
    @discardableResult
    func add(registered server: ServerConfig) -> Backend {
        config.servers.append(server)
        // Its env values are secrets wherever mcpd shows text: the log, /health, the status.
        config.addSecrets(server.env.map(\.value))
        log.secrets = Array(Set(log.secrets + config.secrets))
        let backend = Backend(config: server, gateway: self)
        backends.append(backend)
        backendsByName[server.name] = backend
        return backend
    }

    /// `gateway_register_server`: the outcome, as the tool's text.
    func register(_ arguments: JSONObject) -> Result<String, RegistrationFailure> {
        guard config.servers.filter(\.registered).count < AdminTool.maxRegistered else {
            return .failure(RegistrationFailure(message: "at most \(AdminTool.maxRegistered) servers can be registered; remove one first"))
        }
        let server: ServerConfig
        switch registration(arguments) {
        case .failure(let why): return .failure(why)
        case .success(let made): server = made
        }
        guard backendsByName[server.name] == nil, !config.servers.contains(where: { $0.name == server.name }) else {
            return .failure(RegistrationFailure(message: "a server named \"\(server.name)\" exists already"))
        }
        let path = (backendEnvironment.last { $0.hasPrefix("PATH=") }).map { String($0.dropFirst(5)) } ?? "/usr/bin:/bin"
        guard ChildProcess.resolveExecutable(server.command!, path: path, cwd: nil) != nil else {
            return .failure(RegistrationFailure(message: "command \"\(server.command!.prefix(200))\" is not an executable file (nor a program on PATH)"))
        }
        let backend = add(registered: server)
        persistRegistered()
        log.info("server \"\(server.name)\" registered at run time: \(redact(backend.commandLine, log.secrets))")
        writeRunRecord()
        backend.start()
        return .success("registered \"\(server.name)\"; it is starting, and its tools will be listed as \(server.name)\(config.gateway.separator)<tool>")
    }

    /// `gateway_remove_server`: stops a registered server and forgets it.
    func removeRegistered(_ name: String) -> Result<String, RegistrationFailure> {
        guard let backend = backendsByName[name] else { return .failure(RegistrationFailure(message: "no server named \"\(name.prefix(60))\"")) }
        guard backend.config.registered else {
            return .failure(RegistrationFailure(message: "server \"\(name)\" is in \(config.path), not registered at run time: remove it there and run `mcpd reload`"))
        }
        config.servers.removeAll { $0.name == name }
        backends.removeAll { $0 === backend }
        backendsByName[name] = nil
        retire(backend, because: "it was removed with gateway_remove_server")
        persistRegistered()
        catalogMayHaveChanged(ListKind.allCases)
        writeRunRecord()
        log.info("registered server \"\(name)\" removed")
        return .success("removed \"\(name)\"; its process is stopping")
    }

    /// `gateway_status`: every server's state and counts.
    var statusDocument: JSONValue {
        let servers = backends.map { backend -> JSONValue in
            var object = JSONObject([("name", .string(backend.name)), ("state", .string(backend.displayState)),
                                     ("registered", .bool(backend.config.registered)), ("running", .bool(backend.pid != nil)),
                                     ("restarts", .int(backend.restarts))])
            for kind in ListKind.allCases { object[kind.resultKey] = .int(backend.lists[kind.rawValue].count) }
            object["last_error"] = backend.lastError.map { .string(redact($0, config.secrets)) } ?? .null
            return .object(object)
        }
        return .object(JSONObject([("servers", .array(servers)), ("sessions", .int(sessions.count))]))
    }

    func persistRegistered() {
        guard let stateDirectory, let path = registeredPath else { return }
        let document = JSONValue.object(JSONObject([("version", .int(1)), ("servers", .array(config.servers.filter(\.registered).map(\.registrationJSON)))]))
        stateDirectory.write(document.serialized.withUnsafeReadableBytes { Array($0) }, to: path)
    }
}

extension ClientSession {
    /// True when this session may use the registration tools.
    var isAdmin: Bool {
        guard gateway.config.gateway.registration, let role = view.role else { return false }
        return role == "admin" || gateway.config.gateway.adminRoles.contains(role)
    }

    func callAdmin(_ tool: AdminTool, _ frame: ByteBuffer, _ raw: UnsafeRawBufferPointer, _ scan: MessageScan) {
        let idRange = scan.id!
        var arguments = JSONObject()
        if let params = scan.params, let range = gateway.scanner.member("arguments", inObjectAt: params, of: raw),
           let object = (try? JSONParser.parse(UnsafeRawBufferPointer(rebasing: raw[range])))?.objectValue {
            arguments = object
        }
        let outcome: Result<String, RegistrationFailure>
        switch tool {
        case .register: outcome = gateway.register(arguments)
        case .remove:
            guard let name = arguments["name"]?.stringValue else { return adminResult(frame, idRange, .failure(RegistrationFailure(message: "name (a string) is required"))) }
            outcome = gateway.removeRegistered(name)
        case .status:
            let document = gateway.statusDocument
            var result = JSONObject([("content", .array([.object(JSONObject([("type", "text"), ("text", .string(document.jsonText))]))]))])
            if !predatesStructuredOutput { result["structuredContent"] = document }
            return sendResult(frame, idRange, buffer: JSONValue.object(result).serialized)
        }
        adminResult(frame, idRange, outcome)
    }

    private func adminResult(_ frame: ByteBuffer, _ idRange: Range<Int>, _ outcome: Result<String, RegistrationFailure>) {
        var result: JSONObject
        switch outcome {
        case .success(let text): result = JSONObject([("content", .array([.object(JSONObject([("type", "text"), ("text", .string(text))]))]))])
        case .failure(let why):
            result = JSONObject([("content", .array([.object(JSONObject([("type", "text"), ("text", .string(redact(why.message, gateway.log.secrets)))]))])), ("isError", true)])
        }
        sendResult(frame, idRange, buffer: JSONValue.object(result).serialized)
    }
}

/// Why a registration tool did nothing: the text of its `isError` result.
struct RegistrationFailure: Error {
    var message: String
}
