import CUV
#if canImport(Glibc)
import Glibc
#endif

/// File work off the loop thread: each step is a `uv_fs_*` request that libuv's thread pool
/// runs (C only), and its completion runs on the loop. For the files mcpd writes while it
/// serves (its catalog, its record of running backends) and reads on a reload (the config).
public enum AsyncFile {
    /// Reads a whole file of at most `maxBytes` bytes. A larger file fails with `EFBIG`.
    public static func read(loop: EventLoop, path: String, maxBytes: Int,
                            _ completion: @escaping (Result<[UInt8], UVError>) -> Void)
    {
        loop.assertInLoop()
        submit(loop, { uv_fs_open(loop.raw, $0, path, O_RDONLY | O_CLOEXEC, 0, $1) }) { fd in
            guard fd >= 0 else { return completion(.failure(UVError(Int32(fd)))) }
            var bytes: [UInt8] = []
            let chunk = Chunk(size: 65536)
            func next() {
                submitRead(loop, file: Int32(fd), chunk: chunk, offset: Int64(bytes.count)) { n in
                    if n < 0 {
                        closeThen(loop, Int32(fd)) { completion(.failure(UVError(Int32(n)))) }
                    } else if n == 0 {
                        closeThen(loop, Int32(fd)) { completion(.success(bytes)) }
                    } else if bytes.count + n > maxBytes {
                        closeThen(loop, Int32(fd)) { completion(.failure(UVError(-EFBIG))) }
                    } else {
                        bytes.append(contentsOf: UnsafeRawBufferPointer(start: chunk.pointer, count: n))
                        next()
                    }
                }
            }
            next()
        }
    }

    /// Replaces `path` with `data` atomically: written to a temporary file beside it, flushed
    /// to disk, then renamed over it. A reader sees the old file or the new one, never a part.
    public static func writeAtomically(loop: EventLoop, path: String, data: [UInt8], mode: Int32 = 0o600,
                                       _ completion: @escaping (UVError?) -> Void)
    {
        loop.assertInLoop()
        let temporary = "\(path).\(getpid()).tmp"
        let flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC
        submit(loop, { uv_fs_open(loop.raw, $0, temporary, flags, mode, $1) }) { fd in
            guard fd >= 0 else { return completion(UVError(Int32(fd))) }
            let file = Int32(fd)
            let source = Chunk(copying: data)
            func failed(_ code: Int) {
                closeThen(loop, file) {
                    submit(loop, { uv_fs_unlink(loop.raw, $0, temporary, $1) }) { _ in completion(UVError(Int32(code))) }
                }
            }
            func write(from offset: Int) {
                guard offset < data.count else {
                    submit(loop, { uv_fs_fsync(loop.raw, $0, file, $1) }) { result in
                        guard result >= 0 else { return failed(result) }
                        closeThen(loop, file) {
                            submit(loop, { uv_fs_rename(loop.raw, $0, temporary, path, $1) }) { result in
                                completion(result < 0 ? UVError(Int32(result)) : nil)
                            }
                        }
                    }
                    return
                }
                submitWrite(loop, file: file, chunk: source, range: offset..<data.count) { n in
                    guard n > 0 else { return failed(n < 0 ? n : -Int(EIO)) }
                    write(from: offset + n)
                }
            }
            write(from: 0)
        }
    }

    /// Removes a file; a missing one is not an error.
    public static func remove(loop: EventLoop, path: String, _ completion: @escaping (UVError?) -> Void) {
        loop.assertInLoop()
        submit(loop, { uv_fs_unlink(loop.raw, $0, path, $1) }) { result in
            completion(result < 0 && Int32(result) != UV_ENOENT.rawValue ? UVError(Int32(result)) : nil)
        }
    }

    // MARK: Requests

    /// A buffer that lives until the request using it completes.
    private final class Chunk {
        let pointer: UnsafeMutableRawPointer
        let size: Int
        init(size: Int) {
            self.size = size
            pointer = UnsafeMutableRawPointer.allocate(byteCount: max(size, 1), alignment: 16)
        }
        convenience init(copying bytes: [UInt8]) {
            self.init(size: bytes.count)
            bytes.withUnsafeBytes { if let base = $0.baseAddress { pointer.copyMemory(from: base, byteCount: bytes.count) } }
        }
        deinit { pointer.deallocate() }
    }

    /// One `uv_fs_t` in flight: its completion, and what must outlive it.
    private final class Request {
        let raw = zeroedAllocation(uv_fs_t.self)
        let completion: (Int) -> Void
        var chunk: Chunk?
        init(_ completion: @escaping (Int) -> Void) { self.completion = completion }
        deinit { raw.deallocate() }
    }

    /// Starts one request; `completion` gets its result (a negative libuv error, or the call's
    /// value), always later on the loop, never from inside `submit`.
    private static func submit(_ loop: EventLoop, chunk: Chunk? = nil,
                               _ start: (UnsafeMutablePointer<uv_fs_t>, uv_fs_cb) -> Int32,
                               _ completion: @escaping (Int) -> Void)
    {
        let request = Request(completion)
        request.chunk = chunk
        request.raw.pointee.data = Unmanaged.passRetained(request).toOpaque()
        let code = start(request.raw, { raw in
            let request = Unmanaged<Request>.fromOpaque(raw!.pointee.data).takeRetainedValue()
            let result = Int(raw!.pointee.result)
            uv_fs_req_cleanup(raw)
            request.completion(result)
        })
        if code < 0 {
            Unmanaged<Request>.fromOpaque(request.raw.pointee.data).release()
            loop.execute { completion(Int(code)) }
        }
    }

    private static func submitRead(_ loop: EventLoop, file: Int32, chunk: Chunk, offset: Int64, _ completion: @escaping (Int) -> Void) {
        submit(loop, chunk: chunk, { raw, callback in
            var buffer = uv_buf_init(chunk.pointer.assumingMemoryBound(to: CChar.self), UInt32(chunk.size))
            return uv_fs_read(loop.raw, raw, uv_file(file), &buffer, 1, offset, callback)
        }, completion)
    }

    private static func submitWrite(_ loop: EventLoop, file: Int32, chunk: Chunk, range: Range<Int>, _ completion: @escaping (Int) -> Void) {
        submit(loop, chunk: chunk, { raw, callback in
            var buffer = uv_buf_init((chunk.pointer + range.lowerBound).assumingMemoryBound(to: CChar.self), UInt32(range.count))
            return uv_fs_write(loop.raw, raw, uv_file(file), &buffer, 1, Int64(range.lowerBound), callback)
        }, completion)
    }

    private static func closeThen(_ loop: EventLoop, _ file: Int32, _ then: @escaping () -> Void) {
        submit(loop, { uv_fs_close(loop.raw, $0, uv_file(file), $1) }) { _ in then() }
    }
}
