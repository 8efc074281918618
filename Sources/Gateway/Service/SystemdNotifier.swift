import Reactor
#if canImport(Glibc)
import Glibc
#endif

/// The systemd notification protocol (`sd_notify(3)`): datagrams of `KEY=value` lines to the
/// unix socket named by `NOTIFY_SOCKET` (a path, or `@name` in the abstract namespace). Sent
/// with MSG_DONTWAIT: a full socket drops a status line rather than block the loop.
///
/// mcpd sends READY=1 once it serves, STATUS= lines as backends change, RELOADING=1 (with
/// MONOTONIC_USEC) and READY=1 around a reload, STOPPING=1 when it drains, and WATCHDOG=1 at
/// half of WATCHDOG_USEC from a loop timer, so a wedged loop misses it and systemd acts.
final class SystemdNotifier {
    private let fd: Int32
    private var address = sockaddr_un()
    private let addressLength: socklen_t
    /// Half the watchdog interval in milliseconds, when systemd asked for keep-alives.
    let watchdogIntervalMs: UInt64?
    private var lastStatus = ""

    /// The notifier for `NOTIFY_SOCKET`, or nil when it is unset or unusable.
    init?(environment: [String: String], log: Logger) {
        guard let socketPath = environment["NOTIFY_SOCKET"], !socketPath.isEmpty else { return nil }
        var path = Array(socketPath.utf8)
        guard path.first == UInt8(ascii: "/") || path.first == UInt8(ascii: "@"),
              path.count < MemoryLayout.size(ofValue: address.sun_path)
        else {
            log.warning("NOTIFY_SOCKET \"\(socketPath)\" is not a unix socket path; not notifying systemd")
            return nil
        }
        if path[0] == UInt8(ascii: "@") { path[0] = 0 }  // the abstract namespace
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else {
            log.warning("cannot open a socket for NOTIFY_SOCKET: \(String(cString: strerror(errno))); not notifying systemd")
            return nil
        }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.enumerated() { raw[index] = byte }
        }
        addressLength = socklen_t(MemoryLayout<sa_family_t>.size + path.count)
        var interval: UInt64?
        if let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0 {
            // WATCHDOG_PID, when set, names the process meant: not a child that inherited it.
            if let pid = environment["WATCHDOG_PID"].flatMap(Int32.init), pid != getpid() {
                interval = nil
            } else {
                interval = max(1, usec / 2000)
            }
        }
        watchdogIntervalMs = interval
    }

    deinit { close(fd) }

    /// Sends one datagram of newline-separated assignments.
    func send(_ assignments: String) {
        var bytes = Array(assignments.utf8)
        _ = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                sendto(fd, &bytes, bytes.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL), socketAddress, addressLength)
            }
        }
    }

    /// Sends `STATUS=` when the text changed.
    func status(_ text: String) {
        guard text != lastStatus else { return }
        lastStatus = text
        send("STATUS=\(text)")
    }

    /// RELOADING=1 with the monotonic time, as `Type=notify-reload` expects.
    func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        send("RELOADING=1\nMONOTONIC_USEC=\(UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000)")
    }
}
