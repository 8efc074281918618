// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for mcpd (`make fuzz`, Fuzz/README.md). A package of its own, depending on
// mcpd's by path (its `MCPDFuzzing` product: Reactor, Gateway and the test oracle JSONOracle): its
// executables have no main (libFuzzer's is linked in), so they cannot live in the root package,
// whose plain `swift build` would fail to link them. Built only as `make fuzz-build` does:
//   swift build --package-path Fuzz --scratch-path .build-fuzz -c debug \
//     --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address
// (debug: `@testable import Gateway` reaches internal types such as `Splice`).
let mcpd: Target.Dependency = .product(name: "MCPDFuzzing", package: "mcpd")

let package = Package(
    name: "mcpd-fuzz",
    dependencies: [.package(name: "mcpd", path: "..")],
    targets: [
        // What every target shares: the failure report.
        .target(name: "FuzzCheck"),
        // Reactor's LineFramer, fed in chunks: the same frames as splitting the whole input.
        .executableTarget(name: "FramerFuzz", dependencies: [mcpd, "FuzzCheck"]),
        // JSONScanner, JSONParser and the cursor's grammar against the tree oracle (JSONOracle).
        .executableTarget(name: "JSONFuzz", dependencies: [mcpd, "FuzzCheck"]),
        // Splice (and the slow path, `edited`): ids, tokens and names replaced as the gateway does.
        .executableTarget(name: "SpliceFuzz", dependencies: [mcpd, "FuzzCheck"]),
        // Config.parse (YAML and JSON forms): errors are fine, crashes are not.
        .executableTarget(name: "ConfigFuzz", dependencies: [mcpd, "FuzzCheck"]),
    ],
    swiftLanguageModes: [.v6]
)
