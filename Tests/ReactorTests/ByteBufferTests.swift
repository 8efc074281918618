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
}
