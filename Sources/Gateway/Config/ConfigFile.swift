#if canImport(Glibc)
import Glibc
#endif

// Reading a config file, and keeping the secrets it brought in out of what mcpd writes.

/// Reads a config file: at most `Config.maxFileSize` bytes, and valid UTF-8 (an invalid byte is
/// reported at its line and column, not replaced).
func readConfigFile(_ path: String) throws(ConfigError) -> String {
    switch readFile(path, maxBytes: Config.maxFileSize) {
    case .success(let bytes):
        return try configText(bytes, path: path)
    case .failure(.tooLarge):
        throw ConfigError(file: path, message: "the file is larger than \(Config.maxFileSize >> 20) MiB; is it the right file?")
    case .failure(.failed(let code)):
        throw ConfigError(file: path, message: "cannot read the file: \(String(cString: strerror(code)))")
    }
}

/// The text of a config file's bytes: valid UTF-8, or an error at the first invalid byte.
func configText(_ bytes: [UInt8], path: String) throws(ConfigError) -> String {
    if let text = String(validating: bytes, as: UTF8.self) { return text }
    let offset = firstInvalidUTF8(bytes)
    let before = bytes[..<offset]
    let line = before.reduce(1) { $1 == 0x0A ? $0 + 1 : $0 }
    let lineStart = before.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
    // The column counts characters, as libyaml's do.
    let column = before[lineStart...].reduce(1) { $1 & 0xC0 == 0x80 ? $0 : $0 + 1 }
    throw ConfigError(file: path, line: line, column: column,
                      message: "invalid UTF-8 (byte 0x\(String(bytes[offset], radix: 16, uppercase: true))); save the file as UTF-8")
}

/// The offset of the first byte that is not part of a well-formed UTF-8 sequence.
func firstInvalidUTF8(_ bytes: [UInt8]) -> Int {
    bytes.withUnsafeBufferPointer { buffer in
        guard let p = buffer.baseAddress else { return 0 }
        var index = 0
        while index < buffer.count {
            if p[index] < 0x80 {
                index += 1
                continue
            }
            let length = utf8SequenceLength(p, index, buffer.count)
            if length == 0 { return index }
            index += length
        }
        return buffer.count
    }
}

/// `text` with each of `secrets` replaced by `***`.
public func redact(_ text: String, _ secrets: [String]) -> String {
    var text = text
    for secret in secrets where text.contains(secret) {
        text = text.replacing(secret, with: "***")
    }
    return text
}

// MARK: JSON with comments

/// True when the text is JSON rather than YAML: its first character, after white space and
/// comments (Zed's settings.json starts with `// Zed settings` lines), is `{`.
func looksLikeJSON(_ text: String) -> Bool {
    let bytes = Array(text.utf8.prefix(64 << 10))
    var index = 0
    while index < bytes.count {
        switch bytes[index] {
        case 0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF:
            index += 1
        case 0x2F where index + 1 < bytes.count && bytes[index + 1] == 0x2F:
            while index < bytes.count && bytes[index] != 0x0A { index += 1 }
        case 0x2F where index + 1 < bytes.count && bytes[index + 1] == 0x2A:
            index += 2
            while index + 1 < bytes.count && !(bytes[index] == 0x2A && bytes[index + 1] == 0x2F) { index += 1 }
            index += 2
        case 0x7B:
            return true
        default:
            return false
        }
    }
    return false
}

