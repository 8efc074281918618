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
