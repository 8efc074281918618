import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Where an exposed name or URI leads: the backend that owns it and the backend's own name
/// (or URI) for it.
///
/// Routes hold their backend strongly: backends live as long as the gateway, and a route that
/// outlives a catalog rebuild (kept by a request in flight) must still name the backend it
/// was sent to.
public final class Route {
    public let backend: Backend
    /// The backend's own name for the tool or prompt, or its own URI for a resource.
    public let originalName: String
    /// `originalName` as a JSON string literal, spliced into forwarded requests.
    public let originalNameLiteral: ByteBuffer
    /// The name clients see (tools and prompts), for the request log.
    public internal(set) var exposedName: String?

    init(backend: Backend, originalName: String, originalNameLiteral: ByteBuffer) {
        self.backend = backend
        self.originalName = originalName
        self.originalNameLiteral = originalNameLiteral
    }

    convenience init(backend: Backend, originalName: String) {
        self.init(backend: backend, originalName: originalName, originalNameLiteral: jsonStringLiteral(originalName))
    }
}

/// Maps exposed names (`<server><separator><name>`) of one kind (tools, or prompts) to routes;
/// in a server's view (`prefixed` false), that server's own names.
///
/// Every exposed name fits `^[A-Za-z0-9_-]{1,budget}$` (64 by default, the rule strict clients
/// enforce; `gateway.name_budget` lowers it for clients that prefix names themselves, as Claude
/// Code does with `mcp__<its server name>__`). A name with other characters is sanitised (each
/// one becomes `_`) and a name over the budget is shortened; either way it gets a suffix hashed
/// from the server and the original name, so the result is deterministic and two names never
/// collide. Server names cannot contain the separator (Config checks), so plain names of
/// different servers never collide.
public final class Router {
    /// The longest exposed name clients accept.
    public static let maxNameLength = 64

    public let separator: String
    /// The longest exposed name this router makes.
    public let nameBudget: Int
    /// False for one server's own names, exposed as they are (a server's view).
    public let prefixed: Bool
    private var routes: [String: Route] = [:]
    /// The last name looked up from a literal and its route: consecutive calls to one tool
    /// skip building a String and hashing it.
    private var lastLiteral: [UInt8] = []
    private var lastRoute: Route?

    public init(separator: String, nameBudget: Int = Router.maxNameLength, prefixed: Bool = true) {
        self.separator = separator
        self.nameBudget = min(max(nameBudget, Router.minimumBudget), Router.maxNameLength)
        self.prefixed = prefixed
    }

    /// The smallest budget: room for a few characters of a server name, the separator and the
    /// hash suffix.
    public static let minimumBudget = 24

    /// The route for an exposed name.
    public func route(_ exposedName: String) -> Route? { routes[exposedName] }

    /// Every exposed name.
    public var names: Dictionary<String, Route>.Keys { routes.keys }

    /// Up to `limit` exposed names a client may have meant by `name`: those whose original
    /// name is `name` (the client left out the server prefix), then the closest by edit
    /// distance (`typoBound`).
    public func suggestions(for name: String, limit: Int = 3) -> [String] {
        var exact: [String] = []
        var near: [(distance: Int, name: String)] = []
        let wanted = Array(name.utf8.prefix(128))
        let bound = typoBound(wanted)
        for (exposed, route) in routes {
            if route.originalName == name {
                exact.append(exposed)
            } else if let distance = editDistance(wanted, Array(exposed.utf8), bound: bound) {
                near.append((distance, exposed))
            }
        }
        let ranked = exact.sorted() + near.sorted { ($0.distance, $0.name) < ($1.distance, $1.name) }.map(\.name)
        return Array(ranked.prefix(limit))
    }

    /// Looks a name up from its raw JSON string literal without decoding it in the common case.
    public func route(literal: UnsafeRawBufferPointer) -> Route? {
        guard literal.count >= 2 else { return nil }
        if let route = lastRoute, lastLiteral.count == literal.count,
           lastLiteral.withUnsafeBytes({ memcmp($0.baseAddress!, literal.baseAddress!, literal.count) == 0 })
        {
            return route
        }
        let route = lookUp(literal: literal)
        if let route {
            lastLiteral.removeAll(keepingCapacity: true)
            lastLiteral.append(contentsOf: literal)
            lastRoute = route
        }
        return route
    }

    private func lookUp(literal: UnsafeRawBufferPointer) -> Route? {
        let body = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
        if !body.contains(UInt8(ascii: "\\")) {
            return routes[String(decoding: body, as: UTF8.self)]
        }
        guard let name = try? JSONParser.parseString(literal) else { return nil }
        return routes[name]
    }

