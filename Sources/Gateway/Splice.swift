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
    }

    private static let decimal: UInt8 = 0
    private static let bytes: UInt8 = 1
    private static let raw: UInt8 = 2

    private var edits = (Edit(range: 0..<0, kind: 0, number: 0), Edit(range: 0..<0, kind: 0, number: 0),
                         Edit(range: 0..<0, kind: 0, number: 0))
    private var count = 0
    private var bytes: ByteBuffer?
    private var raw: RawValue?

    /// Replaces `range` with `number` in decimal.
    mutating func replace(_ range: Range<Int>, decimal number: Int) {
        add(Edit(range: range, kind: Splice.decimal, number: number))
    }

    /// Replaces `range` with the readable bytes of `buffer` (once per splice).
    mutating func replace(_ range: Range<Int>, bytes buffer: ByteBuffer) {
        bytes = buffer
        add(Edit(range: range, kind: Splice.bytes, number: 0))
    }

    /// Replaces `range` with a raw JSON value (once per splice).
    mutating func replace(_ range: Range<Int>, raw value: RawValue) {
        raw = value
        add(Edit(range: range, kind: Splice.raw, number: 0))
    }

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

    /// Writes `frame` with the replacements, then a newline.
    func write(_ frame: ByteBuffer, to stream: IOStream) {
        var position = 0
        if count > 0 { emit(edits.0, frame, stream, &position) }
        if count > 1 { emit(edits.1, frame, stream, &position) }
        if count > 2 { emit(edits.2, frame, stream, &position) }
        if position < frame.readableBytes { stream.write(frame.slice(position..<frame.readableBytes)) }
        newlineByte.withUnsafeBytes { stream.write($0) }
    }

    private func emit(_ edit: Edit, _ frame: ByteBuffer, _ stream: IOStream, _ position: inout Int) {
        if edit.range.lowerBound > position { stream.write(frame.slice(position..<edit.range.lowerBound)) }
        switch edit.kind {
        case Splice.decimal: stream.write(decimal: edit.number)
        case Splice.bytes: if let bytes { stream.write(bytes) }
        default: if let raw { stream.write(raw: raw) }
        }
        position = edit.range.upperBound
    }
}

/// A newline, written after every frame.
let newlineByte: [UInt8] = [0x0A]
