import CUV
#if canImport(Glibc)
import Glibc
#endif

/// A byte stream on the loop: a pipe (a child's stdio, or mcpd's own stdin/stdout when they are
/// pipes), a TCP connection (`TCPListener`), a TTY, or a regular file standing in for stdin/stdout (`mcpd stdio < requests.jsonl`),
/// which epoll cannot watch and which is therefore read with `uv_fs_read`.
///
/// Reading: bytes land in place in `inbound`'s writable tail and `onRead` gets the buffer to
/// consume from. Writing: `write` queues slices without copying them (small ones are copied into
/// a scratch buffer so a message is one iovec, not five); the loop flushes each stream once per
/// turn with `uv_try_write`, and hands what the kernel did not take to `uv_write`, pinning the
/// storage until the callback. `queuedBytes` against the watermarks is the back-pressure signal.
public final class IOStream {
    /// What the stream is connected to.
    public enum Kind: Sendable { case pipe, tty, file, socket }

    /// Lifecycle: open until `close()`, closing until libuv's close callback, then closed.
    public enum State: Sendable { case open, closing, closed }

    /// The loop the stream belongs to.
    public let loop: EventLoop
    /// What the stream is connected to.
    public let kind: Kind
    /// `open`, `closing` or `closed`.
    public private(set) var state: State = .open

    /// Bytes read and not yet consumed. `onRead` consumes from it.
    public var inbound: ByteBuffer
    /// The smallest tail offered to a read; the buffer grows or compacts below it.
    public var minimumReadSize = 4096
    /// When a partial frame must move to new storage, room for this many more frames of its
    /// size after it (`ByteBuffer.reserveWritable`); 0 for streams of small frames.
    public var framesAhead = 0

    /// Called after each read with the inbound buffer; consume from its reader index.
    /// The callback may close the stream.
    public var onRead: ((inout ByteBuffer) -> Void)?
    /// Called once when reading ends: `UVError.eof` on end of stream, another error otherwise.
    public var onReadEnd: ((UVError) -> Void)?
    /// Called when a write fails (`EPIPE` when the reader is gone). Queued output is dropped.
    public var onWriteError: ((UVError) -> Void)?
    /// Called when queued output drops below `lowWatermark` after exceeding `highWatermark`.
    public var onWritable: (() -> Void)?
    /// Called once the stream is closed.
    public var onClose: (() -> Void)?

    /// Above this many queued bytes the stream reports itself not writable.
    public var highWatermark = 4 << 20
    /// Below this many queued bytes a stream that was over the high watermark is writable again.
    public var lowWatermark = 1 << 20

    /// Bytes accepted by `write` and not yet taken by the kernel.
    public var queuedBytes: Int { pendingBytes + inFlightBytes }
    /// False while `queuedBytes` exceeds the high watermark (until it drops below the low one).
    public private(set) var isWritable = true

    /// Total bytes handed to the kernel (a counter for status and tests).
    public private(set) var bytesWritten: UInt64 = 0
    /// Total bytes read.
    public private(set) var bytesRead: UInt64 = 0

    // The C handle (nil for files). handle.data holds one retained reference to self,
    // released in the close callback.
    let handle: UnsafeMutablePointer<uv_stream_t>?
    private let fd: Int32
    private var isReading = false

    private struct Piece {
        var storage: ByteStorage
        var offset: Int
        var length: Int
    }

    /// Output queued this loop turn, in order: large slices by reference, and sealed runs of
    /// the scratch buffer. The scratch bytes after `scratchSealed` are the last, open run.
    private var pieces: [Piece] = []
    private var scratchSealed = 0
    private var pendingBytes = 0
    private var inFlightBytes = 0
    private var inFlightWrites = 0
    /// Small writes are copied here so that one message is one iovec.
    private var scratch = ByteBuffer(capacity: 0)
    private var iovecs: [uv_buf_t] = []
    private var requestPool: [WriteRequest] = []
    private var flushScheduled = false
    private var closeWhenFlushed = false
    /// What the pipe is known to hold (the kernel's default until grown).
    private var pipeCapacity = 64 << 10

