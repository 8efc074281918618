import Reactor
import XCTest
#if canImport(Glibc)
import Glibc
#endif

final class LoopTests: XCTestCase {
    func testTimerFiresAndRepeats() {
        withLoop { loop, done in
            let timer = LoopTimer(loop: loop)
            var fired = 0
            let start = loop.now
            timer.start(timeout: 20, repeat: 10) {
                fired += 1
                if fired == 3 {
                    XCTAssertGreaterThanOrEqual(loop.now - start, 40)
                    timer.close()
                    done()
                }
            }
            XCTAssertTrue(timer.isActive)
        }
    }

    func testStoppedTimerDoesNotFire() {
        withLoop { loop, done in
            let timer = LoopTimer(loop: loop)
            timer.start(timeout: 10) { XCTFail("a stopped timer fired") }
            timer.stop()
            XCTAssertFalse(timer.isActive)
            let after = LoopTimer(loop: loop)
            after.start(timeout: 50) {
                timer.close()
                after.close()
                done()
            }
        }
    }

    func testSignalWatcherSeesSignalAndClosesCleanly() {
        for signal in [SIGUSR1, SIGHUP] {
            withLoop { loop, done in
                var watcher: SignalWatcher?
                watcher = try! SignalWatcher(loop: loop, signal: signal, unreferenced: false) { received in
                    XCTAssertEqual(received, signal)
                    watcher?.close()
                    done()
                }
                kill(getpid(), signal)
            }
        }
    }

    func testExecuteRunsLaterNotReentrantly() {
        withLoop { loop, done in
            var order: [String] = []
            loop.execute {
                order.append("deferred")
                XCTAssertEqual(order, ["caller", "deferred"])
                done()
            }
            order.append("caller")
        }
    }

    func testErrorDescription() {
        XCTAssertEqual(UVError.noent.name, "ENOENT")
        XCTAssertTrue(UVError.pipe.description.hasPrefix("EPIPE: "))
    }
}
