import Reactor

/// One call of a pipeline (`pipelines:`): its steps are `tools/call`s of exposed names, made by
/// a session of the gateway's own with the caller's view (so roles apply to every step), stage
/// after stage, the steps of a `parallel:` stage at once. The first step that fails (an error,
/// or an `isError` result) ends the pipeline with an `isError` result that names it; later
/// steps do not run, and steps still running are cancelled. One deadline covers the whole
/// pipeline. A caller that asked for progress gets one notification per finished step.
final class PipelineRun: SessionTransport {
    let pipeline: PipelineConfig
    unowned(unsafe) let owner: ClientSession
    let frame: ByteBuffer
    let idRange: Range<Int>
    /// The caller's `_meta.progressToken`, as JSON text.
    private let progressToken: String?
    private var steps: ClientSession!
    private var context: PipelineTemplate.Context
    private var stage = 0
    /// Steps in flight, by the id of their call.
    private var waiting: [Int: PipelineConfig.Step] = [:]
    private var nextID = 1
    private var finishedSteps = 0
    /// True while a stage's calls are being sent (answers given at once wait for the rest).
    private var issuing = false
    private var timer: LoopTimer?
    private(set) var done = false

    /// How deep pipelines may call pipelines.
    static let maxDepth = 8

    init(pipeline: PipelineConfig, owner: ClientSession, frame: ByteBuffer, idRange: Range<Int>, input: JSONValue, progressToken: String?) {
        self.pipeline = pipeline
        self.owner = owner
        var copy = ByteBuffer(capacity: frame.readableBytes)
        copy.append(frame)
        self.frame = copy
        self.idRange = idRange
        self.progressToken = progressToken
        context = PipelineTemplate.Context(input: input)
        let output = SessionOutput(deliver: { [unowned self] message, id in deliver(message, answering: id) })
        let session = ClientSession(gateway: owner.gateway, transport: self, output: output, label: "\(owner.label)/\(pipeline.name)", view: owner.view)
        session.isInitialized = true
        session.era = .handshake
        session.negotiatedVersion = ProtocolVersion.latest
        session.pipelineDepth = owner.pipelineDepth + 1
        steps = session
        owner.gateway.addSession(session)
    }

    // MARK: SessionTransport (the steps' session reads nothing)

    func start(for session: ClientSession) {}
    func resumeReading(for session: ClientSession) {}
    func stopReading() {}
    func close(flushDeadlineMs: UInt64) {}

    // MARK: Running

    func start() {
        let timeout = pipeline.timeoutMs ?? owner.gateway.config.gateway.requestTimeoutMs
        let timer = LoopTimer(loop: owner.gateway.loop)
        self.timer = timer
        timer.start(timeout: timeout) { [unowned self] in
            let running = waiting.values.map { "\"\($0.id)\"" }.sorted().joined(separator: ", ")
            fail("did not finish within \(formatSeconds(timeout)) (its timeout)\(running.isEmpty ? "" : "; still running: step \(running)")")
        }
        runStage()
    }

    private func runStage() {
        guard !done else { return }
        guard stage < pipeline.stages.count else { return succeed() }
        issuing = true
        for step in pipeline.stages[stage] where !done {
            let arguments: JSONValue
            do {
                arguments = try PipelineTemplate.render(step.arguments, context)
            } catch {
                return fail("step \"\(step.id)\" (\(step.tool)): \(error.message)")
            }
            let id = nextID
            nextID += 1
            waiting[id] = step
            var call = ByteBuffer(capacity: 128)
            call.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
            call.append(decimal: id)
            call.append(string: ",\"method\":\"tools/call\",\"params\":{\"name\":")
            call.append(jsonStringLiteral(step.tool))
            call.append(string: ",\"arguments\":")
            arguments.write(to: &call)
            call.append(string: "}}")
            steps.receive(call)
        }
        issuing = false
        advanceIfStageDone()
    }

