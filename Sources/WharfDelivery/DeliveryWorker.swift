import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import WharfCore
import WharfPKI
import WharfSpool

/// How the delivery worker runs.
public struct DeliveryConfiguration: Sendable {
    /// The retry policy of partners that set none of their own.
    public var retryPolicy = RetryPolicy()
    /// Deliveries to one partner at once, unless it sets its own limit.
    public var maxDeliveriesPerPartner = 4
    /// Deliveries at once in all (they share libcurl's one thread).
    public var maxDeliveries = 64
    /// How often the queue is checked for transfers that fell due or were queued by another
    /// process (a finished delivery makes the worker check at once).
    public var pollInterval: Duration = .milliseconds(250)
    /// How long delivered files stay in `spool/sent/`, in seconds.
    public var sentRetention: Double = 7 * 86_400
    /// How often pull partners' transfers are checked for passing their maximum age.
    public var pullExpiryInterval: Double = 5
    /// Threads for the calls that block around each attempt (registry reads and commits,
    /// moving files).
    public var blockingThreads = 16
    /// How often the claims of attempts in flight are renewed, on a store whose claims
    /// expire (several nodes); `nil` on one whose claims hold until finished.
    public var claimRenewalInterval: Duration?

    public init() {}
}

/// Delivers queued transfers: claims those due, runs them through libcurl's multi
/// interface, and records each attempt and what follows (delivered, retry later, dead).
///
/// A partner that is down only holds its own deliveries: each partner has its own limit,
/// and attempts to it time out (connect 10 s) without holding anyone else's.
public struct DeliveryWorker: Service {
    private let configuration: DeliveryConfiguration
    private let store: any DeliveryStore
    private let spool: Spool
    private let client: DeliveryClient
    private let ownCredential: OwnClientCredential
    private let partners = ClaimedPartners()
    private let tally = NIOLockedValueBox(DeliveryTally())
    private let instruments: any GatewayInstruments
    private let announcements: (@Sendable () -> AsyncStream<Void>)?
    private let leads: @Sendable () -> Bool
    private let logger: Logger

    /// - Parameters:
    ///   - wakeups: makes a stream that yields when another process may have queued a
    ///     transfer (another node, through the shared registry): the worker then claims at
    ///     once rather than at the next poll.
    ///   - leads: whether this node may prune `spool/sent/` now. Of several nodes sharing
    ///     one spool, only the leader does (always, for one node).
    public init(
        configuration: DeliveryConfiguration, store: any DeliveryStore, spool: Spool, pki: PKIDirectory,
        client: DeliveryClient = DeliveryClient(), instruments: any GatewayInstruments = NoInstruments(),
        wakeups: (@Sendable () -> AsyncStream<Void>)? = nil, leads: @escaping @Sendable () -> Bool = { true }, logger: Logger
    ) {
        self.configuration = configuration
        self.announcements = wakeups
        self.leads = leads
        self.instruments = instruments
        self.store = store
        self.spool = spool
        self.client = client
        self.ownCredential = OwnClientCredential(pki: pki)
        self.logger = logger
    }

    /// Runs until graceful shutdown; attempts in flight then finish first. Transfers a
    /// stopped process left `sending` are recovered by the gateway before this starts.
    public func run() async throws {
        let stopping = NIOLockedValueBox(false)
        try await withGracefulShutdownHandler {
            try await work(stopWhenIdle: false, stopping: stopping)
        } onGracefulShutdown: {
            stopping.withLockedValue { $0 = true }
        }
    }

    /// Delivers everything due now, including retries that fall due meanwhile, and returns
    /// when nothing is due and nothing is in flight, with what this drain's attempts came
    /// to. For cron-driven set-ups and tests (`wharf deliver --once`).
    @discardableResult
    public func drain() async throws -> DeliveryTally {
        tally.withLockedValue { $0 = DeliveryTally() }
        try await work(stopWhenIdle: true, stopping: NIOLockedValueBox(false))
        return tally.withLockedValue { $0 }
    }

