import Reactor

/// Up to three replacements in a frame, written as one gathered sequence of slices and a newline.
///
/// Every use replaces ids and tokens with a decimal (mcpd's own), or puts back a client's raw
/// value or a backend's tool name, and never more than one of the latter two: so an edit is a
/// plain range and number (no reference-counted payload to copy), and the one raw value or name
/// is kept beside them.
struct Splice {
    private struct Edit {
        var range: Range<Int>
        /// What replaces the range: a decimal number, `bytes`, or `raw`.
        var kind: UInt8
        var number: Int
        /// The length of the replacement.
        var length: Int
    }

    private static let decimal: UInt8 = 0
    private static let bytes: UInt8 = 1
    private static let raw: UInt8 = 2

    private var edits = (Edit(range: 0..<0, kind: 0, number: 0, length: 0), Edit(range: 0..<0, kind: 0, number: 0, length: 0),
                         Edit(range: 0..<0, kind: 0, number: 0, length: 0))
    private var count = 0
    /// Not retained: a splice is written before its caller returns, while the buffer it was
    /// given (a tool route's name literal) is still held.
    private var bytes = UnsafeRawBufferPointer(start: nil, count: 0)
    private var raw: RawValue?

    /// Replaces `range` with `number` in decimal.
    @inline(always)
    mutating func replace(_ range: Range<Int>, decimal number: Int) {
        add(Edit(range: range, kind: Splice.decimal, number: number, length: decimalLength(number)))
    }

    /// Replaces `range` with the readable bytes of `buffer` (once per splice), which must stay
    /// alive until the splice is written.
    mutating func replace(_ range: Range<Int>, bytes buffer: ByteBuffer) {
        bytes = UnsafeRawBufferPointer(buffer.readablePointer)
        add(Edit(range: range, kind: Splice.bytes, number: 0, length: bytes.count))
    }

    /// Replaces `range` with a raw JSON value (once per splice).
    mutating func replace(_ range: Range<Int>, raw value: RawValue) {
        raw = value
        add(Edit(range: range, kind: Splice.raw, number: 0, length: value.withBytes { $0.count }))
    }

    // Inlined: an edit passed in memory is stored field by field and then loaded as wider
    // words, which stalls store-to-load forwarding (perf showed this function at 1.6% of
    // mcpd's time for 58 instructions per call).
    @inline(always)
    private mutating func add(_ edit: Edit) {
        // Kept ordered by position (insertion into at most three).
        switch count {
        case 0:
            edits.0 = edit
        case 1:
            if edit.range.lowerBound < edits.0.range.lowerBound { (edits.0, edits.1) = (edit, edits.0) } else { edits.1 = edit }
        default:
            if edit.range.lowerBound < edits.0.range.lowerBound {
                (edits.0, edits.1, edits.2) = (edit, edits.0, edits.1)
            } else if edit.range.lowerBound < edits.1.range.lowerBound {
                (edits.1, edits.2) = (edit, edits.1)
            } else {
                edits.2 = edit
            }
        }
        count += 1
    }

    /// Writes `frame` with the replacements, then a newline. A small result is assembled in
    /// place in the stream's scratch buffer; a large one is queued as slices of the frame.
    /// Inlined into each caller, so that it is specialised for the stream or session output it
    /// writes to (a generic call would go through the protocol's witness table).
    @inline(__always)
    func write<Sink: ByteSink>(_ frame: ByteBuffer, to stream: Sink) {
        var total = frame.readableBytes + 1
        if count > 0 { total += edits.0.length - edits.0.range.count }
        if count > 1 { total += edits.1.length - edits.1.range.count }
        if count > 2 { total += edits.2.length - edits.2.range.count }
        if total < IOStream.copyThreshold {
            frame.withUnsafeReadableBytes { source in
                stream.write(count: total) { out in
                    var position = 0
                    var o = 0
                    if count > 0 { assemble(edits.0, source, out, &position, &o) }
                    if count > 1 { assemble(edits.1, source, out, &position, &o) }
                    if count > 2 { assemble(edits.2, source, out, &position, &o) }
                    let tail = source.count - position
                    if tail > 0 { (out + o).update(from: source.baseAddress!.assumingMemoryBound(to: UInt8.self) + position, count: tail) }
                    out[o + tail] = 0x0A
                }
            }
            return
        }
        var position = 0
        if count > 0 { emit(edits.0, frame, stream, &position) }
        if count > 1 { emit(edits.1, frame, stream, &position) }
        if count > 2 { emit(edits.2, frame, stream, &position) }
        if position < frame.readableBytes { stream.write(frame.slice(position..<frame.readableBytes)) }
        newlineByte.withUnsafeBytes { stream.write($0) }
    }

