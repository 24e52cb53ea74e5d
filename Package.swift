// swift-tools-version:6.1
import PackageDescription

/// Wharf: a B2B file exchange gateway.
///
/// Targets by concern, dependencies pointing inward:
/// - `WharfCore`: the domain (partners, identities, names, pins); imports no I/O library.
/// - `WharfStore`: the registry in SQLite through GRDB, with named migrations.
/// - `WharfPostgres`: the registry of several nodes in PostgreSQL through postgres-nio.
/// - `WharfPKI`: Wharf's own certificate authority and the bundles it writes (PEM, PKCS#12).
/// - `WharfSpool`: the spool on disk: staged files, fsync, atomic renames, crash recovery.
/// - `WharfListener`: the inbound mutual-TLS HTTP server (SwiftNIO + NIOSSL).
/// - `WharfDelivery`: the outbound worker over libcurl: queue, retries, per-partner limits.
/// - `WharfAdmin`: the admin listener (metrics, health, readiness) and the Prometheus registry.
/// - `WharfCommands`: one file per `wharf` subcommand; the single place that wires the rest.
/// - `wharf`: the executable, a few lines that call `WharfCommands`.
/// - `COpenSSL`: OpenSSL (PKCS#12) as a system library with a typed C shim.
/// - `CCurl`: libcurl, loaded on first use, behind typed C wrappers.
let package = Package(
    name: "Wharf",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "wharf", targets: ["wharf"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"])]
        ),
        // libcurl's headers (libcurl4-openssl-dev); the library itself is loaded on first use.
        .target(name: "CCurl"),
        // Crypto for the audit chain's SHA-256, which every store computes alike.
        .target(name: "WharfCore", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .target(
            name: "WharfStore",
            dependencies: [
                "WharfCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The shared registry of several nodes: the same ports over PostgreSQL.
        .target(
            name: "WharfPostgres",
            dependencies: [
                "WharfCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "WharfPKI",
            dependencies: [
                "WharfCore",
                "COpenSSL",
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // Linux calls Swift's Glibc module leaves out (sync_file_range).
        .target(name: "CWharfSystem"),
        .target(
            name: "WharfSpool",
            dependencies: [
                "WharfCore",
                "CWharfSystem",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .target(
            name: "WharfListener",
            dependencies: [
                "CWharfSystem",
                "WharfCore",
                "WharfSpool",
                "WharfPKI",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                // The fuzz target's entry point decodes requests on an EmbeddedChannel.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The inbox's fuzz target: `scripts/fuzz` builds it with libFuzzer
        // (`--sanitize=fuzzer`, `-DWHARF_FUZZING`); a plain build makes a replayer of
        // corpus files instead.
        .executableTarget(
            name: "WharfInboxFuzz",
            dependencies: ["WharfListener"]
        ),
        .target(
            name: "WharfDelivery",
            dependencies: [
                "WharfCore",
                "WharfSpool",
                "WharfPKI",
                "CCurl",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "WharfAdmin",
            dependencies: [
                "WharfCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "WharfCommands",
            dependencies: [
                "WharfCore",
                "WharfPostgres",
                "WharfAdmin",
                "WharfStore",
                "WharfPKI",
                "WharfSpool",
                "WharfListener",
                "WharfDelivery",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .executableTarget(
            name: "wharf",
            dependencies: ["WharfCommands"],
            exclude: ["hot-functions.order"],
            linkerSettings: [
                // Release builds link with lld, which places the functions that start-up, an
                // idle server and an upload run next to each other: the kernel maps a binary's
                // code 64 KiB at a time, so scattered functions cost resident memory.
                // `scripts/order-functions` writes the list; stale names are skipped. Packed
                // relative relocations (glibc 2.36 and later) keep the 120,000 the Swift
                // runtime's metadata needs out of a 3 MB table read at every start.
                .unsafeFlags(
                    [
                        "-use-ld=lld",
                        "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/Sources/wharf/hot-functions.order",
                        "-Xlinker", "--no-warn-symbol-ordering",
                        "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs",
                    ],
                    .when(configuration: .release)
                )
            ]
        ),
        .target(
            name: "WharfTestSupport",
            dependencies: [
                "WharfCommands", "WharfDelivery", "WharfListener", "WharfStore", "WharfSpool", "WharfPKI",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            path: "Tests/WharfTestSupport"
        ),
        .testTarget(name: "WharfCoreTests", dependencies: ["WharfCore", "WharfTestSupport"]),
        .testTarget(name: "WharfStoreTests", dependencies: ["WharfStore"]),
        .testTarget(
            name: "WharfPostgresTests",
            dependencies: [
                "WharfPostgres", "WharfStore", "WharfTestSupport",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "WharfPKITests", dependencies: ["WharfPKI", "WharfTestSupport"]),
        .testTarget(name: "WharfSpoolTests", dependencies: ["WharfSpool", "WharfTestSupport"]),
        .testTarget(
            name: "WharfCommandsTests",
            dependencies: ["WharfCommands", "WharfTestSupport", "wharf"]
        ),
        .testTarget(
            name: "WharfDeliveryTests",
            dependencies: [
                "WharfDelivery", "WharfListener", "WharfPKI", "WharfStore", "WharfSpool", "WharfTestSupport", "wharf",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "WharfListenerTests",
            dependencies: [
                "WharfListener", "WharfPKI", "WharfStore", "WharfSpool", "WharfTestSupport", "wharf",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
