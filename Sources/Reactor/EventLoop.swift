import CProcess
import CUV
#if canImport(Glibc)
import Glibc
#endif

/// One libuv loop on one thread. Every handle in Reactor belongs to exactly one `EventLoop` and is
/// touched only from the thread that runs it.
///
/// Besides the `uv_loop_t`, the loop owns a `uv_prepare_t` that runs right before libuv blocks for
/// I/O. Streams queue their output during a loop turn and the prepare callback flushes every
/// stream once, so a burst of messages costs one `writev` per stream instead of one per message:
///
///     timers -> pending -> idle -> prepare (flush streams, run deferred work) -> poll -> check -> close
public final class EventLoop {
    /// The libuv loop. Exposed for Reactor's own handle types.
    public let raw: UnsafeMutablePointer<uv_loop_t>
    private let prepare: UnsafeMutablePointer<uv_prepare_t>
    private let ownerThread: pthread_t
    private var isClosed = false

    /// Streams that queued output during this loop turn.
    private var streamsToFlush: [IOStream] = []
    private var flushingStreams: [IOStream] = []
    /// Work deferred to a safe point: the next prepare phase, outside any user callback.
    private var deferred: [() -> Void] = []
    private var runningWork: [() -> Void] = []
    /// Reaps the loop's child processes while there are any.
    var childReaper: ChildReaper?
    /// Storage released by writes, reused by reads (see `StoragePool`).
    public let storagePool = StoragePool()

    /// Creates a loop with its own `uv_loop_t` (never `uv_default_loop()`).
    public init() throws(UVError) {
        raw = zeroedAllocation(uv_loop_t.self)
        let rc = uv_loop_init(raw)
        if rc < 0 {
            raw.deallocate()
            throw UVError(rc)
        }
        prepare = zeroedAllocation(uv_prepare_t.self)
        ownerThread = pthread_self()
        uv_prepare_init(raw, prepare)
        prepare.pointee.data = Unmanaged.passUnretained(self).toOpaque()
        uv_prepare_start(prepare) { handle in
            let loop = Unmanaged<EventLoop>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
            loop.runPreparePhase()
        }
        // The prepare handle keeps the loop alive only while it has work queued.
        uv_unref(UnsafeMutableRawPointer(prepare).assumingMemoryBound(to: uv_handle_t.self))
    }

    deinit {
        assert(isClosed, "EventLoop deallocated without close()")
    }

    /// Asserts (in debug builds) that the caller runs on the loop's thread.
    @inline(__always)
    public func assertInLoop(file: StaticString = #fileID, line: UInt = #line) {
        assert(pthread_equal(pthread_self(), ownerThread) != 0, "called off the event loop thread", file: file, line: line)
    }

    /// Runs the loop until no referenced handle or request is left, or `stop()` is called.
    public func run() {
        assertInLoop()
        uv_run(raw, UV_RUN_DEFAULT)
    }

    /// Runs one loop iteration, blocking for I/O if nothing is ready.
    @discardableResult
    public func runOnce() -> Bool {
        assertInLoop()
        return uv_run(raw, UV_RUN_ONCE) != 0
    }

    /// Makes `run()` return after the current iteration.
    public func stop() {
        uv_stop(raw)
    }

    /// The loop's cached monotonic clock in milliseconds.
    public var now: UInt64 { uv_now(raw) }

    /// Runs `work` at the next safe point (the next prepare phase), never re-entrantly from the
    /// caller's stack.
    public func execute(_ work: @escaping () -> Void) {
        assertInLoop()
        deferred.append(work)
        keepAliveForPendingWork()
    }

    func scheduleFlush(_ stream: IOStream) {
        streamsToFlush.append(stream)
        keepAliveForPendingWork()
    }

    private func keepAliveForPendingWork() {
        uv_ref(UnsafeMutableRawPointer(prepare).assumingMemoryBound(to: uv_handle_t.self))
    }

    private func runPreparePhase() {
        // libuv computes the poll timeout after this phase: anything queued here must be done
        // here, or the loop could block with work pending. Deferred work goes first, since it
        // often queues output that the flush then sends; a flush may defer work (a close).
        // The queues are swapped with spares, not copied: a copy would make the next append
        // reallocate, once per loop turn.
        repeat {
            while !deferred.isEmpty {
                swap(&deferred, &runningWork)
                for item in runningWork { item() }
                runningWork.removeAll(keepingCapacity: true)
            }
            if !streamsToFlush.isEmpty {
                swap(&streamsToFlush, &flushingStreams)
                for stream in flushingStreams { stream.flush() }
                flushingStreams.removeAll(keepingCapacity: true)
            }
        } while !deferred.isEmpty || !streamsToFlush.isEmpty
        uv_unref(UnsafeMutableRawPointer(prepare).assumingMemoryBound(to: uv_handle_t.self))
    }

