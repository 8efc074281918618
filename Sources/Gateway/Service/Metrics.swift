import Reactor

/// What one backend counted for one method: answers by outcome, and their durations in the
/// buckets of `mcpd_request_duration_seconds`. Kept per backend, found by the method literal's
/// address (a compare of pointers on the hot path, no hashing).
final class MethodStats {
    let method: StaticString
    var ok: UInt64 = 0
    var error: UInt64 = 0
    var failed: UInt64 = 0
    /// Counts per bucket of `MethodStats.bucketsMs` (not cumulative), the last for +Inf.
    var buckets = [UInt64](repeating: 0, count: MethodStats.bucketsMs.count + 1)
    var sumMs: UInt64 = 0

    /// Upper bounds in milliseconds (loop time has millisecond resolution).
    static let bucketsMs: [UInt64] = [1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000]

    init(method: StaticString) { self.method = method }

    @inline(__always)
    func record(_ outcome: RequestOutcome, ms: UInt64) {
        switch outcome {
        case .ok: ok &+= 1
        case .error: error &+= 1
        case .failed: failed &+= 1
        }
        var index = 0
        let bounds = MethodStats.bucketsMs
        while index < bounds.count && ms > bounds[index] { index += 1 }
        buckets[index] &+= 1
        sumMs &+= ms
    }
}

/// How a forwarded request ended: a result, a JSON-RPC error from the backend, or mcpd's own
/// error (the backend died, the deadline passed, the client went away).
enum RequestOutcome {
    case ok, error, failed
}

extension Backend {
    /// Counts one answered client request in `/metrics`.
    @inline(__always)
    func countRequest(_ entry: PendingRequest, _ outcome: RequestOutcome) {
        let elapsed = loop.now &- (entry.deadline &- timeoutMs)
        let start = entry.method.utf8Start
        for stats in methodStats where stats.method.utf8Start == start {
            stats.record(outcome, ms: elapsed)
            return
        }
        let stats = MethodStats(method: entry.method)
        methodStats.append(stats)
        stats.record(outcome, ms: elapsed)
    }
}

extension Gateway {
    /// `/metrics`: the Prometheus text exposition format (version 0.0.4).
    var metricsText: String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
        }
        func label(_ value: String) -> String {
            var escaped = ""
            for character in value {
                switch character {
                case "\\": escaped += "\\\\"
                case "\"": escaped += "\\\""
                case "\n": escaped += "\\n"
                default: escaped.append(character)
                }
            }
            return "\"\(escaped)\""
        }
        // Per backend and method name, the stats of every literal merged.
        var merged: [(backend: String, method: String, stats: [MethodStats])] = []
        for backend in allBackends {
            for stats in backend.methodStats {
                let method = "\(stats.method)"
                if let index = merged.firstIndex(where: { $0.backend == backend.name && $0.method == method }) {
                    merged[index].stats.append(stats)
                } else {
                    merged.append((backend.name, method, [stats]))
                }
            }
        }
        family("mcpd_requests_total", "counter", "Client requests forwarded to a backend and answered, by outcome (ok, error from the backend, failed: mcpd answered for it).")
        for (backend, method, stats) in merged {
            for (outcome, value) in [("ok", stats.reduce(0) { $0 + $1.ok }), ("error", stats.reduce(0) { $0 + $1.error }),
                                     ("failed", stats.reduce(0) { $0 + $1.failed })] {
                out += "mcpd_requests_total{backend=\(label(backend)),method=\(label(method)),outcome=\"\(outcome)\"} \(value)\n"
            }
        }
        family("mcpd_request_duration_seconds", "histogram", "Time from forwarding a client request to its answer.")
        for (backend, method, stats) in merged {
            var cumulative: UInt64 = 0
            let labels = "backend=\(label(backend)),method=\(label(method))"
            for (index, bound) in MethodStats.bucketsMs.enumerated() {
                cumulative += stats.reduce(0) { $0 + $1.buckets[index] }
                out += "mcpd_request_duration_seconds_bucket{\(labels),le=\"\(formatSecondsValue(bound))\"} \(cumulative)\n"
            }
            cumulative += stats.reduce(0) { $0 + $1.buckets[MethodStats.bucketsMs.count] }
            out += "mcpd_request_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(cumulative)\n"
            out += "mcpd_request_duration_seconds_sum{\(labels)} \(formatSecondsValue(stats.reduce(0) { $0 + $1.sumMs }))\n"
            out += "mcpd_request_duration_seconds_count{\(labels)} \(cumulative)\n"
        }
        family("mcpd_requests_in_flight", "gauge", "Client requests forwarded to a backend and not yet answered.")
        for backend in backends {
            out += "mcpd_requests_in_flight{backend=\(label(backend.name))} \(backend.pending.count + (backend.statelessTwin?.pending.count ?? 0))\n"
        }
        family("mcpd_backend_up", "gauge", "1 while the backend is ready, else 0 (cached, idle, starting, restarting, circuit open).")
        for backend in backends {
            out += "mcpd_backend_up{backend=\(label(backend.name))} \(backend.state == .ready ? 1 : 0)\n"
        }
        family("mcpd_backend_restarts_total", "counter", "Restarts of the backend after it exited.")
        for backend in backends {
            out += "mcpd_backend_restarts_total{backend=\(label(backend.name))} \(backend.restarts)\n"
        }
        family("mcpd_sessions", "gauge", "Open client sessions by transport.")
        let stdio = sessions.filter(\.endsGateway).count
        out += "mcpd_sessions{transport=\"stdio\"} \(stdio)\n"
        out += "mcpd_sessions{transport=\"http\"} \(streamableHTTP?.sessionCount ?? 0)\n"
        out += "mcpd_sessions{transport=\"sse\"} \(streamableHTTP?.legacySessionCount ?? 0)\n"
        family("mcpd_bytes_total", "counter", "Bytes of HTTP traffic with clients: in (requests read), out (responses written).")
        out += "mcpd_bytes_total{direction=\"in\"} \(httpServer?.bytesRead ?? 0)\n"
        out += "mcpd_bytes_total{direction=\"out\"} \(httpServer?.bytesWritten ?? 0)\n"
        family("mcpd_write_queue_bytes", "gauge", "Bytes written to clients and not yet taken by their sockets or pipes.")
        let stdioQueued = sessions.reduce(0) { $0 + ($1.output.stream?.queuedBytes ?? 0) }
        out += "mcpd_write_queue_bytes \(stdioQueued + (httpServer?.queuedBytes ?? 0))\n"
        return out
    }
}

/// Milliseconds as seconds for Prometheus: `0.005`, `2.5`, `30`.
private func formatSecondsValue(_ ms: UInt64) -> String {
    let whole = ms / 1000
    let fraction = ms % 1000
    if fraction == 0 { return "\(whole)" }
    var digits = String(fraction)
    while digits.count < 3 { digits = "0" + digits }
    while digits.hasSuffix("0") { digits.removeLast() }
    return "\(whole).\(digits)"
}
