import Reactor

/// A JSON value, for the messages mcpd builds or reads itself (initialize, lists, config in
/// JSON form). Routed traffic never becomes a `JSONValue`. Numbers keep their literal text so
/// that `9223372036854775808` or `1e400` survive a round trip byte for byte; objects keep
/// member order.
public enum JSONValue: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number's literal text.
    case number(String)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// A number from an integer.
    public static func int(_ value: Int) -> JSONValue { .number(String(value)) }

    /// The member `key` of an object, or nil.
    public subscript(key: String) -> JSONValue? {
        if case .object(let object) = self { return object[key] }
        return nil
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// Serialises compactly (no spaces), as one line.
    public func write(to buffer: inout ByteBuffer) {
        switch self {
        case .null: buffer.append(string: "null")
        case .bool(let value): buffer.append(string: value ? "true" : "false")
        case .number(let text): buffer.append(string: text)
        case .string(let text): writeJSONString(text, to: &buffer)
        case .array(let items):
            buffer.appendByte(UInt8(ascii: "["))
            for (index, item) in items.enumerated() {
                if index > 0 { buffer.appendByte(UInt8(ascii: ",")) }
                item.write(to: &buffer)
            }
            buffer.appendByte(UInt8(ascii: "]"))
        case .object(let object):
            buffer.appendByte(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { buffer.appendByte(UInt8(ascii: ",")) }
                writeJSONString(member.key, to: &buffer)
                buffer.appendByte(UInt8(ascii: ":"))
                member.value.write(to: &buffer)
            }
            buffer.appendByte(UInt8(ascii: "}"))
        }
    }

    /// The compact serialisation as a buffer.
    public var serialized: ByteBuffer {
        var buffer = ByteBuffer(capacity: 256)
        write(to: &buffer)
        return buffer
    }

    /// The compact serialisation as a string.
    public var jsonText: String { serialized.string }
}

/// An object with its members in order. Lookup is linear: objects mcpd builds are small.
public struct JSONObject: Equatable, Sendable {
    public var members: [(key: String, value: JSONValue)]

    public init(_ members: [(key: String, value: JSONValue)] = []) {
        self.members = members
    }

    public subscript(key: String) -> JSONValue? {
        get { members.first { $0.key == key }?.value }
        set {
            if let index = members.firstIndex(where: { $0.key == key }) {
                if let newValue { members[index].value = newValue } else { members.remove(at: index) }
            } else if let newValue {
                members.append((key, newValue))
            }
        }
    }

    public var isEmpty: Bool { members.isEmpty }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.members.count == rhs.members.count
            && zip(lhs.members, rhs.members).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(String(value)) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { (key: $0.0, value: $0.1) }))
    }
    public init(nilLiteral: ()) { self = .null }
}

/// Writes `text` as a JSON string literal: quotes, backslashes and control characters escaped,
/// everything else as UTF-8.
public func writeJSONString(_ text: String, to buffer: inout ByteBuffer) {
    buffer.appendByte(UInt8(ascii: "\""))
    let hex: [UInt8] = Array("0123456789abcdef".utf8)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "\""): buffer.append(string: "\\\"")
        case UInt8(ascii: "\\"): buffer.append(string: "\\\\")
        case 0x0A: buffer.append(string: "\\n")
        case 0x0D: buffer.append(string: "\\r")
        case 0x09: buffer.append(string: "\\t")
        case 0x08: buffer.append(string: "\\b")
        case 0x0C: buffer.append(string: "\\f")
        case 0..<0x20:
            buffer.append(string: "\\u00")
            buffer.appendByte(hex[Int(byte >> 4)])
            buffer.appendByte(hex[Int(byte & 0xF)])
        default: buffer.appendByte(byte)
        }
    }
    buffer.appendByte(UInt8(ascii: "\""))
}

/// A JSON string literal for `text`, as a buffer.
public func jsonStringLiteral(_ text: String) -> ByteBuffer {
    var buffer = ByteBuffer(capacity: text.utf8.count + 2)
    writeJSONString(text, to: &buffer)
    return buffer
}

