import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// One call of a command tool (`command_tools:`): the program runs in a process group of its
/// own with the call's arguments, byte for byte, as JSON on its stdin. Its stdout is the result
/// (text, or with `output: json` a JSON value: structured content and its text twin); a non-zero
/// exit is an `isError` result with the tail of its stderr; at the deadline its group is killed
/// and the call fails; stdout past `max_output` kills it too, and is an error, never a truncated
/// success. A session that ends kills its runs.
final class CommandRun {
    let tool: CommandToolConfig
    unowned(unsafe) let session: ClientSession
    /// The client's request id, and the request (its id range) for the answer.
    let frame: ByteBuffer
    let idRange: Range<Int>
    private var child: ChildProcess?
    private var output = ByteBuffer(capacity: 0)
    private var errorTail: [UInt8] = []
    private var exit: ExitStatus?
    private var stdoutEnded = false
    private var failure: String?
    private var timer: LoopTimer?
    private(set) var done = false

    static let stderrTail = 2048

    init(tool: CommandToolConfig, session: ClientSession, frame: ByteBuffer, idRange: Range<Int>) {
        self.tool = tool
        self.session = session
        var copy = ByteBuffer(capacity: frame.readableBytes)
        copy.append(frame)
        self.frame = copy
        self.idRange = idRange
    }

    /// Starts the program with `input` on its stdin.
    func start(input: ByteBuffer) {
        let gateway = session.gateway
        var environment = gateway.backendEnvironment
        if !tool.env.isEmpty {
            let overridden = Set(tool.env.map(\.key))
            environment.removeAll { entry in overridden.contains(String(entry.prefix { $0 != "=" })) }
            environment += tool.env.map { "\($0.key)=\($0.value)" }
        }
        let options = SpawnOptions(executable: tool.command[0], arguments: Array(tool.command.dropFirst()), environment: environment,
                                   workingDirectory: tool.cwd)
        let child: ChildProcess
        do {
            child = try ChildProcess.spawn(loop: gateway.loop, options: options)
        } catch {
            return finish(error: "command tool \"\(tool.name)\" could not start \(tool.command[0]): \(error)")
        }
        self.child = child
        child.onExit = { [unowned self] status in
            exit = status
            complete()
        }
        child.stdout.onRead = { [unowned self] buffer in
            if output.readableBytes + buffer.readableBytes > tool.maxOutput {
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                kill(because: "wrote more than max_output (\(tool.maxOutput) bytes) on stdout")
                return
            }
            output.append(buffer)
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        }
        child.stdout.onReadEnd = { [unowned self] _ in
            stdoutEnded = true
            complete()
        }
        child.stderr.onRead = { [unowned self] buffer in
            errorTail.append(contentsOf: buffer.readablePointer)
            if errorTail.count > CommandRun.stderrTail { errorTail.removeFirst(errorTail.count - CommandRun.stderrTail) }
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        }
        child.stdin.onWriteError = { _ in }  // a program that does not read its input
        child.stdout.startReading()
        child.stderr.startReading()
        child.stdin.write(input)
        child.stdin.closeAfterFlush()
        let timeout = tool.timeoutMs ?? gateway.config.gateway.requestTimeoutMs
        let timer = LoopTimer(loop: gateway.loop)
        self.timer = timer
        timer.start(timeout: timeout) { [unowned self] in kill(because: "did not finish within \(formatSeconds(timeout)) (its timeout); its process group was killed") }
    }

    /// Kills the program's process group; the call fails with `reason`.
    func kill(because reason: String) {
        guard !done else { return }
        if failure == nil { failure = reason }
        if child?.signalGroup(SIGKILL) != true { complete() }
    }

    /// Once the program exited and its stdout ended: the answer.
    private func complete() {
        guard !done else { return }
        if failure == nil && (exit == nil || !stdoutEnded) { return }
        if failure != nil && exit == nil && child != nil { return }  // killed: wait for the exit
        if let failure { return finish(error: "command tool \"\(tool.name)\" \(failure)") }
        guard case .exited(0) = exit! else {
            let tail = String(decoding: errorTail, as: UTF8.self).trimmingTrailingWhitespace
            return finish(error: "command tool \"\(tool.name)\" failed (\(exit!))\(tail.isEmpty ? "" : ": \(tail)")")
        }
        let text = String(decoding: output.readablePointer, as: UTF8.self)
        var result = JSONObject()
        if tool.json {
            guard let value = try? JSONParser.parse(output) else {
                return finish(error: "command tool \"\(tool.name)\" has output: json, but its stdout is not one JSON value: \(text.prefix(200))")
            }
            result["content"] = .array([.object(JSONObject([("type", "text"), ("text", .string(value.jsonText))]))])
            if !session.predatesStructuredOutput, value.objectValue != nil { result["structuredContent"] = value }
        } else {
            result["content"] = .array([.object(JSONObject([("type", "text"), ("text", .string(text))]))])
        }
        finish(result: result)
    }

    private func finish(error message: String) {
        finish(result: JSONObject([("content", .array([.object(JSONObject([("type", "text"), ("text", .string(redact(message, session.gateway.config.secrets)))]))])),
                                   ("isError", true)]))
    }

    private func finish(result: JSONObject) {
        guard !done else { return }
        done = true
        release(kill: false)
        session.commandRunFinished(self, result: result)
    }

    /// Lets go of the timer and the process, whose callbacks may not outlive this run (the
    /// reaper reports an exit after the run is gone).
    private func release(kill: Bool) {
        timer?.close()
        timer = nil
        guard let child else { return }
        if kill { child.signalGroup(SIGKILL) }
        child.onExit = nil
        child.stdout.onRead = nil
        child.stdout.onReadEnd = nil
        child.stderr.onRead = nil
        child.stdin.onWriteError = nil
        child.close()
        self.child = nil
    }

    /// The session ended: the program is killed and nothing is answered.
    func abandon() {
        guard !done else { return }
        done = true
        release(kill: true)
    }
}

extension String {
    var trimmingTrailingWhitespace: String {
        var text = Substring(self)
        while let last = text.last, last.isWhitespace { text = text.dropLast() }
        return String(text)
    }
}