    /// Closes the loop: closes its own prepare handle, runs until every close callback has fired,
    /// and calls `uv_loop_close`. Throws `EBUSY` when a handle is still open (a leak).
    public func close() throws(UVError) {
        assertInLoop()
        precondition(!isClosed, "EventLoop closed twice")
        uv_prepare_stop(prepare)
        let handle = UnsafeMutableRawPointer(prepare).assumingMemoryBound(to: uv_handle_t.self)
        uv_close(handle) { handle in handle!.deallocate() }
        streamsToFlush.removeAll()
        deferred.removeAll()
        uv_run(raw, UV_RUN_NOWAIT)
        let rc = uv_loop_close(raw)
        if rc < 0 {
            // Leave the loop allocated: open handles still point into it.
            throw UVError(rc)
        }
        isClosed = true
        raw.deallocate()
    }

    /// The number of handles still open on the loop, for tests and shutdown diagnostics.
    public var openHandleCount: Int {
        var count = 0
        withUnsafeMutablePointer(to: &count) { counter in
            uv_walk(raw, { handle, arg in
                if uv_is_closing(handle) == 0 {
                    arg!.assumingMemoryBound(to: Int.self).pointee += 1
                }
            }, counter)
        }
        // Our own prepare handle is not the caller's.
        return count - 1
    }
}

/// Allocates zeroed memory for a libuv struct: libuv never initialises `data`, and `uv_walk` on
/// garbage crashed an earlier prototype.
func zeroedAllocation<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
    let pointer = UnsafeMutablePointer<T>.allocate(capacity: 1)
    UnsafeMutableRawPointer(pointer).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.size)
    return pointer
}

/// Process-wide settings a daemon that spawns children needs before its first `uv_spawn`:
/// SIGPIPE ignored (a dead reader becomes `EPIPE`, not death) and inherited descriptors marked
/// close-on-exec so backends never receive mcpd's sockets.
public enum ProcessSetup {
    /// Sets up the process to run a gateway: SIGPIPE ignored, mcpd made the reaper of its
    /// orphaned descendants (so that none outlives it: `orphans()` finds them at shutdown),
    /// and the soft limit on open files raised to the hard one (each backend takes three).
    /// Returns whether mcpd reaps its orphaned descendants (false: it is neither PID 1 nor a
    /// subreaper, so what escapes a backend's process group may outlive it).
    @discardableResult
    public static func configure() -> Bool {
        signal(SIGPIPE, SIG_IGN)
        uv_disable_stdio_inheritance()
        _ = mcpd_raise_open_file_limit()
        return mcpd_become_subreaper() == 0 || getpid() == 1
    }

    /// Returns the heap's free memory to the system. After a burst (a client that stopped
    /// reading while answers queued) the freed memory is in fragments glibc keeps; this gives
    /// back whole free pages. It walks the heap: call it after a burst, not per message.
    public static func releaseFreeMemory() {
        mcpd_release_free_memory()
    }

    /// The hard limit on open files, which `configure` makes the soft one.
    public static var openFileLimit: Int { mcpd_open_file_limit(1) }

    /// Processes re-parented to mcpd that it did not start: descendants of backends that
    /// left their process group and outlived their parent. Read from /proc, at shutdown only.
    public static func orphans(excluding children: Set<Int32>) -> [Int32] {
        guard let directory = opendir("/proc") else { return [] }
        defer { closedir(directory) }
        let me = getpid()
        var found: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let pid = Int32(name), pid != me, !children.contains(pid), mcpd_parent_of(pid) == me else { continue }
            found.append(pid)
        }
        return found
    }
}

extension ProcessSetup {
    /// mcpd's environment as name/value pairs, in order.
    public static func environment() -> [(name: String, value: String)] {
        var result: [(name: String, value: String)] = []
        guard var entry = mcpd_environ() else { return result }
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            if let equals = text.firstIndex(of: "=") {
                result.append((String(text[..<equals]), String(text[text.index(after: equals)...])))
            }
            entry += 1
        }
        return result
    }
}

/// `count` bytes from the kernel's CSPRNG (`getrandom(2)`), for identifiers that must not be
/// guessed (session ids).
public func secureRandomBytes(_ count: Int) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let status = bytes.withUnsafeMutableBytes { mcpd_random_bytes($0.baseAddress, UInt($0.count)) }
    precondition(status == 0, "getrandom failed: \(errno)")
    return bytes
}
