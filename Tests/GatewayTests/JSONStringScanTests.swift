import CJSONScan
@testable import Gateway
import XCTest

/// The block scan of strings (CJSONScan, each instruction set the CPU has) against the
/// byte-by-byte scan, on random strings built from every kind of piece, valid and invalid, at
/// every alignment against the 64-byte blocks and the frame's end.
final class JSONStringScanTests: XCTestCase {
    /// What one scan of the string at `quote` gives: where it ends and whether it had an escape,
    /// or the error.
    enum Outcome: Equatable {
        case skipped(end: Int, escape: Bool)
        case failed(ScanError)
    }

    private func scan(_ frame: [UInt8], quote: Int, _ body: (inout JSONCursor) throws(ScanError) -> Bool) -> Outcome {
        frame.withUnsafeBufferPointer { buffer in
            var cursor = JSONCursor(bytes: buffer.baseAddress!, count: buffer.count, maxDepth: 128)
            cursor.index = quote
            do throws(ScanError) {
                let escape = try body(&cursor)
                return .skipped(end: cursor.index, escape: escape)
            } catch {
                return .failed(error)
            }
        }
    }

    private func blocks(_ frame: [UInt8], quote: Int, level: Int32) -> Int64 {
        frame.withUnsafeBufferPointer { mcpd_skip_string_at_level(level, $0.baseAddress!, Int64(quote + 1), Int64($0.count)) }
    }

    private static let valid: [[UInt8]] = [
        Array(#"\""#.utf8), Array(#"\\"#.utf8), Array(#"\/"#.utf8), Array(#"\b\f\n\r\t"#.utf8), Array(#"\u00e9"#.utf8),
        Array(#"\u4E2D"#.utf8), Array(#"\uD83D\uDE00"#.utf8), Array(#"\\\\\\\""#.utf8), Array(#"\\\\"#.utf8),
        Array("é".utf8), Array("中文".utf8), Array("😀".utf8), Array("€".utf8), Array("\u{10FFFF}".utf8), Array("\u{7F}".utf8),
        Array(" {\"a\": [1, 2]} ".utf8), Array("'".utf8), Array("x".utf8),
    ]
    private static let invalid: [[UInt8]] = [
        [0x01], [0x0A], [0x1F], [0x09], Array(#"\x"#.utf8), Array(#"\'"#.utf8), Array(#"\u12G4"#.utf8), Array(#"\u12"#.utf8),
        Array(#"\uDC00"#.utf8), Array(#"\uD800x"#.utf8), Array(#"\uD800\u0041"#.utf8), Array(#"\uD800\n"#.utf8), Array("\\\u{01}".utf8),
        [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF0, 0x80, 0x80, 0x80], [0xF4, 0x90, 0x80, 0x80],
        [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xFE], [0x80], [0xBF], [0xC3], [0xC3, 0x41], [0xE4, 0xB8], [0xF0, 0x9F, 0x98],
        [0xE4, 0xB8, 0xAD, 0x80], [0xC3, 0xA9, 0xA9],
    ]

    func testBlockScanAgreesWithByteScan() throws {
        var random = SplitMix(seed: 0x7363_616E)
        func pick(_ pieces: [[UInt8]]) -> [UInt8] { pieces[random.next(below: pieces.count)] }
        let plain = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_+=()<>".utf8)
        let levels = (1...mcpd_string_scan_level()).map { $0 }
        var accepted = 0, refused = 0, unterminated = 0
        for round in 0..<6000 {
            var body: [UInt8] = []
            let target = [0, 8, 15, 16, 40, 63, 64, 65, 100, 127, 128, 129, 200, 400][random.next(below: 14)] + random.next(below: 3)
            while body.count < target {
                switch random.next(below: 4) {
                case 0: body += (0..<random.next(below: 70)).map { _ in plain[random.next(below: plain.count)] }
                default: body += pick(Self.valid)
                }
            }
            // One fault in a third of the strings, anywhere in them.
            if random.next(below: 3) == 0 {
                body.insert(contentsOf: pick(Self.invalid), at: random.next(below: body.count + 1))
            }
            let prefix = Array(repeating: UInt8(ascii: " "), count: random.next(below: 64))
            var frame = prefix + [UInt8(ascii: "\"")] + body
            switch random.next(below: 5) {
            case 0: unterminated += 1  // the frame ends inside the string (or with a backslash)
            case 1: frame += [UInt8(ascii: "\"")]
            case 2: frame += Array("\",\"b\":\"\\u00e9 \u{01} \u{FF}".utf8)  // more strings and faults after it
            default: frame += [UInt8(ascii: "\"")] + (0..<random.next(below: 80)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            }
            let quote = prefix.count
            let reference = scan(frame, quote: quote) { (cursor) throws(ScanError) in try cursor.skipStringByBytes() }
            let product = scan(frame, quote: quote) { (cursor) throws(ScanError) in try cursor.skipString() }
            XCTAssertEqual(product, reference, "round \(round): \(frame)")
            switch reference {
            case .skipped: accepted += 1
            case .failed: refused += 1
            }
            for level in levels {
                let skipped = blocks(frame, quote: quote, level: Int32(level))
                switch reference {
                case let .skipped(end, escape):
                    XCTAssertEqual(skipped, Int64(end) << 1 | (escape ? 1 : 0), "level \(level), round \(round): \(frame)")
                case .failed:
                    XCTAssertEqual(skipped, -1, "level \(level) accepted what the byte scan refuses, round \(round): \(frame)")
                }
            }
        }
        XCTAssertGreaterThan(accepted, 2000)
        XCTAssertGreaterThan(refused, 1500)
        XCTAssertGreaterThan(unterminated, 600)
    }

    /// A quote, a backslash run or a multi-byte sequence straddling each block boundary.
    func testEveryPieceAtEveryBlockBoundary() throws {
        let levels = (1...mcpd_string_scan_level()).map { $0 }
        for piece in Self.valid + Self.invalid + [[0x22], Array(#"\\\""#.utf8)] {
            for offset in 50..<80 {
                for after in [0, 1, 3, 20, 70] {
                    let body = Array(repeating: UInt8(ascii: "a"), count: offset) + piece + Array(repeating: UInt8(ascii: "b"), count: after)
                    let frame = [UInt8(ascii: "\"")] + body + [UInt8(ascii: "\""), UInt8(ascii: "}")]
                    let reference = scan(frame, quote: 0) { (cursor) throws(ScanError) in try cursor.skipStringByBytes() }
                    XCTAssertEqual(scan(frame, quote: 0) { (cursor) throws(ScanError) in try cursor.skipString() }, reference, "\(piece) at \(offset)")
                    for level in levels {
                        let skipped = blocks(frame, quote: 0, level: Int32(level))
                        if case let .skipped(end, escape) = reference {
                            XCTAssertEqual(skipped, Int64(end) << 1 | (escape ? 1 : 0), "level \(level): \(piece) at \(offset)")
                        } else {
                            XCTAssertEqual(skipped, -1, "level \(level): \(piece) at \(offset)")
                        }
                    }
                }
            }
        }
    }

    func testThisCPUHasABlockScan() {
        #if arch(x86_64)
        XCTAssertGreaterThan(mcpd_string_scan_level(), 0, "an x86-64 CPU without SSSE3: every string is scanned byte by byte")
        #endif
    }
}