    /// The number of routes.
    public var count: Int { routes.count }

    /// Adds a route for `name` of `backend` and returns its exposed name. Unprefixed, the
    /// name is exposed as it is (a server lists each name once; a repeat replaces the route).
    public func add(_ name: String, of backend: Backend) -> String {
        if !prefixed {
            let route = Route(backend: backend, originalName: name)
            route.exposedName = name
            routes[name] = route
            return name
        }
        let server = backend.name
        let plain = server + separator + name
        var exposed = plain
        if !Router.isValidName(plain, budget: nameBudget) || routes[plain] != nil {
            exposed = Router.disambiguated(server: server, separator: separator, tool: name, budget: nameBudget)
            var attempt = 1
            while routes[exposed] != nil {
                attempt += 1
                exposed = Router.disambiguated(server: server, separator: separator, tool: name + "#\(attempt)", budget: nameBudget)
            }
        }
        let route = Route(backend: backend, originalName: name)
        route.exposedName = exposed
        routes[exposed] = route
        return exposed
    }

    /// True when `name` matches `^[A-Za-z0-9_-]{1,budget}$`.
    public static func isValidName(_ name: String, budget: Int = maxNameLength) -> Bool {
        let utf8 = name.utf8
        return !utf8.isEmpty && utf8.count <= budget && utf8.allSatisfy(isNameByte)
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2D
    }

    /// `<server><sep><sanitised tool, cut to fit>_<8 hex digits of a hash of server and tool>`;
    /// when even the server name does not fit the budget, it is cut too (the hash keeps names of
    /// different servers apart).
    static func disambiguated(server: String, separator: String, tool: String, budget: Int = maxNameLength) -> String {
        let hash = fnv1a64(server + "\u{0}" + tool)
        let suffix = "_" + hex32(UInt32(truncatingIfNeeded: hash ^ (hash >> 32)))
        let sanitised = String(decoding: tool.utf8.map { isNameByte($0) ? $0 : UInt8(ascii: "_") }, as: UTF8.self)
        let room = budget - server.utf8.count - separator.utf8.count - suffix.utf8.count
        let kept = String(decoding: sanitised.utf8.prefix(max(room, 0)), as: UTF8.self)
        let name = server + separator + kept + suffix
        if name.utf8.count <= budget { return name }
        return String(decoding: name.utf8.prefix(budget - suffix.utf8.count), as: UTF8.self) + suffix
    }
}

/// The 64-bit FNV-1a hash of a string's UTF-8.
func fnv1a64(_ text: String) -> UInt64 {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in text.utf8 {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01B3
    }
    return hash
}

func hex32(_ value: UInt32) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    for shift in stride(from: 28, through: 0, by: -4) { out.append(digits[Int((value >> UInt32(shift)) & 0xF)]) }
    return String(decoding: out, as: UTF8.self)
}

/// How far a typed name may be from the one meant: a third of its length, at least 1, at most 3.
public func typoBound(_ name: [UInt8]) -> Int { min(3, max(1, name.count / 3)) }

/// The name of `candidates` closest to `word` within `typoBound`, if any: for "did you mean".
public func closestName(to word: String, among candidates: [String]) -> String? {
    let bytes = Array(word.utf8)
    return candidates.compactMap { candidate in editDistance(bytes, Array(candidate.utf8), bound: typoBound(bytes)).map { ($0, candidate) } }
        .min { $0 < $1 }?.1
}

/// The edit distance of `a` and `b` (insertions, deletions, substitutions, and swaps of
/// neighbours, each 1) when it is at most `bound`, else nil; cut short once two rows exceed it.
public func editDistance(_ a: [UInt8], _ b: [UInt8], bound: Int) -> Int? {
    if abs(a.count - b.count) > bound { return nil }
    if a.isEmpty || b.isEmpty { return max(a.count, b.count) <= bound ? max(a.count, b.count) : nil }
    var beforePrevious = [Int](repeating: 0, count: b.count + 1)
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    var previousMinimum = 0
    for i in 1...a.count {
        current[0] = i
        var rowMinimum = current[0]
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                current[j] = min(current[j], beforePrevious[j - 2] + 1)
            }
            rowMinimum = min(rowMinimum, current[j])
        }
        if rowMinimum > bound && previousMinimum > bound { return nil }
        previousMinimum = rowMinimum
        (beforePrevious, previous, current) = (previous, current, beforePrevious)
    }
    return previous[b.count] <= bound ? previous[b.count] : nil
}
