#if canImport(Glibc)
import Glibc
#endif

/// Heap memory for bytes, shared by a buffer and every slice of it, and pinned by writes in
/// flight. Freed when the last of them lets go.
public final class ByteStorage {
    /// The first byte.
    public let base: UnsafeMutablePointer<UInt8>
    /// Bytes allocated.
    public let capacity: Int
    /// How far any buffer has written. Only the buffer whose writer index equals `fill` may
    /// append in place; any other copy (a slice, a stale value) copies on write.
    var fill = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }
}

/// Storage released by writes, kept for reuse: a stream that reads on while its buffer is
/// pinned by queued writes (large frames forwarded by reference), or that hands its scratch
/// buffer to an asynchronous write, takes its next storage from here instead of the heap. One
/// per loop. Kept by size class (powers of two from 1 KiB to 16 MiB), a few per class and at
/// most `maximumBytes` in all.
public final class StoragePool {
    /// Storages by size class: `classes[k]` holds capacities in [2^(k+10), 2^(k+11)).
    private var classes: [[ByteStorage]] = Array(repeating: [], count: 15)
    private var keptBytes = 0
    /// At most this many storages are kept per size class.
    public let maximumPerClass: Int
    /// At most this many bytes are kept in all.
    public let maximumBytes: Int
    /// Storages smaller than this are not worth keeping.
    static let minimumCapacity = 1 << 10

    public init(maximumPerClass: Int = 16, maximumBytes: Int = 8 << 20) {
        self.maximumPerClass = maximumPerClass
        self.maximumBytes = maximumBytes
    }

    /// Bytes kept.
    public var bytes: Int { keptBytes }

    @inline(__always)
    private static func sizeClass(_ capacity: Int) -> Int {
        Int.bitWidth - 1 - capacity.leadingZeroBitCount - 10
    }

    /// Keeps `storage` if nothing else refers to it and its class has room.
    public func recycle(_ storage: inout ByteStorage) {
        let capacity = storage.capacity
        guard capacity >= StoragePool.minimumCapacity, keptBytes + capacity <= maximumBytes else { return }
        let k = StoragePool.sizeClass(capacity)
        guard k < classes.count, classes[k].count < maximumPerClass, isKnownUniquelyReferenced(&storage) else { return }
        storage.fill = 0
        keptBytes += capacity
        classes[k].append(storage)
    }

    /// A kept storage of at least `capacity` bytes and less than four times that, or nil.
    public func take(capacity: Int) -> ByteStorage? {
        guard keptBytes > 0, capacity >= StoragePool.minimumCapacity else { return nil }
        let k = StoragePool.sizeClass(capacity)
        for candidate in k..<min(k + 2, classes.count) {
            if let index = classes[candidate].lastIndex(where: { $0.capacity >= capacity }) {
                classes[candidate].swapAt(index, classes[candidate].count - 1)
                let storage = classes[candidate].removeLast()
                keptBytes -= storage.capacity
                return storage
            }
        }
        return nil
    }
}

/// A byte buffer with a reader and a writer index over shared storage.
///
///     storage.base                                                   capacity
///     |-- consumed --|------ readable ------|------- writable -------|
///                    readerIndex            writerIndex
///
/// Reads from a socket land in the writable tail (see `reserveWritable`). A slice is a buffer
/// over part of the readable region that shares the storage: framing yields slices, and a
/// forwarded frame is written from its slice without a copy. Appending to a buffer that is not
/// at the storage's fill line (a slice, or an old copy) moves its bytes to new storage first,
/// so a slice never overwrites what others see.
public struct ByteBuffer {
    /// The storage, shared with slices.
    public private(set) var storage: ByteStorage
    /// Index of the first readable byte.
    public private(set) var readerIndex: Int
    /// Index one past the last readable byte.
    public private(set) var writerIndex: Int

    /// An empty buffer with room for `capacity` bytes.
    public init(capacity: Int = 256) {
        storage = ByteStorage(capacity: capacity)
        readerIndex = 0
        writerIndex = 0
    }