    // File streams: one read request at a time.
    private var fileRead: UnsafeMutablePointer<uv_fs_t>?
    private var fileDataUndelivered = false
    private var fileEnd: UVError?

    /// Slices shorter than this are copied into the scratch buffer instead of referenced.
    public static let copyThreshold = 2048

    /// Queued output is written at the end of each loop turn, as one write. With these set, the
    /// `earlyWriteFirst`-th write queued in a turn, and every `earlyWriteEvery`-th after it, also
    /// sends what is queued so far at once, mid-turn, so that the reader can start on it.
    /// `Int.max` (the default) waits for the turn's end. See `ClientSession` for why a client's
    /// output sets them.
    public var earlyWriteFirst = Int.max {
        didSet { writesUntilEarly = earlyWriteFirst }
    }
    public var earlyWriteEvery = Int.max
    private var writesUntilEarly = Int.max

    private init(loop: EventLoop, kind: Kind, handle: UnsafeMutablePointer<uv_stream_t>?, fd: Int32, readCapacity: Int) {
        self.loop = loop
        self.kind = kind
        self.handle = handle
        self.fd = fd
        self.inbound = ByteBuffer(capacity: readCapacity)
        if let handle {
            handle.pointee.data = Unmanaged.passRetained(self).toOpaque()
        }
    }

    deinit {
        // A libuv-backed stream is retained by its handle until the close callback.
        assert(state == .closed || handle == nil, "IOStream deallocated while open")
    }

    /// Our end of a pipe to a child's stdio, created by `ChildProcess`. `uv_pipe_open` on a fresh
    /// pipe cannot fail but for a bad descriptor; the stream is returned closed if it does.
    static func pipe(loop: EventLoop, fd: Int32, readCapacity: Int) -> IOStream {
        let raw = UnsafeMutableRawPointer.allocate(byteCount: uv_handle_size(UV_NAMED_PIPE), alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: uv_handle_size(UV_NAMED_PIPE))
        uv_pipe_init(loop.raw, raw.assumingMemoryBound(to: uv_pipe_t.self), 0)
        let stream = IOStream(loop: loop, kind: .pipe, handle: raw.assumingMemoryBound(to: uv_stream_t.self), fd: fd,
                              readCapacity: readCapacity)
        if uv_pipe_open(raw.assumingMemoryBound(to: uv_pipe_t.self), fd) < 0 {
            Glibc.close(fd)
            stream.close()
        }
        return stream
    }

    /// Accepts the next connection of a listening TCP handle (`TCPListener`), with Nagle's
    /// algorithm off: answers are written whole, and each should leave at once.
    static func accept(loop: EventLoop, server: UnsafeMutablePointer<uv_stream_t>, readCapacity: Int) throws(UVError) -> IOStream {
        let size = uv_handle_size(UV_TCP)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
        raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        let tcp = raw.assumingMemoryBound(to: uv_tcp_t.self)
        uv_tcp_init(loop.raw, tcp)
        let stream = IOStream(loop: loop, kind: .socket, handle: raw.assumingMemoryBound(to: uv_stream_t.self), fd: -1,
                              readCapacity: readCapacity)
        let rc = uv_accept(server, raw.assumingMemoryBound(to: uv_stream_t.self))
        if rc < 0 {
            stream.close()
            throw UVError(rc)
        }
        uv_tcp_nodelay(tcp, 1)
        return stream
    }

