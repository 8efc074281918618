// swift-tools-version:6.0
import PackageDescription

// The scanner microbenchmark (`make bench`, Benchmarks/README.md "Scanner"): mcpd's JSONScanner
// alone over a request and an answer carrying each payload kind. A package of its own, depending
// on mcpd's by path, so that a plain `swift build` of mcpd does not build it. Built as
//   swift build -c release --package-path Benchmarks/ScanBench --scratch-path Benchmarks/.build-scanbench
let package = Package(
    name: "mcpd-scanbench",
    dependencies: [.package(name: "mcpd", path: "../..")],
    targets: [
        .executableTarget(name: "scanbench", dependencies: [.product(name: "MCPDFuzzing", package: "mcpd")]),
    ],
    swiftLanguageModes: [.v6]
)
