import Reactor

/// Requests that wait for a backend process: while a lazy backend or a stateless twin starts
/// (started by the first of them), or while a server restarts after an exit. Each waits at most its deadline;
/// they go out in order once the process is ready, and fail with the reason when none is coming.
extension Backend {
    /// The most requests held while a process starts.
    static let maxStartQueue = 256

    /// Holds a request until the process is ready: while a lazy backend or a stateless twin
    /// starts (it is started by the first request), or while the server restarts after an exit. The request
    /// waits at most its deadline. Returns an error for the client when it cannot wait.
    func queueUntilStarted(_ request: QueuedRequest) -> BackendFailure? {
        if isRetired {
            return BackendFailure(code: ErrorCode.internalError, message: "backend \"\(name)\" was stopped by a configuration reload; list the tools again")
        }
        switch state {
        case .configured, .stopped:
            // Not started yet (lazy, or a stateless twin), or stopped when idle: the first
            // request starts it.
            guard !gateway.isShuttingDown else { return BackendFailure(code: ErrorCode.internalError, message: "mcpd is shutting down") }
            startQueue.append(request)
            start()
            return nil
        case .stopping where idleStopped && !gateway.isShuttingDown:
            // Stopping for being idle: started again once it is gone (`finishExit`).
            startQueue.append(request)
            return nil
        case .starting, .initializing, .backoff, .ready:  // ready: `exiting`, the restart follows
            guard startQueue.count < Backend.maxStartQueue else {
                return BackendFailure(code: ErrorCode.internalError, message: "backend \"\(name)\" is starting with \(plural(startQueue.count, "request")) waiting; try again shortly")
            }
            startQueue.append(request)
            return nil
        default:
            return BackendFailure(code: ErrorCode.internalError, message: unavailableReason() ?? "backend \"\(name)\" is not running")
        }
    }

    /// The process is ready: the requests held for it go out, in order.
    func drainStartQueue() {
        let queued = startQueue
        startQueue.removeAll()
        for request in queued { dispatch(request, to: self) }
    }

    /// The process could not start, or the server does not speak the twin's era: the requests
    /// held for it go to the server's handshake-era process (translated), or fail with `reason`.
    func abandonStartQueue(_ reason: String) {
        let queued = startQueue
        startQueue.removeAll()
        if isTwin { fallback?.speaksStateless = false }
        for request in queued {
            if let fallback {
                dispatch(request, to: fallback)
            } else {
                request.session.requestFailed(id: RawValue(request.frame, request.scan.id!), code: ErrorCode.internalError,
                                              message: "backend \"\(name)\" \(reason)", batch: request.batch)
            }
        }
    }

    /// Fails the held requests whose deadline passed, and (`session` given) those of a session
    /// that is going away.
    func expireStartQueue(now: UInt64, session gone: ClientSession? = nil, message: String? = nil) {
        guard !startQueue.isEmpty else { return }
        var kept: [QueuedRequest] = []
        var expired: [QueuedRequest] = []
        var dropped: [QueuedRequest] = []
        for request in startQueue {
            if request.session === gone {
                dropped.append(request)
            } else if request.deadline <= now {
                expired.append(request)
            } else {
                kept.append(request)
            }
        }
        startQueue = kept
        for request in expired {
            let message = "backend \"\(name)\" was not ready within \(formatSeconds(timeoutMs)) (\(lastError.map { "it \($0); " } ?? "")it is \(state.rawValue)); raise servers.\(name).timeout if it needs longer to start"
            request.session.requestFailed(id: RawValue(request.frame, request.scan.id!), code: ErrorCode.requestTimeout, message: message, batch: request.batch)
        }
        if let message {
            for request in dropped {
                request.session.requestFailed(id: RawValue(request.frame, request.scan.id!), code: ErrorCode.internalError, message: message, batch: request.batch)
            }
        }
    }

    private func dispatch(_ request: QueuedRequest, to backend: Backend) {
        if let failure = backend.forward(request.frame, scan: request.scan, method: request.method, route: request.route,
                                         renaming: request.renaming, session: request.session, batch: request.batch, taskID: request.taskID)
        {
            request.session.requestFailed(id: RawValue(request.frame, request.scan.id!), code: failure.code, message: failure.message, batch: request.batch)
        }
    }
}

/// A client's request held while the process it goes to starts.
struct QueuedRequest {
    let frame: ByteBuffer
    let scan: MessageScan
    let method: StaticString
    let route: Route?
    let renaming: Range<Int>?
    let session: ClientSession
    let batch: BatchCollector?
    let taskID: TaskIDPlace?
    /// Loop time (ms) after which it fails instead of waiting longer.
    let deadline: UInt64
}