    /// Opens an existing descriptor (0, 1, ...) as the right kind of stream: a pipe or socket,
    /// a TTY, or a file read with `uv_fs_read` when epoll cannot watch it.
    public static func open(loop: EventLoop, fd: Int32, readCapacity: Int = 64 << 10) throws(UVError) -> IOStream {
        loop.assertInLoop()
        switch uv_guess_handle(fd) {
        case UV_NAMED_PIPE, UV_TCP, UV_UDP:
            let size = uv_handle_size(UV_NAMED_PIPE)
            let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            let pipe = raw.assumingMemoryBound(to: uv_pipe_t.self)
            uv_pipe_init(loop.raw, pipe, 0)
            let stream = IOStream(loop: loop, kind: .pipe, handle: raw.assumingMemoryBound(to: uv_stream_t.self), fd: fd,
                                  readCapacity: readCapacity)
            let rc = uv_pipe_open(pipe, fd)
            if rc < 0 {
                stream.close()
                throw UVError(rc)
            }
            return stream
        case UV_TTY:
            let size = uv_handle_size(UV_TTY)
            let raw = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 16)
            raw.initializeMemory(as: UInt8.self, repeating: 0, count: size)
            let stream = IOStream(loop: loop, kind: .tty, handle: raw.assumingMemoryBound(to: uv_stream_t.self), fd: fd,
                                  readCapacity: readCapacity)
            let rc = uv_tty_init(loop.raw, raw.assumingMemoryBound(to: uv_tty_t.self), fd, 0)
            if rc < 0 {
                // uv_tty_init failed before registering the handle: nothing to close in libuv.
                Unmanaged<IOStream>.fromOpaque(stream.handle!.pointee.data).release()
                stream.state = .closed
                raw.deallocate()
                throw UVError(rc)
            }
            return stream
        case UV_FILE:
            return IOStream(loop: loop, kind: .file, handle: nil, fd: fd, readCapacity: readCapacity)
        default:
            throw UVError(UV_EINVAL.rawValue)
        }
    }

    // MARK: Reading

    /// Starts delivering reads to `onRead`.
    public func startReading() {
        loop.assertInLoop()
        guard state == .open, !isReading else { return }
        isReading = true
        if let handle {
            let rc = uv_read_start(handle, { handle, _, buf in
                let stream = Unmanaged<IOStream>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
                stream.inbound.reserveWritable(stream.minimumReadSize, pool: stream.loop.storagePool,
                                               framesAhead: stream.framesAhead)
                buf!.pointee = uv_buf_t(base: UnsafeMutableRawPointer(stream.inbound.writablePointer)
                    .assumingMemoryBound(to: CChar.self), len: stream.inbound.writableBytes)
            }, { handle, nread, _ in
                let stream = Unmanaged<IOStream>.fromOpaque(handle!.pointee.data).takeUnretainedValue()
                stream.didRead(nread)
            })
            if rc < 0 {
                isReading = false
                let error = UVError(rc)
                loop.execute { [weak self] in self?.onReadEnd?(error) }
            }
        } else {
            startFileRead()
        }
    }

    /// Stops delivering reads (back-pressure on the peer).
    public func stopReading() {
        loop.assertInLoop()
        guard isReading else { return }
        isReading = false
        if let handle, state == .open { uv_read_stop(handle) }
    }

    private func didRead(_ nread: Int) {
        if nread > 0 {
            bytesRead &+= UInt64(nread)
            inbound.moveWriterIndex(forwardBy: nread)
            if inbound.readableBytes > pipeCapacity { growPipe(toHold: inbound.readableBytes) }
            onRead?(&inbound)
        } else if nread < 0 {
            stopReading()
            let callback = onReadEnd
            onReadEnd = nil
            callback?(UVError(Int32(nread)))
        }
    }

    /// Reads a file with `uv_fs_read` (on libuv's thread pool), one request at a time, into the
    /// inbound tail. Data that arrives while reading is paused is kept and delivered on resume.
    private func startFileRead() {
        guard state == .open, isReading, fileRead == nil else { return }
        if inbound.readableBytes > 0 && fileDataUndelivered {
            fileDataUndelivered = false
            onRead?(&inbound)
            guard state == .open, isReading else { return }
        }
        if let end = fileEnd {
            didRead(Int(end.code))
            return
        }
        let request = zeroedAllocation(uv_fs_t.self)
        request.pointee.data = Unmanaged.passRetained(self).toOpaque()
        fileRead = request
        inbound.reserveWritable(max(minimumReadSize, 64 << 10), pool: loop.storagePool, framesAhead: framesAhead)
        var buffer = uv_buf_t(base: UnsafeMutableRawPointer(inbound.writablePointer).assumingMemoryBound(to: CChar.self),
                              len: inbound.writableBytes)
        // Offset -1: read(2) from the current position (the shell may have consumed a prefix).
        let rc = uv_fs_read(loop.raw, request, fd, &buffer, 1, -1) { request in
            let stream = Unmanaged<IOStream>.fromOpaque(request!.pointee.data).takeRetainedValue()
            let result = request!.pointee.result
            uv_fs_req_cleanup(request)
            request!.deallocate()
            stream.fileRead = nil
            guard stream.state == .open else { return }
            if result > 0 {
                stream.inbound.moveWriterIndex(forwardBy: result)
                stream.fileDataUndelivered = true
            } else {
                stream.fileEnd = result == 0 ? .eof : UVError(Int32(result))
            }
            stream.startFileRead()
        }
        if rc < 0 {
            Unmanaged<IOStream>.fromOpaque(request.pointee.data).release()
            request.deallocate()
            fileRead = nil
            fileEnd = UVError(rc)
            loop.execute { [weak self] in self?.startFileRead() }
        }
    }

    // MARK: Writing

    /// Queues the readable bytes of `buffer`. Large buffers are sent from their own storage
    /// (pinned until written); small ones are copied.
    public func write(_ buffer: ByteBuffer) {
        loop.assertInLoop()
        let length = buffer.readableBytes
        guard state == .open, !closeWhenFlushed, length > 0 else { return }
        if length < IOStream.copyThreshold {
            scratch.append(UnsafeRawBufferPointer(buffer.readablePointer))
        } else {
            sealScratch()
            pieces.append(Piece(storage: buffer.storage, offset: buffer.readerIndex, length: length))
            if length > pipeCapacity { growPipe(toHold: length) }
        }
        pendingBytes += length
        didQueue()
    }

    /// Queues a copy of `bytes`.
    public func write(_ bytes: UnsafeRawBufferPointer) {
        loop.assertInLoop()
        guard state == .open, !closeWhenFlushed, bytes.count > 0 else { return }
        scratch.append(bytes)
        pendingBytes += bytes.count
        didQueue()
    }

    /// Queues `count` bytes that `fill` writes in place: a small message assembled from pieces
    /// costs one copy of each piece and one queue step.
    public func write(count: Int, _ fill: (UnsafeMutablePointer<UInt8>) -> Void) {
        loop.assertInLoop()
        guard state == .open, !closeWhenFlushed, count > 0 else { return }
        scratch.reserveWritable(count)
        fill(scratch.writablePointer)
        scratch.moveWriterIndex(forwardBy: count)
        pendingBytes += count
        didQueue()
    }

    /// Queues the UTF-8 of `string`.
    public func write(string: String) {
        var copy = string
        copy.withUTF8 { write(UnsafeRawBufferPointer($0)) }
    }

    /// A pipe holds 64 KiB; a larger frame crosses it in several wake-ups of both ends. A pipe
    /// seen carrying a larger frame (a large slice queued, or a partial frame read) is grown to
    /// hold it: the next power of two, at most 1 MiB, the unprivileged maximum
    /// (`fs.pipe-max-size`). Only as far as the frames need: a bigger pipe lets each side batch
    /// more per wake-up and pipelines worse (measured in Benchmarks/README.md), and every pipe's
    /// pages count against the user's `fs.pipe-user-pages-soft`. Failure (a socket, the limit
    /// reached) leaves the pipe as it is and stops further tries.
    private func growPipe(toHold bytes: Int) {
        guard kind == .pipe, bytes > pipeCapacity, pipeCapacity < IOStream.maximumPipeCapacity, fd >= 0 else { return }
        let wanted = Int32(min(IOStream.maximumPipeCapacity, 1 << (Int.bitWidth - (bytes - 1).leadingZeroBitCount)))
        let granted = fcntl(fd, IOStream.setPipeSize, wanted)
        pipeCapacity = granted > 0 ? Int(granted) : IOStream.maximumPipeCapacity
    }

    private static let maximumPipeCapacity = 1 << 20
    /// `F_SETPIPE_SZ` (Linux-specific; the Glibc module does not export it).
    private static let setPipeSize: Int32 = 1031

    /// Closes the open run of scratch bytes into a piece (before a large slice, and at flush).
    /// The scratch reader index stays 0, so when an append moves it to larger storage every
    /// offset is kept: sealed pieces hold the old storage, the open run is in the new one.
    private func sealScratch() {
        if scratch.writerIndex > scratchSealed {
            pieces.append(Piece(storage: scratch.storage, offset: scratchSealed, length: scratch.writerIndex - scratchSealed))
        }
        scratchSealed = scratch.writerIndex
    }

    private func didQueue() {
        if !flushScheduled {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
        if isWritable && queuedBytes > highWatermark { isWritable = false }
        writesUntilEarly -= 1
        if writesUntilEarly == 0 {
            writesUntilEarly = earlyWriteEvery
            writeEarly()
        }
    }

    /// Writes what is queued now, in the middle of a loop turn, when it can go without
    /// waiting: no write in flight, and only what `uv_try_write` takes. Anything else (a
    /// remainder, an error) is left to the turn's flush, so that no callback runs from inside
    /// a `write` call.
    private func writeEarly() {
        guard state == .open, inFlightWrites == 0, pendingBytes > 0, let handle else { return }
        sealScratch()
        gatherIovecs()
        let result = Int(uv_try_write(handle, iovecs, UInt32(iovecs.count)))
        guard result > 0 else { return }
        bytesWritten += UInt64(result)
        pendingBytes -= result
        if pendingBytes == 0 {
            releaseWritten()
            return
        }
        // Keep the unwritten tail: drop the pieces written whole, trim the first of the rest.
        var skip = result
        var written = 0
        while skip >= pieces[written].length {
            skip -= pieces[written].length
            written += 1
        }
        pieces.removeFirst(written)
        pieces[0].offset += skip
        pieces[0].length -= skip
    }

    /// `iovecs` for the queued pieces.
    private func gatherIovecs() {
        iovecs.removeAll(keepingCapacity: true)
        for piece in pieces {
            iovecs.append(uv_buf_t(base: UnsafeMutableRawPointer(piece.storage.base + piece.offset)
                .assumingMemoryBound(to: CChar.self), len: piece.length))
        }
    }

    /// After everything queued was written: storage back to the pool, the scratch reused.
    private func releaseWritten() {
        recycle(&pieces)
        scratch.clear()
        scratchSealed = 0
    }

    /// Sends everything queued: `uv_try_write` first, `uv_write` for the rest. Called by the loop
    /// once per turn; callers never need to.
    func flush() {
        flushQueued()
        if shutdownRequested { shutdownWrites() }
    }

    @inline(__always)
    private func flushQueued() {
        flushScheduled = false
        writesUntilEarly = earlyWriteFirst
        sealScratch()
        guard state == .open, !pieces.isEmpty else {
            // `writeEarly` may have sent everything this turn.
            if state == .open { checkWritable() }
            finishCloseIfFlushed()
            return
        }
        gatherIovecs()
        var written = 0
        guard let handle else {
            // A file: written synchronously, all or nothing.
            let (count, error) = writeFileBlocking()
            bytesWritten += UInt64(count)
            if let error {
                failWrites(error)
            } else {
                pendingBytes = 0
                pieces.removeAll(keepingCapacity: true)
                scratch.clear()
                scratchSealed = 0
                finishCloseIfFlushed()
            }
            return
        }
        if inFlightWrites == 0 {
            let result = Int(uv_try_write(handle, iovecs, UInt32(iovecs.count)))
            if result < 0 && result != Int(UV_EAGAIN.rawValue) {
                failWrites(UVError(Int32(result)))
                return
            }
            written = max(result, 0)
        }
        bytesWritten += UInt64(written)
        pendingBytes -= written
        if pendingBytes == 0 {
            releaseWritten()
            checkWritable()
            finishCloseIfFlushed()
            return
        }
        // Hand the remainder to uv_write; its storage stays pinned by the request.
        let request = requestPool.popLast() ?? WriteRequest()
        var skip = written
        for piece in pieces {
            if skip >= piece.length {
                skip -= piece.length
                continue
            }
            request.pins.append(piece.storage)
            request.bufs.append(uv_buf_t(base: UnsafeMutableRawPointer(piece.storage.base + piece.offset + skip)
                .assumingMemoryBound(to: CChar.self), len: piece.length - skip))
            skip = 0
        }
        request.bytes = pendingBytes
        inFlightBytes += pendingBytes
        inFlightWrites += 1
        pendingBytes = 0
        pieces.removeAll(keepingCapacity: true)
        scratch = ByteBuffer(capacity: max(scratch.storage.capacity, StoragePool.minimumCapacity), pool: loop.storagePool)
        scratchSealed = 0
        request.request.pointee.data = Unmanaged.passRetained(request).toOpaque()
        let rc = uv_write(request.request, handle, request.bufs, UInt32(request.bufs.count)) { request, status in
            let write = Unmanaged<WriteRequest>.fromOpaque(request!.pointee.data).takeRetainedValue()
            let stream = Unmanaged<IOStream>.fromOpaque(request!.pointee.handle.pointee.data).takeUnretainedValue()
            stream.didWrite(write, status: status)
        }
        if rc < 0 {
            let write = Unmanaged<WriteRequest>.fromOpaque(request.request.pointee.data).takeRetainedValue()
            didWrite(write, status: rc)
        }
    }

    /// Writes every queued iovec to a file descriptor; returns the bytes written and the error
    /// that stopped it, if any.
    private func writeFileBlocking() -> (Int, UVError?) {
        var total = 0
        for buf in iovecs {
            var offset = 0
            while offset < buf.len {
                let n = Glibc.write(fd, buf.base! + offset, buf.len - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    return (total, UVError.fromErrno(errno))
                }
                offset += n
                total += n
            }
        }
        return (total, nil)
    }

    private func didWrite(_ request: WriteRequest, status: Int32) {
        inFlightBytes -= request.bytes
        inFlightWrites -= 1
        if status >= 0 { bytesWritten += UInt64(request.bytes) }
        recycle(&request.pins)
        request.reset()
        if requestPool.count < 8 { requestPool.append(request) }
        if status < 0 && status != UV_ECANCELED.rawValue && state == .open {
            failWrites(UVError(status))
            return
        }
        checkWritable()
        if !pieces.isEmpty && !flushScheduled {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
        finishCloseIfFlushed()
    }

    /// Empties a list of written pieces or pins, giving storage no one else holds to the loop's
    /// pool. Taken from the end, so the last reference to a storage listed twice is unique.
    private func recycle(_ pieces: inout [Piece]) {
        while var piece = pieces.popLast() { loop.storagePool.recycle(&piece.storage) }
    }

    private func recycle(_ pins: inout [ByteStorage]) {
        while var storage = pins.popLast() { loop.storagePool.recycle(&storage) }
    }

    private func failWrites(_ error: UVError) {
        pieces.removeAll()
        pendingBytes = 0
        scratch.clear()
        scratchSealed = 0
        let callback = onWriteError
        onWriteError = nil
        callback?(error)
        if closeWhenFlushed { close() }
    }

    private func checkWritable() {
        if !isWritable && queuedBytes <= lowWatermark {
            isWritable = true
            onWritable?()
        }
    }

    /// Gives the read and write buffers' storage back to the loop's pool while nothing is
    /// buffered or queued, so that an idle connection holds no buffer memory (the next read or
    /// write takes storage again). Not from inside `onRead`, which holds `inbound`.
    public func releaseIdleStorage() {
        guard state == .open else { return }
        if inbound.readableBytes == 0 && inbound.storage.capacity > 0 {
            var storage = inbound.storage
            inbound = ByteBuffer(capacity: 0)
            loop.storagePool.recycle(&storage)
        }
        if pieces.isEmpty && inFlightWrites == 0 && pendingBytes == 0 && !flushScheduled && scratch.storage.capacity > 0 {
            var storage = scratch.storage
            scratch = ByteBuffer(capacity: 0)
            scratchSealed = 0
            loop.storagePool.recycle(&storage)
        }
    }

    // MARK: Closing

    private var shutdownRequested = false
    private var shutdownSent = false

    /// Ends the writing side once what is queued has been handed to the kernel (the peer reads
    /// the end of the stream; reading goes on): the first step of a lingering close.
    public func shutdownAfterFlush() {
        loop.assertInLoop()
        guard state == .open, handle != nil, !shutdownRequested else { return }
        shutdownRequested = true
        if !flushScheduled {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
    }

    /// `uv_shutdown` waits for the writes already submitted.
    private func shutdownWrites() {
        guard !shutdownSent, state == .open, let handle else { return }
        shutdownSent = true
        let request = zeroedAllocation(uv_shutdown_t.self)
        if uv_shutdown(request, handle, { request, _ in request!.deallocate() }) < 0 { request.deallocate() }
    }

    /// Closes after everything queued has been written (or has failed).
    public func closeAfterFlush() {
        loop.assertInLoop()
        guard state == .open else { return }
        closeWhenFlushed = true
        finishCloseIfFlushed()
    }

    /// Closes after everything queued has been written, or at `deadlineMs` with what is still
    /// queued dropped (a reader that stopped reading must not hold the process open).
    public func closeAfterFlush(deadlineMs: UInt64) {
        guard state == .open else { return }
        let deadline = LoopTimer(loop: loop)
        onClose = { deadline.close() }
        deadline.start(timeout: deadlineMs) { [unowned self] in
            close()
            deadline.close()
        }
        closeAfterFlush()
    }

    private func finishCloseIfFlushed() {
        if closeWhenFlushed && pieces.isEmpty && inFlightWrites == 0 && !flushScheduled { close() }
    }

    /// Closes the stream. Idempotent. Drops the read and write callbacks at once; queued output
    /// is discarded; `onClose` fires from libuv's close callback.
    public func close() {
        loop.assertInLoop()
        guard state == .open else { return }
        state = .closing
        onRead = nil
        onReadEnd = nil
        onWriteError = nil
        onWritable = nil
        pieces.removeAll()
        pendingBytes = 0
        isReading = false
        if let handle {
            uv_close(UnsafeMutableRawPointer(handle).assumingMemoryBound(to: uv_handle_t.self)) { handle in
                let stream = Unmanaged<IOStream>.fromOpaque(handle!.pointee.data).takeRetainedValue()
                stream.state = .closed
                let callback = stream.onClose
                stream.onClose = nil
                UnsafeMutableRawPointer(handle!).deallocate()
                callback?()
            }
        } else {
            // A file has no libuv handle; a read in flight finds the stream closed and stops.
            loop.execute { [self] in
                state = .closed
                let callback = onClose
                onClose = nil
                callback?()
            }
        }
    }


}

/// One `uv_write` in flight: the request, its iovecs and the storage they point into.
private final class WriteRequest {
    let request: UnsafeMutablePointer<uv_write_t> = zeroedAllocation(uv_write_t.self)
    var bufs: [uv_buf_t] = []
    var pins: [ByteStorage] = []
    var bytes = 0

    func reset() {
        bufs.removeAll(keepingCapacity: true)
        pins.removeAll(keepingCapacity: true)
        bytes = 0
    }

    deinit { request.deallocate() }
}
