import Reactor
import XCTest

final class LineFramerTests: XCTestCase {
    private let lines = [
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}",
        "",
        String(repeating: "x", count: 5000),
        "héllo 😀 \\n not a newline",
        "last",
    ]

    private var input: [UInt8] {
        var bytes: [UInt8] = []
        for line in lines { bytes += Array(line.utf8) + [0x0A] }
        return bytes
    }

    /// Feeds `input` in the given chunk sizes and collects the frames.
    private func frames(chunks: [Int], maxLineLength: Int = 1 << 20) -> (lines: [String], tooLong: Bool) {
        var framer = LineFramer(maxLineLength: maxLineLength)
        var buffer = ByteBuffer(capacity: 16)
        var out: [String] = []
        var offset = 0
        let bytes = input
        for size in chunks {
            let end = min(offset + size, bytes.count)
            buffer.append(contentsOf: bytes[offset..<end])
            offset = end
            loop: while true {
                switch framer.next(&buffer) {
                case .line(let line): out.append(line.string)
                case .needMore: break loop
                case .tooLong, .skippedLongLine: return (out, true)
                }
            }
        }
        XCTAssertEqual(offset, bytes.count)
        return (out, false)
    }

    func testWhole() {
        XCTAssertEqual(frames(chunks: [input.count]).lines, lines)
    }

    func testByteByByte() {
        XCTAssertEqual(frames(chunks: Array(repeating: 1, count: input.count)).lines, lines)
    }

    func testRandomChunks() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var chunks: [Int] = []
            var total = 0
            while total < input.count {
                let size = Int.random(in: 1...700, using: &generator)
                chunks.append(size)
                total += size
            }
            XCTAssertEqual(frames(chunks: chunks).lines, lines)
        }
    }

    func testCarriageReturnIsDropped() {
        var framer = LineFramer()
        var buffer = ByteBuffer(string: "a\r\nb\n")
        guard case .line(let first) = framer.next(&buffer), case .line(let second) = framer.next(&buffer) else {
            return XCTFail("expected two lines")
        }
        XCTAssertEqual(first.string, "a")
        XCTAssertEqual(second.string, "b")
    }

    func testLineAfterAnOversizedLineSurvives() {
        var framer = LineFramer(maxLineLength: 8)
        var buffer = ByteBuffer(string: "0123456789abc\nok\n")
        guard case .skippedLongLine(let length) = framer.next(&buffer) else { return XCTFail("expected the long line to be skipped") }
        XCTAssertEqual(length, 13)
        guard case .line(let line) = framer.next(&buffer) else { return XCTFail("the next line was lost") }
        XCTAssertEqual(line.string, "ok")
    }

    func testTooLong() {
        // The 5,000-byte line exceeds a 1,000-byte limit, whether or not its newline arrived.
        XCTAssertTrue(frames(chunks: [input.count], maxLineLength: 1000).tooLong)
        XCTAssertTrue(frames(chunks: Array(repeating: 100, count: input.count / 100 + 1), maxLineLength: 1000).tooLong)
        var framer = LineFramer(maxLineLength: 10)
        var buffer = ByteBuffer(string: "0123456789")
        if case .needMore = framer.next(&buffer) {} else { XCTFail("10 bytes without newline fit a 10-byte limit") }
        buffer.append(string: "A")
        if case .tooLong = framer.next(&buffer) {} else { XCTFail("11 bytes without newline exceed a 10-byte limit") }
    }
}
