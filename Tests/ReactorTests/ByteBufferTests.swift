import Reactor
import XCTest

final class ByteBufferTests: XCTestCase {
    func testAppendAndRead() {
        var buffer = ByteBuffer(capacity: 4)
        buffer.append(string: "hello, ")
        buffer.append(string: "world")
        buffer.append(decimal: -1234)
        buffer.append(decimal: 0)
        XCTAssertEqual(buffer.string, "hello, world-12340")
        buffer.moveReaderIndex(forwardBy: 7)
        XCTAssertEqual(buffer.string, "world-12340")
        XCTAssertEqual(buffer[0], UInt8(ascii: "w"))
    }

    func testSlicesShareStorageAndSurviveAppends() {
        var buffer = ByteBuffer(capacity: 16)
        buffer.append(string: "abcdef")
        let slice = buffer.slice(from: 1, length: 3)
        XCTAssertTrue(slice.storage === buffer.storage)
        XCTAssertEqual(slice.string, "bcd")
        // Appending to the buffer (even into new storage) leaves the slice intact.
        buffer.append(string: String(repeating: "x", count: 100))
        XCTAssertEqual(slice.string, "bcd")
    }

    func testAppendingToASliceCopiesInsteadOfOverwriting() {
        var buffer = ByteBuffer(capacity: 64)
        buffer.append(string: "abcdef")
        var slice = buffer.slice(from: 0, length: 2)
        slice.append(string: "ZZ")
        XCTAssertEqual(slice.string, "abZZ")
        XCTAssertEqual(buffer.string, "abcdef")
        XCTAssertFalse(slice.storage === buffer.storage)
    }

    func testReserveCompactsWhenUnshared() {
        var buffer = ByteBuffer(capacity: 32)
        buffer.append(string: String(repeating: "a", count: 30))
        buffer.moveReaderIndex(forwardBy: 28)
        let base = buffer.storage.base  // not the storage itself: holding it would share it
        buffer.reserveWritable(20)
        XCTAssertEqual(buffer.storage.base, base, "compaction should reuse the storage")
        XCTAssertEqual(buffer.readerIndex, 0)
        XCTAssertEqual(buffer.string, "aa")
        XCTAssertGreaterThanOrEqual(buffer.writableBytes, 20)
    }

    func testReserveMovesWhenShared() {
        var buffer = ByteBuffer(capacity: 32)
        buffer.append(string: String(repeating: "a", count: 30))
        let pinned = buffer.slice(from: 0, length: 4)
        buffer.moveReaderIndex(forwardBy: 28)
        buffer.reserveWritable(20)
        XCTAssertFalse(buffer.storage === pinned.storage, "shared storage must not be compacted")
        XCTAssertEqual(pinned.string, "aaaa")
        XCTAssertEqual(buffer.string, "aa")
    }

    /// A partial frame that moves to new storage gets room for `framesAhead` more of its size
    /// (up to `maxAhead`), so that it moves less often; without it, room for what was asked.
    func testReserveLeavesRoomForFramesAheadWhenItMoves() {
        func moved(framesAhead: Int, partial: Int) -> Int {
            var buffer = ByteBuffer(capacity: 4096)
            buffer.append(string: String(repeating: "a", count: 4096))
            let pinned = buffer.slice(from: 0, length: 4096 - partial)  // frames being written
            buffer.moveReaderIndex(forwardBy: 4096 - partial)
            buffer.reserveWritable(1024, framesAhead: framesAhead)
            XCTAssertFalse(buffer.storage === pinned.storage)
            XCTAssertEqual(buffer.string, String(repeating: "a", count: partial))
            return buffer.storage.capacity
        }
        XCTAssertEqual(moved(framesAhead: 0, partial: 3500), 8192, "3500 bytes and 1024 more: doubled once")
        XCTAssertGreaterThanOrEqual(moved(framesAhead: 8, partial: 3000), 3000 * 9)
        XCTAssertLessThan(moved(framesAhead: 8, partial: 3000), 3000 * 9 * 2)
        XCTAssertEqual(moved(framesAhead: 8, partial: 10), 4096, "never less room than asked for")
    }

    func testReadInPlace() {
        var buffer = ByteBuffer(capacity: 8)
        buffer.reserveWritable(5)
        let bytes: [UInt8] = Array("12345".utf8)
        for (offset, byte) in bytes.enumerated() { buffer.writablePointer[offset] = byte }
        buffer.moveWriterIndex(forwardBy: 5)
        XCTAssertEqual(buffer.string, "12345")
    }

    func testClearKeepsUnsharedStorage() {
        var buffer = ByteBuffer(capacity: 64)
        buffer.append(string: "abc")
        let base = buffer.storage.base
        buffer.clear()
        XCTAssertEqual(buffer.storage.base, base)
        XCTAssertTrue(buffer.isEmpty)
        buffer.append(string: "x")
        XCTAssertEqual(buffer.string, "x")
    }

    func testPoolKeepsOnlyUnreferencedStorageAndHandsItBack() {
        let pool = StoragePool()
        var held = ByteBuffer(capacity: 64 << 10).storage
        let other = held
        pool.recycle(&held)
        XCTAssertEqual(pool.bytes, 0, "storage someone else holds must not be reused")
        _ = other
        var small = ByteBuffer(capacity: 100).storage
        pool.recycle(&small)
        XCTAssertEqual(pool.bytes, 0, "storage under 1 KiB is not kept")

        var free = ByteBuffer(capacity: 64 << 10).storage
        let base = free.base
        pool.recycle(&free)
        XCTAssertEqual(pool.bytes, 64 << 10)
        XCTAssertNil(pool.take(capacity: 128 << 10), "kept storage is too small for this")
        XCTAssertNil(pool.take(capacity: 8 << 10), "kept storage is over four times too large for this")
        var buffer = ByteBuffer(capacity: 40 << 10, pool: pool)
        XCTAssertEqual(buffer.storage.base, base)
        XCTAssertEqual(pool.bytes, 0)
        buffer.append(string: "reused")
        XCTAssertEqual(buffer.string, "reused")
    }

    func testPoolIsBounded() {
        let pool = StoragePool(maximumPerClass: 2, maximumBytes: 1 << 20)
        for _ in 0..<5 {
            var storage = ByteBuffer(capacity: 4096).storage
            pool.recycle(&storage)
        }
        XCTAssertEqual(pool.bytes, 2 * 4096, "at most two per size class")
        for _ in 0..<5 {
            var storage = ByteBuffer(capacity: 512 << 10).storage
            pool.recycle(&storage)
        }
        XCTAssertEqual(pool.bytes, 2 * 4096 + (512 << 10), "at most 1 MiB in all")
    }

    func testReserveTakesFromThePoolWhenShared() {
        let pool = StoragePool()
        var spare = ByteBuffer(capacity: 8192).storage
        let spareBase = spare.base
        pool.recycle(&spare)
        var buffer = ByteBuffer(capacity: 4096)
        buffer.append(string: String(repeating: "a", count: 4000))
        let pinned = buffer.slice(from: 0, length: 10)
        buffer.moveReaderIndex(forwardBy: 3990)
        buffer.reserveWritable(4096, pool: pool)
        XCTAssertEqual(buffer.storage.base, spareBase)
        XCTAssertEqual(buffer.string, String(repeating: "a", count: 10))
        XCTAssertEqual(pinned.string, String(repeating: "a", count: 10))
    }
}
