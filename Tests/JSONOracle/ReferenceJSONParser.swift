import Gateway
import Reactor

/// An independent JSON grammar, written plainly, as the oracle the scanner's (and the product
/// parser's) grammar is checked against. Test code only: mcpd has one grammar, `JSONCursor`'s.
/// Shared by the unit tests (GatewayTests) and the fuzz targets (Fuzz/), so it uses only the
/// public API of Gateway and builds in any configuration.
public enum ReferenceJSONParser {
    /// How strings (member names and values) appear in the tree.
    public enum Strings: Sendable {
        /// Decoded: escapes resolved (the value a reader sees).
        case decoded
        /// Raw: the body between the quotes as written, escapes kept (still validated); for
        /// checks on the spelling, such as a member name written with an escape.
        case raw
    }

    /// Parses a complete JSON text.
    public static func parse(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 128, strings: Strings = .decoded) throws(ScanError) -> JSONValue {
        var parser = Parser(bytes: bytes.bindMemory(to: UInt8.self), maxDepth: maxDepth, strings: strings)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.index != parser.bytes.count { throw ScanError.invalidJSON(offset: parser.index, reason: "trailing bytes after the JSON value") }
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

    /// Decodes one string literal (quotes included).
    public static func parseString(_ literal: UnsafeRawBufferPointer) throws(ScanError) -> String {
        var parser = Parser(bytes: literal.bindMemory(to: UInt8.self), maxDepth: 1, strings: .decoded)
        let value = try parser.parseString()
        guard parser.index == literal.count else { throw ScanError.invalidJSON(offset: parser.index, reason: "trailing bytes after the string") }
        return value
    }

    private struct Parser {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        let strings: Strings
        var index = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int, strings: Strings) {
            self.bytes = bytes
            self.maxDepth = maxDepth
            self.strings = strings
        }

        func fail(_ reason: String) -> ScanError { .invalidJSON(offset: index, reason: reason) }

        mutating func skipWhitespace() {
            while index < bytes.count, [0x20, 0x0A, 0x0D, 0x09].contains(bytes[index]) { index += 1 }
        }

        mutating func parseValue(depth: Int) throws(ScanError) -> JSONValue {
            skipWhitespace()
            guard index < bytes.count else { throw fail("unexpected end of input") }
            switch bytes[index] {
            case UInt8(ascii: "\""): return .string(try parseString())
            case UInt8(ascii: "{"):
                guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
                index += 1
                var object = JSONObject()
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "}") {
                    index += 1
                    return .object(object)
                }
                while true {
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a member name") }
                    let key = try parseString()
                    skipWhitespace()
                    guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    index += 1
                    let value = try parseValue(depth: depth + 1)
                    object.members.append((key, value))
                    skipWhitespace()
                    guard index < bytes.count else { throw fail("unterminated object") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "}") { index += 1; return .object(object) }
                    throw fail("expected ',' or '}'")
                }
            case UInt8(ascii: "["):
                guard depth < maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
                index += 1
                var items: [JSONValue] = []
                skipWhitespace()
                if index < bytes.count && bytes[index] == UInt8(ascii: "]") {
                    index += 1
                    return .array(items)
                }
                while true {
                    items.append(try parseValue(depth: depth + 1))
                    skipWhitespace()
                    guard index < bytes.count else { throw fail("unterminated array") }
                    if bytes[index] == UInt8(ascii: ",") { index += 1; continue }
                    if bytes[index] == UInt8(ascii: "]") { index += 1; return .array(items) }
                    throw fail("expected ',' or ']'")
                }
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                let start = index
                try skipNumber()
                return .number(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self))
            default: throw fail("unexpected byte")
            }
        }

        mutating func literal(_ text: String) throws(ScanError) {
            for byte in text.utf8 {
                guard index < bytes.count, bytes[index] == byte else { throw fail("invalid literal") }
                index += 1
            }
        }

        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

        mutating func skipNumber() throws(ScanError) {
            if bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
            if bytes[index] == UInt8(ascii: "0") { index += 1 } else { while index < bytes.count && isDigit(bytes[index]) { index += 1 } }
            if index < bytes.count && bytes[index] == UInt8(ascii: ".") {
                index += 1
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
                while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            }
            if index < bytes.count && (bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E")) {
                index += 1
                if index < bytes.count && (bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-")) { index += 1 }
                guard index < bytes.count, isDigit(bytes[index]) else { throw fail("invalid number") }
                while index < bytes.count && isDigit(bytes[index]) { index += 1 }
            }
        }

        mutating func hex4() throws(ScanError) -> UInt32 {
            guard bytes.count - index >= 4 else { throw fail("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let byte = bytes[index]
                guard let digit = UInt32(String(UnicodeScalar(byte)), radix: 16) else { throw fail("invalid \\u escape") }
                value = value << 4 | digit
                index += 1
            }
            return value
        }

        mutating func parseString() throws(ScanError) -> String {
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string") }
            index += 1
            let bodyStart = index
            var out: [UInt8] = []
            while true {
                guard index < bytes.count else { throw fail("unterminated string") }
                let byte = bytes[index]
                if byte == UInt8(ascii: "\"") {
                    index += 1
                    guard let text = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
                    if strings == .raw { return String(decoding: UnsafeBufferPointer(rebasing: bytes[bodyStart..<(index - 1)]), as: UTF8.self) }
                    return text
                }
                if byte < 0x20 { throw fail("control character in string") }
                if byte != UInt8(ascii: "\\") {
                    out.append(byte)
                    index += 1
                    continue
                }
                index += 1
                guard index < bytes.count else { throw fail("unterminated escape") }
                let escape = bytes[index]
                index += 1
                switch escape {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5C)
                case UInt8(ascii: "/"): out.append(0x2F)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if scalar >= 0xD800 && scalar <= 0xDBFF {
                        guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                            throw fail("lone high surrogate")
                        }
                        index += 2
                        let low = try hex4()
                        guard low >= 0xDC00 && low <= 0xDFFF else { throw fail("invalid low surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                        throw fail("lone low surrogate")
                    }
                    out.append(contentsOf: String(Character(UnicodeScalar(scalar)!)).utf8)
                default: throw fail("invalid escape")
                }
            }
        }
    }
}
