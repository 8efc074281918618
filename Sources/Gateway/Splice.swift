import Reactor

/// Up to three replacements in a frame, written as one gathered sequence of slices.
/// Plain stored fields (no optional tuples) keep this free of generic value-witness calls.
struct Splice {
    enum Value {
        case decimal(Int)
        case bytes(ByteBuffer)
        case raw(RawValue)
    }

    struct Edit {
        var range: Range<Int>
        var value: Value
    }

    private var first = Edit(range: Int.max..<Int.max, value: .decimal(0))
    private var second = Edit(range: Int.max..<Int.max, value: .decimal(0))
    private var third = Edit(range: Int.max..<Int.max, value: .decimal(0))
    private var count = 0

    mutating func add(_ range: Range<Int>, _ value: Value) {
        let edit = Edit(range: range, value: value)
        switch count {
        case 0: first = edit
        case 1: second = edit
        default: third = edit
        }
        count += 1
    }

    /// Writes `frame` with the replacements, then a newline.
    func write(_ frame: ByteBuffer, to stream: IOStream) {
        // Order the edits by position without copying them.
        var order = (0, 1, 2)
        func start(_ slot: Int) -> Int {
            switch slot {
            case 0: return first.range.lowerBound
            case 1: return second.range.lowerBound
            default: return third.range.lowerBound
            }
        }
        if start(order.1) < start(order.0) { swap(&order.0, &order.1) }
        if start(order.2) < start(order.1) { swap(&order.1, &order.2) }
        if start(order.1) < start(order.0) { swap(&order.0, &order.1) }
        var position = 0
        emit(order.0, frame, stream, &position)
        if count > 1 { emit(order.1, frame, stream, &position) }
        if count > 2 { emit(order.2, frame, stream, &position) }
        if position < frame.readableBytes { stream.write(frame.slice(position..<frame.readableBytes)) }
        newlineByte.withUnsafeBytes { stream.write($0) }
    }

    private func emit(_ slot: Int, _ frame: ByteBuffer, _ stream: IOStream, _ position: inout Int) {
        switch slot {
        case 0: Splice.emit(first, frame, stream, &position)
        case 1: Splice.emit(second, frame, stream, &position)
        default: Splice.emit(third, frame, stream, &position)
        }
    }

    private static func emit(_ edit: borrowing Edit, _ frame: ByteBuffer, _ stream: IOStream, _ position: inout Int) {
        if edit.range.lowerBound > position { stream.write(frame.slice(position..<edit.range.lowerBound)) }
        switch edit.value {
        case .decimal(let number): stream.write(decimal: number)
        case .bytes(let bytes): stream.write(bytes)
        case .raw(let raw): stream.write(raw: raw)
        }
        position = edit.range.upperBound
    }
}

/// A newline, written after every frame.
let newlineByte: [UInt8] = [0x0A]
