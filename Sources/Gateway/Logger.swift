#if canImport(Glibc)
import Glibc
#endif

/// How much mcpd says.
public enum LogLevel: Int, Comparable, Sendable, CaseIterable {
    case debug = 0, info, warning, error

    public init?(name: String) {
        switch name.lowercased() {
        case "debug", "trace": self = .debug
        case "info": self = .info
        case "warning", "warn": self = .warning
        case "error": self = .error
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .debug: return "debug"
        case .info: return "info"
        case .warning: return "warning"
        case .error: return "error"
        }
    }

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Writes log lines to stderr with one `write(2)` each, never to stdout (in stdio mode stdout is
/// the protocol). Owned by the gateway and passed down; no global state.
public final class Logger {
    /// The least severe level written.
    public var level: LogLevel
    private let fd: Int32

    public init(level: LogLevel = .info, fd: Int32 = 2) {
        self.level = level
        self.fd = fd
    }

    @inline(__always) public func enabled(_ level: LogLevel) -> Bool { level >= self.level }

    public func debug(_ message: @autoclosure () -> String) { log(.debug, message()) }
    public func info(_ message: @autoclosure () -> String) { log(.info, message()) }
    public func warning(_ message: @autoclosure () -> String) { log(.warning, message()) }
    public func error(_ message: @autoclosure () -> String) { log(.error, message()) }

    /// Writes `mcpd: <level>: <message>`.
    public func log(_ level: LogLevel, _ message: @autoclosure () -> String) {
        guard enabled(level) else { return }
        writeLine("mcpd: \(level.name): \(message())")
    }

    /// Writes a line as it is (a newline is added).
    public func writeLine(_ line: String) {
        var text = line
        text.append("\n")
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 {
                    if n < 0 && errno == EINTR { continue }
                    return
                }
                offset += n
            }
        }
    }
}
