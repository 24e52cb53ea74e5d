import Logging
import NIOCore
import ServiceLifecycle
import WharfCore
import WharfDelivery
import WharfListener
import WharfPKI
import WharfSpool
import WharfStore

/// The one place a gateway is put together from a home: the store, the spool, the PKI,
/// the listener, the delivery worker, the intake (drop folder and schedules) and the
/// recovery that puts them back in step after a stop. `wharf serve`, `wharf deliver --once`
/// and the tests' in-process gateways all start here, so they run the same recovery.
///
/// Opening one takes the home's lock (`HomeLock`): a second gateway on the same home is
/// refused, naming the process that holds it. The lock is released when the gateway is
/// released or the process ends.
public struct Gateway: Sendable {
    public let home: WharfHome
    public let store: Registry
    public let spool: Spool
    public let logger: Logger
    private let lock: HomeLock

    /// Locks `home`, opens its store and spool, and recovers what a stop left behind: files
    /// committed but not moved, staged files never acknowledged, transfers left `sending`.
    public static func open(_ home: WharfHome, logger: Logger) throws(WharfError) -> Gateway {
        let store = try home.openRegistry()
        let lock = try HomeLock(home: home)
        let spool = Spool(root: home.spoolDirectory)
        try spool.prepare()
        try SpoolRecovery.run(store: store, spool: spool, logger: logger)
        let interrupted = try store.recoverInterrupted(now: .now)
        if interrupted > 0 {
            logger.notice("transfers interrupted by a stop are due again", metadata: ["count": "\(interrupted)"])
        }
        return Gateway(home: home, store: store, spool: spool, logger: logger, lock: lock)
    }

    /// The services of a running gateway: the listener (when `listener` is given), the
    /// delivery worker, the intake and the certificate expiry watch. Run them in one
    /// `ServiceGroup`.
    public func services(
        listener: ListenerConfiguration?, delivery: DeliveryConfiguration,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) throws(WharfError) -> [any Service] {
        var services: [any Service] = []
        if let listener {
            _ = try home.pki.loadAuthority()
            services.append(InboundServer(
                configuration: listener, store: store, spool: spool, pki: home.pki, logger: logger, onListening: onListening
            ))
        }
        services.append(worker(delivery))
        services.append(Intake(store: store, spool: spool, logger: logger))
        services.append(ExpiryWatch(home: home, store: store, logger: logger))
        return services
    }

    /// What `wharf deliver --once` does: the drop folder and due schedules are queued, then
    /// every transfer due is delivered (with retries that fall due meanwhile). Returns what
    /// this run's attempts came to.
    @discardableResult
    public func deliverOnce(_ delivery: DeliveryConfiguration) async throws -> DeliveryTally {
        await Intake(store: store, spool: spool, logger: logger).runOnce()
        return try await worker(delivery).drain()
    }

    private func worker(_ configuration: DeliveryConfiguration) -> DeliveryWorker {
        DeliveryWorker(configuration: configuration, store: store, spool: spool, pki: home.pki, logger: logger)
    }
}
