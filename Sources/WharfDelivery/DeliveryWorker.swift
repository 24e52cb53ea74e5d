import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import ServiceLifecycle
import WharfCore
import WharfPKI
import WharfSpool
import WharfStore

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
    /// Threads for the calls that block around each attempt (registry reads and commits,
    /// moving files).
    public var blockingThreads = 16

    public init() {}
}

/// Delivers queued transfers: claims those due, runs them through libcurl's multi
/// interface, and records each attempt and what follows (delivered, retry later, dead).
///
/// A partner that is down only holds its own deliveries: each partner has its own limit,
/// and attempts to it time out (connect 10 s) without holding anyone else's.
public struct DeliveryWorker: Service {
    private let configuration: DeliveryConfiguration
    private let registry: Registry
    private let spool: Spool
    private let client: DeliveryClient
    private let ownCredential: OwnClientCredential
    private let partners = ClaimedPartners()
    private let logger: Logger

    public init(
        configuration: DeliveryConfiguration, registry: Registry, spool: Spool, pki: PKIDirectory,
        client: DeliveryClient = DeliveryClient(), logger: Logger
    ) {
        self.configuration = configuration
        self.registry = registry
        self.spool = spool
        self.client = client
        self.ownCredential = OwnClientCredential(pki: pki)
        self.logger = logger
    }

    /// Runs until graceful shutdown; attempts in flight then finish first.
    public func run() async throws {
        let requeued = try registry.requeueInterrupted()
        if requeued > 0 {
            logger.notice("transfers interrupted by a stop are due again", metadata: ["count": "\(requeued)"])
        }
        let stopping = NIOLockedValueBox(false)
        try await withGracefulShutdownHandler {
            try await work(stopWhenIdle: false, stopping: stopping)
        } onGracefulShutdown: {
            stopping.withLockedValue { $0 = true }
        }
    }

    /// Delivers everything due now, including retries that fall due meanwhile, and returns
    /// when nothing is due and nothing is in flight. For cron-driven set-ups and tests; run
    /// it while no `wharf serve` runs on the same home.
    public func drain() async throws {
        _ = try registry.requeueInterrupted()
        try await work(stopWhenIdle: true, stopping: NIOLockedValueBox(false))
    }