    /// Copies the frame up to `edit` and its replacement to `out` at `o`.
    @inline(__always)
    private func assemble(_ edit: Edit, _ source: UnsafeRawBufferPointer, _ out: UnsafeMutablePointer<UInt8>,
                          _ position: inout Int, _ o: inout Int) {
        let base = source.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let before = edit.range.lowerBound - position
        if before > 0 {
            (out + o).update(from: base + position, count: before)
            o += before
        }
        switch edit.kind {
        case Splice.decimal:
            writeDecimal(edit.number, length: edit.length, to: out + o)
            o += edit.length
        case Splice.bytes:
            if bytes.count > 0 {
                (out + o).update(from: bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), count: bytes.count)
                o += bytes.count
            }
        default:
            raw?.withBytes { value in
                if value.count > 0 { (out + o).update(from: value.baseAddress!.assumingMemoryBound(to: UInt8.self), count: value.count) }
                o += value.count
            }
        }
        position = edit.range.upperBound
    }

    private func emit<Sink: ByteSink>(_ edit: Edit, _ frame: ByteBuffer, _ stream: Sink, _ position: inout Int) {
        if edit.range.lowerBound > position { stream.write(frame.slice(position..<edit.range.lowerBound)) }
        switch edit.kind {
        case Splice.decimal: stream.write(decimal: edit.number)
        case Splice.bytes: stream.write(bytes)
        default: if let raw { stream.write(raw: raw) }
        }
        position = edit.range.upperBound
    }
}

/// The characters of `value` in decimal.
@inline(__always)
func decimalLength(_ value: Int) -> Int {
    var magnitude = value.magnitude
    var length = value < 0 ? 2 : 1
    while magnitude >= 10 {
        magnitude /= 10
        length += 1
    }
    return length
}

/// Writes `value` in decimal to the `length` bytes at `out` (`length` from `decimalLength`).
@inline(__always)
func writeDecimal(_ value: Int, length: Int, to out: UnsafeMutablePointer<UInt8>) {
    var magnitude = value.magnitude
    var index = length
    repeat {
        index -= 1
        out[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: magnitude % 10)
        magnitude /= 10
    } while magnitude > 0
    if value < 0 { out[0] = UInt8(ascii: "-") }
}

/// A newline, written after every frame.
let newlineByte: [UInt8] = [0x0A]

/// `frame` with any number of replacements (ranges not overlapping, in any order): the slow
/// path for the rare message that needs more edits than a `Splice` holds.
func edited(_ frame: ByteBuffer, _ edits: [(range: Range<Int>, bytes: ByteBuffer)]) -> ByteBuffer {
    var out = ByteBuffer(capacity: frame.readableBytes + edits.reduce(1) { $0 + $1.bytes.readableBytes })
    var position = 0
    for edit in edits.sorted(by: { $0.range.lowerBound < $1.range.lowerBound }) {
        if edit.range.lowerBound > position { out.append(frame.slice(position..<edit.range.lowerBound)) }
        out.append(edit.bytes)
        position = edit.range.upperBound
    }
    if position < frame.readableBytes { out.append(frame.slice(position..<frame.readableBytes)) }
    return out
}

/// Writes `edited(frame, edits)` and a newline.
func writeEdited<Sink: ByteSink>(_ frame: ByteBuffer, _ edits: [(range: Range<Int>, bytes: ByteBuffer)], to stream: Sink) {
    var out = edited(frame, edits)
    out.appendByte(0x0A)
    stream.write(out)
}