/// JSON with comments (`//`, `/* */`) and trailing commas, as VS Code and Zed write their
/// files, made plain JSON: each comment byte and each trailing comma becomes a space (a newline
/// stays), so that lines and columns in errors still match the file.
func stripJSONComments(_ text: String) -> String {
    var bytes = Array(text.utf8)
    var index = 0
    var inString = false
    /// The last byte that was neither white space nor comment, outside strings.
    var lastSignificant: Int?
    while index < bytes.count {
        let byte = bytes[index]
        if inString {
            if byte == 0x5C { index += 2; continue }
            if byte == 0x22 { inString = false; lastSignificant = index }
            index += 1
            continue
        }
        switch byte {
        case 0x22:
            inString = true
        case 0x2F where index + 1 < bytes.count && bytes[index + 1] == 0x2F:
            while index < bytes.count && bytes[index] != 0x0A {
                bytes[index] = 0x20
                index += 1
            }
            continue
        case 0x2F where index + 1 < bytes.count && bytes[index + 1] == 0x2A:
            var end = index + 2
            while end + 1 < bytes.count && !(bytes[end] == 0x2A && bytes[end + 1] == 0x2F) { end += 1 }
            let stop = min(end + 2, bytes.count)
            for blank in index..<stop where bytes[blank] != 0x0A { bytes[blank] = 0x20 }
            index = stop
            continue
        case 0x7D, 0x5D:
            if let comma = lastSignificant, bytes[comma] == 0x2C { bytes[comma] = 0x20 }
            lastSignificant = index
        case 0x20, 0x09, 0x0A, 0x0D:
            break
        default:
            lastSignificant = index
        }
        index += 1
    }
    return String(decoding: bytes, as: UTF8.self)
}

// MARK: envFile

/// An `envFile` as read: its bytes, or why it could not be read.
public enum EnvFileContent: Sendable {
    case bytes([UInt8])
    case failed(String)

    /// The largest envFile mcpd reads.
    public static let maxSize = 1 << 20

    init(_ result: Result<[UInt8], FileReadFailure>) {
        switch result {
        case .success(let bytes): self = .bytes(bytes)
        case .failure(.tooLarge): self = .failed("larger than \(EnvFileContent.maxSize >> 20) MiB")
        case .failure(.failed(let code)): self = .failed(String(cString: strerror(code)))
        }
    }
}

enum EnvFileLine {
    case variable(String, String)
    case invalid(String)
}

/// The `NAME=value` lines of a dotenv file, by line number: `#` comments and blank lines are
/// skipped, `export ` is allowed, a value in single quotes is literal, one in double quotes
/// takes `\n`, `\"` and `\\`, and an unquoted value ends at ` #`.
func parseEnvFile(_ bytes: [UInt8]) -> [(Int, EnvFileLine)] {
    var result: [(Int, EnvFileLine)] = []
    let text = String(decoding: bytes, as: UTF8.self)
    for (offset, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        var line = raw.trimmingPrefix(while: { $0 == " " || $0 == "\t" })
        while line.last == "\r" || line.last == " " || line.last == "\t" { line = line.dropLast() }
        if line.isEmpty || line.hasPrefix("#") { continue }
        if line.hasPrefix("export ") { line = line.dropFirst(7).trimmingPrefix(while: { $0 == " " }) }
        guard let equals = line.firstIndex(of: "=") else {
            result.append((offset + 1, .invalid(String(line))))
            continue
        }
        let name = line[..<equals].trimmingCharacters(in: " \t")
        guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }) else {
            result.append((offset + 1, .invalid(String(line))))
            continue
        }
        var value = Substring(line[line.index(after: equals)...].trimmingCharacters(in: " \t"))
        if value.count >= 2, value.first == "'", value.last == "'" {
            value = value.dropFirst().dropLast()
        } else if value.count >= 2, value.first == "\"", value.last == "\"" {
            var unescaped = ""
            var characters = value.dropFirst().dropLast().makeIterator()
            while let character = characters.next() {
                guard character == "\\", let next = characters.next() else {
                    unescaped.append(character)
                    continue
                }
                unescaped.append(next == "n" ? "\n" : next == "t" ? "\t" : next)
            }
            value = Substring(unescaped)
        } else if let comment = value.firstRange(of: " #") {
            value = Substring(value[..<comment.lowerBound].trimmingCharacters(in: " \t"))
        }
        result.append((offset + 1, .variable(name, String(value))))
    }
    return result
}

extension StringProtocol {
    /// The text without the given characters at either end.
    func trimmingCharacters(in characters: String) -> String {
        var slice = Substring(self)
        while let first = slice.first, characters.contains(first) { slice = slice.dropFirst() }
        while let last = slice.last, characters.contains(last) { slice = slice.dropLast() }
        return String(slice)
    }
}
