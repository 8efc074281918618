import CUV

/// Watches one signal on the loop (SIGINT, SIGTERM, SIGHUP, SIGCHLD). The callback runs on the
/// loop thread, not in the signal handler.
public final class SignalWatcher {
    /// The loop the watcher belongs to.
    public let loop: EventLoop
    /// The signal number.
    public let signal: Int32
    private let handle: UnsafeMutablePointer<uv_signal_t>
    private var callback: ((Int32) -> Void)?
    /// True until `close()`.
    public private(set) var isOpen = true

    /// Starts watching `signal`. `unreferenced` watchers do not keep the loop alive.
    public init(loop: EventLoop, signal: Int32, unreferenced: Bool = true, _ callback: @escaping (Int32) -> Void) throws(UVError) {
        loop.assertInLoop()
        self.loop = loop
        self.signal = signal
        self.callback = callback
        handle = zeroedAllocation(uv_signal_t.self)
        uv_signal_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        if unreferenced { uv_unref(rawHandle) }
        let rc = uv_signal_start(handle, { handle, signum in
            let watcher = Unmanaged<SignalWatcher>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
            watcher.callback?(signum)
        }, signal)
        if rc < 0 {
            close()
            throw UVError(rc)
        }
    }

    deinit { assert(!isOpen, "SignalWatcher deallocated while open") }

    private var rawHandle: UnsafeMutablePointer<uv_handle_t> {
        UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)
    }

    /// Stops watching and closes the handle. Idempotent.
    public func close() {
        loop.assertInLoop()
        guard isOpen else { return }
        isOpen = false
        callback = nil
        uv_close(rawHandle) { handle in
            Unmanaged<SignalWatcher>.fromOpaque(handle!.pointee.data).release()
            UnsafeMutableRawPointer(handle!).deallocate()
        }
    }
}
