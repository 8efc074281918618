// The scalar forms a config file writes: durations, sizes and one-string command lines.

/// The longest duration a config may give (30 days), so deadlines never overflow.
public let maxDurationMs: UInt64 = 30 * 24 * 3_600_000

/// Parses `30s`, `500ms`, `2m`, `1h` or a bare number of seconds into milliseconds; nil when
/// malformed, negative or over `maxDurationMs`.
public func parseDuration(_ text: String) -> UInt64? {
    let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    let trimmed = text.trimmingSpaces
    var number = trimmed
    var factor = 1000.0
    for (suffix, unitFactor) in units where trimmed.hasSuffix(suffix) {
        number = trimmed.dropLast(suffix.count).trimmingSpaces
        factor = unitFactor
        break
    }
    guard let value = Double(number), value >= 0, value * factor <= Double(maxDurationMs) else { return nil }
    return UInt64(value * factor)
}

/// Parses `16MiB`, `64KiB`, `1GiB` (also `KB`/`MB`/`GB`, taken as binary) or a bare byte count.
public func parseSize(_ text: String) -> Int? {
    let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1 << 10), ("MB", 1 << 20),
                                  ("GB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
    let trimmed = text.trimmingSpaces
    for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
        guard let value = Int(trimmed.dropLast(suffix.count).trimmingSpaces), value >= 0 else { return nil }
        return value.multipliedReportingOverflow(by: factor).overflow ? nil : value * factor
    }
    return Int(trimmed).flatMap { $0 >= 0 ? $0 : nil }
}

/// Splits a command line into words the way a POSIX shell would for plain words, single and
/// double quotes and backslashes (no expansion). Nil when a quote is left open.
public func splitCommandLine(_ text: String) -> [String]? {
    var words: [String] = []
    var current = ""
    var inWord = false
    var quote: Character?
    var escaped = false
    for char in text {
        if escaped {
            current.append(char)
            escaped = false
            continue
        }
        if let open = quote {
            if char == open {
                quote = nil
            } else if char == "\\" && open == "\"" {
                escaped = true
            } else {
                current.append(char)
            }
            continue
        }
        switch char {
        case "\\":
            escaped = true
            inWord = true
        case "'", "\"":
            quote = char
            inWord = true
        case " ", "\t", "\n":
            if inWord {
                words.append(current)
                current = ""
                inWord = false
            }
        default:
            current.append(char)
            inWord = true
        }
    }
    if quote != nil || escaped { return nil }
    if inWord { words.append(current) }
    return words
}

extension StringProtocol {
    var trimmingSpaces: String {
        var slice = Substring(self)
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
