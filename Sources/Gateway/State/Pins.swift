import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Pinned tool definitions (`pins.json` in the state directory): for each server, each tool's
/// SHA-256 of its definition's canonical form (object keys sorted, no white space), as first
/// seen or as last approved (`mcpd approve`).
///
/// A definition that differs from its pin (a server that changed a tool's description or
/// schema, as a rug pull would) is reported: in the log, in `/health` (`changed_tools`) and in
/// `mcpd list`. Under `pin: strict` (per server, or `gateway.pin: strict`) the changed tool is
/// also withheld: not listed, and calls are refused with a message that says why, until it is
/// approved.
public struct Pins: Sendable {
    /// Server -> tool -> hex digest.
    public var servers: [String: [String: String]] = [:]

    public init() {}

    /// Reads `pins.json`; nil when it is not one.
    public init?(json bytes: [UInt8]) {
        guard let root = bytes.withUnsafeBytes({ try? JSONParser.parse($0) }), let servers = root["servers"]?.objectValue
        else { return nil }
        for (server, tools) in servers.members {
            guard let tools = tools.objectValue else { continue }
            var pinned: [String: String] = [:]
            for (tool, digest) in tools.members { if let digest = digest.stringValue { pinned[tool] = digest } }
            self.servers[server] = pinned
        }
    }

    public var json: JSONValue {
        let servers = self.servers.keys.sorted().map { server in
            (server, JSONValue.object(JSONObject(self.servers[server]!.keys.sorted().map { ($0, JSONValue.string(self.servers[server]![$0]!)) })))
        }
        return .object(JSONObject([("version", .int(1)), ("servers", .object(JSONObject(servers)))]))
    }

    /// The digest of a tool's definition, as the server listed it.
    public static func digest(_ tool: JSONObject) -> String {
        sha256Hex(canonical(.object(tool)).serialized.withUnsafeReadableBytes { Array($0) })
    }

    /// `value` with every object's keys sorted.
    static func canonical(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let object):
            return .object(JSONObject(object.members.sorted { $0.key < $1.key }.map { ($0.key, canonical($0.value)) }))
        case .array(let items):
            return .array(items.map(canonical))
        default:
            return value
        }
    }

    static let fileName = "pins.json"
    static let maxFileSize = 16 << 20
}

extension Gateway {
    var pinsPath: String? { stateDirectory.map { "\($0.path)/\(Pins.fileName)" } }

    /// Reads the pins at start-up, before the loop serves (as the catalog entries are).
    func loadPins() {
        guard let path = pinsPath, let bytes = readSmallFile(path, maxBytes: Pins.maxFileSize) else { return }
        if let read = Pins(json: bytes) {
            pins = read
        } else {
            log.warning("\(path) is not a pins file; tools are pinned again as they are seen")
        }
    }

    /// Re-reads the pins off the loop (a reload: `mcpd approve` wrote them), then checks every
    /// server's tools against them.
    func reloadPins() {
        guard let path = pinsPath else { return }
        AsyncFile.read(loop: loop, path: path, maxBytes: Pins.maxFileSize) { [unowned self] result in
            guard !isShuttingDown, case .success(let bytes) = result, let read = Pins(json: bytes) else { return }
            // What this mcpd pinned since it last wrote stays; approvals replace what they name.
            for (server, tools) in read.servers { pins.servers[server, default: [:]].merge(tools) { _, approved in approved } }
            for backend in backends { checkPins(backend) }
            catalogMayHaveChanged([.tools])
        }
    }

    /// Compares `backend`'s tools with their pins: a tool seen for the first time is pinned, a
    /// changed one is reported (once per change) and, under `pin: strict`, withheld.
    func checkPins(_ backend: Backend) {
        guard backend.owner == nil, !backend.isTwin else { return }
        var table = pins.servers[backend.name] ?? [:]
        var added = false
        var changed: [String: (pinned: String, current: String)] = [:]
        for tool in backend.tools {
            guard let name = tool["name"]?.stringValue else { continue }
            let digest = Pins.digest(tool)
            guard let pinned = table[name] else {
                table[name] = digest
                added = true
                continue
            }
            if pinned != digest { changed[name] = (pinned, digest) }
        }
        for (name, change) in changed where backend.changedTools[name]?.current != change.current {
            let strict = backend.pinsStrictly(config.gateway)
            log.warning("tool \"\(name)\" of server \"\(backend.name)\" changed its definition since it was pinned (sha256 \(change.pinned.prefix(12)) -> \(change.current.prefix(12)))\(strict ? "; withheld until `mcpd approve \(backend.name) \(name)`" : "; review it (mcpd approve \(backend.name) \(name) pins the new one)")")
        }
        backend.changedTools = changed
        backend.withholdsAny = !changed.isEmpty && backend.pinsStrictly(config.gateway)
        if added {
            pins.servers[backend.name] = table
            writePins()
        }
    }

