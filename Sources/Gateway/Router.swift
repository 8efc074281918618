import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// Where an exposed tool name leads.
public final class ToolRoute {
    /// The backend's index in the gateway's backend list.
    public let backendIndex: Int
    /// The backend's own name for the tool.
    public let originalName: String
    /// `originalName` as a JSON string literal, spliced into forwarded calls.
    public let originalNameLiteral: ByteBuffer

    init(backendIndex: Int, originalName: String, originalNameLiteral: ByteBuffer) {
        self.backendIndex = backendIndex
        self.originalName = originalName
        self.originalNameLiteral = originalNameLiteral
    }
}

/// Maps exposed names (`<server><separator><tool>`) to backends and back.
///
/// Every exposed name fits `^[A-Za-z0-9_-]{1,64}$`, the rule strict clients enforce. A tool name
/// with other characters is sanitised (each one becomes `_`) and a name over 64 characters is
/// shortened; either way it gets a suffix hashed from the server and the original tool name,
/// so the result is deterministic and two tools never share a name. Server names cannot contain
/// the separator (Config checks), so plain names of different servers never collide.
public final class Router {
    /// The longest exposed name.
    public static let maxNameLength = 64

    public let separator: String
    private var routes: [String: ToolRoute] = [:]
    /// The last name looked up from a literal and its route: consecutive calls to one tool
    /// skip building a String and hashing it.
    private var lastLiteral: [UInt8] = []
    private var lastRoute: ToolRoute?

    public init(separator: String) {
        self.separator = separator
    }

    /// The route for an exposed name.
    public func route(_ exposedName: String) -> ToolRoute? { routes[exposedName] }

    /// Looks a name up from its raw JSON string literal without decoding it in the common case.
    public func route(literal: UnsafeRawBufferPointer) -> ToolRoute? {
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

    private func lookUp(literal: UnsafeRawBufferPointer) -> ToolRoute? {
        let body = UnsafeRawBufferPointer(rebasing: literal[1..<(literal.count - 1)])
        if !body.contains(UInt8(ascii: "\\")) {
            return routes[String(decoding: body, as: UTF8.self)]
        }
        guard let name = try? JSONParser.parseString(literal) else { return nil }
        return routes[name]
    }

    /// The number of routes.
    public var count: Int { routes.count }

    /// Adds a route for `tool` of `server` and returns its exposed name.
    public func add(server: String, tool: String, backendIndex: Int) -> String {
        let plain = server + separator + tool
        var name = plain
        if !Router.isValidName(plain) || routes[plain] != nil {
            name = Router.disambiguated(server: server, separator: separator, tool: tool)
            var attempt = 1
            while routes[name] != nil {
                attempt += 1
                name = Router.disambiguated(server: server, separator: separator, tool: tool + "#\(attempt)")
            }
        }
        routes[name] = ToolRoute(backendIndex: backendIndex, originalName: tool, originalNameLiteral: jsonStringLiteral(tool))
        return name
    }

    /// True when `name` matches `^[A-Za-z0-9_-]{1,64}$`.
    public static func isValidName(_ name: String) -> Bool {
        let utf8 = name.utf8
        return !utf8.isEmpty && utf8.count <= maxNameLength && utf8.allSatisfy(isNameByte)
    }

    static func isNameByte(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == 0x5F || byte == 0x2D
    }

    /// `<server><sep><sanitised tool, cut to fit>_<8 hex digits of a hash of server and tool>`.
    static func disambiguated(server: String, separator: String, tool: String) -> String {
        let hash = fnv1a64(server + "\u{0}" + tool)
        let suffix = "_" + hex32(UInt32(truncatingIfNeeded: hash ^ (hash >> 32)))
        let sanitised = String(decoding: tool.utf8.map { isNameByte($0) ? $0 : UInt8(ascii: "_") }, as: UTF8.self)
        let room = maxNameLength - server.utf8.count - separator.utf8.count - suffix.utf8.count
        let kept = String(decoding: sanitised.utf8.prefix(max(room, 0)), as: UTF8.self)
        return server + separator + kept + suffix
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
