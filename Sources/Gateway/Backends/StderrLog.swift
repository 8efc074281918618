import Reactor

/// A backend's stderr, copied into mcpd's log line by line as `[name] line` (at the server's
/// `stderr:` level, default info): at most
/// `linesPerSecond` lines a second (the rest are counted and reported), each cut at 4 KiB, and
/// lines over 64 KiB dropped whole. The pipe is always drained, so a flood never stalls the
/// backend's stdout.
struct StderrLog {
    let name: String
    private var framer = LineFramer(maxLineLength: 64 << 10)
    private var discardingLine = false
    private var windowStart: UInt64 = 0
    private var linesInWindow = 0
    private var suppressed = 0
    /// The last lines, for the reason given when the backend's circuit opens.
    private(set) var lastLines: [String] = []

    /// stderr lines logged per second before the rest are counted and dropped.
    static let linesPerSecond = 200

    init(name: String) { self.name = name }

    /// A new process: a line cut off by the last one is not continued.
    mutating func reset() {
        framer = LineFramer(maxLineLength: 64 << 10)
        discardingLine = false
        unlogged = 0
    }

    /// The level its lines are logged at (`stderr:` per server); nil: not logged (they are
    /// still kept for failure reasons).
    var level: LogLevel? = .info
    /// True while a backend that never became ready starts again: its lines were logged in
    /// full on the first failed start, so they are counted now, and the failure summarises them.
    var summarizing = false
    /// Lines not logged while summarizing.
    private(set) var unlogged = 0
    /// True once a line was logged: only then may later starts summarise.
    private(set) var loggedAny = false

    /// Logs the complete lines in `buffer`.
    mutating func read(_ buffer: inout ByteBuffer, now: UInt64, log: Logger) {
        while true {
            switch framer.next(&buffer) {
            case .needMore:
                return
            case .skippedLongLine(let length):
                if !discardingLine { write("(a stderr line of \(length) bytes was dropped)", now: now, log: log) }
                discardingLine = false
            case .tooLong:
                if !discardingLine {
                    write(String(decoding: buffer.readablePointer.prefix(4096), as: UTF8.self) + " ... (line truncated)", now: now, log: log)
                }
                discardingLine = true
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                framer.reset()
                return
            case .line(let line):
                if discardingLine {
                    discardingLine = false
                    continue
                }
                write(String(decoding: line.readablePointer.prefix(4096), as: UTF8.self), now: now, log: log)
            }
        }
    }

    private mutating func write(_ line: String, now: UInt64, log: Logger) {
        if lastLines.count == 3 { lastLines.removeFirst() }
        lastLines.append(String(line.prefix(200)))
        if now - windowStart >= 1000 {
            if suppressed > 0, let level {
                log.backendLine(name, "(\(suppressed) stderr lines dropped: over \(StderrLog.linesPerSecond)/s)", level: max(level, .info))
            }
            windowStart = now
            linesInWindow = 0
            suppressed = 0
        }
        linesInWindow += 1
        if linesInWindow > StderrLog.linesPerSecond {
            suppressed += 1
            return
        }
        guard let level else { return }
        if summarizing {
            unlogged += 1
            return
        }
        log.backendLine(name, line, level: level)
        loggedAny = true
    }
}
