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
