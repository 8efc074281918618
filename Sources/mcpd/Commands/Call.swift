import Gateway
import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// `mcpd call NAME '{json}'`: one tool call through the gateway, as a client would make it.
///
/// The gateway serves a session on a pair of pipes, exactly as it serves stdin and stdout, and a
/// small client in the same process and loop writes `initialize` and the call to them. Only the
/// server the tool belongs to starts (lazily, from the catalog); the command exits 0 when the
/// result is a success, 1 when it is an error result (its text on stderr; with `--json` the
/// result on stdout all the same, for scripts) or the call fails.
enum Call {
    static func run(_ arguments: Arguments) throws {
        let name = arguments.positionals[0]
        let argumentsText = arguments.positionals.count > 1 ? arguments.positionals[1] : "{}"
        guard case .object? = try? JSONParser.parse(argumentsText) else {
            writeStandardError("Error: the arguments must be one JSON object, e.g. '{\"path\": \"README.md\"}' (got \(argumentsText.prefix(80)))\n\(Arguments.shortUsage(.call))")
            throw ProgramExit(code: 64)
        }
        // A command's stderr carries what went wrong, not the gateway's progress.
        var options = arguments
        if options.logLevel == nil && ProcessSetup.environment().first(where: { $0.name == "MCPD_LOG_LEVEL" }) == nil {
            options.logLevel = "warning"
        }
        let setup = try Setup(options)
        var client: CallClient?
        try setup.runLoop { gateway throws(UVError) in
            client = try CallClient(gateway: gateway, tool: name, argumentsText: argumentsText, printJSON: arguments.json)
        }
        guard let client, let outcome = client.outcome else {
            writeStandardError("mcpd call: mcpd stopped before the call was answered\n")
            throw ProgramExit.failure
        }
        // Printed once the loop has stopped: the loop thread never blocks on a write.
        writeStandardOutput(client.output)
        writeStandardError(client.errorOutput)
        if outcome != 0 { throw ProgramExit(code: outcome) }
    }
}

/// The in-process client of `mcpd call`.
final class CallClient {
    private let requests: IOStream
    private let answers: IOStream
    private var framer = LineFramer(maxLineLength: 1 << 30)
    private let tool: String
    private let argumentsText: String
    private let printJSON: Bool
    /// The exit status, once the call was answered.
    private(set) var outcome: Int32?
    /// What to print on stdout and stderr when the loop has stopped.
    private(set) var output = ""
    private(set) var errorOutput = ""

    init(gateway: Gateway, tool: String, argumentsText: String, printJSON: Bool) throws(UVError) {
        self.tool = tool
        self.argumentsText = argumentsText
        self.printJSON = printJSON
        var toGateway: [Int32] = [-1, -1]
        var fromGateway: [Int32] = [-1, -1]
        guard pipe(&toGateway) == 0 else { throw UVError.fromErrno(errno) }
        guard pipe(&fromGateway) == 0 else {
            let code = errno
            Glibc.close(toGateway[0])
            Glibc.close(toGateway[1])
            throw UVError.fromErrno(code)
        }
        // Not inherited by the backends this process starts.
        for fd in toGateway + fromGateway { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        requests = try IOStream.open(loop: gateway.loop, fd: toGateway[1])
        answers = try IOStream.open(loop: gateway.loop, fd: fromGateway[0])
        try gateway.serveStdio(inputFD: toGateway[0], outputFD: fromGateway[1])
        answers.onRead = { [unowned self] buffer in read(&buffer) }
        answers.onReadEnd = { [unowned self] _ in finish() }
        answers.startReading()
        let initialize: JSONValue = [
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": ["protocolVersion": .string(ProtocolVersion.latest), "capabilities": [:],
                       "clientInfo": ["name": "mcpd call", "version": .string(GatewayVersion.string)]],
        ]
        requests.write(string: initialize.jsonText + "\n")
    }

    private func read(_ buffer: inout ByteBuffer) {
        while case .line(let frame) = framer.next(&buffer) {
            guard let message = try? JSONParser.parse(frame), let id = message["id"] else { continue }
            if id == .int(1) {
                if let error = message["error"] {
                    fail("initialize failed: \(error["message"]?.stringValue ?? error.jsonText)")
                    return
                }
                let call: JSONValue = ["jsonrpc": "2.0", "id": 2, "method": "tools/call",
                                       "params": ["name": .string(tool), "arguments": (try? JSONParser.parse(argumentsText)) ?? [:]]]
                requests.write(string: "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n" + call.jsonText + "\n")
            } else if id == .int(2) {
                report(message)
                return
            }
        }
    }

    private func report(_ message: JSONValue) {
        if let error = message["error"] {
            fail(error["message"]?.stringValue ?? error.jsonText)
            return
        }
        let result = message["result"] ?? .null
        let isError = result["isError"] == .bool(true)
        var text = ""
        if printJSON {
            text = result.jsonText + "\n"
        } else {
            for item in result["content"]?.arrayValue ?? [] {
                if item["type"]?.stringValue == "text", let body = item["text"]?.stringValue {
                    text += body.hasSuffix("\n") ? body : body + "\n"
                } else {
                    text += item.jsonText + "\n"
                }
            }
            if text.isEmpty, let structured = result["structuredContent"] { text = structured.jsonText + "\n" }
        }
        if isError && !printJSON {
            errorOutput = text.isEmpty ? "mcpd call: the tool reported an error\n" : text
        } else {
            output = text
        }
        outcome = isError ? 1 : 0
        close()
    }

    private func fail(_ reason: String) {
        errorOutput = "mcpd call: \(reason)\n"
        outcome = 1
        close()
    }

    private func finish() {
        close()
    }

    /// Ends the session: the gateway sees its input end and stops.
    private func close() {
        answers.onRead = nil
        answers.onReadEnd = nil
        answers.close()
        requests.closeAfterFlush()
    }
}

/// Writes all of `text` to stdout (a pipe may take it in parts).
func writeStandardOutput(_ text: String) {
    var text = text
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(1, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}
