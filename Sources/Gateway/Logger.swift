import Reactor
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

/// How log lines look: `text` (`2026-12-07T17:52:31.866Z mcpd: info: ...`, a backend's
/// stderr as `... [server] line`) or `json` (one object a line: time, level, source, msg).
public enum LogFormat: String, Sendable {
    case text, json
}

/// Writes log lines to stderr, never to stdout (in stdio mode stdout is the protocol). Owned by
/// the gateway and passed down; no global state.
///
/// Before the loop runs (and after it), a line is one blocking `write(2)`. While it runs
/// (`attach`), lines are queued on a non-blocking stream and written by the loop: a reader that
/// is slow or gone never blocks it. Past `maxQueuedBytes` lines are dropped and counted, and
/// once the reader catches up one line says how many were lost.
public final class Logger {
    /// The least severe level written.
    public var level: LogLevel
    private let fd: Int32
    /// The loop's stream on `fd`, while attached.
    private var stream: IOStream?
    /// Lines dropped since the last report.
    private var dropped = 0
    /// Set when stderr failed for good (its reader is gone): later lines are dropped silently.
    private var broken = false
    /// Strings never written: each becomes `***` (values from `${VAR}` in the config).
    public var secrets: [String] = []
    public var format: LogFormat = .text
    /// RFC 3339 UTC timestamps with milliseconds at the start of each line (`json` always has
    /// them).
    public var timestamps = true

    /// The most bytes of log lines waiting for stderr's reader.
    public static let maxQueuedBytes = 64 << 10

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
        writeLine(format(level, source: nil, message()))
    }

    /// A line with fields: in `json`, each is a member of the object beside `msg` (for
    /// scripts that read the log); in `text`, the message says it all.
    public func log(_ level: LogLevel, _ message: @autoclosure () -> String, fields: @autoclosure () -> [(String, JSONValue)]) {
        guard enabled(level) else { return }
        writeLine(format(level, source: nil, message(), fields: format == .json ? fields() : []))
    }

    /// A line of a backend's stderr, at `level`.
    public func backendLine(_ server: String, _ line: String, level: LogLevel) {
        guard enabled(level) else { return }
        writeLine(format(level, source: server, line))
    }

    /// The line as `format` says.
    private func format(_ level: LogLevel, source: String?, _ message: String, fields: [(String, JSONValue)] = []) -> String {
        switch format {
        case .text:
            let text = source.map { "[\($0)] \(message)" } ?? "mcpd: \(level.name): \(message)"
            return timestamps ? "\(Logger.timestamp()) \(text)" : text
        case .json:
            var line = ByteBuffer(capacity: message.utf8.count + 80)
            line.append(string: "{\"time\":\"\(Logger.timestamp())\",\"level\":\"\(level.name)\",\"source\":")
            writeJSONString(source ?? "mcpd", to: &line)
            line.append(string: ",\"msg\":")
            writeJSONString(redact(message, secrets), to: &line)
            for (key, value) in fields {
                line.append(string: ",")
                writeJSONString(key, to: &line)
                line.append(string: ":")
                value.write(to: &line)
            }
            line.append(string: "}")
            return line.string
        }
    }

    /// The wall-clock time, RFC 3339 in UTC with milliseconds: `2026-12-07T17:52:31.866Z`.
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(now.tv_nsec / 1_000_000)
        let ms = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(ms)Z"
    }

    /// From now on lines go through `loop` without blocking. Stays synchronous when stderr
    /// cannot be watched (closed, or of a kind libuv does not handle).
    public func attach(to loop: EventLoop) {
        guard stream == nil, let stream = try? IOStream.open(loop: loop, fd: fd) else { return }
        stream.highWatermark = Logger.maxQueuedBytes
        stream.lowWatermark = Logger.maxQueuedBytes / 4
        stream.onWritable = { [unowned self] in reportDropped() }
        stream.onWriteError = { [unowned self] _ in broken = true }
        self.stream = stream
    }

    /// Back to blocking writes: what is queued is flushed for at most `flushDeadlineMs`, then
    /// dropped (a stalled reader cannot hold mcpd open).
    public func detach(flushDeadlineMs: UInt64) {
        guard let stream else { return }
        reportDropped()
        self.stream = nil
        stream.closeAfterFlush(deadlineMs: flushDeadlineMs)
    }

    /// Writes a line as it is (a newline is added).
    public func writeLine(_ line: String) {
        var text = secrets.isEmpty ? line : redact(line, secrets)
        text.append("\n")
        guard let stream else {
            writeBlocking(text)
            return
        }
        if broken { return }
        guard stream.isWritable else {
            dropped += 1
            return
        }
        reportDropped()
        stream.write(string: text)
    }

    /// Says how many lines were dropped, once there is room again.
    private func reportDropped() {
        guard dropped > 0, let stream, !broken else { return }
        let count = dropped
        dropped = 0
        stream.write(string: format(.warning, source: nil, "\(count) log lines dropped: stderr was not read fast enough") + "\n")
    }

    private func writeBlocking(_ text: String) {
        var text = text
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