    private func work(stopWhenIdle: Bool, stopping: NIOLockedValueBox<Bool>) async throws {
        // For the registry's blocking calls around each attempt: with a thread per
        // delivery in flight, their commits share fsyncs instead of queueing.
        let threads = NIOThreadPool(numberOfThreads: configuration.blockingThreads)
        threads.start()
        defer { threads.shutdownGracefully { _ in } }
        let inFlight = NIOLockedValueBox(0)
        let queueFailures = FailureStreak()
        var lastPrune = Date.distantPast
        var lastExpiry = Date.distantPast

        // The loop claims again when woken: by a delivery that finished (room for the
        // next one at once) or by the poll tick (transfers queued by other processes,
        // retries falling due). Wake-ups that arrive while it works count once.
        let (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        var wakeups = wakes.makeAsyncIterator()
        let ticker = Task { [pollInterval = configuration.pollInterval] in
            while !Task.isCancelled {
                try? await Task.sleep(for: pollInterval)
                wake.yield()
            }
        }
        defer { ticker.cancel() }
        let announced = announcements.map { makeStream in
            Task {
                for await _ in makeStream() { wake.yield() }
            }
        }
        defer { announced?.cancel() }
        // The transfers being attempted now, whose claims the renewal keeps.
        let attempting = NIOLockedValueBox(Set<String>())
        let renewal = configuration.claimRenewalInterval.map { interval in
            Task { [store, logger] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    let ids = Array(attempting.withLockedValue { $0 })
                    guard !ids.isEmpty else { continue }
                    do {
                        let held = try await threads.runIfActive { try store.renewClaims(ids, now: Date()) }
                        for lost in ids where !held.contains(lost) && attempting.withLockedValue({ $0.contains(lost) }) {
                            // Its finish will be refused: another node sends it again.
                            logger.warning("the claim on a transfer being sent was lost", metadata: ["transfer": "\(lost)"])
                        }
                    } catch {
                        logger.warning("claims cannot be renewed", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
        defer { renewal?.cancel() }

        await withDiscardingTaskGroup { group in
            while !stopping.withLockedValue({ $0 }) && !Task.isCancelled {
                // Read before claiming: deliveries that finish during the claim were still
                // `sending` to it, so an empty claim means idle only if none was in flight.
                let inFlightBeforeClaim = inFlight.withLockedValue { $0 }
                let room = configuration.maxDeliveries - inFlightBeforeClaim
                var claimed: [Transfer] = []
                do {
                    // On the thread pool: a claim blocks on SQLite, and the cooperative
                    // threads (as many as cores) carry every delivery's continuations.
                    let (store, perPartner) = (store, configuration.maxDeliveriesPerPartner)
                    if room > 0 {
                        let claim = try await threads.runIfActive {
                            try store.claimDue(now: Date(), defaultPerPartner: perPartner, limit: room)
                        }
                        partners.keep(ifStill: claim.partnerGeneration)
                        claimed = claim.transfers
                        if queueFailures.succeeded() > 0 { logger.notice("the queue can be read again") }
                    }
                } catch {
                    if queueFailures.failed() { logger.error("the queue cannot be read", metadata: ["error": "\(error)"]) }
                    claimed = []
                }
                for transfer in claimed {
                    inFlight.withLockedValue { $0 += 1 }
                    group.addTask {
                        await deliver(transfer, threads: threads, attempting: attempting) { !stopping.withLockedValue { $0 } }
                        inFlight.withLockedValue { $0 -= 1 }
                        wake.yield()
                    }
                }
                if stopWhenIdle, claimed.isEmpty, inFlightBeforeClaim == 0 { break }
                if Date().timeIntervalSince(lastExpiry) >= configuration.pullExpiryInterval {
                    lastExpiry = Date()
                    let (store, maxAge, logger, instruments) = (store, configuration.retryPolicy.maxAge, logger, instruments)
                    group.addTask {
                        do {
                            let expired = try await threads.runIfActive { try store.expireUnfetched(now: Date(), defaultMaxAge: maxAge) }
                            for transfer in expired {
                                instruments.deliveryAttempted(partner: transfer.partner, outcome: "dead", duration: .zero)
                                logger.warning("transfer dead", metadata: [
                                    "transfer": "\(transfer.id)", "partner": "\(transfer.partner)", "reason": "\(transfer.lastError ?? "")",
                                ])
                            }
                        } catch {
                            logger.error("pull transfers cannot be checked for their age", metadata: ["error": "\(error)"])
                        }
                    }
                }
                if Date().timeIntervalSince(lastPrune) > 3600, leads() {
                    lastPrune = Date()
                    let (spool, retention, logger) = (spool, configuration.sentRetention, logger)
                    group.addTask {
                        let pruned = (try? await threads.runIfActive { spool.pruneSent(olderThan: retention) }) ?? 0
                        if pruned > 0 { logger.info("pruned delivered files", metadata: ["count": "\(pruned)"]) }
                    }
                }
                _ = await wakeups.next()
            }
            // Deliveries in flight finish before the group returns.
            ticker.cancel()
        }
    }

    /// Attempts `first`, then each transfer the commit of the previous attempt claimed for
    /// the slot it freed (while `claimNext` says so), and returns when there is none.
    func deliver(
        _ first: Transfer, threads: NIOThreadPool, attempting: NIOLockedValueBox<Set<String>>, claimNext: @escaping @Sendable () -> Bool
    ) async {
        var next: Transfer? = first
        while let transfer = next {
            attempting.withLockedValue { _ = $0.insert(transfer.id) }
            next = await attempt(transfer, threads: threads, claimNext: claimNext())
            attempting.withLockedValue { _ = $0.remove(transfer.id) }
        }
    }

    /// One attempt, start to finish: the store is read and written on the thread pool
    /// (those calls block), the transfer runs on libcurl's thread, and `DeliveryDecision`
    /// decides what is recorded. Returns the transfer claimed next, if `claimNext` and one
    /// was due.
    private func attempt(_ transfer: Transfer, threads: NIOThreadPool, claimNext: Bool) async -> Transfer? {
        let started = Date()
        let clock = ContinuousClock.now
        var logger = self.logger
        logger[metadataKey: "transfer"] = "\(transfer.id)"
        logger[metadataKey: "partner"] = "\(transfer.partner)"
        do {
            guard let (partner, request) = try await threads.runIfActive({ [logger] in try start(transfer, logger: logger) }) else {
                return nil
            }
            let result = await client.deliver(request, partner: transfer.partner)
            let outcome = DeliveryDecision.outcome(
                of: result, for: transfer, partner: partner, defaults: configuration.retryPolicy,
                now: Date(), random: Double.random(in: 0..<1)
            )
            var recorded = DeliveryAttempt(
                transferID: transfer.id, number: transfer.attempts + 1, startedAt: started,
                duration: Date().timeIntervalSince(started), curlCode: result.curlCode, httpStatus: result.httpStatus,
                bytesSent: result.bytesSent, error: outcome.reason
            )
            // What the receiver holds of a broken attempt is where the next one resumes.
            if case .retry = outcome { recorded.uploadLocation = result.uploadLocation }
            let attempt = recorded
            let next = claimNext ? (now: Date(), defaultPerPartner: configuration.maxDeliveriesPerPartner) : nil
            let (store, spool) = (store, spool)
            let claim = try await threads.runIfActive {
                try store.finish(transfer, attempt: attempt, outcome: outcome, claimingNext: next) {
                    if case .delivered(let receipt, _) = outcome { try spool.moveToSent(transfer, receipt: receipt) }
                }
            }
            Self.log(outcome, attempt: attempt, status: result.httpStatus, to: logger)
            instruments.deliveryAttempted(partner: transfer.partner, outcome: outcome.label, duration: ContinuousClock.now - clock)
            tally.withLockedValue { $0.count(outcome) }
            if let claim { partners.keep(ifStill: claim.partnerGeneration) }
            return claim?.transfers.first
        } catch {
            // The transfer must not stay `sending`: try again after the first retry delay.
            logger.error("delivery could not be recorded", metadata: ["error": "\(error)"])
            let (store, retryAt) = (store, Date().addingTimeInterval(configuration.retryPolicy.initialDelay))
            _ = try? await threads.runIfActive { try store.release(transfer.id, retryAt: retryAt, reason: "\(error)") }
            return nil
        }
    }

    /// The partner and request for `transfer`, or `nil` when it cannot be attempted now (it
    /// is then recorded dead, or given back to the queue for a moment). Blocking.
    private func start(_ transfer: Transfer, logger: Logger) throws -> (Partner, DeliveryRequest)? {
        let partner = try partners.partner(named: PartnerName(transfer.partner), from: store)
        let path = spool.outgoingPath(transfer.id)
        switch DeliveryDecision.start(
            transfer, partner: partner, fileExists: FileManager.default.fileExists(atPath: path),
            outgoingDirectory: spool.outgoingDirectory, now: Date()
        ) {
        case .kill(let reason):
            try store.kill(transfer.id, reason: reason)
            tally.withLockedValue { $0.dead += 1 }
            logger.warning("transfer dead", metadata: ["reason": "\(reason)"])
            return nil
        case .wait(let until, let reason):
            try store.release(transfer.id, retryAt: until, reason: reason)
            logger.info("transfer not ready; tried again shortly", metadata: ["reason": "\(reason)"])
            return nil
        case .attempt(let partner, let url):
            let credential = try partner.outbound.clientCredential ?? ownCredential.current()
            var request = DeliveryRequest(
                url: DeliveryRequest.url(base: url, filename: transfer.filename), filePath: path,
                size: transfer.size, sha256: transfer.sha256, idempotencyKey: transfer.id,
                clientCertificatePEM: credential.certificatePEM, clientKeyPEM: credential.privateKeyPEM,
                serverCAPEM: partner.outbound.serverCAPEM, pins: partner.outbound.pins
            )
            request.uploadLocation = transfer.uploadLocation
            return (partner, request)
        }
    }

    private static func log(_ outcome: AttemptOutcome, attempt: DeliveryAttempt, status: Int?, to logger: Logger) {
        switch outcome {
        case .delivered:
            logger.info("delivered", metadata: ["attempt": "\(attempt.number)", "status": "\(status ?? 0)"])
        case .retry(let date, let reason):
            logger.notice("delivery failed; will retry", metadata: ["reason": "\(reason)", "at": "\(date)"])
        case .dead(let reason):
            logger.warning("transfer dead", metadata: ["reason": "\(reason)"])
        }
    }
}

/// What the attempts of one `drain` came to, by the state each left its transfer in.
public struct DeliveryTally: Sendable, Equatable {
    public var delivered = 0
    public var retrying = 0
    public var dead = 0

    public init() {}

    mutating func count(_ outcome: AttemptOutcome) {
        switch outcome {
        case .delivered: delivered += 1
        case .retry: retrying += 1
        case .dead: dead += 1
        }
    }
}

/// The partners the worker delivered to, kept while the store's partner generation
/// stays what the last claim read: deliveries to one partner read its row once, not
/// once each. Deliveries that need a partner while it is being read wait for that read
/// instead of making their own: a claim of eight transfers to one partner starts eight
/// deliveries at once, which would otherwise read the same row eight times, and on
/// PostgreSQL open a pooled connection for each.
final class ClaimedPartners: @unchecked Sendable {
    // Everything below is guarded by `condition`.
    private let condition = NSCondition()
    private var generation: Int64?
    private var partners: [PartnerName: Partner] = [:]
    /// Partners being read now, by one caller each.
    private var reading: Set<PartnerName> = []
    /// Callers waiting for another's read.
    private var waiting = 0

    /// Forgets every partner unless `generation` is the one they were kept at.
    func keep(ifStill generation: Int64) {
        condition.lock()
        defer { condition.unlock() }
        if self.generation != generation {
            self.generation = generation
            partners = [:]
        }
    }

    /// The partner as kept, or read from the store (and kept). Blocking.
    func partner(named name: PartnerName, from store: any PartnerDirectory) throws(WharfError) -> Partner? {
        condition.lock()
        while reading.contains(name) {
            waiting += 1
            condition.wait()
            waiting -= 1
        }
        if let kept = partners[name] {
            condition.unlock()
            return kept
        }
        // Not kept (or the read waited for found none, or failed): this caller reads.
        reading.insert(name)
        let generation = generation
        condition.unlock()
        let read: Result<Partner?, WharfError>
        do throws(WharfError) {
            read = .success(try store.partner(named: name))
        } catch {
            read = .failure(error)
        }
        condition.lock()
        reading.remove(name)
        // Kept only if no newer claim moved the generation while it was read.
        if case .success(let partner?) = read, generation != nil, self.generation == generation {
            partners[name] = partner
        }
        condition.broadcast()
        condition.unlock()
        return try read.get()
    }

    /// Callers waiting for another's read of a partner (for tests).
    var waitingForReads: Int {
        condition.lock()
        defer { condition.unlock() }
        return waiting
    }
}
