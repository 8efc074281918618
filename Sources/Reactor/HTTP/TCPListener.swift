import CUV
#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket on the loop. Each accepted connection is handed over as an
/// `IOStream`; a connection that cannot be accepted (out of descriptors) is left in the
/// kernel's backlog and tried again on the next readiness.
public final class TCPListener {
    public let loop: EventLoop
    private let handle: UnsafeMutablePointer<uv_tcp_t>
    private var isOpen = true
    /// Called with each accepted connection.
    public var onConnection: ((IOStream) -> Void)?
    /// Called when accepting fails (`EMFILE`, ...): the caller logs it.
    public var onAcceptError: ((UVError) -> Void)?
    /// The port the socket is bound to (the one the kernel chose for port 0).
    public private(set) var port: Int = 0
    /// Inbound buffer capacity of each accepted connection (0: taken from the pool on the
    /// first read).
    public var readCapacity = 0

    /// Binds `host:port` (IPv4 or IPv6 literal) and listens.
    public init(loop: EventLoop, host: String, port: Int, backlog: Int32 = 511) throws(UVError) {
        self.loop = loop
        handle = zeroedAllocation(uv_tcp_t.self)
        uv_tcp_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        var storage = sockaddr_storage()
        var rc: Int32 = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { uv_ip6_addr(host, Int32(port), $0) }
        }
        if rc != 0 {
            rc = withUnsafeMutablePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { uv_ip4_addr(host, Int32(port), $0) }
            }
        }
        if rc == 0 {
            rc = withUnsafePointer(to: &storage) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { uv_tcp_bind(handle, $0, 0) }
            }
        }
        if rc == 0 {
            rc = uv_listen(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self), backlog) { server, status in
                let listener = Unmanaged<TCPListener>.fromOpaque(server!.pointee.data).takeUnretainedValue()
                listener.accept(status)
            }
        }
        if rc != 0 {
            close()
            throw UVError(rc)
        }
        var bound = sockaddr_storage()
        var length = Int32(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &bound) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = uv_tcp_getsockname(handle, $0, &length) }
        }
        if Int32(bound.ss_family) == AF_INET6 {
            self.port = withUnsafePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        } else {
            self.port = withUnsafePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
        }
    }

    private func accept(_ status: Int32) {
        guard isOpen else { return }
        if status < 0 {
            onAcceptError?(UVError(status))
            return
        }
        do {
            let stream = try IOStream.accept(loop: loop, server: UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_stream_t.self),
                                             readCapacity: readCapacity)
            onConnection?(stream)
        } catch {
            onAcceptError?(error)
        }
    }

    /// Stops listening. Idempotent.
    public func close() {
        guard isOpen else { return }
        isOpen = false
        onConnection = nil
        uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)) { handle in
            UnsafeMutableRawPointer(handle!).deallocate()
        }
    }
}