    /// An empty buffer with room for `capacity` bytes, on storage from `pool` when it has some.
    public init(capacity: Int, pool: StoragePool) {
        storage = pool.take(capacity: capacity) ?? ByteStorage(capacity: capacity)
        readerIndex = 0
        writerIndex = 0
    }

    /// A buffer holding a copy of `bytes`.
    public init<C: Collection>(bytes: C) where C.Element == UInt8 {
        self.init(capacity: bytes.count)
        append(contentsOf: bytes)
    }

    /// A buffer holding the UTF-8 of `string`.
    public init(string: String) {
        var copy = string
        let count = copy.utf8.count
        self.init(capacity: count)
        copy.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    private init(storage: ByteStorage, readerIndex: Int, writerIndex: Int) {
        self.storage = storage
        self.readerIndex = readerIndex
        self.writerIndex = writerIndex
    }

    /// Bytes between the reader and the writer index.
    @inline(__always) public var readableBytes: Int { writerIndex - readerIndex }
    /// Bytes that can be appended before the storage must grow.
    @inline(__always) public var writableBytes: Int { storage.capacity - writerIndex }
    /// True when nothing is readable.
    @inline(__always) public var isEmpty: Bool { writerIndex == readerIndex }

    /// The readable bytes. Valid while this buffer (or a slice of its storage) is alive.
    @inline(__always) public var readablePointer: UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: storage.base + readerIndex, count: readableBytes)
    }

    /// Calls `body` with the readable bytes.
    @inline(__always)
    public func withUnsafeReadableBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.base + readerIndex, count: readableBytes))
    }

    /// The readable byte at `offset` from the reader index.
    @inline(__always) public subscript(offset: Int) -> UInt8 {
        precondition(offset >= 0 && offset < readableBytes, "ByteBuffer index out of range")
        return storage.base[readerIndex + offset]
    }

    /// A buffer over `length` readable bytes starting `offset` bytes after the reader index,
    /// sharing storage: no bytes are copied.
    @inline(__always)
    public func slice(from offset: Int, length: Int) -> ByteBuffer {
        precondition(offset >= 0 && length >= 0 && offset + length <= readableBytes, "slice out of range")
        return ByteBuffer(storage: storage, readerIndex: readerIndex + offset, writerIndex: readerIndex + offset + length)
    }

    /// A slice over the readable byte range `range` (offsets from the reader index).
    @inline(__always)
    public func slice(_ range: Range<Int>) -> ByteBuffer {
        slice(from: range.lowerBound, length: range.count)
    }

    /// Consumes `count` readable bytes.
    @inline(__always)
    public mutating func moveReaderIndex(forwardBy count: Int) {
        precondition(count >= 0 && count <= readableBytes, "reader index moved past the writer index")
        readerIndex += count
    }

    /// Marks `count` bytes written directly into the writable tail (after a read in place).
    @inline(__always)
    public mutating func moveWriterIndex(forwardBy count: Int) {
        precondition(count >= 0 && count <= writableBytes && writerIndex == storage.fill, "writer index moved past capacity")
        writerIndex += count
        storage.fill = writerIndex
    }

    /// The start of the writable tail. Call `reserveWritable` first.
    @inline(__always) public var writablePointer: UnsafeMutablePointer<UInt8> { storage.base + writerIndex }

    /// Drops every byte. Keeps the storage when nothing else refers to it.
    public mutating func clear() {
        if isKnownUniquelyReferenced(&storage) {
            storage.fill = 0
            readerIndex = 0
            writerIndex = 0
        } else {
            self = ByteBuffer(capacity: storage.capacity)
        }
    }

    /// The most room `reserveWritable(_:pool:framesAhead:)` adds for frames ahead.
    public static let maxAhead = 4 << 20

    /// Makes room to append at least `count` bytes in place.
    ///
    /// Moves the readable bytes to the front when the storage is not shared and that frees
    /// enough; otherwise moves them to new storage of at least twice the size needed (slices of
    /// the old storage keep it alive). Never copies when the tail already has room. With
    /// `framesAhead`, new storage also has room for that many more runs of the readable bytes'
    /// size (at most `maxAhead` bytes): a stream of large frames, whose partial last frame moves
    /// each time the storage fills while the frames before it are still being written, moves it
    /// less often.
    public mutating func reserveWritable(_ count: Int, pool: StoragePool? = nil, framesAhead: Int = 0) {
        if writerIndex == storage.fill && writableBytes >= count { return }
        let readable = readableBytes
        if writerIndex == storage.fill && isKnownUniquelyReferenced(&storage) && storage.capacity - readable >= count
            && readerIndex >= readable
        {
            // Compact: the moved region does not overlap what remains, and nobody else sees it.
            (storage.base).update(from: storage.base + readerIndex, count: readable)
            readerIndex = 0
            writerIndex = readable
            storage.fill = readable
            return
        }
        var capacity = storage.capacity
        let room = max(count, min(readable &* framesAhead, ByteBuffer.maxAhead))
        while capacity - readable < room { capacity *= 2 }
        let fresh = pool?.take(capacity: capacity) ?? ByteStorage(capacity: capacity)
        fresh.base.update(from: storage.base + readerIndex, count: readable)
        fresh.fill = readable
        storage = fresh
        readerIndex = 0
        writerIndex = readable
    }

    /// Appends raw bytes.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard bytes.count > 0 else { return }
        if writerIndex != storage.fill || storage.capacity - writerIndex < bytes.count { reserveWritable(bytes.count) }
        (storage.base + writerIndex).update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: bytes.count)
        writerIndex += bytes.count
        storage.fill = writerIndex
    }

    /// Appends the readable bytes of another buffer.
    public mutating func append(_ other: ByteBuffer) {
        other.withUnsafeReadableBytes { append($0) }
    }

    /// Appends a sequence of bytes.
    public mutating func append<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        let done: Void? = bytes.withContiguousStorageIfAvailable { append(UnsafeRawBufferPointer($0)) }
        if done == nil {
            reserveWritable(bytes.count)
            for byte in bytes { appendByte(byte) }
        }
    }

    /// Appends one byte.
    @inline(__always)
    public mutating func appendByte(_ byte: UInt8) {
        reserveWritable(1)
        storage.base[writerIndex] = byte
        writerIndex += 1
        storage.fill = writerIndex
    }

    /// Appends the UTF-8 of a string.
    public mutating func append(string: String) {
        if string.utf8.withContiguousStorageIfAvailable({ append(UnsafeRawBufferPointer($0)) }) != nil { return }
        var copy = string
        copy.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    /// Appends an integer in decimal.
    public mutating func append(decimal value: Int) {
        reserveWritable(20)
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var magnitude = value.magnitude
        withUnsafeMutableBytes(of: &digits) { raw in
            repeat {
                raw[count] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                count += 1
            } while magnitude > 0
        }
        if value < 0 { appendByte(UInt8(ascii: "-")) }
        withUnsafeBytes(of: &digits) { raw in
            for index in stride(from: count - 1, through: 0, by: -1) { appendByte(raw[index]) }
        }
    }

    /// The readable bytes as an array (a copy; for tests and cold paths).
    public var bytes: [UInt8] { Array(readablePointer) }

    /// The readable bytes decoded as UTF-8 (a copy; for logs, tests and cold paths).
    public var string: String { String(decoding: readablePointer, as: UTF8.self) }

    /// True when the readable bytes equal `other`'s.
    public func elementsEqual(_ other: ByteBuffer) -> Bool {
        readableBytes == other.readableBytes
            && (readableBytes == 0 || memcmp(storage.base + readerIndex, other.storage.base + other.readerIndex, readableBytes) == 0)
    }
}