    func writePins() {
        guard let stateDirectory, let path = pinsPath else { return }
        stateDirectory.write(pins.json.serialized.withUnsafeReadableBytes { Array($0) }, to: path)
    }
}

extension Backend {
    /// True when a changed tool of this server is withheld (`pin: strict`).
    func pinsStrictly(_ gateway: GatewaySettings) -> Bool { (config.pin ?? gateway.pin) == "strict" }

    /// True when `tool` is withheld: its definition changed and the server pins strictly.
    func withholds(_ tool: String, _ gateway: GatewaySettings) -> Bool {
        changedTools[tool] != nil && pinsStrictly(gateway)
    }
}

/// `mcpd approve SERVER [TOOL]`: pins the definitions a server listed last (its catalog entry)
/// for the tool, or for every tool whose definition changed. Run from the command line, not
/// the loop: the files are read and written directly (the write through a temporary name).
public enum PinApproval {
    /// The tools approved, or why nothing could be.
    public static func approve(config: Config, environment: [String: String], server: String, tool: String?) -> Result<[String], ApprovalError> {
        guard let directory = StateDirectory.resolve(config.gateway.stateDir, environment: environment) else {
            return .failure(ApprovalError(message: "no state directory (set gateway.state_dir or HOME): mcpd keeps no pins without one"))
        }
        let catalog = "\(directory)/catalog/\(server).json"
        guard let bytes = readSmallFile(catalog, maxBytes: StateDirectory.maxEntryBytes),
              let entry = CatalogEntry(json: (try? bytes.withUnsafeBytes { raw throws(ScanError) in try JSONParser.parse(raw) }) ?? .null)
        else {
            return .failure(ApprovalError(message: "server \"\(server)\" has no catalog entry in \(directory)/catalog (it has not been listed yet: start mcpd, or run `mcpd list --refresh`)"))
        }
        let pinsPath = "\(directory)/\(Pins.fileName)"
        var pins = readSmallFile(pinsPath, maxBytes: Pins.maxFileSize).flatMap(Pins.init(json:)) ?? Pins()
        var table = pins.servers[server] ?? [:]
        var approved: [String] = []
        let tools = entry.lists[ListKind.tools.rawValue]
        if let tool, !tools.contains(where: { $0["name"]?.stringValue == tool }) {
            let names = tools.compactMap { $0["name"]?.stringValue }
            let near = closestName(to: tool, among: names).map { "; did you mean \"\($0)\"?" } ?? ""
            return .failure(ApprovalError(message: "server \"\(server)\" lists no tool \"\(tool)\"\(near)"))
        }
        for definition in tools {
            guard let name = definition["name"]?.stringValue, tool == nil || tool == name else { continue }
            let digest = Pins.digest(definition)
            if table[name] != digest {
                if table[name] != nil || tool != nil { approved.append(name) }
                table[name] = digest
            }
        }
        pins.servers[server] = table
        let content = pins.json.serialized.withUnsafeReadableBytes { Array($0) }
        let temporary = "\(pinsPath).approve.\(getpid())"
        guard let file = fopen(temporary, "w") else {
            return .failure(ApprovalError(message: "cannot write \(temporary): \(String(cString: strerror(errno)))"))
        }
        let written = content.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
        let flushed = fflush(file) == 0 && fsync(fileno(file)) == 0
        fclose(file)
        guard written == content.count, flushed, rename(temporary, pinsPath) == 0 else {
            unlink(temporary)
            return .failure(ApprovalError(message: "cannot write \(pinsPath): \(String(cString: strerror(errno)))"))
        }
        return .success(approved.sorted())
    }
}

public struct ApprovalError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
