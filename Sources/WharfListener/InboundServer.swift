#if canImport(Glibc)
import Glibc
#endif
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
    private let pki: PKIDirectory
    private let instruments: any GatewayInstruments
    private let logger: Logger
    private let onListening: @Sendable (SocketAddress) -> Void

    public init(
        configuration: ListenerConfiguration, store: any InboxStore, spool: Spool, pki: PKIDirectory,
        instruments: any GatewayInstruments = NoInstruments(),
        logger: Logger, onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) {
        self.configuration = configuration
        self.store = store
        self.spool = spool
        self.pki = pki
        self.instruments = instruments
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        // Uploads block on fsync here; with a thread each, concurrent uploads share their
        // registry commits and directory syncs instead of queueing for a thread.
        let threadPool = NIOThreadPool(numberOfThreads: configuration.blockingThreads)
        threadPool.start()
        defer { threadPool.shutdownGracefully { _ in } }

        let tls = TLSContextProvider(
            pki: pki, store: store, threadPool: threadPool, sendCANames: configuration.sendCANames, logger: logger
        )
        // Fail at start, with the reason, rather than on the first connection.
        _ = try await tls.current()

        let configuration = configuration
        let logger = logger
        let instruments = instruments
        let limiter = ConnectionLimiter(perAddress: configuration.maxConnectionsPerAddress, overall: configuration.maxConnections)
        let defender = AddressDefender(configuration: configuration, store: store, threadPool: threadPool, logger: logger)
        let refusals = RefusalRecorder(store: store, threadPool: threadPool, logger: logger)
        // Bans stored by an earlier run (or another node) hold from the first connection.
        await defender.refresh()
        let server: NIOAsyncChannel<TLSChannel.Secured, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: configuration.host, port: configuration.port) { channel in
                    let address = channel.remoteAddress?.ipAddress ?? "unknown"
                    let remote = InboxConnection.describe(channel.remoteAddress)
                    if defender.isBanned(address) {
                        instruments.connectionRefused(reason: "banned")
                        refusals.add(Self.closedAtAccept(remote, "the address is banned by the defender"), address: address, code: "banned")
                        return channel.close().flatMapThrowing { throw ChannelError.inputClosed }
                    }
                    do throws(ConnectionLimiter.Refusal) {
                        try limiter.admit(channel)
                    } catch {
                        logger.debug("connection refused", metadata: ["remote": "\(remote)", "reason": "\(error)"])
                        instruments.connectionRefused(reason: error.label)
                        refusals.add(Self.closedAtAccept(remote, error.description), address: address, code: error.label)
                        if case .perAddress = error { defender.record(.limitExceeded, from: address) }
                        return channel.close().flatMapThrowing { throw error }
                    }
                    return TLSChannel(contexts: tls).configure(channel, configuration: configuration) { cutOff in
                        // Slow handshakes, headers and bodies are limit hits; an idle
                        // keep-alive connection closed is not.
                        if cutOff.isOffence { defender.record(.tooSlow, from: address) }
                    }
                }
        } catch {
            throw Self.bindFailure(error, configuration: configuration)
        }
        guard let address = server.channel.localAddress else {
            throw WharfError(.systemResources, "the listener has no local address")
        }
        logger.info("listening", metadata: ["address": "\(address)"])
        onListening(address)

        let context = InboxContext(
            configuration: configuration, store: store, spool: spool, threadPool: threadPool,
            rememberedOwners: RememberedOwners(), instruments: instruments, logger: logger,
            defender: defender, refusals: refusals
        )
        try await withThrowingTaskGroup(of: Void.self) { housekeeping in
            housekeeping.addTask { await defender.run(every: configuration.defenderRefreshInterval) }
            housekeeping.addTask { await refusals.run(every: configuration.refusalFlushInterval) }
            housekeeping.addTask { await PartialUploadSweep(context: context).run() }
            defer { housekeeping.cancelAll() }
            try await withGracefulShutdownHandler {
                try await withThrowingDiscardingTaskGroup { group in
                    try await server.executeThenClose { connections in
                        for try await secured in connections {
                            group.addTask {
                                await InboxConnection(
                                    connection: secured.connection, identity: secured.identity, context: context,
                                    remoteAddress: secured.remoteAddress, revocation: secured.revocation,
                                    signer: secured.signer
                                ).run()
                            }
                        }
                    }
                }
            } onGracefulShutdown: {
                logger.info("shutting down: no new connections; finishing uploads in flight")
                server.channel.close(promise: nil)
            }
        }
        // What was counted since the last flush, now that no connection is left.
        await refusals.flush()
        logger.info("stopped")
    }
}

extension InboundServer {
    /// The audit event of a connection closed as it was accepted.
    static func closedAtAccept(_ remote: String, _ reason: String) -> AuditEvent {
        AuditEvent(outcome: .refused, status: nil, partner: nil, subject: nil, fingerprint: nil, remoteAddress: remote, detail: "connection closed at accept: \(reason)")
    }

    /// Why the listener could not bind, in words an operator can act on.
    static func bindFailure(_ error: any Error, configuration: ListenerConfiguration) -> WharfError {
        let host = configuration.host.contains(":") ? "[\(configuration.host)]" : configuration.host
        let address = "\(host):\(configuration.port)"
        switch (error as? IOError)?.errnoCode {
        case EADDRINUSE?:
            return WharfError(
                .busy, "cannot listen on \(address): the address is in use, most likely by another `wharf serve` or another server",
                fix: "stop that process, or choose another address with --listen"
            )
        case EACCES?:
            return WharfError(
                .invalidInput, "cannot listen on \(address): permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)",
                fix: "choose a port of 1024 or more, or grant the capability"
            )
        case EADDRNOTAVAIL?:
            return WharfError(.invalidInput, "cannot listen on \(address): no interface of this machine has that address", fix: "check --listen")
        default:
            return WharfError(.systemResources, "cannot listen on \(address): \(error)", fix: "check --listen")
        }
    }

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
    var instruments: any GatewayInstruments = NoInstruments()
    let logger: Logger
    /// The defender, when the listener runs one.
    var defender: AddressDefender?
    /// Where refusals made before a partner is known are counted; without it (a connection
    /// served on its own, in tests), each is recorded as it happens.
    var refusals: RefusalRecorder?
    /// Which request holds each resumable upload.
    var activeUploads = ActiveUploads()
}
