import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization
import WharfAdmin
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
/// refused, naming the process that holds it. On a home whose registry is PostgreSQL
/// (several nodes share it), the lock is the node's: one process per node name. The lock
/// is released when the gateway is released or the process ends.
public struct Gateway: Sendable {
    public let home: WharfHome
    public let store: any HomeStore
    /// This node in the shared registry; `nil` on SQLite (one node, which leads by itself).
    public let nodes: (any NodeRegistry)?
    public let spool: Spool
    public let logger: Logger
    private let lock: HomeLock
    /// The store's connections, which the gateway's services close last (PostgreSQL).
    private let connections: (any Service)?

    /// Locks `home`, opens its store and spool, and recovers what a stop left behind: files
    /// committed but not moved, staged files never acknowledged, transfers left `sending`.
    /// The store and the node's name come from the home's settings (`wharf.yml`, then the
    /// environment, which overrides it).
    public static func open(
        _ home: WharfHome, logger: Logger, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(WharfError) -> Gateway {
        try open(home, settings: home.settings(environment: environment), logger: logger)
    }

    static func open(_ home: WharfHome, settings: EffectiveSettings, logger: Logger) throws(WharfError) -> Gateway {
        let database = try home.database(settings)
        let node = settings.nodeName
        let shared = database != .embedded
        let lock = try HomeLock(home: home, node: shared ? node : nil)
        let opened = try home.open(database, node: node, lease: settings.double("claim-lease"))
        let (store, nodes) = (opened.store, opened.nodes)
        // Found now, with one line, rather than at the first upload.
        try store.checkIntegrity()
        let spool = Spool(root: home.spoolDirectory, node: shared ? node : nil)
        do {
            try spool.prepare()
            try spool.checkWritable()
        } catch {
            throw WharfError(error.code, "the spool cannot be written: \(error.problem)", fix: "check that \(spool.root) is writable by this user and mounted read-write")
        }
        // Another node may be receiving a resumable upload now: on a shared spool those are
        // left to the listener's sweep of expired ones.
        try SpoolRecovery.run(store: store, spool: spool, partialUploads: !shared, logger: logger)
        let interrupted = try store.recoverInterrupted(now: .now)
        if interrupted > 0 {
            logger.notice("transfers interrupted by a stop are due again", metadata: ["count": "\(interrupted)"])
        }
        if let nodes {
            try nodes.registerNode(address: nil, version: WharfVersion.current, at: Date())
            logger.info("node registered", metadata: ["node": "\(node)"])
        }
        return Gateway(home: home, store: store, nodes: nodes, spool: spool, logger: logger, lock: lock, connections: opened.connections)
    }

    /// How often a node renews its heartbeat; one silent for three of these is dead.
    static let heartbeatInterval: Duration = .seconds(5)

    /// The admin listener's settings: where it listens, and the free space below which the
    /// gateway is not ready.
    public struct AdminSettings: Sendable {
        public var listen: AdminServer.Configuration
        public var minimumFreeSpace: Int64

        public init(listen: AdminServer.Configuration, minimumFreeSpace: Int64) {
            self.listen = listen
            self.minimumFreeSpace = minimumFreeSpace
        }
    }

    /// The services of a running gateway: the store's connections (PostgreSQL), the
    /// listener (when `listener` is given), the admin listener (when `admin` is given), the
    /// delivery worker, the intake and the certificate expiry watch. Run them in one
    /// `ServiceGroup`, in this order: it stops them in reverse, so the store's connections
    /// close after everything that uses them has stopped.
    ///   - auditRetentionDays: remove audit events older than this, daily; `nil` keeps them.
    public func services(
        listener: ListenerConfiguration?, delivery: DeliveryConfiguration, admin: AdminSettings? = nil,
        auditRetentionDays: Int? = nil,
        onListening: @escaping @Sendable (SocketAddress) -> Void = { _ in },
        onAdminListening: @escaping @Sendable (SocketAddress) -> Void = { _ in }
    ) throws(WharfError) -> [any Service] {
        var services: [any Service] = connections.map { [$0] } ?? []
        let metrics = admin.map { _ in GatewayMetrics(version: WharfVersion.current) }
        let instruments: any GatewayInstruments = metrics ?? NoInstruments()
        let listening = Mutex(listener == nil)
        let gate = nodes == nil ? LeaderGate.alone : LeaderGate(leadership: Leadership())
        if let listener {
            _ = try home.pki.loadAuthority()
            let nodes = nodes
            services.append(InboundServer(
                configuration: listener, store: store, spool: spool, pki: home.pki, instruments: instruments, logger: logger,
                onListening: { address in
                    listening.withLock { $0 = true }
                    if let nodes {
                        // What `wharf nodes list` shows as the node's address.
                        let shown = InboundServer.describe(address)
                        Task { _ = try? await NIOThreadPool.singleton.runIfActive {
                            try nodes.registerNode(address: shown, version: WharfVersion.current, at: Date())
                        } }
                    }
                    onListening(address)
                }
            ))
        }
        if let admin, let metrics {
            let (home, store, spool) = (home, store, spool)
            services.append(AdminServer(
                configuration: admin.listen, metrics: metrics,
                // These read the registry and pki/, which blocks: on the thread pool, never on
                // Swift's cooperative threads.
                readings: { try await NIOThreadPool.singleton.runIfActive { try Self.readings(home: home, store: store, spool: spool) } },
                readiness: {
                    let isListening = listening.withLock { $0 }
                    return (try? await NIOThreadPool.singleton.runIfActive {
                        Self.problems(store: store, spool: spool, minimumFreeSpace: admin.minimumFreeSpace, listening: isListening)
                    }) ?? ["the readiness checks could not run"]
                },
                revocationList: {
                    try await NIOThreadPool.singleton.runIfActive { try RevocationListPublisher(pki: home.pki, store: store).make().derBytes }
                },
                logger: logger, onListening: onAdminListening
            ))
        }
        services.append(worker(delivery, instruments: instruments, leads: { gate.leads() }))
        services.append(Intake(store: store, spool: spool, logger: logger, leads: { gate.leads() }))
        if let nodes {
            services.append(NodeHeartbeat(nodes: nodes, interval: Self.heartbeatInterval, logger: logger))
            services.append(LeaderDuties(
                nodes: nodes, store: store, spool: spool, gate: gate,
                deadAfter: 3 * Double(Self.heartbeatInterval.components.seconds), logger: logger
            ))
        }
        services.append(HookRunner(store: store, spool: spool, instruments: instruments, logger: logger))
        services.append(ExpiryWatch(home: home, store: store, logger: logger))
        services.append(RevocationListRefresh(publisher: RevocationListPublisher(pki: home.pki, store: store), logger: logger))
        if let auditRetentionDays {
            services.append(AuditRetention(store: store, days: auditRetentionDays, logger: logger))
        }
        return services
    }

    /// What `wharf deliver --once` does: the drop folder and due schedules are queued, then
    /// every transfer due is delivered (with retries that fall due meanwhile), then each
    /// hook event due is dispatched once. Returns what this run's attempts came to.
    ///
    /// Of several nodes, the drop folder and schedules are fed, and `spool/sent/` pruned,
    /// only if this run can take the leader's lease (it gives it back after): otherwise the
    /// leader does that.
    @discardableResult
    public func deliverOnce(_ delivery: DeliveryConfiguration) async throws -> DeliveryTally {
        let nodes = nodes
        let leads = try await NIOThreadPool.singleton.runIfActive { () throws(WharfError) -> Bool in
            try nodes?.lead(now: Date(), for: Leadership().duration) ?? true
        }
        if leads {
            await Intake(store: store, spool: spool, logger: logger).runOnce()
            _ = try? await NIOThreadPool.singleton.runIfActive { try nodes?.stepDown() }
        }
        let tally = try await worker(delivery, leads: { leads }).drain()
        await HookRunner(store: store, spool: spool, logger: logger).runOnce()
        return tally
    }

    /// What the scrape-time gauges say now. Blocking (it reads the store and `pki/`).
    static func readings(home: WharfHome, store: any HomeStore, spool: Spool) throws(WharfError) -> GaugeReadings {
        let partners = try store.partners()
        let counts = try store.transferCountsByPartner()
        return GaugeReadings(
            transfers: counts.flatMap { partner, byState in
                byState.map { GaugeReadings.TransferCount(partner: partner, state: $0.key, count: $0.value) }
            },
            partners: partners.map(\.name.rawValue),
            oldestQueued: try store.oldestWaitingByPartner(),
            certificates: try home.certificateExpiries(partners: partners),
            spoolFreeBytes: try spool.freeBytes(),
            hookEvents: try store.hookEventCounts(),
            now: Date()
        )
    }

    /// What keeps the gateway from being ready, in words an operator can act on.
    static func problems(store: any HomeStore, spool: Spool, minimumFreeSpace: Int64, listening: Bool) -> [String] {
        var problems: [String] = []
        do { try store.ping() } catch { problems.append("the registry does not answer: \(error.problem)") }
        do { try spool.checkWritable() } catch { problems.append("the spool is not writable: \(error.problem)") }
        do {
            let free = try spool.freeBytes()
            if free < minimumFreeSpace {
                problems.append("the spool has \(ByteSize.describe(free)) free, below the \(ByteSize.describe(minimumFreeSpace)) required (--min-free-space)")
            }
        } catch { problems.append("the spool's free space cannot be read: \(error.problem)") }
        if !listening { problems.append("the listener is not bound yet") }
        return problems
    }

    /// The delivery worker; of several nodes, woken by the others' queueing and renewing
    /// its claims a third of the way into their lease. `leads` says whether it may prune
    /// `spool/sent/` now (the leader's work).
    private func worker(
        _ configuration: DeliveryConfiguration, instruments: any GatewayInstruments = NoInstruments(),
        leads: @escaping @Sendable () -> Bool
    ) -> DeliveryWorker {
        var configuration = configuration
        if let nodes, configuration.claimRenewalInterval == nil {
            configuration.claimRenewalInterval = .milliseconds(Int64(nodes.claimLease * 1000 / 3))
        }
        var wakeups: (@Sendable () -> AsyncStream<Void>)?
        if let nodes { wakeups = { nodes.queueWakeups() } }
        return DeliveryWorker(
            configuration: configuration, store: store, spool: spool, pki: home.pki, instruments: instruments,
            wakeups: wakeups, leads: leads, logger: logger
        )
    }
}