/// Parses JSON text into a `JSONValue` (cold paths only; routing uses `JSONScanner`). The
/// grammar is `JSONCursor`'s, the scanner's own: what mcpd routes and what it parses are
/// accepted by the same code.
public enum JSONParser {
    /// Parses a complete JSON text.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 128) throws(ScanError) -> JSONValue {
        var cursor = JSONCursor(bytes: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!,
                                count: bytes.count, maxDepth: min(max(maxDepth, 1), 128))
        cursor.skipWhitespace()
        let value = try cursor.parseValue(depth: 0)
        cursor.skipWhitespace()
        if cursor.index != cursor.count { throw ScanError.invalidJSON(offset: cursor.index, reason: "trailing bytes after the JSON value") }
        return value
    }

    /// Parses the readable bytes of a buffer.
    public static func parse(_ buffer: ByteBuffer) throws(ScanError) -> JSONValue {
        try withExtendedLifetime(buffer) { () throws(ScanError) in try parse(UnsafeRawBufferPointer(buffer.readablePointer)) }
    }

    /// Parses a string.
    public static func parse(_ text: String) throws(ScanError) -> JSONValue {
        try parse(ByteBuffer(string: text))
    }

    /// Decodes one string literal (quotes included), validating it.
    public static func parseString(_ literal: UnsafeRawBufferPointer) throws(ScanError) -> String {
        var cursor = JSONCursor(bytes: literal.baseAddress?.assumingMemoryBound(to: UInt8.self) ?? UnsafePointer(bitPattern: 1)!,
                                count: literal.count, maxDepth: 1)
        guard literal.count >= 2, literal[0] == UInt8(ascii: "\"") else { throw ScanError.invalidJSON(offset: 0, reason: "expected a string") }
        let hadEscape = try cursor.skipString()
        guard cursor.index == literal.count else { throw ScanError.invalidJSON(offset: cursor.index, reason: "trailing bytes after the string") }
        return cursor.decodeString(1..<(literal.count - 1), hadEscape: hadEscape)
    }
}

/// Building trees on the cursor's grammar.
extension JSONCursor {
    /// Parses the value at the cursor (whitespace skipped), at nesting depth `depth`.
    mutating func parseValue(depth: Int) throws(ScanError) -> JSONValue {
        guard index < count else { throw fail("unexpected end of input") }
        let byte = bytes[index]
        switch byte {
        case UInt8(ascii: "\""):
            let start = index
            let hadEscape = try skipString()
            return .string(decodeString((start + 1)..<(index - 1), hadEscape: hadEscape))
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
            var object = JSONObject()
            guard openContainer(closer: UInt8(ascii: "}")) else { return .object(object) }
            repeat {
                let (key, hasEscape, _) = try memberName()
                let name = decodeString(key, hadEscape: hasEscape)
                object.members.append((name, try parseValue(depth: depth + 1)))
            } while try nextInContainer(closer: UInt8(ascii: "}"))
            return .object(object)
        case UInt8(ascii: "["):
            guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
            var items: [JSONValue] = []
            guard openContainer(closer: UInt8(ascii: "]")) else { return .array(items) }
            repeat {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
            } while try nextInContainer(closer: UInt8(ascii: "]"))
            return .array(items)
        case UInt8(ascii: "t"):
            try skipLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try skipLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try skipLiteral("null")
            return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let start = index
            try skipNumber()
            return .number(String(decoding: UnsafeBufferPointer(start: bytes + start, count: index - start), as: UTF8.self))
        default:
            throw fail("unexpected byte 0x\(String(byte, radix: 16))")
        }
    }

    /// The text of a string body that `skipString` accepted (so its escapes and UTF-8 are
    /// valid): the bytes as they are, or with its escapes decoded.
    func decodeString(_ body: Range<Int>, hadEscape: Bool) -> String {
        let source = UnsafeBufferPointer(start: bytes + body.lowerBound, count: body.count)
        if !hadEscape { return String(decoding: source, as: UTF8.self) }
        var out: [UInt8] = []
        out.reserveCapacity(source.count)
        var i = 0
        while i < source.count {
            let byte = source[i]
            if byte != UInt8(ascii: "\\") {
                out.append(byte)
                i += 1
                continue
            }
            let escape = source[i + 1]
            i += 2
            switch escape {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = hex4(source.baseAddress! + i)!
                i += 4
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    let low = hex4(source.baseAddress! + i + 2)!
                    i += 6
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                }
                out.append(contentsOf: String(Character(UnicodeScalar(scalar)!)).utf8)
            default: out.append(escape)  // '"', '\\', '/'
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