    private func advanceIfStageDone() {
        guard !done, !issuing, waiting.isEmpty else { return }
        stage += 1
        runStage()
    }

    /// A message of the steps' session: a step's answer, a backend's request (refused: a
    /// pipeline cannot answer sampling, elicitation or roots), or a notification (dropped).
    private func deliver(_ message: ByteBuffer, answering: RawValue?) {
        guard !done, let parsed = (try? JSONParser.parse(message))?.objectValue else { return }
        if parsed["method"] != nil {
            if let id = parsed["id"] {
                var refusal = ByteBuffer(capacity: 160)
                refusal.append(string: "{\"jsonrpc\":\"2.0\",\"id\":")
                id.write(to: &refusal)
                refusal.append(string: ",\"error\":{\"code\":-32601,\"message\":\"a step of a pipeline cannot answer requests to the client\"}}")
                let session = steps!
                owner.gateway.loop.execute { session.receive(refusal) }
            }
            return
        }
        guard case .number(let text) = parsed["id"] ?? .null, let id = Int(text), let step = waiting.removeValue(forKey: id) else { return }
        if let error = parsed["error"]?.objectValue {
            return fail("step \"\(step.id)\" (\(step.tool)) failed: \(error["message"]?.stringValue ?? "error")")
        }
        let result = parsed["result"]?.objectValue ?? JSONObject()
        if result["isError"] == .bool(true) {
            let text = (result["content"]?.arrayValue ?? []).compactMap { $0.objectValue?["text"]?.stringValue }.joined(separator: "\n")
            return fail("step \"\(step.id)\" (\(step.tool)) failed: \(text)")
        }
        context.steps[step.id] = result
        finishedSteps += 1
        sendProgress(step)
        advanceIfStageDone()
    }

    private func sendProgress(_ step: PipelineConfig.Step) {
        guard let progressToken else { return }
        var message = ByteBuffer(capacity: 160)
        message.append(string: "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":")
        message.append(string: progressToken)
        message.append(string: ",\"progress\":\(finishedSteps),\"total\":\(pipeline.stepCount),\"message\":")
        message.append(jsonStringLiteral("step \(step.id) done"))
        message.append(string: "}}\n")
        owner.output.write(message)
    }

    private func succeed() {
        var result = JSONObject()
        if let template = pipeline.result {
            let value: JSONValue
            do {
                value = try PipelineTemplate.render(template, context)
            } catch {
                return fail("result: \(error.message)")
            }
            if case .string(let text) = value {
                result["content"] = .array([.object(JSONObject([("type", "text"), ("text", .string(text))]))])
            } else {
                result["content"] = .array([.object(JSONObject([("type", "text"), ("text", .string(value.jsonText))]))])
                if value.objectValue != nil && !owner.predatesStructuredOutput { result["structuredContent"] = value }
            }
        } else {
            var content: [JSONValue] = []
            for stage in pipeline.stages {
                for step in stage { content += context.steps[step.id]?["content"]?.arrayValue ?? [] }
            }
            result["content"] = .array(content)
        }
        finish(result)
    }

    private func fail(_ message: String) {
        finish(JSONObject([("content", .array([.object(JSONObject([("type", "text"), ("text", .string("pipeline \"\(pipeline.name)\": \(message)"))]))])),
                           ("isError", true)]))
    }

    private func finish(_ result: JSONObject) {
        guard !done else { return }
        done = true
        end()
        owner.pipelineFinished(self, result: result)
    }

    /// The caller went away: steps in flight are cancelled, nothing is answered.
    func abandon() {
        guard !done else { return }
        done = true
        end()
    }

    private func end() {
        timer?.close()
        timer = nil
        waiting.removeAll()
        // Not from inside the steps' session's own call stack; then the session (which holds
        // this run as its transport) lets go.
        owner.gateway.loop.execute { [self] in
            steps?.end(reason: "the pipeline ended", abandon: true)
            steps = nil
        }
    }
}
