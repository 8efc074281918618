#if canImport(Glibc)
import Glibc
#endif

/// Stops the run when `condition` is false: prints `message` (and the input, escaped) to stderr,
/// then aborts, so that libFuzzer saves the input as a crash file and reports its path.
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    input: UnsafeRawBufferPointer? = nil, file: StaticString = #fileID, line: UInt = #line) {
    if condition() { return }
    var report = "\n==== fuzz check failed at \(file):\(line): \(message())\n"
    if let input { report += "input (\(input.count) bytes): \(describe(input))\n" }
    let bytes = Array(report.utf8)
    var offset = 0
    while offset < bytes.count {
        let n = bytes.withUnsafeBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
        if n <= 0 { break }
        offset += n
    }
    abort()
}

/// Bytes as a Swift string literal's body: printable ASCII as is, the rest escaped.
public func describe<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var text = ""
    for byte in bytes {
        switch byte {
        case 0x5C: text += "\\\\"
        case 0x22: text += "\\\""
        case 0x0A: text += "\\n"
        case 0x0D: text += "\\r"
        case 0x09: text += "\\t"
        case 0x20..<0x7F: text.unicodeScalars.append(UnicodeScalar(byte))
        default: text += "\\u{\(String(byte, radix: 16))}"
        }
    }
    return "\"" + text + "\""
}

/// FNV-1a of `bytes`: a deterministic source of choices drawn from the input itself.
public func fnv1a(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var hash: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
    return hash
}
