import Reactor

/// What a session is served over: it starts and stops reading its client, and closes.
protocol SessionTransport: AnyObject {
    func start(for session: ClientSession)
    /// Reads again (after back-pressure or start-up) if the session wants more.
    func resumeReading(for session: ClientSession)
    func stopReading()
    /// Closes, flushing what is queued for at most `flushDeadlineMs`.
    func close(flushDeadlineMs: UInt64)
}

/// The byte-stream transport of one client session: mcpd's stdin and stdout.
///
/// It frames lines (refusing and skipping one over `gateway.max_message_size`), hands each to
/// the session, stops reading while the client does not read mcpd's output or the session
/// holds as much as it may, and closes both streams at the end. The session decides what the
/// frames mean and writes its answers to `output`.
final class StdioTransport: SessionTransport {
    let input: IOStream
    /// Where the session's answers and notifications go.
    let output: IOStream
    private var framer: LineFramer
    private var discardingLongLine = false

    init(input: IOStream, output: IOStream, maxLineLength: Int) {
        self.input = input
        self.output = output
        self.framer = LineFramer(maxLineLength: maxLineLength)
        input.minimumReadSize = StdioTransport.minimumReadSize
        input.framesAhead = StdioTransport.framesAhead
        output.earlyWriteFirst = StdioTransport.earlyWriteFirst
        output.earlyWriteEvery = StdioTransport.earlyWriteEvery
    }

    /// Each read of the client (and of a backend's answers) is offered at least this much room,
    /// what a pipe holds before it grows. With 4 KiB, 100 kB calls at depth 16 took 4 reads a
    /// call instead of 2.4, and 3.3 context switches instead of 2.1 (perf stat).
    static let minimumReadSize = 64 << 10
    /// A partial message that must move (its storage full, the messages before it still being
    /// written) moves to storage with room for this many more of its size (at most 4 MiB
    /// more): with 100 kB calls at depth 16 it moved every 2-3 messages, and copying it took
    /// 3.3% of the CPU that mcpd and the backend share (perf).
    static let framesAhead = 8

    /// The first answer queued in a loop turn is written at once, and every sixth after it with
    /// those before it, not only at the turn's end: when one read from a backend brings many
    /// answers, the client, idle until then, starts on the first while mcpd works through the
    /// rest. Each write wakes the client, so later answers still go several to a write.
    /// Depth-16, 100-byte calls/s against the C relay (medians of 7-11 interleaved runs): none
    /// early 0.86, every sixth 0.92-0.95, the first and every sixth after it 0.97-0.99.
    /// Every second answer fell to 0.72 at 1000 bytes; writing once 512 bytes were queued
    /// reached 0.95 at 100 bytes but fell to 0.72 at 1000 (Benchmarks/README.md).
    static let earlyWriteFirst = 1
    static let earlyWriteEvery = 6

    /// Starts reading for `session`. Unchecked references: the session owns its transport and
    /// closes it (which drops these callbacks) before it goes, and the transport owns its
    /// streams. They are captured, not stored, so that the hot path passes the session along
    /// without retaining it for every frame.
    func start(for session: ClientSession) {
        input.onRead = { [unowned(unsafe) self, unowned(unsafe) session] buffer in readFrames(&buffer, session) }
        input.onReadEnd = { [unowned(unsafe) self, unowned(unsafe) session] error in inputDidEnd(error, session) }
        output.onWriteError = { [unowned(unsafe) session] error in session.outputFailed(error) }
        output.onWritable = { [unowned(unsafe) self, unowned(unsafe) session] in
            resumeReading(for: session)
            session.gateway.clientOutputDrained()
        }
        input.startReading()
    }

    /// Reads again (after back-pressure or start-up) if the session wants more.
    func resumeReading(for session: ClientSession) {
        if session.wantsInput { input.startReading() }
    }

    func stopReading() { input.stopReading() }

    private func readFrames(_ buffer: inout ByteBuffer, _ session: ClientSession) {
        while !session.finished {
            let next = framer.next(&buffer)
            // The common case first, by a compare: a switch here is a jump table, whose
            // indirect branch is mispredicted after every context switch.
            if case .line(let frame) = next, !discardingLongLine {
                session.receive(frame)
                continue
            }
            switch next {
            case .needMore:
                if !output.isWritable || session.holdsTooMuch { input.stopReading() }
                return
            case .skippedLongLine:
                // A whole oversized line (or the tail of one already reported) was dropped.
                if !discardingLongLine { reportLongLine(session) }
                discardingLongLine = false
            case .tooLong:
                if !discardingLongLine { reportLongLine(session) }
                discardingLongLine = true
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                framer.reset()
                return
            case .line(let frame):
                if discardingLongLine {
                    discardingLongLine = false
                    continue
                }
                session.receive(frame)
            }
        }
    }

    private func reportLongLine(_ session: ClientSession) {
        session.sendError(id: .null, code: ErrorCode.invalidRequest,
                          message: "Invalid request: message longer than \(framer.maxLineLength) bytes (gateway.max_message_size); dropped")
    }

    private func inputDidEnd(_ error: UVError, _ session: ClientSession) {
        // A last line without a newline still counts.
        if input.inbound.readableBytes > 0 && !discardingLongLine {
            let last = input.inbound.slice(from: 0, length: input.inbound.readableBytes)
            input.inbound.moveReaderIndex(forwardBy: last.readableBytes)
            session.receive(last)
        }
        session.inputDidEnd(error)
    }

    /// Closes both streams, flushing what is queued for at most `flushDeadlineMs` (a client that
    /// stopped reading cannot hold mcpd open).
    func close(flushDeadlineMs: UInt64) {
        input.close()
        output.closeAfterFlush(deadlineMs: flushDeadlineMs)
    }
}
