import Reactor
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class AsyncFileTests: XCTestCase {
    private func temporaryDirectory() -> String {
        var template = Array("/tmp/mcpd-asyncfile-XXXXXX".utf8CString)
        let path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
        addTeardownBlock { _ = try? FileManagerLite.removeTree(path) }
        return path
    }

    func testWriteAtomicallyThenReadBack() {
        let dir = temporaryDirectory()
        let path = "\(dir)/entry.json"
        let first = Array(repeating: UInt8(ascii: "a"), count: 200_000)
        let second = Array("short".utf8)
        withLoop { loop, done in
            AsyncFile.writeAtomically(loop: loop, path: path, data: first) { error in
                XCTAssertNil(error)
                AsyncFile.writeAtomically(loop: loop, path: path, data: second) { error in
                    XCTAssertNil(error)
                    AsyncFile.read(loop: loop, path: path, maxBytes: 1 << 20) { result in
                        XCTAssertEqual(try? result.get(), second, "the second write replaces the whole file")
                        done()
                    }
                }
            }
        }
        // Only the file itself: the temporary name was renamed over it.
        XCTAssertEqual(FileManagerLite.names(in: dir), ["entry.json"])
        var info = stat()
        XCTAssertEqual(stat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
    }

    func testReadErrors() {
        let dir = temporaryDirectory()
        let path = "\(dir)/big"
        let bytes = Array(repeating: UInt8(0x41), count: 70_000)
        withLoop { loop, done in
            AsyncFile.read(loop: loop, path: "\(dir)/missing", maxBytes: 10) { result in
                guard case .failure(let error) = result else { return XCTFail("read a missing file") }
                XCTAssertEqual(error, .noent)
                AsyncFile.writeAtomically(loop: loop, path: path, data: bytes) { _ in
                    AsyncFile.read(loop: loop, path: path, maxBytes: 65_536) { result in
                        guard case .failure(let error) = result else { return XCTFail("read past maxBytes") }
                        XCTAssertEqual(error.code, -EFBIG)
                        AsyncFile.read(loop: loop, path: path, maxBytes: 70_000) { result in
                            XCTAssertEqual((try? result.get())?.count, 70_000, "a file of exactly maxBytes is read")
                            done()
                        }
                    }
                }
            }
        }
    }

    func testWriteIntoAMissingDirectoryFailsAndLeavesNothing() {
        let dir = temporaryDirectory()
        withLoop { loop, done in
            AsyncFile.writeAtomically(loop: loop, path: "\(dir)/no/such/file", data: [1, 2, 3]) { error in
                XCTAssertEqual(error, .noent)
                AsyncFile.remove(loop: loop, path: "\(dir)/absent") { error in
                    XCTAssertNil(error, "removing a missing file is not an error")
                    done()
                }
            }
        }
        XCTAssertEqual(FileManagerLite.names(in: dir), [])
    }
}

/// Directory listing and removal with libc (no Foundation in these tests).
enum FileManagerLite {
    static func names(in dir: String) -> [String] {
        guard let handle = opendir(dir) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    static func removeTree(_ path: String) throws {
        for name in names(in: path) {
            let child = "\(path)/\(name)"
            var info = stat()
            if lstat(child, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR { try removeTree(child) } else { unlink(child) }
        }
        rmdir(path)
    }
}
