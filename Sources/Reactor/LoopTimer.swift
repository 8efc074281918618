import CUV

/// A libuv timer. (Not `Timer`: that name clashes with Foundation in test targets.)
public final class LoopTimer {
    /// The loop the timer belongs to.
    public let loop: EventLoop
    private let handle: UnsafeMutablePointer<uv_timer_t>
    /// What the timer calls when it fires (set by `start`, or once for `restart`).
    public var callback: (() -> Void)?
    /// True until `close()`.
    public private(set) var isOpen = true

    /// A stopped timer. `unreferenced` timers do not keep the loop alive (housekeeping).
    public init(loop: EventLoop, unreferenced: Bool = false) {
        loop.assertInLoop()
        self.loop = loop
        handle = zeroedAllocation(uv_timer_t.self)
        uv_timer_init(loop.raw, handle)
        handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        if unreferenced { uv_unref(rawHandle) }
    }

    deinit { assert(!isOpen, "LoopTimer deallocated while open") }

    private var rawHandle: UnsafeMutablePointer<uv_handle_t> {
        UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)
    }

    /// Fires `callback` after `timeout` ms, then every `repeat` ms if non-zero. Restarts a
    /// running timer.
    public func start(timeout: UInt64, repeat repeatInterval: UInt64 = 0, _ callback: @escaping () -> Void) {
        loop.assertInLoop()
        guard isOpen else { return }
        self.callback = callback
        uv_timer_start(handle, { handle in
            let timer = Unmanaged<LoopTimer>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
            timer.callback?()
        }, timeout, repeatInterval)
    }

    /// Starts (or restarts) the timer with the callback it has: a timer armed again and again
    /// (a connection's deadlines) costs no closure each time.
    public func restart(timeout: UInt64) {
        loop.assertInLoop()
        guard isOpen else { return }
        uv_timer_start(handle, { handle in
            let timer = Unmanaged<LoopTimer>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
            timer.callback?()
        }, timeout, 0)
    }

    /// Stops the timer and keeps its callback, for `restart`.
    public func pause() {
        loop.assertInLoop()
        guard isOpen else { return }
        uv_timer_stop(handle)
    }

    /// Stops the timer and drops its callback; it can be started again.
    public func stop() {
        loop.assertInLoop()
        guard isOpen else { return }
        uv_timer_stop(handle)
        callback = nil
    }

    /// True while the timer is started.
    public var isActive: Bool { isOpen && uv_is_active(rawHandle) != 0 }

    /// Closes the timer. Idempotent.
    public func close() {
        loop.assertInLoop()
        guard isOpen else { return }
        isOpen = false
        callback = nil
        uv_close(rawHandle) { handle in
            Unmanaged<LoopTimer>.fromOpaque(handle!.pointee.data).release()
            UnsafeMutableRawPointer(handle!).deallocate()
        }
    }
}
