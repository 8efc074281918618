import CUV
import Reactor
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class IOStreamTests: XCTestCase {
    func testWritesArriveInOrderAcrossSlicesAndCopies() {
        withLoop { loop, done in
            let (a, b) = socketPair(loop)
            var big = ByteBuffer(capacity: 100_000)
            for index in 0..<10_000 { big.appendByte(UInt8(ascii: "a") + UInt8(index % 26)) }
            var expected = ""
            for index in 0..<100 {
                let small = "line \(index)\n"
                a.write(string: small)
                expected += small
                if index % 10 == 0 {
                    let slice = big.slice(from: index, length: 5000)
                    a.write(slice)
                    expected += slice.string
                }
            }
            var received = ""
            b.onRead = { buffer in
                received += buffer.string
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                if received.utf8.count == expected.utf8.count {
                    XCTAssertEqual(received, expected)
                    a.close()
                    b.close()
                    done()
                }
            }
            b.startReading()
        }
    }

    func testEndOfStreamIsReported() {
        withLoop { loop, done in
            let (a, b) = socketPair(loop)
            a.write(string: "bye")
            a.closeAfterFlush()
            var got = ""
            b.onRead = { buffer in
                got += buffer.string
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            }
            b.onReadEnd = { error in
                XCTAssertEqual(error, .eof)
                XCTAssertEqual(got, "bye")
                b.close()
                done()
            }
            b.startReading()
        }
    }

    func testBackPressureWatermarks() {
        withLoop { loop, done in
            let (a, b) = socketPair(loop)
            a.highWatermark = 64 << 10
            a.lowWatermark = 16 << 10
            let chunk = ByteBuffer(bytes: [UInt8](repeating: 0x41, count: 32 << 10))
            // The peer is not reading: after the kernel buffers fill, queued bytes pile up.
            var writes = 0
            func fill() {
                while a.isWritable && writes < 1000 {
                    a.write(chunk)
                    writes += 1
                }
            }
            fill()
            XCTAssertFalse(a.isWritable, "writing 32 MiB to a peer that does not read must cross the high watermark")
            var becameWritable = false
            a.onWritable = {
                becameWritable = true
                XCTAssertLessThanOrEqual(a.queuedBytes, a.lowWatermark)
            }
            var received = 0
            b.onRead = { buffer in
                received += buffer.readableBytes
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
                if becameWritable && a.queuedBytes == 0 && received == writes * chunk.readableBytes {
                    a.close()
                    b.close()
                    done()
                }
            }
            b.startReading()
        }
    }

    /// Output waits for the end of the loop turn, but the `earlyWriteFirst`-th write in a turn,
    /// and every `earlyWriteEvery`-th after it, send what is queued at once, from inside `write`;
    /// the count starts again each turn.
    func testEarlyWriteSendsMidTurn() {
        withLoop { loop, done in
            var fds: [Int32] = [0, 0]
            XCTAssertEqual(pipe(&fds), 0)
            _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
            let writer = try! IOStream.open(loop: loop, fd: fds[1])
            func drain() -> String {
                var bytes = [UInt8](repeating: 0, count: 4096)
                let count = read(fds[0], &bytes, bytes.count)
                return count > 0 ? String(decoding: bytes[0..<count], as: UTF8.self) : ""
            }
            writer.write(string: "a ")
            XCTAssertEqual(drain(), "", "by default, output waits for the turn's end")
            writer.earlyWriteFirst = 2
            writer.earlyWriteEvery = 3
            writer.write(string: "b ")
            XCTAssertEqual(drain(), "", "one write: still waiting")
            writer.write(string: "c ")
            XCTAssertEqual(drain(), "a b c ", "the second write sends everything queued, in order")
            writer.write(string: "d ")
            writer.write(string: "e ")
            XCTAssertEqual(drain(), "")
            writer.write(string: "f ")
            XCTAssertEqual(drain(), "d e f ", "and so does the third after it")
            writer.write(string: "g")
            XCTAssertEqual(drain(), "")
            // The timer may fire before this turn's flush; it waits for "g", the rest goes then.
            let check = LoopTimer(loop: loop)
            check.start(timeout: 1, repeat: 1) {
                let rest = drain()
                if rest.isEmpty { return }
                XCTAssertEqual(rest, "g", "the rest goes at the turn's end")
                writer.write(string: "h ")
                XCTAssertEqual(drain(), "", "a new turn counts from zero")
                writer.write(string: "i")
                XCTAssertEqual(drain(), "h i")
                check.close()
                writer.close()
                close(fds[0])
                done()
            }
        }
    }

    /// An early write the pipe takes only in part keeps the rest, in order, for later writes.
    func testEarlyWriteIntoANearlyFullPipeKeepsTheRest() {
        withLoop { loop, done in
            var fds: [Int32] = [0, 0]
            XCTAssertEqual(pipe(&fds), 0)
            _ = fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, 4096)
            _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
            let filler = [UInt8](repeating: UInt8(ascii: "f"), count: 3000)
            XCTAssertEqual(write(fds[1], filler, filler.count), 3000)
            let writer = try! IOStream.open(loop: loop, fd: fds[1])
            writer.earlyWriteFirst = 1
            writer.earlyWriteEvery = 1
            writer.write(string: String(repeating: "a", count: 500))
            writer.write(ByteBuffer(bytes: [UInt8](repeating: UInt8(ascii: "b"), count: 3000)))  // a piece by reference
            writer.write(string: "end")
            let expected = String(repeating: "f", count: 3000) + String(repeating: "a", count: 500) + String(repeating: "b", count: 3000) + "end"
            var received = ""
            let reader = LoopTimer(loop: loop)
            reader.start(timeout: 1, repeat: 1) {
                var bytes = [UInt8](repeating: 0, count: 8192)
                let count = read(fds[0], &bytes, bytes.count)
                if count > 0 { received += String(decoding: bytes[0..<count], as: UTF8.self) }
                if received.utf8.count >= expected.utf8.count {
                    XCTAssertEqual(received, expected)
                    reader.close()
                    writer.close()
                    close(fds[0])
                    done()
                }
            }
        }
    }

    func testWriteToClosedPeerReportsEPIPE() {
        signal(SIGPIPE, SIG_IGN)
        withLoop { loop, done in
            let (a, b) = socketPair(loop)
            b.close()
            a.onWriteError = { error in
                XCTAssertTrue(error.name == "EPIPE" || error.name == "ECONNRESET", "got \(error)")
                a.close()
                done()
            }
            a.write(string: "into the void")
        }
    }

    func testRegularFileAsInput() throws {
        let path = "/tmp/mcpd-iostream-test-\(getpid())"
        let text = String(repeating: "0123456789", count: 20_000)
        let file = fopen(path, "w")!
        fputs(text, file)
        fclose(file)
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        XCTAssertGreaterThanOrEqual(fd, 0)
        withLoop { loop, done in
            let stream = try! IOStream.open(loop: loop, fd: fd)
            XCTAssertEqual(stream.kind, .file)
            var count = 0
            stream.onRead = { buffer in
                count += buffer.readableBytes
                buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            }
            stream.onReadEnd = { error in
                XCTAssertEqual(error, .eof)
                XCTAssertEqual(count, text.utf8.count)
                stream.close()
                done()
            }
            stream.startReading()
        }
        close(fd)
    }
}