    private func work(stopWhenIdle: Bool, stopping: NIOLockedValueBox<Bool>) async throws {
        // For the registry's blocking calls around each attempt: with a thread per
        // delivery in flight, their commits share fsyncs instead of queueing.
        let threads = NIOThreadPool(numberOfThreads: configuration.blockingThreads)
        threads.start()
        defer { threads.shutdownGracefully { _ in } }
        let inFlight = NIOLockedValueBox(0)
        var lastPrune = Date.distantPast

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
                    let (registry, perPartner) = (registry, configuration.maxDeliveriesPerPartner)
                    if room > 0 {
                        let claim = try await threads.runIfActive {
                            try registry.claimDue(now: Date(), defaultPerPartner: perPartner, limit: room)
                        }
                        partners.keep(ifStill: claim.partnerGeneration)
                        claimed = claim.transfers
                    }
                } catch {
                    logger.error("the queue cannot be read", metadata: ["error": "\(error)"])
                    claimed = []
                }
                for transfer in claimed {
                    inFlight.withLockedValue { $0 += 1 }
                    group.addTask {
                        await deliver(transfer, threads: threads) { !stopping.withLockedValue { $0 } }
                        inFlight.withLockedValue { $0 -= 1 }
                        wake.yield()
                    }
                }
                if stopWhenIdle, claimed.isEmpty, inFlightBeforeClaim == 0 { break }
                if Date().timeIntervalSince(lastPrune) > 3600 {
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

    /// What an attempt needs, read from the registry before it starts.
    private struct Plan: Sendable {
        let partner: Partner
        let request: DeliveryRequest
    }

    /// Attempts `first`, then each transfer the commit of the previous attempt claimed for
    /// the slot it freed (while `claimNext` says so), and returns when there is none.
    func deliver(_ first: Transfer, threads: NIOThreadPool, claimNext: @escaping @Sendable () -> Bool) async {
        var next: Transfer? = first
        while let transfer = next {
            next = await attempt(transfer, threads: threads, claimNext: claimNext())
        }
    }

    /// One attempt, start to finish: the registry is read and written on the thread pool
    /// (those calls block on SQLite and fsync), the transfer runs on libcurl's thread.
    /// Returns the transfer claimed next, if `claimNext` and one was due.
    private func attempt(_ transfer: Transfer, threads: NIOThreadPool, claimNext: Bool) async -> Transfer? {
        let started = Date()
        let logger = {
            var logger = self.logger
            logger[metadataKey: "transfer"] = "\(transfer.id)"
            logger[metadataKey: "partner"] = "\(transfer.partner)"
            return logger
        }()
        do {
            guard let plan = try await threads.runIfActive({ try plan(transfer) }) else { return nil }
            let result = await client.deliver(plan.request, partner: transfer.partner)
            let claim = try await threads.runIfActive {
                try record(transfer, plan: plan, result: result, started: started, claimNext: claimNext, logger: logger)
            }
            if let claim { partners.keep(ifStill: claim.partnerGeneration) }
            return claim?.transfers.first
        } catch {
            // The transfer must not stay `sending`: try again after the first retry delay.
            logger.error("delivery could not be recorded", metadata: ["error": "\(error)"])
            try? registry.release(
                transfer.id, retryAt: Date().addingTimeInterval(configuration.retryPolicy.initialDelay), reason: "\(error)"
            )
            return nil
        }
    }

    /// The request for `transfer`, or `nil` when it cannot be attempted (it is then dead).
    private func plan(_ transfer: Transfer) throws -> Plan? {
        guard let partner = try partners.partner(named: PartnerName(transfer.partner), from: registry) else {
            try registry.kill(transfer.id, reason: "partner '\(transfer.partner)' no longer exists")
            return nil
        }
        guard let url = partner.outbound.url else {
            try registry.kill(
                transfer.id,
                reason: "partner '\(partner.name)' has no delivery URL; set one with `wharf partner update \(partner.name) --url URL`, then `wharf transfers retry \(transfer.id)`"
            )
            return nil
        }
        guard FileManager.default.fileExists(atPath: spool.outgoingPath(transfer.id)) else {
            try registry.kill(transfer.id, reason: "its file is missing from \(spool.outgoingDirectory)")
            return nil
        }
        let credential = try partner.outbound.clientCredential ?? ownCredential.current()
        let request = DeliveryRequest(
            url: DeliveryRequest.url(base: url, filename: transfer.filename), filePath: spool.outgoingPath(transfer.id),
            size: transfer.size, sha256: transfer.sha256, idempotencyKey: transfer.id,
            clientCertificatePEM: credential.certificatePEM, clientKeyPEM: credential.privateKeyPEM,
            serverCAPEM: partner.outbound.serverCAPEM, pins: partner.outbound.pins
        )
        return Plan(partner: partner, request: request)
    }

    /// Records the attempt and what follows from it: delivered, a retry, or dead; with
    /// `claimNext`, claims the next transfer due in the same commit.
    private func record(
        _ transfer: Transfer, plan: Plan, result: DeliveryResult, started: Date, claimNext: Bool, logger: Logger
    ) throws -> Registry.Claim? {
        let next = claimNext ? (now: Date(), defaultPerPartner: configuration.maxDeliveriesPerPartner) : nil
        let verdict = DeliveryVerdict.judge(result, expectedSHA256: transfer.sha256)
        let reason: String? = switch verdict {
        case .delivered: nil
        case .transient(let why), .permanent(let why): why
        }
        let attempt = DeliveryAttempt(
            transferID: transfer.id, number: transfer.attempts + 1, startedAt: started,
            duration: Date().timeIntervalSince(started), curlCode: result.curlCode, httpStatus: result.httpStatus,
            bytesSent: result.bytesSent, error: reason
        )
        switch verdict {
        case .delivered:
            let claim = try registry.finish(transfer, attempt: attempt, outcome: .delivered(receipt: result.body), claimingNext: next) {
                try spool.moveToSent(transfer, receipt: result.body)
            }
            logger.info("delivered", metadata: ["attempt": "\(attempt.number)", "status": "\(result.httpStatus ?? 0)"])
            return claim
        case .transient(let why):
            let policy = plan.partner.outbound.retryPolicy(overriding: configuration.retryPolicy)
            let queuedAt = try registry.queuedAt(transfer.id) ?? transfer.createdAt
            switch policy.afterTransientFailure(
                attempts: attempt.number, createdAt: queuedAt, now: Date(), retryAfter: result.retryAfter,
                random: Double.random(in: 0..<1)
            ) {
            case .retry(let date):
                let claim = try registry.finish(transfer, attempt: attempt, outcome: .retry(at: date, reason: why), claimingNext: next)
                logger.notice("delivery failed; will retry", metadata: ["reason": "\(why)", "at": "\(date)"])
                return claim
            case .giveUp(let giveUp):
                let claim = try registry.finish(transfer, attempt: attempt, outcome: .dead(reason: "\(why); \(giveUp)"), claimingNext: next)
                logger.warning("transfer dead", metadata: ["reason": "\(why); \(giveUp)"])
                return claim
            }
        case .permanent(let why):
            let claim = try registry.finish(transfer, attempt: attempt, outcome: .dead(reason: why), claimingNext: next)
            logger.warning("transfer dead", metadata: ["reason": "\(why)"])
            return claim
        }
    }
}

/// The partners the worker delivered to, kept while the registry's partner generation
/// stays what the last claim read: deliveries to one partner read its row once, not
/// once each.
final class ClaimedPartners: Sendable {
    private struct State {
        var generation: Int64?
        var partners: [PartnerName: Partner] = [:]
    }

    private let state = NIOLockedValueBox(State())

    /// Forgets every partner unless `generation` is the one they were kept at.
    func keep(ifStill generation: Int64) {
        state.withLockedValue { state in
            if state.generation != generation {
                state = State(generation: generation)
            }
        }
    }

    /// The partner as kept, or read from the registry (and kept). Blocking.
    func partner(named name: PartnerName, from registry: Registry) throws(WharfError) -> Partner? {
        if let kept = state.withLockedValue({ $0.partners[name] }) { return kept }
        let generation = state.withLockedValue { $0.generation }
        guard let partner = try registry.partner(named: name) else { return nil }
        state.withLockedValue { state in
            // Kept only if no newer claim moved the generation while it was read.
            if state.generation == generation && generation != nil { state.partners[name] = partner }
        }
        return partner
    }
}
