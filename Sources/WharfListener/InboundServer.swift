import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import WharfCore
import WharfPKI
import WharfSpool


/// The inbound listener: HTTPS with required client certificates, one child task per
/// connection. Each connection is an `HTTPChannel` wrapped in a `TLSChannel`, served by an
/// `InboxConnection`.
///
/// Graceful shutdown stops accepting, closes idle keep-alive connections, lets uploads in
/// flight finish, then returns.
public struct InboundServer: Service {
    private let configuration: ListenerConfiguration
    private let store: any InboxStore
    private let spool: Spool
    private let tls: TLSContextProvider
    private let logger: Logger
    private let onListening: @Sendable (SocketAddress) -> Void

    public init(
        configuration: ListenerConfiguration, store: any InboxStore, spool: Spool, pki: PKIDirectory,
        logger: Logger, onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.store = store
        self.spool = spool
        self.tls = TLSContextProvider(pki: pki, store: store, logger: logger)
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        // Fail at start, with the reason, rather than on the first connection.
        _ = try await tls.current()

        // Uploads block on fsync here; with a thread each, concurrent uploads share their
        // registry commits and directory syncs instead of queueing for a thread.
        let threadPool = NIOThreadPool(numberOfThreads: configuration.blockingThreads)
        threadPool.start()
        defer { threadPool.shutdownGracefully { _ in } }

        let configuration = configuration
        let tls = tls
        let logger = logger
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: configuration.host, port: configuration.port) { channel in
                TLSChannel(contexts: tls).configure(channel, configuration: configuration)
            }
        guard let address = server.channel.localAddress else {
            throw WharfError(.systemResources, "the listener has no local address")
        }
        logger.info("listening", metadata: ["address": "\(address)"])
        onListening(address)

        let context = InboxContext(
            configuration: configuration, store: store, spool: spool, threadPool: threadPool,
            rememberedOwners: RememberedOwners(), logger: logger
        )
        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await server.executeThenClose { connections in
                    for try await secured in connections {
                        group.addTask {
                            await InboxConnection(connection: secured.connection, identity: secured.identity, context: context).run()
                        }
                    }
                }
            }
        } onGracefulShutdown: {
            logger.info("shutting down: no new connections; finishing uploads in flight")
            server.channel.close(promise: nil)
        }
        logger.info("stopped")
    }
}

extension InboundServer {
    /// `HOST:PORT`, with brackets around an IPv6 host.
    public static func describe(_ address: SocketAddress) -> String {
        InboxConnection.describe(address)
    }
}

/// What every connection shares.
struct InboxContext: Sendable {
    let configuration: ListenerConfiguration
    let store: any InboxStore
    let spool: Spool
    let threadPool: NIOThreadPool
    let rememberedOwners: RememberedOwners
    let logger: Logger
}
